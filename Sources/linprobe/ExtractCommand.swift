import ArgumentParser
import Dispatch
import Foundation
import LinprobeCore
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

    @Option(
        name: .customLong("decode-workers"), parsing: .unconditional,
        help:
            "Threads decoding and transforming images while the trunk runs (default: 2 on 2+ cores; 0 = decode between batches)."
    )
    var decodeWorkers: Int?

    @Flag(help: "Fail at the first unreadable image instead of using VISSL's gray image (LINPROBE.STRICT_IMAGES).")
    var strict = false

    @Flag(help: "Extract again even when a complete store with the same fingerprint exists.")
    var force = false

    @Option(
        name: .customLong("flush-seconds"),
        help: ArgumentHelp(
            "Seconds between flushes of the store (0 = after every batch). A flush keeps whole chunks only "
                + "(the store's chunk_rows rows: a whole number of batches, at most 256 or one batch): a crash loses the "
                + "rows since the last flush plus the rows of an unfinished chunk, so up to one chunk of work "
                + "even with 0."))
    var flushSeconds: Double = 5

    func validate() throws {
        if let decodeWorkers, decodeWorkers < 0 { throw ValidationError("--decode-workers must be 0 or more") }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if let decodeWorkers, decodeWorkers > ThreadOptions.maximumPerCore * cores {
            throw ValidationError(
                "--decode-workers \(decodeWorkers) is more than \(ThreadOptions.maximumPerCore) per core on this machine's \(cores) core(s); each holds a batch of decoded images"
            )
        }
        if flushSeconds < 0 || !flushSeconds.isFinite { throw ValidationError("--flush-seconds must be 0 or more") }
    }

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            let stop = StopRequest.installed()
            let options = ExtractOptions(
                workdir: arguments.workdir, threads: try threading.resolved(config), decodeWorkers: decodeWorkers,
                strict: strict ? true : nil,
                force: force, flushInterval: flushSeconds, shouldStop: { stop.isRequested }, note: { Console.note($0) })
            let results = try ExtractStage.run(config: config, options: options)
            for r in results { Console.result(r.storePath) }
        }
    }
}
