import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeExtract
import LinprobeLinear

/// `linprobe train-linear <pipeline> [overrides] [--features TRAIN.h5 --test-features TEST.h5]`.
struct TrainLinearCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: StageKind.trainLinear.name,
        abstract: "Train VISSL's linear heads (eval_mlp, mlp) with SGD on stored features, all heads in one pass.",
        discussion: """
            Heads come from MODEL.HEAD.PARAMS; head i trains on the tap named by entry i of \
            MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP, whatever the store's layer order (a store \
            may hold more taps; without a map, heads pair with the store's layers in order). The stores \
            are those the pipeline's extraction settings name (run 'linprobe extract' first), \
            or --features/--test-features. Writes <workdir>/linear/<fp>/<head>/{metrics.json,results.json,\
            checkpoint_epoch<E>.lpck}; a killed run resumes at its last finished epoch, a finished one is reused.
            """)

    @OptionGroup var arguments: PipelineArguments

    @OptionGroup var training: TrainingOptions

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            let stores = try training.stores(config, arguments.layout, for: .trainLinear)
            let result = try Self.execute(
                config: config, stores: stores, layout: arguments.layout,
                threads: try training.threading.resolved(config), force: training.force)
            for line in result.summaryLines { Console.result(line) }
        }
    }

    /// Runs (or reuses) the stage under the manifest, saying on stderr when it was reused.
    static func execute(
        config: PipelineConfig, stores: TrainingStores, layout: WorkdirLayout, threads: Int,
        force: Bool
    ) throws -> LinearOutcome {
        let stage = try LinearStage(
            config: config, train: stores.train, test: stores.test, layout: layout,
            threads: threads)
        let outcome = try executeStage(stage, layout: layout, force: force) {
            "train-linear: unchanged, reused \($0.directory)"
        }
        if let resumed = outcome.resumedFromEpoch { Console.note("train-linear: resumed at epoch \(resumed)") }
        return outcome
    }
}

extension LinearOutcome {
    /// One line per head for stdout: name, head type, metric and value, results path.
    var summaryLines: [String] {
        heads.map { h in
            let value = h.value.map { String(format: "%.3f", $0) } ?? "n/a"
            return "\(h.name)\t\(h.kind.rawValue)\t\(h.metric.rawValue) \(value)\t\(h.resultsPath)"
        }
    }
}
