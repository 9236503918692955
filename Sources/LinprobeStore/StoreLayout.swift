import Foundation
import LinprobeCore

/// The feature store's on-disk contract (DESIGN.md "Feature store"): one HDF5 file per split.
///
/// | path | content |
/// |---|---|
/// | `/features/<layer>` | float32 or float16 `[N, D]`, row-chunked, attribute `shape_chw` |
/// | `/targets` | int64 `[N]` or `[N, C]` (VOC encoding 1 / 0 / −1) |
/// | `/indices` | int64 `[N]`, the sample's index in the dataset listing |
/// | `/image_paths` | variable-length UTF-8 `[N]`, relative to the dataset root |
/// | `/unreadable` | int64 `[N]`, 1 where the image could not be decoded and a gray image was used |
///
/// Root attributes: `format`, `format_version`, `fingerprint`, `split`, `complete`,
/// `rows_written`, `chunk_rows`, `num_classes`, `class_names` (JSON), `layer_order` (JSON), and JSON
/// text for `trunk`, `weights`, `transforms`, `pool_ops`, `provenance`. A TRAIN store made with
/// `LINPROBE.TRAIN_VIEWS: K > 1` also has `train_views` = K: its rows are sample-major (sample i
/// in rows i·K … i·K+K−1, each with the sample's index); a store without it has one view per sample.
public enum StoreLayout {
    public static let format = "linprobe.features"
    /// Bumped whenever the layout changes incompatibly; readers refuse newer versions.
    public static let formatVersion: Int64 = 1
    public static let featuresGroup = "/features"
    public static let targets = "/targets"
    public static let indices = "/indices"
    public static let imagePaths = "/image_paths"
    public static let unreadable = "/unreadable"
    public static let partialSuffix = ".partial"

    public static func featurePath(_ layer: String) -> String { "\(featuresGroup)/\(layer)" }
}

/// Element type of the stored features.
public enum FeatureDType: String, Sendable, Codable, CaseIterable {
    case float32
    case float16

    public var bytes: Int { self == .float32 ? 4 : 2 }
}

/// One stored layer: its name (a tap name, or `name_k` for a repeated tap) and the `[C, H, W]`
/// shape of the pooled map before flattening.
public struct StoreLayer: Sendable, Equatable, Codable {
    public var name: String
    public var shapeCHW: [Int]
    public var dim: Int { shapeCHW.reduce(1, *) }

    public init(name: String, shapeCHW: [Int]) {
        precondition(shapeCHW.count == 3, "shape_chw has three entries")
        self.name = name
        self.shapeCHW = shapeCHW
    }
}

/// How labels are stored.
public enum TargetLayout: Sendable, Equatable, Codable, CustomStringConvertible {
    /// `/targets` is `[N]`: one class index per row (−1 = no label).
    case singleLabel
    /// `/targets` is `[N, C]` with VISSL's VOC encoding: 1 present, 0 absent, −1 difficult.
    case multiLabel(classes: Int)

    public var width: Int {
        switch self {
        case .singleLabel: return 1
        case .multiLabel(let c): return c
        }
    }

    /// `single-label [N]` or `multi-label [N, C]`, for messages.
    public var description: String {
        switch self {
        case .singleLabel: return "single-label [N]"
        case .multiLabel(let c): return "multi-label [N, \(c)]"
        }
    }
}

/// What a store records about how it was made (root attributes).
public struct StoreMetadata: Sendable, Equatable {
    public var fingerprint: String
    public var split: String
    public var numClasses: Int
    public var classNames: [String]
    /// Trunk specification (JSON), weights `{path, sha256}`, transforms and pool ops as configured.
    public var trunk: JSONValue
    public var weights: JSONValue
    public var transforms: JSONValue
    public var poolOps: JSONValue
    /// Tool and library versions, thread counts and anything else that explains the numbers.
    public var provenance: JSONValue
    /// Augmented views stored per sample (rows sample-major); 1 = one row per sample.
    public var trainViews: Int

    public init(
        fingerprint: String, split: String, numClasses: Int, classNames: [String],
        trunk: JSONValue = .null, weights: JSONValue = .null, transforms: JSONValue = .null,
        poolOps: JSONValue = .null, provenance: JSONValue = .null, trainViews: Int = 1
    ) {
        precondition(trainViews >= 1, "a store holds at least one view per sample")
        self.fingerprint = fingerprint
        self.split = split
        self.numClasses = numClasses
        self.classNames = classNames
        self.trunk = trunk
        self.weights = weights
        self.transforms = transforms
        self.poolOps = poolOps
        self.provenance = provenance
        self.trainViews = trainViews
    }
}

/// A batch of rows appended together: every layer, the labels, indices and paths.
public struct FeatureBatch: Sendable {
    public var count: Int
    /// One `count × D` row-major block per layer, in the store's layer order.
    public var features: [[Float]]
    /// `count` or `count × C` values, by the store's target layout.
    public var targets: [Int64]
    public var indices: [Int64]
    public var imagePaths: [String]
    /// Rows whose image could not be decoded (a gray image was used); empty = none.
    public var unreadable: [Bool]

    public init(
        count: Int, features: [[Float]], targets: [Int64], indices: [Int64], imagePaths: [String],
        unreadable: [Bool] = []
    ) {
        self.count = count
        self.features = features
        self.targets = targets
        self.indices = indices
        self.imagePaths = imagePaths
        self.unreadable = unreadable
    }
}
