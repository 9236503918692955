import Foundation

// The document the knn stage writes under `knn/<fp>/<layer>/results.json` (see `WorkdirLayout`):
// `KNNResultsDocument`, schema `schemas/results.schema.json` `$defs/knn`, pretty-printed with
// sorted keys and a final newline through `AtomicFile`.

/// The kNN benchmark of one layer: top-1 / top-5 accuracy (single-label) or mAP (multi-label)
/// for every k of `NEAREST_NEIGHBOR.TOPK`, how they were computed, and where the features came from.
public struct KNNResultsDocument: Codable, Sendable, Equatable {
    public static let format = "linprobe.knn.results"
    public static let method = "knn"
    public static let currentVersion = 1
    public static let supportedVersions = 1...1

    /// Whose protocol: VISSL's `knn_utils` or DINO's `eval_knn`.
    public enum ProtocolKind: String, Codable, Sendable, CaseIterable {
        case vissl
        case dino
    }

    /// The headline metric: top-1 accuracy (single-label targets) or mAP (multi-label), × 100.
    public enum Metric: String, Codable, Sendable, CaseIterable {
        case top1 = "top_1"
        case mAP
    }

    /// The settings the numbers were computed with.
    public struct Settings: Codable, Sendable, Equatable {
        /// Every k evaluated, as listed (`NEAREST_NEIGHBOR.TOPK`).
        public var topk: [Int]
        /// σ (VISSL's `SIGMA`) or T (DINO's temperature): neighbour j weighs exp(s_j / σ).
        public var temperature: Double
        /// Whether train and test features were L2-normalised before the search.
        public var l2Normalize: Bool
        /// Classes ranked by the vote (VISSL: the largest training label + 1; DINO: the store's).
        public var numClasses: Int
        /// The vote and the rule for equal scores, in words.
        public var vote: String

        enum CodingKeys: String, CodingKey {
            case topk, temperature
            case l2Normalize = "l2_normalize"
            case numClasses = "num_classes"
            case vote
        }

        public init(topk: [Int], temperature: Double, l2Normalize: Bool, numClasses: Int, vote: String) {
            self.topk = topk
            self.temperature = temperature
            self.l2Normalize = l2Normalize
            self.numClasses = numClasses
            self.vote = vote
        }
    }

    /// The metrics of one k. Single-label: `top_1`, `top_5` and their counts; multi-label: `mAP`
    /// and the AP of every class (nil for classes without positives).
    public struct KResult: Codable, Sendable, Equatable {
        public var k: Int
        public var top1: Double?
        public var top5: Double?
        public var correctTop1: Int?
        public var correctTop5: Int?
        public var mAP: Double?
        public var perClassAP: [Double?]?

        enum CodingKeys: String, CodingKey {
            case k
            case top1 = "top_1"
            case top5 = "top_5"
            case correctTop1 = "correct_top_1"
            case correctTop5 = "correct_top_5"
            case mAP
            case perClassAP = "per_class_ap"
        }

        public init(
            k: Int, top1: Double? = nil, top5: Double? = nil, correctTop1: Int? = nil, correctTop5: Int? = nil,
            mAP: Double? = nil, perClassAP: [Double?]? = nil
        ) {
            self.k = k
            self.top1 = top1
            self.top5 = top5
            self.correctTop1 = correctTop1
            self.correctTop5 = correctTop5
            self.mAP = mAP
            self.perClassAP = perClassAP
        }

        /// The value of `metric` at this k.
        public func value(_ metric: Metric) -> Double? { metric == .mAP ? mAP : top1 }
    }

    /// The tool, its libraries and threads, and how long the search took.
    public struct Tool: Codable, Sendable, Equatable {
        public var tool: String
        public var version: String
        public var blas: String?
        public var blasCore: String?
        public var threads: Int?
        public var seconds: Double?
        /// Train × test inner products per second over the whole search.
        public var similaritiesPerSecond: Double?

        enum CodingKeys: String, CodingKey {
            case tool, version, blas
            case blasCore = "blas_core"
            case threads, seconds
            case similaritiesPerSecond = "similarities_per_second"
        }

        public init(
            tool: String = "linprobe", version: String, blas: String? = nil, blasCore: String? = nil,
            threads: Int? = nil, seconds: Double? = nil, similaritiesPerSecond: Double? = nil
        ) {
            self.tool = tool
            self.version = version
            self.blas = blas
            self.blasCore = blasCore
            self.threads = threads
            self.seconds = seconds
            self.similaritiesPerSecond = similaritiesPerSecond
        }
    }

