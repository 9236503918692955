import Foundation
import LinprobeCore
import LinprobeStore

/// One split to import: the opened source, the store it becomes and its fingerprint — derived
/// from the content of the files read (their SHA-256, cached in `file-hashes.json`), the layers
/// and the storage settings, never from paths, so a moved dump keeps its store.
public struct ImportSplitPlan {
    /// `train` or `test` (VISSL's file names and the store's `split`).
    public let split: String
    public let source: ImportSource
    public let dtype: FeatureDType
    public let deflate: Int?
    /// The dataset's name for the report (`DATA.<SPLIT>.DATASET_NAMES` when the pipeline sets it), nil =
    /// the source's name.
    public let datasetName: String?
    public let fingerprint: String
    /// What the fingerprint covers.
    public let fingerprintValue: JSONValue
    /// The files read, with their SHA-256 and size (the manifest record's inputs).
    public let inputs: JSONValue
    public let relativeStorePath: String

    /// Bumped whenever the import writes a store differently.
    static let formatVersion = 1

    public init(
        split: String, source: ImportSource, layout: WorkdirLayout, dtype: FeatureDType = .float32,
        deflate: Int? = nil, datasetName: String? = nil
    ) throws {
        self.split = split
        self.source = source
        self.dtype = dtype
        self.deflate = deflate
        self.datasetName = datasetName
        let cache = FileHashCache(workdir: layout.root)
        // Files by name (a dump's files share one folder): moving the dump keeps the fingerprint.
        let files: [JSONValue] = try source.files.map { path in
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
            return [
                "name": .string(Paths.lastComponent(path)), "sha256": .string(try cache.sha256(of: path)),
                "bytes": .int(size),
            ]
        }
        inputs = ["files": .array(files), "source": .string(Paths.standardized(source.location))]
        let value: JSONValue = [
            "stage": .string(StageKind.importFeatures.name), "format_version": .int(Int64(Self.formatVersion)),
            "store_format_version": .int(StoreLayout.formatVersion), "source": .string(source.kind.rawValue),
            "split": .string(split),
            "files": .array(files.map { ["name": $0["name"] ?? .null, "sha256": $0["sha256"] ?? .null] }),
            "layers": .array(
                source.storeLayers.map {
                    ["name": .string($0.name), "shape_chw": .array($0.shapeCHW.map { .int(Int64($0)) })]
                }),
            "storage": ["dtype": .string(dtype.rawValue), "deflate": deflate.map { .int(Int64($0)) } ?? .null],
        ]
        fingerprintValue = value
        fingerprint = Fingerprint.short(value)
        relativeStorePath = layout.relativePath(.featureStore(fingerprint: fingerprint, split: split))
    }
}

/// The imports a pipeline asks for: `LINPROBE.IMPORT.{TRAIN,TEST}.{FEATURES,LABELS}`,
/// `LINPROBE.IMPORT.LAYER`, the pool-op map's layers, `LINPROBE.STORAGE_DTYPE` / `DEFLATE`.
public enum ImportPlanner {
    /// One plan per split whose features are set (TRAIN, then TEST).
    public static func plan(config: PipelineConfig, layout: WorkdirLayout) throws -> [ImportSplitPlan] {
        let wanted = try FeatureLayers.names(config: config)
        let single = try config.node("LINPROBE.IMPORT.LAYER").string()
        let dtype = FeatureDType(rawValue: try config.node("LINPROBE.STORAGE_DTYPE").string()) ?? .float32
        let level = try config.node("LINPROBE.DEFLATE").int()
        var plans: [ImportSplitPlan] = []
        for split in ["TRAIN", "TEST"] {
            let features = try config.node("LINPROBE.IMPORT.\(split).FEATURES").string()
            guard !features.isEmpty else { continue }
            let labels = try config.node("LINPROBE.IMPORT.\(split).LABELS").string()
            let source = try ImportSource.open(
                features: features, labels: labels.isEmpty ? nil : labels, split: split.lowercased(), layers: wanted,
                singleLayer: single)
            let namesKey = "DATA.\(split).DATASET_NAMES"
            let names = config.isExplicit(namesKey) ? try config.node(namesKey).strings() : []
            plans.append(
                try ImportSplitPlan(
                    split: split.lowercased(), source: source, layout: layout, dtype: dtype,
                    deflate: level > 0 ? level : nil, datasetName: names.first))
        }
        return plans
    }
}
