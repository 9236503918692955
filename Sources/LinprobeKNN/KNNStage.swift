import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// What a knn run produced for one layer: the summary of its results document.
public struct KNNLayerOutcome: Sendable, Equatable {
    public var layer: String
    /// Its `results.json` (a `KNNResultsDocument`).
    public var resultsPath: String
    public var document: KNNResultsDocument
}

/// What a whole `knn` run produced, the same whether it ran or was reused.
public struct KNNRunSummary: Sendable, Equatable {
    /// `<fp>` of `knn/<fp>/`: both stores' fingerprints plus every kNN setting.
    public var fingerprint: String
    /// The run's folder (`WorkdirLayout.Artifact.knnRun`).
    public var directory: String
    /// One per layer, in the pool-op map's order.
    public var layers: [KNNLayerOutcome]
}

/// The `knn` stage: VISSL's nearest-neighbour benchmark (`tools/nearest_neighbor_test.py`,
/// `vissl/utils/knn_utils.py`) — or DINO's weighted kNN — on stored features, every layer of the
/// pool-op map in one run. Similarities come from chunked GEMMs over the training store
/// (`NeighbourSearch`), each test row keeps its k best in a bounded heap, and the vote
/// (`KNNVote`) gives top-1 / top-5 per k (single-label) or mAP (multi-label, a Linprobe extension:
/// a class scores its neighbours' weights, VOC all-points AP per class).
///
/// Layout (`WorkdirLayout.Artifact.knnLayer`): `knn/<fp>/<layer>/results.json` (`KNNResultsDocument`).
public struct KNNStage: PipelineStage {
    public let train: FeatureStoreReader
    public let test: FeatureStoreReader
    public let settings: KNNSettings
    /// The layers searched, in order.
    public let layers: [String]
    public let pipeline: String?
    public let layout: WorkdirLayout
    /// Worker threads (resolved: never 0).
    public let threads: Int
    public let fingerprint: String

    /// A knn stage over two open stores, checked before any work.
    ///
    /// - Parameters:
    ///   - layers: stored layer names of the pool-op map (`FeatureLayers.names(config:)`); empty =
    ///     every layer of the training store.
    ///   - threads: nil = `settings.threads`; 0 = every core.
    public init(
        train: FeatureStoreReader, test: FeatureStoreReader, settings: KNNSettings, layers: [String],
        pipeline: String?, layout: WorkdirLayout, threads: Int? = nil
    ) throws {
        try Self.check(train: train, test: test)
        let resolved = try train.layers(named: layers).map(\.name)
        for name in resolved {
            let a = try train.layer(name)
            let b = try test.layer(name)
            guard a.dim == b.dim else {
                throw LinprobeError(
                    .incompatible,
                    "\(test.path): layer \(name) has D = \(b.dim) but the training store has D = \(a.dim)")
            }
        }
        guard settings.maxK <= train.count else {
            throw LinprobeError(
                .incompatible,
                "NEAREST_NEIGHBOR.TOPK: k = \(settings.maxK) is more than the \(train.count) rows of \(train.path)")
        }
        self.train = train
        self.test = test
        self.settings = settings
        self.layers = resolved
        self.pipeline = pipeline
        self.layout = layout
        let wanted = threads ?? settings.threads
        self.threads = wanted > 0 ? wanted : ProcessInfo.processInfo.activeProcessorCount
        let subset = Set(resolved) == Set(train.layers.map(\.name)) ? nil : resolved
        fingerprint = Self.fingerprint(
            trainFingerprint: train.fingerprint, testFingerprint: test.fingerprint, settings: settings, layers: subset)
    }

    /// The stage of a pipeline: `KNNSettings(config:)` and the layers of its pool-op map.
    public init(
        config: PipelineConfig, train: FeatureStoreReader, test: FeatureStoreReader, layout: WorkdirLayout,
        threads: Int? = nil
    ) throws {
        try self.init(
            train: train, test: test, settings: try KNNSettings(config: config),
            layers: try FeatureLayers.names(config: config), pipeline: config.name, layout: layout, threads: threads)
    }

    /// Features (train and test) plus every kNN setting, and the layers when a subset of the store.
    public static func fingerprint(
        trainFingerprint: String, testFingerprint: String, settings: KNNSettings, layers: [String]? = nil
    ) -> String {
        var value: [String: JSONValue] = [
            "stage": .string(StageKind.knn.name), "format_version": 1,
            "train_features": .string(trainFingerprint), "test_features": .string(testFingerprint),
            "knn": settings.fingerprintJSON,
        ]
        if let layers { value["layers"] = .array(layers.sorted().map { .string($0) }) }
        return Fingerprint.short(.object(value))
    }

    static func check(train: FeatureStoreReader, test: FeatureStoreReader) throws {
        if train.views > 1 {
            throw LinprobeError(
                .incompatible,
                "\(train.path): holds \(train.views) augmented views of each image (LINPROBE.TRAIN_VIEWS); the kNN "
                    + "benchmark searches one row per image — extract with LINPROBE.TRAIN_VIEWS=1")
        }
        guard train.targetLayout == test.targetLayout else {
            throw LinprobeError(
                .incompatible,
                "\(test.path): targets are \(test.targetLayout) but \(train.path) has \(train.targetLayout)"
            )
        }
        if train.count == 0 { throw LinprobeError(.incompatible, "\(train.path): the training store has no rows") }
    }

