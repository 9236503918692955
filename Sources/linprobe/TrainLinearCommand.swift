import ArgumentParser
import Foundation
import LinprobeCore

/// `linprobe train-linear <pipeline> [overrides] [--features TRAIN.h5 --test-features TEST.h5]`.
struct TrainLinearCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-linear",
        abstract: "Train VISSL's linear heads (eval_mlp, mlp) with SGD on stored features, all heads in one pass.",
        discussion: """
            Heads come from MODEL.HEAD.PARAMS; head i trains on the tap named by entry i of \
            MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP, whatever the store's layer order (a store \
            may hold more taps; without a map, heads pair with the store's layers in order). The stores are those the pipeline's extraction settings name (run 'linprobe extract' first), \
            or --features/--test-features. Writes <workdir>/linear/<fp>/<head>/{metrics.json,results.json,\
            checkpoint_epoch<E>.lpck}; a killed run resumes at its last finished epoch, a finished one is reused.
            """)

    @OptionGroup var arguments: PipelineArguments

    @OptionGroup var training: TrainingOptions

    func run() throws {
        try training.run(.trainLinear, arguments) { config, stores in
            try runLinearStage(config: config, workdir: arguments.workdir, stores: stores, threads: training.threads, force: training.force)
        }
    }
}
