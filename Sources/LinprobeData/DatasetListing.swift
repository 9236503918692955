import Crypto
import Foundation
import LinprobeCore

/// One image of a dataset split.
public struct DatasetSample: Sendable, Equatable {
    /// Absolute path to read.
    public var path: String
    /// Path relative to the dataset root (what the store's `/image_paths` records).
    public var relativePath: String
    /// Index in the full listing before `DATA_LIMIT` subsampling.
    public var sourceIndex: Int

    public init(path: String, relativePath: String, sourceIndex: Int) {
        self.path = path
        self.relativePath = relativePath
        self.sourceIndex = sourceIndex
    }
}

/// Labels of a split.
public enum DatasetTargets: Sendable, Equatable {
    /// No label source configured.
    case none
    /// One class index per sample (`[N]`; −1 = ignore).
    case singleLabel([Int64])
    /// `[N, C]` row-major, VISSL's VOC encoding: 1 present, 0 absent, −1 difficult/ignored.
    case multiLabel(classes: Int, values: [Int64])

    /// Values per sample in the store (1 for single-label).
    public var width: Int {
        if case .multiLabel(let c, _) = self { return c }
        return 1
    }

    /// The target row of sample `i` (`[label]`, `[c0 … cC-1]`, or `[-1]` without labels).
    public func row(_ i: Int) -> [Int64] {
        switch self {
        case .none: return [-1]
        case .singleLabel(let v): return [v[i]]
        case .multiLabel(let c, let v): return Array(v[(i * c)..<((i + 1) * c)])
        }
    }

    func subset(_ indices: [Int]) -> DatasetTargets {
        switch self {
        case .none: return .none
        case .singleLabel(let v): return .singleLabel(indices.map { v[$0] })
        case .multiLabel(let c, let v):
            var out = [Int64]()
            out.reserveCapacity(indices.count * c)
            for i in indices { out.append(contentsOf: v[(i * c)..<((i + 1) * c)]) }
            return .multiLabel(classes: c, values: out)
        }
    }
}

/// How a listing was found.
public enum DatasetSourceKind: String, Sendable, Codable {
    /// torchvision `ImageFolder` layout: `<root>/<class>/**/<image>`.
    case diskFolder = "disk_folder"
    /// VISSL filelist: `*_images.npy` (+ `*_labels.npy`).
    case diskFilelist = "disk_filelist"
    /// PASCAL VOC layout: `JPEGImages/` + `ImageSets/Main/<class>_<split>.txt`.
    case vocLayout = "voc_layout"
}

/// Everything `extract` needs about one split: the samples in order, their targets, the class
/// names, and a canonical description for fingerprints.
public struct DatasetListing: Sendable {
    public var split: DatasetSplit
    /// `DATASET_NAMES[0]` if given, else the data path.
    public var name: String
    public var source: DatasetSourceKind
    /// The folder the relative paths are relative to (the common folder of a filelist).
    public var root: String
    public var samples: [DatasetSample]
    public var targets: DatasetTargets
    /// Class names in index order (folder names, VOC classes, sorted label strings); empty for
    /// integer labels.
    public var classNames: [String]
    /// Number of classes: class names, VOC columns, or max label + 1 for integer labels.
    public var numClasses: Int
    /// Settings that produced the listing (recorded in the description).
    public var settings: DatasetSettings

    public var count: Int { samples.count }

    /// Canonical description for the features fingerprint: source, root, counts, classes, and
    /// the SHA-256 of every (relative path, targets) line in order, so any change to the listing
    /// or labels changes the fingerprint without storing millions of paths in it.
    public var description: JSONValue {
        [
            "name": .string(name),
            "source": .string(source.rawValue),
            "root": .string(root),
            "count": .int(Int64(samples.count)),
            "num_classes": .int(Int64(numClasses)),
            "class_names": .array(classNames.map { .string($0) }),
            "target_layout": targets == .none
                ? "none" : (targets.width > 1 || isMultiLabel ? "multi_label" : "single_label"),
            "target_width": .int(Int64(targets.width)),
            "listing_sha256": .string(listingDigest()),
            "settings": settings.description,
        ]
    }

    public var isMultiLabel: Bool { if case .multiLabel = targets { return true }; return false }

    /// SHA-256 over `relativePath \t sourceIndex \t t0,t1,… \n` for every sample.
    public func listingDigest() -> String {
        var hasher = SHA256()
        var line = [UInt8]()
        for (i, s) in samples.enumerated() {
            line.removeAll(keepingCapacity: true)
            line.append(contentsOf: s.relativePath.utf8)
            line.append(9)
            line.append(contentsOf: String(s.sourceIndex).utf8)
            line.append(9)
            line.append(contentsOf: targets.row(i).map(String.init).joined(separator: ",").utf8)
            line.append(10)
            hasher.update(data: line)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