    public var formatVersion: Int
    public var layer: String
    /// The evaluated split (the test store's split attribute).
    public var split: String
    public var protocolKind: ProtocolKind
    public var metric: Metric
    /// The k whose metric is the headline (the first of `settings.topk`).
    public var k: Int
    /// The headline value (× 100); nil when undefined.
    public var value: Double?
    /// One entry per k, in `settings.topk` order.
    public var results: [KResult]
    /// Test rows evaluated and training rows searched.
    public var testRows: Int
    public var trainRows: Int
    public var settings: Settings
    /// The run's fingerprint (`knn/<fp>/`): both stores' fingerprints plus every setting.
    public var fingerprint: String
    public var features: SVMResultsDocument.Features
    public var featureProvenance: FeatureProvenancePair
    public var provenance: Tool

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case method, layer, split
        case protocolKind = "protocol"
        case metric, k, value, results
        case testRows = "test_rows"
        case trainRows = "train_rows"
        case settings, fingerprint, features
        case featureProvenance = "feature_provenance"
        case provenance
    }

    public init(
        formatVersion: Int = Self.currentVersion, layer: String, split: String, protocolKind: ProtocolKind,
        metric: Metric, results: [KResult], testRows: Int, trainRows: Int, settings: Settings, fingerprint: String,
        features: SVMResultsDocument.Features, featureProvenance: FeatureProvenancePair, provenance: Tool
    ) {
        self.formatVersion = formatVersion
        self.layer = layer
        self.split = split
        self.protocolKind = protocolKind
        self.metric = metric
        self.k = results.first?.k ?? 0
        self.value = results.first?.value(metric)
        self.results = results
        self.testRows = testRows
        self.trainRows = trainRows
        self.settings = settings
        self.fingerprint = fingerprint
        self.features = features
        self.featureProvenance = featureProvenance
        self.provenance = provenance
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try LinearDocumentFile.checkHeader(
            c, format: (.format, Self.format), method: (.method, Self.method),
            version: .formatVersion, supported: Self.supportedVersions)
        formatVersion = try c.decode(Int.self, forKey: .formatVersion)
        layer = try c.decode(String.self, forKey: .layer)
        split = try c.decode(String.self, forKey: .split)
        protocolKind = try c.decode(ProtocolKind.self, forKey: .protocolKind)
        metric = try c.decode(Metric.self, forKey: .metric)
        k = try c.decode(Int.self, forKey: .k)
        value = try c.decode(Double?.self, forKey: .value)
        results = try c.decode([KResult].self, forKey: .results)
        testRows = try c.decode(Int.self, forKey: .testRows)
        trainRows = try c.decode(Int.self, forKey: .trainRows)
        settings = try c.decode(Settings.self, forKey: .settings)
        fingerprint = try c.decode(String.self, forKey: .fingerprint)
        features = try c.decode(SVMResultsDocument.Features.self, forKey: .features)
        featureProvenance = try c.decode(FeatureProvenancePair.self, forKey: .featureProvenance)
        provenance = try c.decode(Tool.self, forKey: .provenance)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.format, forKey: .format)
        try c.encode(formatVersion, forKey: .formatVersion)
        try c.encode(Self.method, forKey: .method)
        try c.encode(layer, forKey: .layer)
        try c.encode(split, forKey: .split)
        try c.encode(protocolKind, forKey: .protocolKind)
        try c.encode(metric, forKey: .metric)
        try c.encode(k, forKey: .k)
        try c.encode(value, forKey: .value)
        try c.encode(results, forKey: .results)
        try c.encode(testRows, forKey: .testRows)
        try c.encode(trainRows, forKey: .trainRows)
        try c.encode(settings, forKey: .settings)
        try c.encode(fingerprint, forKey: .fingerprint)
        try c.encode(features, forKey: .features)
        try c.encode(featureProvenance, forKey: .featureProvenance)
        try c.encode(provenance, forKey: .provenance)
    }

    /// Reads and checks a `results.json` of the knn stage; every failure is one line naming the file.
    public static func read(path: String) throws -> KNNResultsDocument {
        try LinearDocumentFile.read(
            Self.self, path: path, what: "knn results", format: format, method: method,
            supported: supportedVersions, stage: .knn)
    }

    /// The file's text: pretty-printed, keys sorted, final newline.
    public func text() throws -> String { try LinearDocumentFile.text(self) }

    /// Writes the document atomically (`AtomicFile`).
    public func write(to path: String) throws { try AtomicFile.write(text(), to: path) }
}
