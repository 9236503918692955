import Foundation
import LinprobeCore
import LinprobeStore

/// The train-linear stage: every head of `MODEL.HEAD.PARAMS` trained with SGD on the stored
/// features, all heads from one read of the training store per epoch. Head *i* trains on the layer
/// named by entry *i* of the pool-op map (`FeatureLayers.names(config:)`), whatever the store's
/// layer order; the store may hold more layers than the heads use.
///
/// Output under `<workdir>/linear/<fp>/` (`WorkdirLayout.linearRun`): `state.json` (run state, the
/// commit point of each epoch), and per head (`<head>` = the stored layer's name,
/// `WorkdirLayout.linearHead`) `metrics.json` (`LinearMetricsDocument`), `checkpoint_epoch<E>.lpck`
/// (parameters, BN buffers, momentum, RNG state of the last finished epoch) and, once finished,
/// `results.json` (`LinearResultsDocument`). Every file is written through `AtomicFile`.
///
/// Use: build it, then hand it to `StageRunner.execute` (manifest, lock, reuse):
/// ```
/// var settings = try LinearSettings(config: config.root, multiLabelStore: train.targetLayout != .singleLabel)
/// let stage = try LinearStage(train: train, test: test, settings: settings,
///                             taps: try FeatureLayers.names(config: config), pipeline: config.name,
///                             layout: WorkdirLayout(workdir), options: LinearRunOptions(threads: threads))
/// let result = try StageRunner(layout: stage.layout, force: force, note: note).execute(stage)
/// for head in result.outcome.heads { print(head.name, head.metric.rawValue, head.value ?? .nan, head.resultsPath) }
/// ```
public struct LinearStage: PipelineStage {
    public static let stateFormat = LinearRunState.format
    public static let metricsFormat = LinearMetricsDocument.format
    public static let resultsFormat = LinearResultsDocument.format
    /// The `format_version` inside the run fingerprint. It stays 1 while the numbers a run produces are
    /// unchanged, so work folders written before results format 2 are still reused.
    static let fingerprintVersion: Int64 = 1

    public let train: FeatureStoreReader
    public let test: FeatureStoreReader
    public let settings: LinearSettings
    /// The stored layer each head trains on: `layers[i]` for `settings.heads[i]`.
    public let layers: [StoredLayerInfo]
    public let pipeline: String?
    public let layout: WorkdirLayout
    public let options: LinearRunOptions
    /// The run's short fingerprint: `linear/<fp>/`.
    public let fingerprint: String

    /// Pairs the heads with their layers and checks everything that can be checked before training:
    /// non-empty splits, head count and dimensions against the layers, the test store's layers.
    ///
    /// - Parameters:
    ///   - train, test: the opened feature stores (training and evaluation split).
    ///   - settings: `LinearSettings(config: config.root, multiLabelStore:)`, with any `--threads` applied.
    ///   - taps: the stored layer names of the pool-op map in map order, `FeatureLayers.names(config:)`.
    ///     Head *i* trains on `taps[i]`. Empty (no map): the heads pair with every layer of the store in
    ///     the store's order, and their counts must match.
    ///   - pipeline: the pipeline's name, recorded in the manifest.
    ///   - layout: the work folder; the outputs go to `layout.path(.linearRun(fingerprint:))`. Use the
    ///     same layout for the `StageRunner`.
    ///   - options: threads, progress/step callbacks and test hooks (not part of the fingerprint).
    /// - Throws: `LinprobeError` — `.invalidConfig` (exit 64) naming the head, the tap and both
    ///   dimensions; `.missingInput` for an empty split or a tap the training store lacks (naming it
    ///   and listing the store's layers); `.incompatible` when the test store's layer differs.
    public init(
        train: FeatureStoreReader, test: FeatureStoreReader, settings: LinearSettings, taps: [String],
        pipeline: String?, layout: WorkdirLayout, options: LinearRunOptions = LinearRunOptions()
    ) throws {
        guard train.count > 0 else {
            throw LinprobeError(
                .missingInput,
                "\(train.path): the training split is empty (0 rows); extract features for a non-empty split")
        }
        guard test.count > 0 else {
            throw LinprobeError(
                .missingInput, "\(test.path): the test split is empty (0 rows); extract features for a non-empty split")
        }
        self.train = train
        self.test = test
        self.settings = settings
        self.layers = try Self.pairLayers(settings, train: train, test: test, taps: taps)
        self.pipeline = pipeline
        self.layout = layout
        self.options = options
        self.fingerprint = Fingerprint.short(
            Self.fingerprintJSON(train: train, test: test, settings: settings, layers: layers))
    }

    // MARK: PipelineStage

