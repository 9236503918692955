import ArgumentParser
import Foundation
import LinprobeCore

/// `linprobe train-svm <pipeline> [overrides] [--features TRAIN.h5 --test-features TEST.h5]`.
struct TrainSVMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-svm",
        abstract: "VISSL's VOC07 linear-SVM protocol (or its low-shot variant) on every layer of the stored features.",
        discussion: """
            Settings come from SVM.* (VISSL's names) and LINPROBE.SVM.*. The stores are those the pipeline's \
            extraction settings name (run 'linprobe extract' first), or --features/--test-features. Writes \
            <workdir>/svm/<fp>/<layer>/results.json with the chosen models; every finished fit is logged, so a \
            killed run resumes without refitting, and a finished one is reused.
            """)

    @OptionGroup var arguments: PipelineArguments

    @Option(help: "Training feature store (.h5); default: the store of this pipeline's extraction.")
    var features: String?

    @Option(help: "Test feature store (.h5).")
    var testFeatures: String?

    @Option(help: "Compute threads (default: LINPROBE.THREADS, 0 = all cores).")
    var threads: Int?

    @Flag(help: "Fit again even when a finished run with the same fingerprint exists (ignores the fit log).")
    var force = false

    func validate() throws {
        if let threads, threads < 0 { throw ValidationError("--threads must be ≥ 0") }
    }

    func run() throws {
        try reportingErrors {
            let config = try PipelineConfig.load(pipeline: arguments.pipeline, overrides: arguments.overrides)
            for note in config.notes { Console.note(note) }
            if let note = config.ignoredKeysNote { Console.note(note) }
            let stores = try resolveStores(config: config, workdir: arguments.workdir, features: features, testFeatures: testFeatures, stage: "train-svm")
            let outcome = try runSVMStage(config: config, workdir: arguments.workdir, stores: stores, threads: threads, force: force)
            if outcome.reused { Console.note("train-svm: reusing the finished run \(outcome.directory)") }
            for line in outcome.lines { Console.result(line) }
        }
    }
}
