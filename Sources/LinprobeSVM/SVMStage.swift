import Foundation
import LinprobeCore
import LinprobeStore

/// What a run produced for one layer: the summary of its results document.
public struct SVMLayerOutcome: Sendable, Equatable {
    /// The stored layer (the pool-op map's tap name).
    public var layer: String
    /// Its `results.json` (an `SVMResultsDocument`).
    public var resultsPath: String
    public var protocolKind: SVMResultsDocument.ProtocolKind
    /// The document's `metric`: `mAP`, or for low-shot the k and the headline rule.
    public var metric: String
    /// The headline number in percent (mAP × 100; low-shot: the headline rule's mean at the
    /// largest k); nil when undefined.
    public var value: Double?
    public var warnings: [String]

    /// The summary of a results document found at `resultsPath`.
    public init(document: SVMResultsDocument, resultsPath: String) {
        layer = document.layer
        self.resultsPath = resultsPath
        protocolKind = document.protocolKind
        metric = document.metric
        value = document.value
        warnings = document.warnings
    }
}

/// What a whole `train-svm` run produced, the same whether it ran or was reused.
public struct SVMRunSummary: Sendable, Equatable {
    /// `<fp>` of `svm/<fp>/`: the features' fingerprints plus every SVM hyper-parameter.
    public var fingerprint: String
    /// The run's folder (`WorkdirLayout.Artifact.svmRun`).
    public var directory: String
    /// One per trained layer, in the order trained (the pool-op map's order).
    public var layers: [SVMLayerOutcome]
}

/// The `train-svm` stage: VISSL's VOC07 linear-SVM protocol (`tools/train_svm.py`) and its
/// low-shot variants over a training and a test feature store, every layer of the pool-op map in
/// one run. Run it with `StageRunner(layout:force:note:).execute(stage)`, which handles the
/// manifest, the lock and reuse.
///
/// Layout (`WorkdirLayout.Artifact.svmLayer`): `svm/<fp>/<layer>/results.json`
/// (`SVMResultsDocument`), `models.npy` (chosen models), `fits.log` (every finished fit,
/// checksummed; a rerun resumes from it), `models/` (refits); low-shot: `low_shot_samples.json`.
public struct SVMStage: PipelineStage {
    /// Memory allowed for a layer's Gram matrix before the solver falls back to the dense layout.
    public static let defaultGramBudgetBytes = 2 << 30

    public let train: FeatureStoreReader
    public let test: FeatureStoreReader
    public let settings: SVMSettings
    /// The layers trained, in order: the pool-op map's taps, or every layer of the training store.
    public let layers: [String]
    public let pipeline: String?
    public let layout: WorkdirLayout
    /// Worker threads (resolved: never 0).
    public let threads: Int
    public let gramBudgetBytes: Int
    /// The solver layout forced for every layer (nil: chosen per layer).
    public let solverLayout: SolverLayout?
    /// `<fp>` of `svm/<fp>/`.
    public let fingerprint: String

    /// A `train-svm` stage over two open stores. Checks, before any work, that the stores fit the
    /// protocol (target layout, one view per image, same classes) and that both hold every layer.
    ///
    /// - Parameters:
    ///   - train: the training store (read, never reopened).
    ///   - test: the test store.
    ///   - settings: `SVMSettings(config:)`; `forceRetrain` discards the fit logs.
    ///   - layers: stored layer names of the pool-op map in map order (`FeatureLayers.names(config:)`),
    ///     resolved with `train.layers(named:)`: SVMs are trained on exactly these, in this order, and
    ///     the stores may hold more. Empty: every layer of the training store, in its order. A name
    ///     the store lacks is a one-line error naming it and listing what the store holds.
    ///   - pipeline: the pipeline's name, for the manifest record.
    ///   - layout: the work folder.
    ///   - threads: worker threads; nil = `settings.threads`; 0 = every core.
    ///   - gramBudgetBytes: memory allowed for a layer's Gram matrix.
    ///   - solverLayout: forces the solver layout of every layer (nil: chosen per layer by
    ///     `SVMTrainer.chooseLayout`; both give the same numbers to rounding, only the speed differs).
    public init(
        train: FeatureStoreReader, test: FeatureStoreReader, settings: SVMSettings, layers: [String],
        pipeline: String?, layout: WorkdirLayout, threads: Int? = nil,
        gramBudgetBytes: Int = SVMStage.defaultGramBudgetBytes, solverLayout: SolverLayout? = nil
    ) throws {
        try Self.checkProtocol(train: train, test: test, settings: settings)
        let resolved = try train.layers(named: layers).map(\.name)
        try Self.checkLayers(resolved, train: train, test: test)
        self.train = train
        self.test = test
        self.settings = settings
        self.layers = resolved
        self.pipeline = pipeline
        self.layout = layout
        let wanted = threads ?? settings.threads
        self.threads = wanted > 0 ? wanted : ProcessInfo.processInfo.activeProcessorCount
        self.gramBudgetBytes = gramBudgetBytes
        self.solverLayout = solverLayout
        // The layer set enters the fingerprint only when it is not the whole store (so runs over
        // every layer keep their fingerprints); its order never does.
        let subset = Set(resolved) == Set(train.layers.map(\.name)) ? nil : resolved
        fingerprint = Self.fingerprint(
            trainFingerprint: train.fingerprint, testFingerprint: test.fingerprint, settings: settings, layers: subset)
    }

