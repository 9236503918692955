import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeExtract
import LinprobeKNN

/// `linprobe knn <pipeline> [overrides] [--features TRAIN.h5 --test-features TEST.h5]`.
struct KNNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: StageKind.knn.name,
        abstract: "VISSL's nearest-neighbour benchmark (or DINO's weighted kNN) on the stored features of each tap.",
        discussion: """
            Settings come from NEAREST_NEIGHBOR.* (VISSL's names: TOPK, one k or a list; SIGMA; L2_NORM_FEATS), or \
            with LINPROBE.KNN.PROTOCOL=dino from LINPROBE.KNN.DINO.* (DINO's eval_knn: NB_KNN 10/20/100/200, \
            TEMPERATURE 0.07, features L2-normalised); LINPROBE.KNN.MEMORY_MB bounds the search. Every tap of MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP is searched (every \
            stored layer without a map). Similarities come from GEMMs over the training store read in chunks, each \
            test row keeps its k best in a bounded heap, on every core: memory does not grow with the training set. \
            Writes <workdir>/knn/<fp>/<layer>/results.json (top-1 / top-5 per k; mAP for multi-label stores); a \
            finished run is reused.
            """)

    @OptionGroup var arguments: PipelineArguments

    @OptionGroup var training: TrainingOptions

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            let stores = try training.stores(config, arguments.layout, for: .knn)
            let summary = try Self.execute(
                config: config, stores: stores, layout: arguments.layout,
                threads: try training.threading.resolved(config), force: training.force)
            for line in summary.summaryLines { Console.result(line) }
        }
    }

    /// Runs (or reuses) the stage under the manifest, saying on stderr when it was reused.
    static func execute(
        config: PipelineConfig, stores: TrainingStores, layout: WorkdirLayout, threads: Int, force: Bool
    ) throws -> KNNRunSummary {
        let stage = try KNNStage(
            config: config, train: stores.train, test: stores.test, layout: layout, threads: threads)
        return try executeStage(stage, layout: layout, force: force) { "knn: unchanged, reused \($0.directory)" }
    }
}

extension KNNRunSummary {
    /// One line per layer and k for stdout: layer, method, metrics, results path.
    var summaryLines: [String] {
        layers.flatMap { l in
            l.document.results.map { r in
                let values: String
                if l.document.metric == .mAP {
                    values = "mAP k=\(r.k) " + (r.mAP.map { String(format: "%.2f", $0) } ?? "n/a")
                } else {
                    values = String(
                        format: "top_1 k=%d %.2f\ttop_5 k=%d %.2f", r.k, r.top1 ?? .nan, r.k, r.top5 ?? .nan)
                }
                return "\(l.layer)\tknn\t\(values)\t\(l.resultsPath)"
            }
        }
    }
}
