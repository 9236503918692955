import Foundation

/// Which stages `linprobe run` runs for a pipeline: `LINPROBE.STAGES` when set; otherwise extract
/// (import-features instead when `LINPROBE.IMPORT.TRAIN.FEATURES` or `TEST.FEATURES` names
/// features made elsewhere), then train-svm when the pipeline sets `SVM.*` keys (or
/// `LINPROBE.SVM.LOW_SHOT`), train-linear when it sets `MODEL.HEAD.PARAMS`, knn when it sets
/// `NEAREST_NEIGHBOR.*` (or `LINPROBE.KNN.*`), and report.
public struct StageSelection: Sendable, Equatable {
    public var stages: [StageKind]

    public func contains(_ stage: StageKind) -> Bool { stages.contains(stage) }

    public var names: [String] { stages.map(\.name) }

    /// Whether the pipeline imports its features instead of extracting them.
    public static func imports(_ config: PipelineConfig) throws -> Bool {
        try !config.node("LINPROBE.IMPORT.TRAIN.FEATURES").string().isEmpty
            || !config.node("LINPROBE.IMPORT.TEST.FEATURES").string().isEmpty
    }

    /// Whether the pipeline asks for the kNN benchmark.
    public static func wantsKNN(_ config: PipelineConfig) -> Bool {
        config.isExplicit("NEAREST_NEIGHBOR") || config.isExplicit("LINPROBE.KNN")
    }

    public init(config: PipelineConfig) throws {
        let listed = try config.node("LINPROBE.STAGES").strings()
        if !listed.isEmpty {
            stages = StageKind.allCases.filter { listed.contains($0.name) }
            return
        }
        let svm = config.isExplicit("SVM") || config.isExplicit("LINPROBE.SVM.LOW_SHOT")
        var heads = false
        if config.isExplicit("MODEL.HEAD.PARAMS"), case .array(let a)? = config.node("MODEL.HEAD.PARAMS").value {
            heads = !a.isEmpty
        }
        let knn = Self.wantsKNN(config)
        if svm, try config.node("LINPROBE.TRAIN_VIEWS").int() > 1 {
            throw LinprobeError.config(
                "LINPROBE.TRAIN_VIEWS: the pipeline also runs train-svm, whose protocol fits one row per image; use TRAIN_VIEWS 1, or a separate pipeline for the augmented linear heads"
            )
        }
        guard svm || heads || knn else {
            throw LinprobeError.config(
                "\(config.name): the pipeline sets neither SVM.* nor MODEL.HEAD.PARAMS nor NEAREST_NEIGHBOR.*, so there is nothing to evaluate; set one of them, or LINPROBE.STAGES=[extract] to extract only"
            )
        }
        let features: StageKind = try Self.imports(config) ? .importFeatures : .extract
        stages =
            [features] + (svm ? [.trainSVM] : []) + (heads ? [.trainLinear] : []) + (knn ? [.knn] : []) + [.report]
    }
}