    public var plan: StagePlan {
        StagePlan(
            kind: .trainLinear, fingerprint: fingerprint,
            inputs: StagePlan.trainingInputs(train: train, test: test),
            parameters: settings.json, outputs: [layout.relativePath(.linearRun(fingerprint: fingerprint))],
            pipeline: pipeline)
    }

    /// Trains, resuming an interrupted run at its last finished epoch (or taking a finished run's
    /// files as they are). Progress goes to `context.progress` ("epoch 3/28 train", batches).
    public func run(_ context: StageContext) throws -> LinearOutcome {
        let result = try fit(progress: context.progress)
        context.progress.finish()
        guard result.complete else {
            let epochs = "epoch \(result.epochsDone) of \(settings.optimizer.numEpochs)"
            throw LinprobeError(
                .interrupted, "\(result.directory): stopped after \(epochs) as asked; rerun train-linear to resume")
        }
        return result.outcome
    }

    /// The outcome of a finished run, from its `results.json` files.
    public func reuse(_ context: StageContext, record: ManifestRecord) throws -> LinearOutcome {
        let files = RunFiles(layout: layout, fingerprint: fingerprint)
        let documents = try layers.map { layer -> (path: String, doc: LinearResultsDocument) in
            let path = files.resultsPath(layer.name)
            let doc = try LinearResultsDocument.read(path: path)
            guard doc.resultsFingerprint == fingerprint else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): written by another run (results_fingerprint \(doc.resultsFingerprint), expected "
                        + "\(fingerprint)); run train-linear with --force")
            }
            return (path, doc)
        }
        let heads = documents.map { path, doc in
            LinearOutcome.Head(
                name: doc.head, kind: HeadSpec.Kind(doc.headType), layer: doc.layer, metric: doc.metric,
                value: doc.value, resultsPath: path)
        }
        return LinearOutcome(
            fingerprint: fingerprint, directory: files.directory, heads: heads,
            epochsDone: documents.first?.doc.epochs ?? settings.optimizer.numEpochs, resumedFromEpoch: nil)
    }

    public func manifestMessage(_ outcome: LinearOutcome) -> String? {
        outcome.resumedFromEpoch.map { "resumed at epoch \($0)" }
    }

    // MARK: Without the manifest

    /// Trains (or resumes, or takes a finished run's files) without the manifest: tests and benchmarks.
    /// `progress`, when given, receives the same reports as under `run(_:)`.
    public func fit(progress: ProgressReporter? = nil) throws -> LinearRunResult {
        var options = self.options
        if let progress {
            let callback = options.progress
            options.progress = { p in
                callback?(p)
                progress.report(
                    "epoch \(p.epoch)/\(p.epochs) \(p.phase.rawValue)", done: p.batch, total: p.batches,
                    unit: "batches")
            }
        }
        let threads = max(1, settings.threads ?? options.threads)
        let trainer = try Trainer(
            train: train, test: test, settings: settings, layers: layers, fingerprint: fingerprint,
            layout: layout, options: options, threads: threads)
        return try trainer.run()
    }

    /// Trains (or resumes, or reuses) the heads on the store's layers in order (no pool-op map), into
    /// `<workdir>/linear/<fp>/`.
    @discardableResult
    public static func run(
        train: FeatureStoreReader, test: FeatureStoreReader, settings: LinearSettings, workdir: String,
        taps: [String] = [], options: LinearRunOptions = LinearRunOptions()
    ) throws -> LinearRunResult {
        try LinearStage(
            train: train, test: test, settings: settings, taps: taps, pipeline: nil,
            layout: WorkdirLayout(workdir), options: options
        ).fit()
    }

    // MARK: Fingerprint and pairing

    /// The short fingerprint of a run on the store's layers in order (no pool-op map); see `fingerprint`.
    public static func fingerprint(
        train: FeatureStoreReader, test: FeatureStoreReader, settings: LinearSettings
    ) -> String {
        Fingerprint.short(fingerprintJSON(train: train, test: test, settings: settings, layers: train.layers))
    }

    static func storeIdentity(_ s: FeatureStoreReader) -> JSONValue {
        if !s.fingerprint.isEmpty { return .string(s.fingerprint) }
        // A store written by another tool may carry no fingerprint: identify it by what it holds.
        return [
            "path": .string(URL(fileURLWithPath: s.path).standardizedFileURL.path), "rows": .int(Int64(s.count)),
            "layers": .array(s.layers.map { .string("\($0.name):\($0.dim)") }),
        ]
    }

    /// The features' identities, the paired layers (head order) and every hyper-parameter.
    static func fingerprintJSON(
        train: FeatureStoreReader, test: FeatureStoreReader, settings: LinearSettings,
        layers: [StoredLayerInfo]
    ) -> JSONValue {
        [
            "stage": .string(StageKind.trainLinear.name), "format_version": .int(fingerprintVersion),
            "train_features": storeIdentity(train), "test_features": storeIdentity(test),
            "layers": .array(layers.map { .string($0.name) }), "settings": settings.json,
        ]
    }

    /// The layer of each head: entry *i* of `taps` for head *i* (the store's layers in order when
    /// `taps` is empty), with the dimensions checked against the head and the test store.
    static func pairLayers(
        _ settings: LinearSettings, train: FeatureStoreReader, test: FeatureStoreReader,
        taps: [String]
    ) throws -> [StoredLayerInfo] {
        let layers = try train.layers(named: taps)
        let names = layers.map(\.name).joined(separator: ", ")
        guard settings.heads.count == layers.count else {
            if taps.isEmpty {
                throw LinprobeError.config(
                    "MODEL.HEAD.PARAMS: \(settings.heads.count) heads for \(layers.count) stored layers (\(names)) in "
                        + "\(train.path); heads pair with the pool-map taps in order")
            }
            throw LinprobeError.config(
                "MODEL.HEAD.PARAMS: \(settings.heads.count) heads for \(layers.count) taps of "
                    + "\(FeatureLayers.poolMapKey) (\(names)); head i trains on tap i")
        }
        for (i, (h, layer)) in zip(settings.heads, layers).enumerated() {
            try checkPair(h, index: i, layer: layer, byMap: !taps.isEmpty, train: train, test: test)
        }
        return layers
    }

    private static func checkPair(
        _ h: HeadSpec, index i: Int, layer: StoredLayerInfo, byMap: Bool,
        train: FeatureStoreReader, test: FeatureStoreReader
    ) throws {
        let head = "\(h.configPath) (\(h.kind.rawValue))"
        let tap = byMap ? "tap '\(layer.name)' (entry \(i) of \(FeatureLayers.poolMapKey))" : "layer '\(layer.name)'"
        guard h.dims.first == layer.dim else {
            throw LinprobeError.config(
                "\(head): dims[0] = \(h.dims.first ?? 0) but \(tap) has \(layer.dim) features "
                    + "(shape_chw \(layer.shapeCHW)) in \(train.path)")
        }
        if h.kind == .evalMLP, let c = h.inChannels, c != layer.shapeCHW.first {
            throw LinprobeError.config(
                "\(head): in_channels = \(c) but \(tap) has \(layer.shapeCHW.first ?? 0) channels "
                    + "(shape_chw \(layer.shapeCHW))")
        }
        guard let t = test.layers.first(where: { $0.name == layer.name }) else {
            let held = test.layers.map(\.name).joined(separator: ", ")
            throw LinprobeError(
                .incompatible,
                "\(test.path): test store has no layer '\(layer.name)' (head \(i)); train and test stores must come "
                    + "from the same extraction (it holds: \(held))")
        }
        guard t.dim == layer.dim, t.shapeCHW == layer.shapeCHW else {
            throw LinprobeError(
                .incompatible,
                "\(test.path): layer '\(layer.name)' has shape \(t.shapeCHW) but \(layer.shapeCHW) in the "
                    + "training store"
            )
        }
    }
}

