import Foundation

// The documents train-linear writes under `linear/<fp>/<head>/` (see `WorkdirLayout`):
// `results.json` (`LinearResultsDocument`, schema `schemas/results.schema.json` `$defs/linear`) once a run
// finished, and `metrics.json` (`LinearMetricsDocument`, the per-epoch history) after every epoch.
// Both are written pretty-printed with sorted keys and a final newline, the bytes `JSONValue.prettyText()`
// gives for the same content, through `AtomicFile`.

/// The results of one trained linear head: the test metric after the last epoch, how it was
/// trained, and where its features came from.
public struct LinearResultsDocument: Codable, Sendable, Equatable {
    public static let format = "linprobe.results"
    public static let method = "linear"
    /// Version 2 added `feature_provenance`; version 1 files decode with it nil.
    public static let currentVersion = 2
    public static let supportedVersions = 1...2

    /// The head architectures (`MODEL.HEAD.PARAMS` names).
    public enum HeadType: String, Codable, Sendable, CaseIterable {
        case evalMLP = "eval_mlp"
        case mlp
    }

    /// The headline metric: top-1 accuracy (single-label) or mean AP (multi-label), both × 100.
    public enum Metric: String, Codable, Sendable, CaseIterable {
        case top1 = "top_1"
        case mAP
    }

    /// The head's definition as trained (`HeadSpec`): VISSL's `MODEL.HEAD.PARAMS` entry, resolved.
    public struct HeadSpec: Codable, Sendable, Equatable {
        public var name: HeadType
        public var dims: [Int]
        public var useBN: Bool
        public var useReLU: Bool
        public var inChannels: Int?
        /// `mlp` heads only.
        public var useDropout: Bool?
        public var useBias: Bool?
        public var skipLastLayerReLUBN: Bool?

        enum CodingKeys: String, CodingKey {
            case name, dims
            case useBN = "use_bn"
            case useReLU = "use_relu"
            case inChannels = "in_channels"
            case useDropout = "use_dropout"
            case useBias = "use_bias"
            case skipLastLayerReLUBN = "skip_last_layer_relu_bn"
        }

        public init(
            name: HeadType, dims: [Int], useBN: Bool, useReLU: Bool, inChannels: Int? = nil,
            useDropout: Bool? = nil, useBias: Bool? = nil, skipLastLayerReLUBN: Bool? = nil
        ) {
            self.name = name
            self.dims = dims
            self.useBN = useBN
            self.useReLU = useReLU
            self.inChannels = inChannels
            self.useDropout = useDropout
            self.useBias = useBias
            self.skipLastLayerReLUBN = skipLastLayerReLUBN
        }
    }

    /// The best test value over the evaluated epochs (informational: selected on the test split).
    public struct BestTest: Codable, Sendable, Equatable {
        /// 1-based epoch.
        public var epoch: Int
        public var value: Double?

        public init(epoch: Int, value: Double?) {
            self.epoch = epoch
            self.value = LinearMetricValues.finite(value)
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            epoch = try c.decode(Int.self, forKey: .epoch)
            value = try c.decode(Double?.self, forKey: .value)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(epoch, forKey: .epoch)
            try c.encode(LinearMetricValues.finite(value), forKey: .value)
        }

        enum CodingKeys: String, CodingKey { case epoch, value }
    }

    /// The tool that trained the head.
    public struct Tool: Codable, Sendable, Equatable {
        /// Always `linprobe`.
        public var tool: String
        public var version: String
        /// OpenBLAS configuration and core, and the threads used.
        public var blas: String?
        public var blasCore: String?
        public var threads: Int?

        enum CodingKeys: String, CodingKey {
            case tool, version, blas
            case blasCore = "blas_core"
            case threads
        }

        public init(
            tool: String = "linprobe", version: String, blas: String? = nil, blasCore: String? = nil,
            threads: Int? = nil
        ) {
            self.tool = tool
            self.version = version
            self.blas = blas
            self.blasCore = blasCore
            self.threads = threads
        }
    }

    /// The training and test stores as the stage read them.
    public typealias Features = FeatureProvenancePair

