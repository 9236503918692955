import Foundation

/// The stages of a Linprobe pipeline, named as the manifest, the CLI and the lock files spell them.
/// `allCases` is the order `linprobe run` runs them in.
public enum StageKind: String, CaseIterable, Codable, Sendable {
    case extract
    /// Features made elsewhere (VISSL's `.npy` dumps, NumPy or torch arrays) written into a store.
    case importFeatures = "import-features"
    case trainSVM = "train-svm"
    case trainLinear = "train-linear"
    /// VISSL's nearest-neighbour benchmark (or DINO's weighted kNN) on stored features.
    case knn
    case report

    /// The name used in the manifest (`<stage>/<fingerprint>`), in messages and as the subcommand.
    public var name: String { rawValue }
}
