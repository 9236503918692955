import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeExtract
import LinprobeSVM

/// `linprobe train-svm <pipeline> [overrides] [--features TRAIN.h5 --test-features TEST.h5]`.
struct TrainSVMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: StageKind.trainSVM.name,
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

    @Option(
        help: ArgumentHelp(
            "Train only piece P of (layer × class chunk) — layer P / K, class chunk P mod K — into a fit log of its "
                + "own, for a job array (linprobe slurm); a run without --piece then assembles results.json.",
            valueName: "P"))
    var piece: Int?

    @Option(name: .customLong("class-chunks"), help: "With --piece: class chunks per layer (K).")
    var classChunks: Int = 1

    func validate() throws {
        if piece != nil && training.force { throw ValidationError("--piece and --force: force the assembling run") }
        if classChunks < 1 { throw ValidationError("--class-chunks must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            let stores = try training.stores(config, arguments.layout, for: .trainSVM)
            if let piece {
                let stage = try SVMStage(
                    config: config, train: stores.train, test: stores.test, layout: arguments.layout,
                    threads: try training.threading.resolved(config))
                let (layer, classes) = try stage.trainPiece(
                    SVMPiece(index: piece, chunks: classChunks), note: { Console.note($0) })
                Console.result("\(layer)\tsvm piece \(piece)\t\(classes) class(es) fitted")
                return
            }
            let summary = try Self.execute(
                config: config, stores: stores, layout: arguments.layout,
                threads: try training.threading.resolved(config), force: training.force)
            for line in summary.summaryLines { Console.result(line) }
        }
    }

    /// Runs (or reuses) the stage under the manifest, saying on stderr when it was reused.
    static func execute(
        config: PipelineConfig, stores: TrainingStores, layout: WorkdirLayout, threads: Int,
        force: Bool
    ) throws -> SVMRunSummary {
        let stage = try SVMStage(
            config: config, train: stores.train, test: stores.test, layout: layout,
            threads: threads, forceRetrain: force)
        return try executeStage(stage, layout: layout, force: force) { "train-svm: unchanged, reused \($0.directory)" }
    }
}

extension SVMRunSummary {
    /// One line per layer for stdout: layer, method, metric and value, results path.
    var summaryLines: [String] {
        layers.map { l in
            let value = l.value.map { String(format: "%.2f", $0) } ?? "n/a"
            return "\(l.layer)\tsvm\t\(l.metric) \(value)\t\(l.resultsPath)"
        }
    }
}