    public var formatVersion: Int
    /// The head's name (the stored layer it reads) and its architecture.
    public var head: String
    public var headType: HeadType
    public var layer: String
    /// The evaluated split (the test store's split attribute, `test` when it has none).
    public var split: String
    public var metric: Metric
    /// The metric after the last epoch (× 100, VISSL rounding); nil when not finite.
    public var value: Double?
    /// Every test metric after the last epoch (`top_<k>` or `mAP`) and the mean test loss.
    public var metrics: LinearMetricValues
    /// Multi-label runs: AP × 100 per class (nil for classes without positives).
    public var perClass: [Double?]?
    public var bestTest: BestTest?
    /// Epochs trained.
    public var epochs: Int
    /// The effective train-linear settings (`LinearSettings.json` of LinprobeLinear), as fingerprinted.
    public var hyperParameters: JSONValue
    public var headSpec: HeadSpec
    /// Fingerprints of the training and test stores, and the run's (`linear/<fp>/`).
    public var fingerprint: String
    public var testFingerprint: String?
    public var resultsFingerprint: String
    public var provenance: Tool
    /// Trunk, weights, transforms, pool ops and dataset of both stores (version 2 on).
    public var featureProvenance: Features?

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case method, head
        case headType = "head_type"
        case layer, split, metric, value, metrics
        case perClass = "per_class"
        case bestTest = "best_test"
        case epochs
        case hyperParameters = "hyper_parameters"
        case headSpec = "head_spec"
        case fingerprint
        case testFingerprint = "test_fingerprint"
        case resultsFingerprint = "results_fingerprint"
        case provenance
        case featureProvenance = "feature_provenance"
    }

    public init(
        formatVersion: Int = Self.currentVersion, head: String, headType: HeadType, layer: String, split: String,
        metric: Metric, value: Double?, metrics: LinearMetricValues, perClass: [Double?]? = nil,
        bestTest: BestTest? = nil, epochs: Int, hyperParameters: JSONValue, headSpec: HeadSpec,
        fingerprint: String, testFingerprint: String?, resultsFingerprint: String, provenance: Tool,
        featureProvenance: Features?
    ) {
        self.formatVersion = formatVersion
        self.head = head
        self.headType = headType
        self.layer = layer
        self.split = split
        self.metric = metric
        self.value = LinearMetricValues.finite(value)
        self.metrics = metrics
        self.perClass = perClass.map { $0.map(LinearMetricValues.finite) }
        self.bestTest = bestTest
        self.epochs = epochs
        self.hyperParameters = hyperParameters
        self.headSpec = headSpec
        self.fingerprint = fingerprint
        self.testFingerprint = testFingerprint
        self.resultsFingerprint = resultsFingerprint
        self.provenance = provenance
        self.featureProvenance = featureProvenance
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try LinearDocumentFile.checkHeader(
            c, format: (.format, Self.format), method: (.method, Self.method),
            version: .formatVersion, supported: Self.supportedVersions)
        formatVersion = try c.decode(Int.self, forKey: .formatVersion)
        head = try c.decode(String.self, forKey: .head)
        headType = try c.decode(HeadType.self, forKey: .headType)
        layer = try c.decode(String.self, forKey: .layer)
        split = try c.decode(String.self, forKey: .split)
        metric = try c.decode(Metric.self, forKey: .metric)
        value = try c.decode(Double?.self, forKey: .value)
        metrics = try c.decode(LinearMetricValues.self, forKey: .metrics)
        perClass = try c.decodeIfPresent([Double?].self, forKey: .perClass)
        bestTest = try c.decodeIfPresent(BestTest.self, forKey: .bestTest)
        epochs = try c.decode(Int.self, forKey: .epochs)
        hyperParameters = try c.decode(JSONValue.self, forKey: .hyperParameters)
        headSpec = try c.decode(HeadSpec.self, forKey: .headSpec)
        fingerprint = try c.decode(String.self, forKey: .fingerprint)
        testFingerprint = try c.decodeIfPresent(String.self, forKey: .testFingerprint)
        resultsFingerprint = try c.decode(String.self, forKey: .resultsFingerprint)
        provenance = try c.decode(Tool.self, forKey: .provenance)
        featureProvenance = try c.decodeIfPresent(Features.self, forKey: .featureProvenance)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.format, forKey: .format)
        try c.encode(formatVersion, forKey: .formatVersion)
        try c.encode(Self.method, forKey: .method)
        try c.encode(head, forKey: .head)
        try c.encode(headType, forKey: .headType)
        try c.encode(layer, forKey: .layer)
        try c.encode(split, forKey: .split)
        try c.encode(metric, forKey: .metric)
        try c.encode(LinearMetricValues.finite(value), forKey: .value)
        try c.encode(metrics, forKey: .metrics)
        try c.encodeIfPresent(perClass.map { $0.map(LinearMetricValues.finite) }, forKey: .perClass)
        try c.encodeIfPresent(bestTest, forKey: .bestTest)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(hyperParameters, forKey: .hyperParameters)
        try c.encode(headSpec, forKey: .headSpec)
        try c.encode(fingerprint, forKey: .fingerprint)
        try c.encodeIfPresent(testFingerprint, forKey: .testFingerprint)
        try c.encode(resultsFingerprint, forKey: .resultsFingerprint)
        try c.encode(provenance, forKey: .provenance)
        try c.encodeIfPresent(featureProvenance, forKey: .featureProvenance)
    }

    /// Reads and checks a `results.json` of train-linear; every failure is one line naming the file.
    public static func read(path: String) throws -> LinearResultsDocument {
        try LinearDocumentFile.read(
            Self.self, path: path, what: "train-linear results", format: format, method: method,
            supported: supportedVersions)
    }

    /// The file's text: pretty-printed, keys sorted, final newline.
    public func text() throws -> String { try LinearDocumentFile.text(self) }

    /// Writes the document atomically (`AtomicFile`: temporary file, fsync, rename, fsync of the folder).
    public func write(to path: String) throws { try AtomicFile.write(text(), to: path) }
}

