import Foundation
import LinprobeCore
import LinprobeData
import LinprobeImport
import LinprobeStore

/// The training and test stores a training stage (train-svm, train-linear) reads.
public struct TrainingStores {
    public let train: FeatureStoreReader
    public let test: FeatureStoreReader

    public init(train: FeatureStoreReader, test: FeatureStoreReader) {
        self.train = train
        self.test = test
    }

    /// The explicit `--features`/`--test-features` pair, or the stores the pipeline's extraction
    /// settings name (`features/<fp>/<split>.h5`, written by `extract`) — or, when the pipeline
    /// imports its features (`LINPROBE.IMPORT.*`), the stores of those imports. Missing stores are
    /// one line saying which command to run first.
    public static func resolve(
        config: PipelineConfig, layout: WorkdirLayout, features: String?, testFeatures: String?,
        stage: StageKind
    ) throws -> TrainingStores {
        switch (features, testFeatures) {
        case let (train?, test?):
            return TrainingStores(train: try FeatureStoreReader(path: train), test: try FeatureStoreReader(path: test))
        case (nil, nil):
            break
        default:
            throw LinprobeError(
                .usage,
                "\(stage.name): pass both --features TRAIN.h5 and --test-features TEST.h5, or neither (the stores of this pipeline's extraction are used)"
            )
        }
        if try StageSelection.imports(config) {
            return try imported(config: config, layout: layout, stage: stage)
        }
        let plans = try ExtractPlanner.plan(config: config, workdir: layout.root)
        func store(_ split: DatasetSplit) throws -> FeatureStoreReader {
            guard let plan = plans.first(where: { $0.split == split }) else {
                throw LinprobeError.config(
                    "DATA.\(split.rawValue): no dataset configured; \(stage.name) needs a \(split.rawValue.lowercased()) split (or pass --features/--test-features)"
                )
            }
            return try open(
                plan.relativeStorePath, layout: layout,
                missing:
                    "no \(split.rawValue) feature store for these extraction settings; run 'linprobe extract \(config.name)' (or 'linprobe run \(config.name)') first"
            )
        }
        return TrainingStores(train: try store(.train), test: try store(.test))
    }

    /// The stores of the pipeline's imports (`LINPROBE.IMPORT.{TRAIN,TEST}.FEATURES`).
    static func imported(config: PipelineConfig, layout: WorkdirLayout, stage: StageKind) throws -> TrainingStores {
        let plans = try ImportPlanner.plan(config: config, layout: layout)
        func store(_ split: String) throws -> FeatureStoreReader {
            guard let plan = plans.first(where: { $0.split == split }) else {
                throw LinprobeError.config(
                    "LINPROBE.IMPORT.\(split.uppercased()).FEATURES: not set; \(stage.name) needs \(split) features (or pass --features/--test-features)"
                )
            }
            return try open(
                plan.relativeStorePath, layout: layout,
                missing:
                    "no \(split) store for these imported features; run 'linprobe import-features \(config.name)' (or 'linprobe run \(config.name)') first"
            )
        }
        return TrainingStores(train: try store("train"), test: try store("test"))
    }

    /// A store a stage of this work folder wrote: `missing` when it is not there, an error naming it
    /// when it changed since its manifest record was completed.
    static func open(_ recorded: String, layout: WorkdirLayout, missing: String) throws -> FeatureStoreReader {
        let path = layout.resolve(recorded)
        guard FileManager.default.fileExists(atPath: path) else {
            throw LinprobeError(.missingInput, "\(path): \(missing)")
        }
        try ManifestStore(layout: layout).checkUnchanged(path)
        return try FeatureStoreReader(path: path)
    }

    /// The stores an extraction just produced (TRAIN and TEST), or nil when it made only one split.
    public static func of(_ results: [ExtractSplitResult]) throws -> TrainingStores? {
        guard let train = results.first(where: { $0.split == .train }),
            let test = results.first(where: { $0.split == .test })
        else { return nil }
        return TrainingStores(
            train: try FeatureStoreReader(path: train.storePath), test: try FeatureStoreReader(path: test.storePath))
    }
}
