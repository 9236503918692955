import Foundation

/// Which stages `linprobe run` runs for a pipeline: `LINPROBE.STAGES` when set; otherwise extract,
/// then train-svm when the pipeline sets `SVM.*` keys (or `LINPROBE.SVM.LOW_SHOT`), train-linear when
/// it sets `MODEL.HEAD.PARAMS`, and report.
public struct StageSelection: Sendable, Equatable {
    public var stages: [StageKind]

    public func contains(_ stage: StageKind) -> Bool { stages.contains(stage) }

    public var names: [String] { stages.map(\.name) }

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
        if svm, try config.node("LINPROBE.TRAIN_VIEWS").int() > 1 {
            throw LinprobeError.config(
                "LINPROBE.TRAIN_VIEWS: the pipeline also runs train-svm, whose protocol fits one row per image; use TRAIN_VIEWS 1, or a separate pipeline for the augmented linear heads"
            )
        }
        guard svm || heads else {
            throw LinprobeError.config(
                "\(config.name): the pipeline sets neither SVM.* nor MODEL.HEAD.PARAMS, so there is nothing to train; set one of them, or LINPROBE.STAGES=[extract] to extract only"
            )
        }
        stages = [.extract] + (svm ? [.trainSVM] : []) + (heads ? [.trainLinear] : []) + [.report]
    }
}