/// The per-epoch history of one linear head (`metrics.json`), rewritten after every epoch; the
/// report draws its per-epoch chart from it.
public struct LinearMetricsDocument: Codable, Sendable, Equatable {
    public static let format = "linprobe.linear-metrics"
    public static let currentVersion = LinearResultsDocument.currentVersion
    public static let supportedVersions = LinearResultsDocument.supportedVersions

    /// One finished epoch.
    public struct Epoch: Codable, Sendable, Equatable {
        /// 1-based epoch.
        public var epoch: Int
        /// The learning rate at the epoch's first step.
        public var learningRate: Double
        /// Mean training loss and `top_<k>` on the training batches (BN in training mode).
        public var train: LinearMetricValues
        /// Test metrics (BN running statistics) when the test split was evaluated after this epoch.
        public var test: LinearMetricValues?

        enum CodingKeys: String, CodingKey {
            case epoch
            case learningRate = "lr"
            case train, test
        }

        public init(epoch: Int, learningRate: Double, train: LinearMetricValues, test: LinearMetricValues?) {
            self.epoch = epoch
            self.learningRate = learningRate
            self.train = train
            self.test = test
        }
    }

    public var formatVersion: Int
    public var head: String
    public var headType: LinearResultsDocument.HeadType
    public var layer: String
    /// The run's fingerprint (`linear/<fp>/`).
    public var fingerprint: String
    public var epochs: [Epoch]

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case head
        case headType = "head_type"
        case layer, fingerprint, epochs
    }

    public init(
        formatVersion: Int = Self.currentVersion, head: String, headType: LinearResultsDocument.HeadType,
        layer: String, fingerprint: String, epochs: [Epoch]
    ) {
        self.formatVersion = formatVersion
        self.head = head
        self.headType = headType
        self.layer = layer
        self.fingerprint = fingerprint
        self.epochs = epochs
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try LinearDocumentFile.checkHeader(
            c, format: (.format, Self.format), method: nil, version: .formatVersion,
            supported: Self.supportedVersions)
        formatVersion = try c.decode(Int.self, forKey: .formatVersion)
        head = try c.decode(String.self, forKey: .head)
        headType = try c.decode(LinearResultsDocument.HeadType.self, forKey: .headType)
        layer = try c.decode(String.self, forKey: .layer)
        fingerprint = try c.decode(String.self, forKey: .fingerprint)
        epochs = try c.decode([Epoch].self, forKey: .epochs)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.format, forKey: .format)
        try c.encode(formatVersion, forKey: .formatVersion)
        try c.encode(head, forKey: .head)
        try c.encode(headType, forKey: .headType)
        try c.encode(layer, forKey: .layer)
        try c.encode(fingerprint, forKey: .fingerprint)
        try c.encode(epochs, forKey: .epochs)
    }

    /// Reads and checks a `metrics.json` of train-linear; every failure is one line naming the file.
    public static func read(path: String) throws -> LinearMetricsDocument {
        try LinearDocumentFile.read(
            Self.self, path: path, what: "train-linear per-epoch metrics", format: format, method: nil,
            supported: supportedVersions)
    }

    /// The file's text: pretty-printed, keys sorted, final newline.
    public func text() throws -> String { try LinearDocumentFile.text(self) }

    /// Writes the document atomically (`AtomicFile`).
    public func write(to path: String) throws { try AtomicFile.write(text(), to: path) }
}

/// Metric values of one evaluation, as one flat JSON object: `top_<k>` / `mAP` (× 100, VISSL
/// rounding) by name, the mean loss under `loss`, and for a multi-label test evaluation the
/// per-class AP (× 100) under `AP`. Values that are not finite are nil (JSON null).
public struct LinearMetricValues: Codable, Sendable, Equatable {
    /// `top_<k>` or `mAP` → value (nil: not finite).
    public var values: [String: Double?]
    /// The mean loss (nil when not computed or not finite; then absent from the file).
    public var loss: Double?
    /// Per-class AP × 100 (nil entries: classes without positives), multi-label test evaluations only.
    public var perClassAP: [Double?]?

