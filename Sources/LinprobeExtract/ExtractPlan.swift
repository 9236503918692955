import Foundation
import LinprobeCheckpoint
import LinprobeCodecs
import LinprobeCore
import LinprobeData
import LinprobeStore
import LinprobeTrunk

/// Everything that determines one split's feature store, read and checked from the effective
/// configuration before any image is decoded: the dataset listing, transforms, trunk, pool ops,
/// weights (by content hash), storage and views — and the fingerprint of all of it.
public struct ExtractSplitPlan: Sendable {
    public let split: DatasetSplit
    public let listing: DatasetListing
    public let transforms: TransformPipeline
    /// Trunk input (the transforms' fixed output size).
    public let inputHeight: Int
    public let inputWidth: Int
    public let architecture: any TrunkArchitecture
    public let poolMap: PoolOpsMap
    /// One per stored layer, in pool-map order.
    public let outputs: [FeatureOutput]
    /// Stored layer names and `shape_chw` (see `ExtractPlanner.layerNames`).
    public let layers: [StoreLayer]
    /// `MODEL.WEIGHTS_INIT`, with `PARAMS_FILE` made absolute.
    public let weightsInit: WeightsInit
    /// SHA-256 of the weights file; nil for VISSL's random initialisation.
    public let weightsSHA256: String?
    /// `SEED_VALUE`: random initialisation, and the per-sample augmentation streams.
    public let seed: Int
    public let dtype: FeatureDType
    /// Deflate level of the store (nil = no compression).
    public let deflate: Int?
    /// Rows per sample: `LINPROBE.TRAIN_VIEWS` for TRAIN, 1 for TEST.
    public let views: Int
    public let batchSize: Int
    public let grayImageSize: Int
    /// Images of more pixels are unreadable (twice `LINPROBE.MAX_IMAGE_PIXELS`, as PIL).
    public let maxImagePixels: Int
    /// How the trunk runs (`LINPROBE.TRUNK.ALGORITHM`, `LINPROBE.TRUNK.PARALLELISM`, threads set
    /// at run time). Not part of the fingerprint: the features do not depend on it beyond float
    /// rounding, as with the thread count; the store's provenance records what ran.
    public let trunkRun: TrunkRunSettings
    /// The canonical JSON that `fingerprint` hashes (also the manifest record's parameters).
    public let fingerprintValue: JSONValue
    /// `Fingerprint.short(fingerprintValue)`.
    public let fingerprint: String
    /// `features/<fingerprint>/<split>.h5`, relative to the work folder.
    public let relativeStorePath: String

    /// Rows of the finished store.
    public var rowCount: Int { listing.count * views }

    /// The batch the extraction forms: `batchSize`, or every row when the split has fewer, so a
    /// huge batch on a small dataset allocates only what the dataset needs (the batches are the
    /// same: one batch of every row either way).
    public var effectiveBatchSize: Int { max(1, min(batchSize, rowCount)) }

    /// The store path inside `workdir`.
    public func storePath(workdir: String) -> String {
        (workdir as NSString).appendingPathComponent(relativeStorePath)
    }

    /// `SEED_VALUE` as the 64-bit seed of the transforms' random streams and of random weights.
    public var seed64: UInt64 { UInt64(bitPattern: Int64(seed)) }
}

/// `LINPROBE.TRUNK.ALGORITHM` and `LINPROBE.TRUNK.PARALLELISM` as written (`auto` = measure).
public struct TrunkRunSettings: Sendable, Equatable {
    public var algorithm: String
    public var parallelism: String

    public init(algorithm: String = "auto", parallelism: String = "auto") {
        self.algorithm = algorithm
        self.parallelism = parallelism
    }

    /// The run options for `threads` threads.
    public func options(threads: Int) throws -> TrunkRunOptions {
        try TrunkRunOptions(threads: threads, parallelism: parallelism, algorithm: algorithm)
    }
}

/// Reads a pipeline's configuration into per-split extraction plans.
public enum ExtractPlanner {
    /// Everything the plans share: the trunk, pool map and weights settings.
    struct Shared {
        var architecture: any TrunkArchitecture
        var poolMap: PoolOpsMap
        var weightsInit: WeightsInit
        var weightsSHA256: String?
        var seed: Int
        var dtype: FeatureDType
        var deflate: Int?
        var maxImagePixels: Int
        var trunkRun: TrunkRunSettings
    }

