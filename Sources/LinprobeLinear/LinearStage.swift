import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// Progress of a train-linear run (for a terminal progress line).
public struct LinearProgress: Sendable {
    public enum Phase: String, Sendable { case train, test }
    public var phase: Phase
    /// 1-based epoch.
    public var epoch: Int
    public var epochs: Int
    /// Batches done in this epoch's phase and how many there are.
    public var batch: Int
    public var batches: Int
    /// Rows per second over the phase so far.
    public var rowsPerSecond: Double
    /// Mean training loss of the phase so far, summed over heads (VISSL's logged loss).
    public var loss: Double
}

/// One optimizer step (for fidelity checks and logs).
public struct LinearStepRecord: Sendable {
    /// 0-based epoch and global step.
    public var epoch: Int
    public var step: Int
    public var learningRate: Double
    /// Loss of each head on the batch, in head order.
    public var losses: [Double]
}

/// Metrics of one head after one epoch.
public struct LinearEpochMetrics: Sendable, Equatable {
    public var epoch: Int
    public var learningRate: Double
    public var trainLoss: Double
    /// `top_<k>` (× 100, VISSL rounding) or `mAP`, on the training batches (BN in training mode).
    public var train: [String: Double]
    public var testLoss: Double?
    /// Test metrics (BN running statistics), when the test split was evaluated after this epoch.
    public var test: [String: Double]?
    /// Per-class test AP (multi-label runs; nil for classes without positives).
    public var testPerClassAP: [Double?]?

    var json: JSONValue {
        var o: [String: JSONValue] = [
            "epoch": .int(Int64(epoch)), "lr": .double(learningRate),
            "train": .object(train.mapValues { .double($0) }.merging(["loss": .double(trainLoss)]) { a, _ in a }),
        ]
        if let test {
            var t = test.mapValues { JSONValue.double($0) }
            if let testLoss { t["loss"] = .double(testLoss) }
            if let ap = testPerClassAP { t["AP"] = .array(ap.map { $0.map { .double(100 * $0) } ?? .null }) }
            o["test"] = .object(t)
        }
        return .object(o)
    }

    init(epoch: Int, learningRate: Double, trainLoss: Double, train: [String: Double], testLoss: Double?, test: [String: Double]?,
         testPerClassAP: [Double?]?) {
        self.epoch = epoch
        self.learningRate = learningRate
        self.trainLoss = trainLoss
        self.train = train
        self.testLoss = testLoss
        self.test = test
        self.testPerClassAP = testPerClassAP
    }

    init?(json: JSONValue) {
        guard let e = json["epoch"]?.intValue, let lr = json["lr"]?.doubleValue, let tr = json["train"]?.objectValue else { return nil }
        epoch = Int(e)
        learningRate = lr
        trainLoss = tr["loss"]?.doubleValue ?? .nan
        train = tr.filter { $0.key != "loss" }.compactMapValues(\.doubleValue)
        if let te = json["test"]?.objectValue {
            testLoss = te["loss"]?.doubleValue
            test = te.filter { $0.key != "loss" && $0.key != "AP" }.compactMapValues(\.doubleValue)
            testPerClassAP = te["AP"]?.arrayValue?.map { $0.doubleValue.map { $0 / 100 } }
        } else {
            testLoss = nil
            test = nil
            testPerClassAP = nil
        }
    }
}

/// The outcome for one head.
public struct LinearHeadResult: Sendable {
    public var name: String
    public var kind: HeadSpec.Kind
    public var layer: String
    /// `top_1` (single-label) or `mAP` (multi-label), × 100, after the last epoch.
    public var metric: String
    public var value: Double
    public var history: [LinearEpochMetrics]
    public var directory: String
}

/// The outcome of a train-linear run.
public struct LinearRunResult: Sendable {
    /// Short fingerprint naming `linear/<fp>/`.
    public var fingerprint: String
    public var directory: String
    public var heads: [LinearHeadResult]
    /// Epochs completed (equals the configured number unless stopped early).
    public var epochsDone: Int
    /// The epoch a resumed run started from (nil for a fresh run).
    public var resumedFromEpoch: Int?
    /// True when a complete earlier run with the same fingerprint was found and nothing was trained.
    public var reused: Bool
    public var complete: Bool
}

/// Options of a run that are not hyper-parameters (they do not change the fingerprint).
public struct LinearRunOptions {
    /// Threads for OpenBLAS and for the element-wise kernels (one level at a time).
    public var threads: Int
    public var progress: ((LinearProgress) -> Void)?
    public var onStep: ((LinearStepRecord) -> Void)?
    /// Batch order override (fidelity tests reproduce a reference run's permutation).
    public var order: EpochOrder?
    /// Initial weights per head (VISSL tensor names) instead of the seeded initialisation.
    public var initialWeights: [[String: (shape: [Int], values: [Float])]]?
    /// Stop after this many epochs of this invocation, as a killed run would (tests of resume).
    public var stopAfterEpochs: Int?
    /// Memory for the shuffle window when `SHUFFLE_CHUNK_ROWS` is not set.
    public var windowBudgetBytes: Int

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, progress: ((LinearProgress) -> Void)? = nil,
                onStep: ((LinearStepRecord) -> Void)? = nil, order: EpochOrder? = nil,
                initialWeights: [[String: (shape: [Int], values: [Float])]]? = nil, stopAfterEpochs: Int? = nil,
                windowBudgetBytes: Int = 1 << 30) {
        self.threads = threads
        self.progress = progress
        self.onStep = onStep
        self.order = order
        self.initialWeights = initialWeights
        self.stopAfterEpochs = stopAfterEpochs
        self.windowBudgetBytes = windowBudgetBytes
    }
}