    // MARK: PipelineStage

    public var plan: StagePlan {
        StagePlan(
            kind: .knn, fingerprint: fingerprint,
            inputs: StagePlan.trainingInputs(train: train, test: test),
            parameters: settings.fingerprintJSON, outputs: [layout.relativePath(.knnRun(fingerprint: fingerprint))],
            pipeline: pipeline)
    }

    public func run(_ context: StageContext) throws -> KNNRunSummary {
        defer { context.progress.finish() }
        try Paths.ensureDirectory(layout.path(.knnRun(fingerprint: fingerprint)))
        var outcomes: [KNNLayerOutcome] = []
        for name in layers {
            let document = try evaluate(layer: name, progress: context.progress)
            let path = resultsPath(layer: name)
            try Paths.ensureDirectory(Paths.parent(path))
            try document.write(to: path)
            outcomes.append(KNNLayerOutcome(layer: name, resultsPath: path, document: document))
        }
        return KNNRunSummary(
            fingerprint: fingerprint, directory: layout.path(.knnRun(fingerprint: fingerprint)), layers: outcomes)
    }

    public func reuse(_ context: StageContext, record: ManifestRecord) throws -> KNNRunSummary {
        let outcomes = try layers.map { name in
            let path = resultsPath(layer: name)
            let document = try KNNResultsDocument.read(path: path)
            guard document.fingerprint == fingerprint, document.layer == name else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): results of layer '\(document.layer)' run \(document.fingerprint), expected layer "
                        + "'\(name)' of run \(fingerprint); run knn again with --force")
            }
            return KNNLayerOutcome(layer: name, resultsPath: path, document: document)
        }
        return KNNRunSummary(
            fingerprint: fingerprint, directory: layout.path(.knnRun(fingerprint: fingerprint)), layers: outcomes)
    }

    public func manifestMessage(_ outcome: KNNRunSummary) -> String? {
        let values = outcome.layers.map { l in
            "\(l.layer) \(l.document.metric.rawValue) k=\(l.document.k) "
                + (l.document.value.map { String(format: "%.2f", $0) } ?? "n/a")
        }
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// `results.json` of a layer of this run.
    public func resultsPath(layer: String) -> String {
        WorkdirLayout.resultsFile(in: layout.path(.knnLayer(fingerprint: fingerprint, layer: layer)))
    }

    /// Search, labels and vote of one layer.
    func evaluate(layer: String, progress: ProgressReporter) throws -> KNNResultsDocument {
        progress.begin("\(layer) search", total: train.count, unit: "train rows")
        let (neighbours, figures) = try NeighbourSearch.run(
            train: train, test: test, layer: layer, k: settings.maxK, normalize: settings.l2Normalize,
            threads: threads, memoryBytes: settings.memoryBytes,
            progress: { done, total in progress.report("\(layer) search", done: done, total: total, unit: "train rows")
            })
        let labels = try NeighbourLabels.resolve(neighbours, train: train)
        let testTargets = try test.targets()
        let results: [KNNResultsDocument.KResult]
        let numClasses: Int
        let metric: KNNResultsDocument.Metric
        switch train.targetLayout {
        case .singleLabel:
            let fromLabels = Int(labels.maxTrainLabel) + 1
            numClasses = settings.protocolKind == .dino ? max(train.numClasses, fromLabels) : fromLabels
            results = KNNVote.singleLabel(
                neighbours, classes: labels.classes, testTargets: testTargets, ks: settings.ks,
                temperature: settings.temperature, numClasses: numClasses, protocolKind: settings.protocolKind,
                threads: threads)
            metric = .top1
        case .multiLabel(let width):
            numClasses = width
            results = KNNVote.multiLabel(
                neighbours, labels: labels, testTargets: testTargets, width: width, ks: settings.ks,
                temperature: settings.temperature, threads: threads)
            metric = .mAP
        }
        return KNNResultsDocument(
            layer: layer, split: test.split.isEmpty ? "test" : test.split, protocolKind: settings.protocolKind,
            metric: metric, results: results, testRows: test.count, trainRows: train.count,
            settings: .init(
                topk: settings.ks, temperature: settings.temperature, l2Normalize: settings.l2Normalize,
                numClasses: numClasses, vote: KNNSettings.voteDescription),
            fingerprint: fingerprint,
            features: .init(
                train: .init(path: train.path, fingerprint: train.fingerprint, rows: train.count),
                test: .init(path: test.path, fingerprint: test.fingerprint, rows: test.count)),
            featureProvenance: FeatureProvenancePair(train: train.featureProvenance, test: test.featureProvenance),
            provenance: .init(
                version: LinprobeVersion.string, blas: BLAS.config, blasCore: BLAS.coreName, threads: threads,
                seconds: figures.seconds, similaritiesPerSecond: figures.similaritiesPerSecond))
    }
}
