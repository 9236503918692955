import Foundation

/// How a feature store was made, as the training stages found it when they read the store, carried
/// forward into every results document so that `report` (and a reader years later) can trace a
/// number to its trunk, weights, preprocessing, pool ops and dataset without reopening the store.
/// The free-form parts are the store's own JSON attributes, copied unchanged.
public struct FeatureProvenance: Codable, Sendable, Equatable {
    /// The store's content fingerprint (`features/<fp>/`); empty for a store another tool wrote
    /// without one.
    public var fingerprint: String
    /// Where the store was when the stage read it.
    public var path: String?
    /// The split attribute (`train`, `test`).
    public var split: String?
    /// Rows in the store.
    public var rows: Int?
    /// The store's `trunk`, `weights`, `transforms` and `pool_ops` attributes (null when absent).
    public var trunk: JSONValue
    public var weights: JSONValue
    public var transforms: JSONValue
    public var poolOps: JSONValue
    /// `provenance.dataset` of the store: listing root, settings (data paths, dataset names), counts.
    public var dataset: JSONValue
    /// `provenance.tool` of the store: the tool and version that wrote it.
    public var writtenBy: String?

    enum CodingKeys: String, CodingKey {
        case fingerprint, path, split, rows, trunk, weights, transforms
        case poolOps = "pool_ops"
        case dataset
        case writtenBy = "written_by"
    }

    public init(
        fingerprint: String, path: String? = nil, split: String? = nil, rows: Int? = nil, trunk: JSONValue = .null,
        weights: JSONValue = .null, transforms: JSONValue = .null, poolOps: JSONValue = .null,
        dataset: JSONValue = .null, writtenBy: String? = nil
    ) {
        self.fingerprint = fingerprint
        self.path = path
        self.split = split
        self.rows = rows
        self.trunk = trunk
        self.weights = weights
        self.transforms = transforms
        self.poolOps = poolOps
        self.dataset = dataset
        self.writtenBy = writtenBy
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        fingerprint = try c.decode(String.self, forKey: .fingerprint)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        split = try c.decodeIfPresent(String.self, forKey: .split)
        rows = try c.decodeIfPresent(Int.self, forKey: .rows)
        trunk = try c.decodeIfPresent(JSONValue.self, forKey: .trunk) ?? .null
        weights = try c.decodeIfPresent(JSONValue.self, forKey: .weights) ?? .null
        transforms = try c.decodeIfPresent(JSONValue.self, forKey: .transforms) ?? .null
        poolOps = try c.decodeIfPresent(JSONValue.self, forKey: .poolOps) ?? .null
        dataset = try c.decodeIfPresent(JSONValue.self, forKey: .dataset) ?? .null
        writtenBy = try c.decodeIfPresent(String.self, forKey: .writtenBy)
    }

    /// The dataset's name: from its first data path when one was given (a split folder such as
    /// `fashion/val` names its parent, a list file its folder), else its first catalog name, else
    /// the last component of its root folder.
    public var datasetName: String? {
        if let first = dataset["settings"]?["data_paths"]?.arrayValue?.first?.stringValue,
            let name = Self.name(fromPath: first)
        {
            return name
        }
        if let first = dataset["settings"]?["dataset_names"]?.arrayValue?.first?.stringValue, !first.isEmpty {
            return first
        }
        for key in ["root", "name"] {
            if let s = dataset[key]?.stringValue, let name = Self.name(fromPath: s) { return name }
        }
        return nil
    }

    /// The weights in words: the checkpoint's file name, or the seeded random initialisation.
    public var weightsName: String? {
        if weights["init"]?.stringValue == "random" {
            if let seed = weights["seed"]?.intValue { return "random init (seed \(seed))" }
            return "random init"
        }
        if let p = weights["path"]?.stringValue, !p.isEmpty { return Paths.lastComponent(p) }
        return nil
    }

    static let splitFolderNames: Set<String> = [
        "train", "val", "test", "trainval", "training", "validation", "valid", "eval",
    ]

    /// The dataset name a path implies: list files and split folders are named by their parent.
    public static func name(fromPath path: String) -> String? {
        var parts = path.split(separator: "/").map(String.init).filter { !$0.isEmpty && $0 != "." }
        guard var last = parts.popLast() else { return nil }
        while isListFile(last) || splitFolderNames.contains(last.lowercased()) {
            guard let parent = parts.popLast() else { break }
            last = parent
        }
        return last
    }

    private static func isListFile(_ name: String) -> Bool {
        let ext = (name as NSString).pathExtension
        return !ext.isEmpty && ext.count <= 4
    }
}

/// The provenance of the training and the test store of a results document (`feature_provenance`).
public struct FeatureProvenancePair: Codable, Sendable, Equatable {
    public var train: FeatureProvenance
    public var test: FeatureProvenance

    public init(train: FeatureProvenance, test: FeatureProvenance) {
        self.train = train
        self.test = test
    }
}
