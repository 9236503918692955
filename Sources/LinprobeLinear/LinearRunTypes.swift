import Foundation
import LinprobeCore

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

    public init(
        epoch: Int, learningRate: Double, trainLoss: Double, train: [String: Double], testLoss: Double?,
        test: [String: Double]?, testPerClassAP: [Double?]?
    ) {
        self.epoch = epoch
        self.learningRate = learningRate
        self.trainLoss = trainLoss
        self.train = train
        self.testLoss = testLoss
        self.test = test
        self.testPerClassAP = testPerClassAP
    }

    /// The epoch as `metrics.json` records it (per-class AP × 100).
    var document: LinearMetricsDocument.Epoch {
        LinearMetricsDocument.Epoch(
            epoch: epoch, learningRate: learningRate, train: LinearMetricValues(values: train, loss: trainLoss),
            test: test.map { t in
                LinearMetricValues(
                    values: t, loss: testLoss, perClassAP: testPerClassAP.map { $0.map { $0.map { 100 * $0 } } })
            })
    }

    /// The epoch `metrics.json` recorded.
    init(document e: LinearMetricsDocument.Epoch) {
        epoch = e.epoch
        learningRate = e.learningRate
        trainLoss = e.train.loss ?? .nan
        train = e.train.values.compactMapValues { $0 }
        testLoss = e.test?.loss
        test = e.test?.values.compactMapValues { $0 }
        testPerClassAP = e.test?.perClassAP?.map { $0.map { $0 / 100 } }
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
    /// `linear/<fp>/<head>` (absolute).
    public var directory: String

    /// Its `results.json` (written once the run finished).
    public var resultsPath: String { WorkdirLayout.resultsFile(in: directory) }
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

    /// The stage outcome of this run.
    public var outcome: LinearOutcome {
        LinearOutcome(
            fingerprint: fingerprint, directory: directory,
            heads: heads.map { h in
                let metric =
                    h.metric == LinearResultsDocument.Metric.mAP.rawValue ? LinearResultsDocument.Metric.mAP : .top1
                return LinearOutcome.Head(
                    name: h.name, kind: h.kind, layer: h.layer, metric: metric,
                    value: LinearMetricValues.finite(h.value),
                    resultsPath: h.resultsPath)
            },
            epochsDone: epochsDone, resumedFromEpoch: resumedFromEpoch)
    }
}

/// What `LinearStage` produced (or found already done): per head its name, kind, tap, headline metric
/// and value and its `results.json`.
public struct LinearOutcome: Sendable, Equatable {
    public struct Head: Sendable, Equatable {
        /// The head's name: the stored layer (tap) it reads.
        public var name: String
        public var kind: HeadSpec.Kind
        public var layer: String
        /// `top_1` (single-label) or `mAP` (multi-label).
        public var metric: LinearResultsDocument.Metric
        /// The metric × 100 after the last epoch (nil when not finite).
        public var value: Double?
        /// Absolute path of the head's `results.json`.
        public var resultsPath: String

        public init(
            name: String, kind: HeadSpec.Kind, layer: String, metric: LinearResultsDocument.Metric, value: Double?,
            resultsPath: String
        ) {
            self.name = name
            self.kind = kind
            self.layer = layer
            self.metric = metric
            self.value = value
            self.resultsPath = resultsPath
        }
    }

    /// The run's fingerprint and folder (`linear/<fp>`, absolute).
    public var fingerprint: String
    public var directory: String
    /// In head order (`MODEL.HEAD.PARAMS`).
    public var heads: [Head]
    public var epochsDone: Int
    /// The epoch this invocation resumed from (nil: a fresh run, or reused).
    public var resumedFromEpoch: Int?

    public init(fingerprint: String, directory: String, heads: [Head], epochsDone: Int, resumedFromEpoch: Int?) {
        self.fingerprint = fingerprint
        self.directory = directory
        self.heads = heads
        self.epochsDone = epochsDone
        self.resumedFromEpoch = resumedFromEpoch
    }
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

    public init(
        threads: Int = ProcessInfo.processInfo.activeProcessorCount, progress: ((LinearProgress) -> Void)? = nil,
        onStep: ((LinearStepRecord) -> Void)? = nil, order: EpochOrder? = nil,
        initialWeights: [[String: (shape: [Int], values: [Float])]]? = nil, stopAfterEpochs: Int? = nil,
        windowBudgetBytes: Int = 1 << 30
    ) {
        self.threads = threads
        self.progress = progress
        self.onStep = onStep
        self.order = order
        self.initialWeights = initialWeights
        self.stopAfterEpochs = stopAfterEpochs
        self.windowBudgetBytes = windowBudgetBytes
    }
}
