import ArgumentParser
import Foundation
import LinprobeCore

/// `linprobe train-svm <pipeline> [overrides] [--features TRAIN.h5 --test-features TEST.h5]`.
struct TrainSVMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-svm",
        abstract: "VISSL's VOC07 linear-SVM protocol (or its low-shot variant) on the stored features of each tap.",
        discussion: """
            Settings come from SVM.* (VISSL's names) and LINPROBE.SVM.*. SVMs are trained on the taps of \
            MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP, in map order (every stored layer when the \
            pipeline has no map). The stores are those the pipeline's \
            extraction settings name (run 'linprobe extract' first), or --features/--test-features. Writes \
            <workdir>/svm/<fp>/<layer>/results.json with the chosen models; every finished fit is logged, so a \
            killed run resumes without refitting, and a finished one is reused.
            """)

    @OptionGroup var arguments: PipelineArguments

    @OptionGroup var training: TrainingOptions

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            let stores = try training.stores(config, arguments.layout, for: .trainSVM)
            let outcome = try runSVMStage(config: config, workdir: arguments.workdir, stores: stores,
                                          threads: try training.threading.resolved(config), force: training.force)
            if outcome.reused { Console.note("train-svm: unchanged, reused \(outcome.directory)") }
            for line in outcome.lines { Console.result(line) }
        }
    }
}