extension LinearStage {
    /// The stage a pipeline asks for: settings from `config` (`MODEL.HEAD.PARAMS`, `OPTIMIZER.*`, …),
    /// heads paired with the taps of its pool-op map.
    ///
    /// - Parameters:
    ///   - threads: compute threads (overrides `LINPROBE.THREADS`); nil keeps the pipeline's.
    public init(
        config: PipelineConfig, train: FeatureStoreReader, test: FeatureStoreReader, layout: WorkdirLayout,
        threads: Int? = nil
    ) throws {
        var settings = try LinearSettings(config: config.root, multiLabelStore: train.targetLayout != .singleLabel)
        if let threads, threads > 0 { settings.threads = threads }
        try self.init(
            train: train, test: test, settings: settings, taps: try FeatureLayers.names(config: config),
            pipeline: config.name, layout: layout, options: LinearRunOptions())
    }

    /// `--force`: forgets the run state in the run folder, so training starts at epoch 0 instead of
    /// resuming or taking a finished run's files. Head files are overwritten as training goes.
    public func discardPreviousRun(_ context: StageContext) throws {
        let path = RunFiles(layout: layout, fingerprint: fingerprint).statePath
        guard FileManager.default.fileExists(atPath: path) else { return }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw LinprobeError(.io, "\(path): cannot remove it for --force: \(oneLine(error))")
        }
    }
}
