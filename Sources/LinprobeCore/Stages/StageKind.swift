import Foundation

/// The stages of a Linprobe pipeline, named as the manifest, the CLI and the lock files spell them.
public enum StageKind: String, CaseIterable, Codable, Sendable {
    case extract
    case trainSVM = "train-svm"
    case trainLinear = "train-linear"
    case report

    /// The name used in the manifest (`<stage>/<fingerprint>`), in messages and as the subcommand.
    public var name: String { rawValue }
}
