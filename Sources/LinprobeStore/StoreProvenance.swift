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