    /// The stage of a pipeline: `SVMSettings(config:)` and the layers of its pool-op map
    /// (`FeatureLayers.names(config:)`).
    ///
    /// - Parameters:
    ///   - threads: nil = `LINPROBE.THREADS`; 0 = every core.
    ///   - forceRetrain: discard the fit logs (as `SVM.force_retrain`).
    public init(
        config: PipelineConfig, train: FeatureStoreReader, test: FeatureStoreReader, layout: WorkdirLayout,
        threads: Int? = nil, forceRetrain: Bool = false, gramBudgetBytes: Int = SVMStage.defaultGramBudgetBytes,
        solverLayout: SolverLayout? = nil
    ) throws {
        var settings = try SVMSettings(config: config.root)
        if forceRetrain { settings.forceRetrain = true }
        try self.init(
            train: train, test: test, settings: settings, layers: try FeatureLayers.names(config: config),
            pipeline: config.name, layout: layout, threads: threads, gramBudgetBytes: gramBudgetBytes,
            solverLayout: solverLayout)
    }

    /// The results' fingerprint: features (train and test) plus every SVM setting, and the trained
    /// layers when they are a subset of the store.
    public static func fingerprint(
        trainFingerprint: String, testFingerprint: String, settings: SVMSettings, layers: [String]? = nil
    ) -> String {
        var value: [String: JSONValue] = [
            "stage": .string(StageKind.trainSVM.name),
            "format_version": 1,
            // The solver's visiting-order scheme: fits that stop at max_iter depend on it.
            "solver": "dual-cd-shared-order-v3",
            "train_features": .string(trainFingerprint),
            "test_features": .string(testFingerprint),
            "svm": settings.fingerprintJSON,
        ]
        if let layers { value["layers"] = .array(layers.sorted().map { .string($0) }) }
        return Fingerprint.short(.object(value))
    }

    // MARK: PipelineStage

    public var plan: StagePlan {
        StagePlan(
            kind: .trainSVM, fingerprint: fingerprint,
            inputs: StagePlan.trainingInputs(train: train, test: test),
            parameters: settings.fingerprintJSON, outputs: [layout.relativePath(.svmRun(fingerprint: fingerprint))],
            pipeline: pipeline)
    }

    /// Trains every layer (resuming from the fit logs), reporting progress per layer and phase
    /// and each warning through `context.note`.
    public func run(_ context: StageContext) throws -> SVMRunSummary {
        defer { context.progress.finish() }
        let progress = context.progress
        let note = context.note
        return try execute(
            progress: { layer, phase, done, total in
                progress.report("\(layer) \(phase)", done: done, total: total, unit: "fits")
            },
            warn: { note("train-svm: warning: \($0)") })
    }