/// The train-linear stage: every head of `MODEL.HEAD.PARAMS` trained with SGD on the stored
/// features, all heads from one read of the training store per epoch.
///
/// Output under `<workdir>/linear/<fp>/`: `state.json` (run state, the commit point of each
/// epoch), and per head `<head>/metrics.json` (per epoch), `<head>/checkpoint_epoch<E>.lpck`
/// (parameters, BN buffers, momentum, RNG state of the last finished epoch) and, once finished,
/// `<head>/results.json`. `<head>` is the stored layer's name.
public enum LinearStage {
    public static let stateFormat = "linprobe.linear-run"
    public static let metricsFormat = "linprobe.linear-metrics"
    public static let resultsFormat = "linprobe.results"
    static let formatVersion: Int64 = 1

    /// The short fingerprint of a run: the features' fingerprints, the layers and every hyper-parameter.
    public static func fingerprint(train: FeatureStoreReader, test: FeatureStoreReader, settings: LinearSettings) -> String {
        Fingerprint.short(fingerprintJSON(train: train, test: test, settings: settings))
    }

    static func storeIdentity(_ s: FeatureStoreReader) -> JSONValue {
        if !s.fingerprint.isEmpty { return .string(s.fingerprint) }
        // A store written by another tool may carry no fingerprint: identify it by what it holds.
        return ["path": .string(URL(fileURLWithPath: s.path).standardizedFileURL.path), "rows": .int(Int64(s.count)),
                "layers": .array(s.layers.map { .string("\($0.name):\($0.dim)") })]
    }

    static func fingerprintJSON(train: FeatureStoreReader, test: FeatureStoreReader, settings: LinearSettings) -> JSONValue {
        ["stage": "train-linear", "format_version": .int(formatVersion),
         "train_features": storeIdentity(train), "test_features": storeIdentity(test),
         "layers": .array(train.layers.map { .string($0.name) }), "settings": settings.json]
    }

    /// Pairs heads with the store's layers in order and checks their dimensions.
    static func pairHeads(_ settings: LinearSettings, train: FeatureStoreReader, test: FeatureStoreReader) throws -> [StoredLayerInfo] {
        let layers = train.layers
        guard settings.heads.count == layers.count else {
            throw LinprobeError.config("MODEL.HEAD.PARAMS: \(settings.heads.count) heads for \(layers.count) stored layers (\(layers.map(\.name).joined(separator: ", "))) in \(train.path); heads pair with the pool-map taps in order")
        }
        for (i, (h, layer)) in zip(settings.heads, layers).enumerated() {
            let head = "\(h.configPath) (\(h.kind.rawValue))"
            guard h.dims[0] == layer.dim else {
                throw LinprobeError.config("\(head): dims[0] = \(h.dims[0]) but layer '\(layer.name)' has \(layer.dim) features (shape_chw \(layer.shapeCHW)) in \(train.path)")
            }
            if h.kind == .evalMLP, let c = h.inChannels, c != layer.shapeCHW[0] {
                throw LinprobeError.config("\(head): in_channels = \(c) but layer '\(layer.name)' has \(layer.shapeCHW[0]) channels (shape_chw \(layer.shapeCHW))")
            }
            guard let t = test.layers.first(where: { $0.name == layer.name }) else {
                throw LinprobeError(.incompatible, "\(test.path): test store has no layer '\(layer.name)' (head \(i)); train and test stores must come from the same extraction")
            }
            guard t.dim == layer.dim, t.shapeCHW == layer.shapeCHW else {
                throw LinprobeError(.incompatible, "\(test.path): layer '\(layer.name)' has shape \(t.shapeCHW) but \(layer.shapeCHW) in the training store")
            }
        }
        return layers
    }

    /// Trains (or resumes, or reuses) the heads. See the type's documentation for the outputs.
    @discardableResult
    public static func run(train: FeatureStoreReader, test: FeatureStoreReader, settings: LinearSettings, workdir: String,
                           options: LinearRunOptions = LinearRunOptions()) throws -> LinearRunResult {
        guard train.count > 0 else {
            throw LinprobeError(.missingInput, "\(train.path): the training split is empty (0 rows); extract features for a non-empty split")
        }
        guard test.count > 0 else {
            throw LinprobeError(.missingInput, "\(test.path): the test split is empty (0 rows); extract features for a non-empty split")
        }
        let layers = try pairHeads(settings, train: train, test: test)
        let threads = max(1, settings.threads ?? options.threads)
        let trainer = try Trainer(train: train, test: test, settings: settings, layers: layers, workdir: workdir,
                                  options: options, threads: threads)
        return try trainer.run()
    }
}