    /// The splits with data configured (VISSL's rule: a non-empty `DATA_SOURCES`), in order
    /// TRAIN, TEST. A split whose paths are set without a source is a configuration error rather
    /// than silently skipped.
    public static func configuredSplits(_ config: PipelineConfig) throws -> [DatasetSplit] {
        try DatasetSplit.allCases.filter { split in
            let node = config.node("DATA.\(split.rawValue)")
            if case .array(let a)? = node["DATA_SOURCES"].value, !a.isEmpty { return true }
            for key in ["DATA_PATHS", "DATASET_NAMES", "LABEL_SOURCES"] where config.isExplicit("\(node.path).\(key)") {
                if case .array(let a)? = node[key].value, a.isEmpty { continue }
                throw LinprobeError.config(
                    "\(node.path).\(key) is set but \(node.path).DATA_SOURCES is empty; set DATA_SOURCES (disk_folder or disk_filelist) to extract this split"
                )
            }
            return false
        }
    }

    /// Plans every configured split. `workdir` holds the weights-hash cache; relative dataset and
    /// weights paths resolve against `workingDirectory` (as VISSL resolves them).
    public static func plan(
        config: PipelineConfig, workdir: String,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        workingDirectory: String = FileManager.default.currentDirectoryPath
    ) throws -> [ExtractSplitPlan] {
        let splits = try configuredSplits(config)
        guard !splits.isEmpty else {
            throw LinprobeError.config(
                "DATA.TRAIN / DATA.TEST: no dataset configured; set DATA.<SPLIT>.DATA_SOURCES with DATA_PATHS or DATASET_NAMES"
            )
        }
        let shared = try sharedSettings(config: config, workdir: workdir, workingDirectory: workingDirectory)
        let catalog = try DatasetCatalog.locate(
            explicitPath: try config.node("LINPROBE.DATASET_CATALOG").stringIfPresent().flatMap {
                $0.isEmpty ? nil : Paths.standardized($0, relativeTo: workingDirectory)
            },
            environment: environment,
            defaultPath: config.defaultCatalogPath)
        return try splits.map {
            try planSplit($0, config: config, shared: shared, catalog: catalog, workingDirectory: workingDirectory)
        }
    }

