import ArgumentParser
import Dispatch
import Foundation
import LinprobeCore
import LinprobeData
import LinprobeExtract

/// `linprobe extract <pipeline> [overrides] [--workdir DIR] [--threads N] [--strict] [--force]`.
struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: StageKind.extract.name,
        abstract: "Run the frozen trunk over each configured split and store every tap of the pool-op map.",
        discussion: """
            Writes <workdir>/features/<fingerprint>/<split>.h5 for TRAIN and TEST (whichever has \
            data configured) and prints their paths on stdout. A store whose fingerprint (trunk, \
            weights hash, dataset listing, transforms, pool ops, storage, views) is already complete \
            is reused without work; an interrupted one (crash, SIGKILL, Ctrl-C) resumes from its last \
            flush. Unreadable images are replaced by VISSL's gray image, flagged in the store and \
            summarised at the end; --strict (LINPROBE.STRICT_IMAGES) stops at the first one instead, \
            keeping the rows before it for a later resume.
            """)

    @OptionGroup var arguments: PipelineArguments

    @OptionGroup var threading: ThreadOptions

    @OptionGroup var streaming: StreamingOptions

    @Flag(help: "Fail at the first unreadable image instead of using VISSL's gray image (LINPROBE.STRICT_IMAGES).")
    var strict = false

    @Flag(help: "Extract again even when a complete store with the same fingerprint exists.")
    var force = false

    @Option(
        help: ArgumentHelp(
            "Extract only shard I of N (I = 0…N−1): a contiguous range of whole batches of each split, into "
                + "features/<fp>/parts/<split>-<I>-of-<N>.h5 (default: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT "
                + "inside a Slurm job array).", valueName: "I/N"))
    var shard: String?

    @Option(help: "Only this split: TRAIN or TEST (default: every configured split).")
    var split: String?

    @Option(
        help: "Merge the N complete parts of each split (made with --shard I/N) into the split's store.")
    var shards: Int?

    @Option(
        help: ArgumentHelp(
            "With --shards: 'virtual' (an HDF5 virtual dataset over the parts; they must stay beside it) or "
                + "'copy' (one self-contained store).", valueName: "virtual|copy"))
    var merge: String = MergeMode.virtual.rawValue

    func validate() throws {
        if shard != nil && shards != nil { throw ValidationError("--shard I/N and --shards N: give one of them") }
        if let shards, shards < 1 { throw ValidationError("--shards must be at least 1, got \(shards)") }
        if let split, DatasetSplit(rawValue: split.uppercased()) == nil {
            throw ValidationError("--split must be TRAIN or TEST, got '\(split)'")
        }
        if MergeMode(rawValue: merge) == nil {
            throw ValidationError("--merge must be 'virtual' or 'copy', got '\(merge)'")
        }
    }

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            let stop = StopRequest.installed()
            let options = ExtractOptions(
                workdir: arguments.workdir, threads: try threading.resolved(config),
                decodeWorkers: streaming.decodeWorkers,
                strict: strict ? true : nil,
                force: force, flushInterval: streaming.flushSeconds, shouldStop: { stop.isRequested },
                note: { Console.note($0) })
            let results: [ExtractSplitResult]
            let only = split.flatMap { DatasetSplit(rawValue: $0.uppercased()) }
            if let shards {
                results = try ExtractStage.merge(
                    config: config, count: shards, mode: MergeMode(rawValue: merge) ?? .virtual, options: options,
                    split: only)
            } else if let spec = try shard.map(ShardSpec.parse)
                ?? ShardSpec.fromSlurm(
                    ProcessInfo.processInfo.environment)
            {
                results = try ExtractStage.runShard(config: config, shard: spec, options: options, split: only)
            } else {
                guard only == nil else {
                    throw LinprobeError(.usage, "--split goes with --shard I/N or --shards N")
                }
                results = try ExtractStage.run(config: config, options: options)
            }
            for r in results { Console.result(r.storePath) }
        }
    }
}
