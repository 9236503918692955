import Foundation
import LinprobeCore

extension FeatureStoreReader {
    /// What the store records about how it was made, for the results documents of the stages that
    /// read it (attributes another tool did not write are null).
    public var featureProvenance: FeatureProvenance {
        let provenance = (try? jsonAttribute("provenance")) ?? .null
        return FeatureProvenance(
            fingerprint: fingerprint, path: Paths.standardized(path), split: split, rows: count,
            trunk: (try? jsonAttribute("trunk")) ?? .null, weights: (try? jsonAttribute("weights")) ?? .null,
            transforms: (try? jsonAttribute("transforms")) ?? .null, poolOps: (try? jsonAttribute("pool_ops")) ?? .null,
            dataset: provenance["dataset"] ?? .null, writtenBy: provenance["tool"]?.stringValue)
    }
}

extension StagePlan {
    /// A training stage's inputs (train-svm, train-linear, knn): both stores' fingerprints and paths.
    public static func trainingInputs(train: FeatureStoreReader, test: FeatureStoreReader) -> JSONValue {
        [
            "train_features": .string(train.fingerprint), "test_features": .string(test.fingerprint),
            "train_path": .string(train.path), "test_path": .string(test.path),
        ]
    }
}