    /// The summary of a finished run, from its results documents.
    public func reuse(_ context: StageContext, record: ManifestRecord) throws -> SVMRunSummary {
        let outcomes = try layers.map { name in
            let path = resultsPath(layer: name)
            let document = try SVMResultsDocument.read(path: path)
            guard document.fingerprint == fingerprint, document.layer == name else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): results of layer '\(document.layer)' run \(document.fingerprint), expected layer "
                        + "'\(name)' of run \(fingerprint); run train-svm again with --force")
            }
            return SVMLayerOutcome(document: document, resultsPath: path)
        }
        return SVMRunSummary(
            fingerprint: fingerprint, directory: layout.path(.svmRun(fingerprint: fingerprint)), layers: outcomes)
    }

    public func manifestMessage(_ outcome: SVMRunSummary) -> String? {
        let values = outcome.layers.map { "\($0.layer) \($0.value.map { String(format: "%.2f", $0) } ?? "n/a")" }
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// `results.json` of a layer of this run.
    public func resultsPath(layer: String) -> String {
        WorkdirLayout.resultsFile(in: layout.path(.svmLayer(fingerprint: fingerprint, layer: layer)))
    }

    /// Trains every layer in order.
    func execute(
        progress: @escaping @Sendable (String, String, Int, Int) -> Void, warn: @escaping @Sendable (String) -> Void
    ) throws -> SVMRunSummary {
        try Paths.ensureDirectory(layout.path(.svmRun(fingerprint: fingerprint)))
        let provenance = SVMResultsDocument.FeatureProvenancePair(
            train: train.featureProvenance, test: test.featureProvenance)
        var outcomes: [SVMLayerOutcome] = []
        for name in layers {
            let directory = layout.path(.svmLayer(fingerprint: fingerprint, layer: name))
            try Paths.ensureDirectory(directory)
            let context = LayerContext(
                layer: name, train: train, test: test, settings: settings, directory: directory,
                fingerprint: fingerprint, threads: threads, gramBudgetBytes: gramBudgetBytes, layout: solverLayout,
                featureProvenance: provenance, progress: { progress(name, $0, $1, $2) }, warn: warn)
            let document = settings.lowShot ? try LowShotProtocol.run(context) : try StandardProtocol.run(context)
            outcomes.append(SVMLayerOutcome(document: document, resultsPath: context.resultsPath))
        }
        return SVMRunSummary(
            fingerprint: fingerprint, directory: layout.path(.svmRun(fingerprint: fingerprint)), layers: outcomes)
    }

    // MARK: Input checks

    /// The stores must fit the protocol before any work starts.
    static func checkProtocol(train: FeatureStoreReader, test: FeatureStoreReader, settings: SVMSettings) throws {
        let needsSingleLabel = settings.lowShot && settings.lowShotDataset == .places
        for reader in [train, test] {
            switch (reader.targetLayout, needsSingleLabel) {
            case (.singleLabel, false):
                throw LinprobeError(
                    .incompatible,
                    "\(reader.path): targets are single-label [N]; the VOC07 SVM protocol needs multi-label [N, C] "
                        + "targets (1 present, 0 absent, -1 difficult). For single-label data use the Places205 "
                        + "low-shot variant (LINPROBE.SVM.LOW_SHOT=true, SVM.low_shot.dataset_name=places)")
            case (.multiLabel, true):
                throw LinprobeError(
                    .incompatible,
                    "\(reader.path): targets are multi-label [N, C]; the Places205 low-shot variant needs "
                        + "single-label [N] class indices. Use SVM.low_shot.dataset_name=voc for multi-label data")
            default: break
            }
        }
        if train.views > 1 {
            throw LinprobeError(
                .incompatible,
                "\(train.path): holds \(train.views) augmented views of each image (LINPROBE.TRAIN_VIEWS); the SVM "
                    + "protocol fits one row per image, and its cross-validation folds would put views of one image "
                    + "on both sides — extract with LINPROBE.TRAIN_VIEWS=1 for train-svm")
        }
        if case .multiLabel(let a) = train.targetLayout, case .multiLabel(let b) = test.targetLayout, a != b {
            throw LinprobeError(
                .incompatible,
                "\(test.path): test targets have \(b) classes but the training store \(train.path) has \(a)")
        }
        if train.count == 0 { throw LinprobeError(.incompatible, "\(train.path): the training store has no rows") }
    }

    /// Every trained layer must be in the test store with the same width.
    static func checkLayers(_ names: [String], train: FeatureStoreReader, test: FeatureStoreReader) throws {
        for name in names {
            let a = try train.layer(name)
            guard let b = test.layers.first(where: { $0.name == name }) else {
                throw LinprobeError(
                    .incompatible,
                    "\(test.path): has no layer '\(name)' (layers: "
                        + "\(test.layers.map(\.name).joined(separator: ", "))); "
                        + "train and test stores must come from the same extraction")
            }
            guard a.dim == b.dim else {
                throw LinprobeError(
                    .incompatible,
                    "\(test.path): layer \(name) has D = \(b.dim) but the training store has D = \(a.dim)")
            }
        }
    }
}
