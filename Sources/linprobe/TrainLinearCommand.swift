import ArgumentParser
import Foundation
import LinprobeCore

/// `linprobe train-linear <pipeline> [overrides] [--features TRAIN.h5 --test-features TEST.h5]`.
struct TrainLinearCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-linear",
        abstract: "Train VISSL's linear heads (eval_mlp, mlp) with SGD on stored features, all heads in one pass.",
        discussion: """
            Heads come from MODEL.HEAD.PARAMS and pair, in order, with the layers of the training store. \
            The stores are those the pipeline's extraction settings name (run 'linprobe extract' first), \
            or --features/--test-features. Writes <workdir>/linear/<fp>/<head>/{metrics.json,results.json,\
            checkpoint_epoch<E>.lpck}; a killed run resumes at its last finished epoch, a finished one is reused.
            """)

    @OptionGroup var arguments: PipelineArguments

    @Option(help: "Training feature store (.h5); default: the store of this pipeline's extraction.")
    var features: String?

    @Option(help: "Test feature store (.h5), evaluated after every epoch.")
    var testFeatures: String?

    @Option(help: "Compute threads (default: LINPROBE.THREADS, 0 = all cores).")
    var threads: Int?

    @Flag(help: "Train again even when a finished run with the same fingerprint exists.")
    var force = false

    func validate() throws {
        if let threads, threads < 0 { throw ValidationError("--threads must be ≥ 0") }
    }

    func run() throws {
        try reportingErrors {
            let config = try PipelineConfig.load(pipeline: arguments.pipeline, overrides: arguments.overrides)
            for note in config.notes { Console.note(note) }
            if let note = config.ignoredKeysNote { Console.note(note) }
            let stores = try resolveStores(config: config, workdir: arguments.workdir, features: features, testFeatures: testFeatures, stage: "train-linear")
            let outcome = try runLinearStage(config: config, workdir: arguments.workdir, stores: stores, threads: threads, force: force)
            if outcome.reused { Console.note("train-linear: reusing the finished run \(outcome.directory)") }
            for line in outcome.lines { Console.result(line) }
        }
    }
}
