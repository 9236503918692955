import Foundation
import LinprobeCore

/// A dataset split as VISSL names it in the configuration (`DATA.TRAIN`, `DATA.TEST`).
public enum DatasetSplit: String, Sendable, Codable, CaseIterable {
    case train = "TRAIN"
    case test = "TEST"

    /// The dataset-catalog key: TRAIN reads `train`, TEST reads `val` (VISSL's rule).
    public var catalogKey: String { self == .train ? "train" : "val" }
    /// The lower-case name used for store files (`train.h5`, `test.h5`).
    public var fileName: String { self == .train ? "train" : "test" }
}

/// The `DATA.<SPLIT>` keys that select and subsample a dataset.
public struct DatasetSettings: Sendable, Equatable {
    public var split: DatasetSplit
    public var dataSources: [String]
    public var dataPaths: [String]
    public var labelSources: [String]
    public var labelPaths: [String]
    public var datasetNames: [String]
    public var dataLimit: Int
    public var samplingSeed: Int
    public var samplingBalanced: Bool
    public var samplingSkip: Int
    public var grayImageSize: Int
    public var removeImagePathPrefix: String
    public var newImagePathPrefix: String
    /// Path of the node the settings came from (e.g. `DATA.TRAIN`), for messages.
    public var path: String

    public static let supportedSources = ["disk_folder", "disk_filelist"]

    /// Reads the settings from the `DATA.<SPLIT>` node; absent keys take VISSL's defaults.
    public init(split: DatasetSplit, config node: ConfigNode) throws {
        self.split = split
        path = node.path
        func strings(_ key: String) throws -> [String] {
            let n = node[key]
            return n.exists ? try n.strings() : []
        }
        dataSources = try strings("DATA_SOURCES")
        dataPaths = try strings("DATA_PATHS")
        labelSources = try strings("LABEL_SOURCES")
        labelPaths = try strings("LABEL_PATHS")
        datasetNames = try strings("DATASET_NAMES")
        dataLimit = try node["DATA_LIMIT"].intIfPresent() ?? -1
        let sampling = node["DATA_LIMIT_SAMPLING"]
        samplingSeed = try sampling["SEED"].intIfPresent() ?? 0
        samplingBalanced = try sampling["IS_BALANCED"].boolIfPresent() ?? false
        samplingSkip = try sampling["SKIP_NUM_SAMPLES"].intIfPresent() ?? 0
        grayImageSize = try node["DEFAULT_GRAY_IMG_SIZE"].intIfPresent() ?? 224
        removeImagePathPrefix = try node["REMOVE_IMG_PATH_PREFIX"].stringIfPresent() ?? ""
        newImagePathPrefix = try node["NEW_IMG_PATH_PREFIX"].stringIfPresent() ?? ""

        guard !dataSources.isEmpty else {
            throw LinprobeError.config("\(path).DATA_SOURCES: required (disk_folder or disk_filelist)")
        }
        guard dataSources.count == 1 else {
            throw LinprobeError.config(
                "\(path).DATA_SOURCES: \(dataSources.count) data sources are not supported; give exactly one")
        }
        guard Self.supportedSources.contains(dataSources[0]) else {
            throw LinprobeError.config(
                "\(path).DATA_SOURCES[0]: '\(dataSources[0])' is not supported; use disk_folder or disk_filelist")
        }
        if !dataPaths.isEmpty && dataPaths.count != dataSources.count {
            throw LinprobeError.config(
                "\(path).DATA_PATHS: \(dataPaths.count) paths for \(dataSources.count) data source")
        }
        if !datasetNames.isEmpty && datasetNames.count != dataSources.count {
            throw LinprobeError.config(
                "\(path).DATASET_NAMES: \(datasetNames.count) names for \(dataSources.count) data source")
        }
        if dataPaths.isEmpty && datasetNames.isEmpty {
            throw LinprobeError.config("\(path): set DATA_PATHS or DATASET_NAMES (a dataset-catalog entry)")
        }
        guard labelSources.count <= 1 else {
            throw LinprobeError.config(
                "\(path).LABEL_SOURCES: \(labelSources.count) label sources are not supported; give at most one")
        }
        if let l = labelSources.first, !Self.supportedSources.contains(l) {
            throw LinprobeError.config(
                "\(path).LABEL_SOURCES[0]: '\(l)' is not supported; use disk_folder or disk_filelist")
        }
        if labelSources.first == "disk_folder" && dataSources[0] != "disk_folder" {
            throw LinprobeError.config("\(path).LABEL_SOURCES[0]: disk_folder labels need DATA_SOURCES [disk_folder]")
        }
        if labelPaths.count > 1 {
            throw LinprobeError.config("\(path).LABEL_PATHS: give at most one label file")
        }
        guard (1...100_000).contains(grayImageSize) else {
            throw LinprobeError.config("\(path).DEFAULT_GRAY_IMG_SIZE: \(grayImageSize) is not a valid image size")
        }
        if let excess = MemoryBudget.excess([grayImageSize, grayImageSize, 3]) {
            throw LinprobeError.config("\(path).DEFAULT_GRAY_IMG_SIZE: a \(grayImageSize)² gray image \(excess)")
        }
        guard samplingSkip >= 0 else {
            throw LinprobeError.config("\(path).DATA_LIMIT_SAMPLING.SKIP_NUM_SAMPLES: must be ≥ 0, got \(samplingSkip)")
        }
        guard (0...Int(UInt32.max)).contains(samplingSeed) else {
            throw LinprobeError.config(
                "\(path).DATA_LIMIT_SAMPLING.SEED: must be between 0 and 2**32 - 1 (NumPy's rule), got \(samplingSeed)")
        }
        if removeImagePathPrefix.isEmpty && !newImagePathPrefix.isEmpty {
            throw LinprobeError.config(
                "\(path).NEW_IMG_PATH_PREFIX is set but REMOVE_IMG_PATH_PREFIX is empty; VISSL replaces REMOVE_IMG_PATH_PREFIX by NEW_IMG_PATH_PREFIX, so set both"
            )
        }
    }

    /// The settings as recorded in fingerprints (what determines the listing).
    public var description: JSONValue {
        [
            "split": .string(split.rawValue),
            "data_sources": .array(dataSources.map { .string($0) }),
            "data_paths": .array(dataPaths.map { .string($0) }),
            "label_sources": .array(labelSources.map { .string($0) }),
            "label_paths": .array(labelPaths.map { .string($0) }),
            "dataset_names": .array(datasetNames.map { .string($0) }),
            "data_limit": .int(Int64(dataLimit)),
            "data_limit_sampling": [
                "SEED": .int(Int64(samplingSeed)), "IS_BALANCED": .bool(samplingBalanced),
                "SKIP_NUM_SAMPLES": .int(Int64(samplingSkip)),
            ],
            "remove_img_path_prefix": .string(removeImagePathPrefix),
            "new_img_path_prefix": .string(newImagePathPrefix),
        ]
    }
}