    static func sharedSettings(config: PipelineConfig, workdir: String, workingDirectory: String) throws -> Shared {
        let trunk = try TrunkConfiguration(model: config.node("MODEL"))
        var weightsInit = trunk.weights
        let seed = try config.node("SEED_VALUE").intIfPresent() ?? 0
        var sha: String? = nil
        if !weightsInit.paramsFile.isEmpty {
            let key = "MODEL.WEIGHTS_INIT.PARAMS_FILE"
            let raw = weightsInit.paramsFile
            if raw.contains("://") {
                throw LinprobeError.config(
                    "\(key): '\(raw)' is a URL; Linprobe does not download weights — download the file and give its path"
                )
            }
            let path = Paths.standardized(raw, relativeTo: workingDirectory)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                throw LinprobeError(
                    .missingInput,
                    "\(path): weights file not found (\(key)); check the path, or set it to \"\" for a random initialisation"
                )
            }
            guard !isDir.boolValue else {
                throw LinprobeError(.missingInput, "\(path): is a folder, not a weights file (\(key))")
            }
            weightsInit.paramsFile = path
            // A FIFO or a device would block the hash or never end it (issue 19 case 10).
            try MappedFile.requireRegularFile(path)
            sha = try FileHashCache(workdir: workdir).sha256(of: path)
        }
        let dtypeName = try config.node("LINPROBE.STORAGE_DTYPE").string(oneOf: FeatureDType.allCases.map(\.rawValue))
        let deflate = try config.node("LINPROBE.DEFLATE").int(in: 0...9)
        let pixels = try config.node("LINPROBE.MAX_IMAGE_PIXELS").int(in: 1...Int.max)
        return Shared(
            architecture: trunk.architecture, poolMap: trunk.map, weightsInit: weightsInit, weightsSHA256: sha,
            seed: seed,
            dtype: FeatureDType(rawValue: dtypeName) ?? .float32, deflate: deflate == 0 ? nil : deflate,
            maxImagePixels: ImageLimits.refusedAbove(maxImagePixels: pixels),
            trunkRun: TrunkRunSettings(
                algorithm: try config.node("LINPROBE.TRUNK.ALGORITHM").string(
                    oneOf: ConvAlgorithm.allCases.map(\.rawValue)),
                parallelism: try config.node("LINPROBE.TRUNK.PARALLELISM").string(oneOf: ["auto", "batch", "blas"])))
    }

    static func planSplit(
        _ split: DatasetSplit, config: PipelineConfig, shared: Shared, catalog: DatasetCatalog?,
        workingDirectory: String
    ) throws -> ExtractSplitPlan {
        let node = config.node("DATA.\(split.rawValue)")
        let transformsNode = node["TRANSFORMS"]
        // Settings and transforms first: configuration errors come before any folder is walked.
        let settings = try DatasetSettings(split: split, config: node)
        let transforms = try TransformPipeline(config: transformsNode)
        guard let shape = transforms.fixedOutputShape else {
            throw LinprobeError.config(
                "\(transformsNode.path): the transforms give images of varying size (e.g. Resize without a crop); add CenterCrop or Resize([h, w]) so every image reaches the trunk at one size"
            )
        }
        let (height, width) = (shape[1], shape[2])
        let inputSize = try config.node("LINPROBE.INPUT_SIZE").int()
        if inputSize != 0 && (height != inputSize || width != inputSize) {
            throw LinprobeError.config(
                "LINPROBE.INPUT_SIZE: \(inputSize) but \(transformsNode.path) gives \(height)×\(width) images; make them agree (or set LINPROBE.INPUT_SIZE to 0)"
            )
        }
        let outputs = try shared.poolMap.outputs(
            architecture: shared.architecture, inputHeight: height, inputWidth: width)
        let names = layerNames(shared.poolMap)
        let layers = zip(names, outputs).map { StoreLayer(name: $0, shapeCHW: $1.shapeCHW) }
        let batch = try node["BATCHSIZE_PER_REPLICA"].int()
        try checkBatch(batch, key: "\(node.path).BATCHSIZE_PER_REPLICA", layers: layers, dtype: shared.dtype)
        let views = split == .train ? try config.node("LINPROBE.TRAIN_VIEWS").int() : 1
        guard views >= 1 else { throw LinprobeError.config("LINPROBE.TRAIN_VIEWS: must be at least 1, got \(views)") }

        let input = try SplitInput.load(split: split, data: node, catalog: catalog, workingDirectory: workingDirectory)
        let listing = input.listing

        var value: [String: JSONValue] = [
            "kind": .string(StoreLayout.format),
            "store_format_version": .int(StoreLayout.formatVersion),
            "split": .string(split.fileName),
            "trunk": shared.architecture.provenance,
            "weights": weightsIdentity(shared),
            "dataset": datasetIdentity(listing),
            "data_limit": [
                "DATA_LIMIT": .int(Int64(settings.dataLimit)),
                "SEED": .int(Int64(settings.samplingSeed)),
                "IS_BALANCED": .bool(settings.samplingBalanced),
                "SKIP_NUM_SAMPLES": .int(Int64(settings.samplingSkip)),
            ],
            "transforms": transforms.description,
            "input": [.int(Int64(height)), .int(Int64(width))],
            "pool_ops": shared.poolMap.provenance,
            "layers": .array(names.map { .string($0) }),
            "storage": ["dtype": .string(shared.dtype.rawValue), "deflate": .int(Int64(shared.deflate ?? 0))],
            "gray_image_size": .int(Int64(settings.grayImageSize)),
        ]
        if split == .train { value["train_views"] = .int(Int64(views)) }
        // Which images are unreadable depends on the limit; PIL's default leaves fingerprints as
        // they were before the key existed.
        if shared.maxImagePixels != ImageLimits.maxPixels {
            value["image_pixel_limit"] = .int(Int64(shared.maxImagePixels))
        }
        if transforms.isRandom { value["augmentation_seed"] = .int(Int64(shared.seed)) }
        let fingerprintValue = JSONValue.object(value)
        let fingerprint = Fingerprint.short(fingerprintValue)
        return ExtractSplitPlan(
            split: split, listing: listing, transforms: transforms, inputHeight: height, inputWidth: width,
            architecture: shared.architecture,
            poolMap: shared.poolMap, outputs: outputs, layers: layers, weightsInit: shared.weightsInit,
            weightsSHA256: shared.weightsSHA256, seed: shared.seed, dtype: shared.dtype, deflate: shared.deflate,
            views: views,
            batchSize: batch, grayImageSize: settings.grayImageSize, maxImagePixels: shared.maxImagePixels,
            trunkRun: shared.trunkRun, fingerprintValue: fingerprintValue,
            fingerprint: fingerprint,
            relativeStorePath: WorkdirLayout(".").relativePath(
                .featureStore(fingerprint: fingerprint, split: split.fileName)))
    }

    /// HDF5's limit on one chunk of a dataset (elements and bytes): 4 GiB.
    static let maxChunkBytes = Int(UInt32.max)

    /// A batch of the widest layer must fit one store chunk (HDF5 refuses a chunk of 4 GiB or
    /// more, and a chunk is a whole number of batches): checked on the configured batch, whatever
    /// the dataset's size, so a configuration is valid or not before any folder is walked.
    static func checkBatch(_ batch: Int, key: String, layers: [StoreLayer], dtype: FeatureDType) throws {
        guard batch >= 1 else { throw LinprobeError.config("\(key): must be at least 1, got \(batch)") }
        guard let widest = layers.max(by: { $0.dim < $1.dim }), widest.dim > 0 else { return }
        let rowBytes = widest.dim * dtype.bytes
        let (bytes, overflow) = batch.multipliedReportingOverflow(by: rowBytes)
        guard overflow || bytes > maxChunkBytes else { return }
        let size = overflow ? "more than \(Int.max) bytes" : "\(bytes) bytes"
        throw LinprobeError.config(
            "\(key): \(batch) rows of layer \(widest.name) (\(widest.dim) \(dtype.rawValue) values each) make a "
                + "batch of \(size); one store chunk holds at most 4 GiB, so use at most \(maxChunkBytes / rowBytes)")
    }

    /// Stored layer names: the pool map's tap names in map order, a repeated tap getting `_1`,
    /// `_2`, … on its second, third, … use (IN1k's map has `res5avg` twice: `res5avg` and
    /// `res5avg_1`, as VISSL names repeated taps when it predicts labels); an empty map stores the
    /// trunk output as `heads`, VISSL's name for it.
    public static func layerNames(_ map: PoolOpsMap) -> [String] {
        guard !map.entries.isEmpty else { return ["heads"] }
        return FeatureLayers.names(forTaps: map.entries.map(\.tap))
    }

    /// The weights as they enter the fingerprint: the file's content hash and how its keys are
    /// read (not its path), or the random initialisation and its seed.
    static func weightsIdentity(_ s: Shared) -> JSONValue {
        guard let sha = s.weightsSHA256 else {
            return [
                "init": "random", "seed": .int(Int64(s.seed)),
                "scheme": .string(TrunkWeights.randomScheme(for: s.architecture)),
            ]
        }
        var w = s.weightsInit.provenance
        if case .object(var o) = w {
            o.removeValue(forKey: "PARAMS_FILE")
            o["sha256"] = .string(sha)
            o["init"] = "checkpoint"
            // SKIP_LAYERS leaves matched parameters at their seeded random value.
            if s.weightsInit.skipLayers.contains(where: { $0 != "num_batches_tracked" }) {
                o["skip_seed"] = .int(Int64(s.seed))
            }
            w = .object(o)
        }
        return w
    }

    /// The dataset as it enters the fingerprint: the listing digest (relative paths, listing
    /// indices, targets, in order), class names and counts — not the root folder, so a moved
    /// dataset keeps its features.
    static func datasetIdentity(_ l: DatasetListing) -> JSONValue {
        [
            "listing_sha256": .string(l.listingDigest()),
            "count": .int(Int64(l.count)),
            "class_names": .array(l.classNames.map { .string($0) }),
            "num_classes": .int(Int64(l.numClasses)),
            "target_layout": l.targets == .none ? "none" : (l.isMultiLabel ? "multi_label" : "single_label"),
            "target_width": .int(Int64(l.targets.width)),
        ]
    }
}