    public init(values: [String: Double], loss: Double? = nil, perClassAP: [Double?]? = nil) {
        self.values = values.mapValues(Self.finite)
        self.loss = Self.finite(loss)
        self.perClassAP = perClassAP.map { $0.map(Self.finite) }
    }

    /// The value of a metric by name (`top_1`, `mAP`); nil when absent or not finite.
    public subscript(name: String) -> Double? { values[name] ?? nil }

    /// `value` when finite.
    public static func finite(_ value: Double?) -> Double? {
        guard let value, value.isFinite else { return nil }
        return value
    }

    static let lossKey = "loss"
    static let perClassKey = "AP"

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: LinearDocumentFile.Key.self)
        var values: [String: Double?] = [:]
        loss = nil
        perClassAP = nil
        for key in c.allKeys {
            switch key.stringValue {
            case Self.lossKey: loss = try c.decode(Double?.self, forKey: key)
            case Self.perClassKey: perClassAP = try c.decode([Double?].self, forKey: key)
            default: values[key.stringValue] = try c.decode(Double?.self, forKey: key)
            }
        }
        self.values = values
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: LinearDocumentFile.Key.self)
        for (name, value) in values where name != Self.lossKey && name != Self.perClassKey {
            try c.encode(Self.finite(value), forKey: LinearDocumentFile.Key(name))
        }
        try c.encodeIfPresent(Self.finite(loss), forKey: LinearDocumentFile.Key(Self.lossKey))
        try c.encodeIfPresent(perClassAP.map { $0.map(Self.finite) }, forKey: LinearDocumentFile.Key(Self.perClassKey))
    }
}

/// Reading and writing the linear documents: one-line errors naming the file.
enum LinearDocumentFile {
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Why a header check failed (turned into the one-line message by `read`).
    struct HeaderError: Error {
        var message: String
        var code: LinprobeError.Code
    }

    /// Checks `format` (and `method`) and that `format_version` is supported, before anything else.
    static func checkHeader<K: CodingKey>(
        _ c: KeyedDecodingContainer<K>, format: (key: K, value: String),
        method: (key: K, value: String)?, version: K,
        supported: ClosedRange<Int>
    ) throws {
        let found = try? c.decodeIfPresent(String.self, forKey: format.key)
        let foundMethod = method.flatMap { m in try? c.decodeIfPresent(String.self, forKey: m.key) }
        let expected = format.value + (method.map { " with method '\($0.value)'" } ?? "")
        guard found == format.value, method == nil || foundMethod == method?.value else {
            let what = "format '\(found ?? "none")'" + (method == nil ? "" : ", method '\(foundMethod ?? "none")'")
            throw HeaderError(message: "wrong format (\(what); expected \(expected))", code: .corruptInput)
        }
        guard let v = try? c.decode(Int.self, forKey: version) else {
            throw HeaderError(message: "field 'format_version' is missing or not an integer", code: .corruptInput)
        }
        guard supported.contains(v) else {
            throw HeaderError(
                message: "format_version \(v) is not supported (this linprobe reads "
                    + "\(supported.lowerBound) to \(supported.upperBound)); use a linprobe that writes it",
                code: .unsupported)
        }
    }

    static func read<T: Decodable>(
        _ type: T.Type, path: String, what: String, format: String, method: String?,
        supported: ClosedRange<Int>, stage: StageKind = .trainLinear
    ) throws -> T {
        guard FileManager.default.fileExists(atPath: path) else {
            throw LinprobeError(.missingInput, "\(path): missing (\(what)); rerun \(stage.name)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LinprobeError(.io, "\(path): cannot read (\(what))")
        }
        guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            throw LinprobeError(
                .corruptInput, "\(path): not a JSON object (\(what) damaged or truncated); rerun \(stage.name)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let e as HeaderError {
            throw LinprobeError(e.code, "\(path): \(e.message) (\(what))")
        } catch let e as DecodingError {
            throw LinprobeError(.corruptInput, "\(path): \(describe(e)) (\(what)); rerun \(stage.name)")
        }
    }

    /// A decoding failure in words: which field, and what is wrong with it.
    static func describe(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            let keys = (path + (last.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context): return "field '\(field(context.codingPath, key))' is missing"
        case .valueNotFound(_, let context): return "field '\(field(context.codingPath))' is null"
        case .typeMismatch(let type, let context):
            return "field '\(field(context.codingPath))' is not \(type == Double.self ? "a number" : "a \(type)")"
        case .dataCorrupted(let context):
            return "field '\(field(context.codingPath))' has an unexpected value"
        @unknown default: return "unexpected content"
        }
    }

    /// Pretty JSON with sorted keys and a final newline: `JSONValue.prettyText()`'s encoder.
    static func text<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }
}
