import Foundation

/// `svm/<fp>/<layer>/results.json`, written by `train-svm` for one layer: the VOC07 protocol
/// (`protocol` `voc07`) or a low-shot variant (`voc07_low_shot`, `places205_low_shot`).
///
/// Keys are snake_case; a field a protocol does not produce is absent; a number that is
/// undefined (VISSL's NaN: no positives, CV impossible) is `null` — give `nil`, never a
/// non-finite value (the encoder refuses NaN). `format_version` 2 added `feature_provenance`;
/// version 1 files (without it) still decode.
///
/// Read with `SVMResultsDocument.read(path:)`, write with `write(to:)` (pretty, key-sorted JSON,
/// the same bytes `JSONValue.prettyText()` gives for the same values, plus a final newline).
public struct SVMResultsDocument: Codable, Sendable, Equatable {
    /// The value of `format`.
    public static let format = "linprobe.svm.results"
    /// The version this build writes.
    public static let currentVersion = 2
    /// The versions this build reads.
    public static let supportedVersions = 1...2

    /// Which SVM protocol produced the document.
    public enum ProtocolKind: String, Codable, Sendable, Equatable {
        case voc07
        case voc07LowShot = "voc07_low_shot"
        case places205LowShot = "places205_low_shot"

        public var isLowShot: Bool { self != .voc07 }
    }

    // MARK: Common to every protocol

    public var format: String
    public var formatVersion: Int
    /// Always `svm`.
    public var method: String
    public var protocolKind: ProtocolKind
    /// The stored layer the SVMs were trained on.
    public var layer: String
    /// `mAP` (VOC07), or a sentence naming k and the headline rule (low-shot).
    public var metric: String
    /// The headline number in percent; nil when undefined.
    public var value: Double?
    /// Always `percent`.
    public var unit: String
    /// The costs tried, in order.
    public var costs: [Double]
    public var convergence: Convergence
    /// The `svm/<fp>` fingerprint.
    public var fingerprint: String
    public var features: Features
    /// Provenance of the two stores (trunk, weights, transforms, pool ops, dataset); version ≥ 2.
    public var featureProvenance: FeatureProvenancePair?
    /// The effective SVM settings exactly as fingerprinted (`SVMSettings.fingerprintJSON`).
    public var settings: JSONValue
    public var warnings: [String]
    public var provenance: Provenance

    // MARK: VOC07 protocol only

    public var metricDefinition: String?
    public var metrics: Metrics?
    /// Test AP × 100 per class name (nil: undefined, or the class was skipped).
    public var perClass: [String: Double?]?
    public var perClass11Point: [String: Double?]?
    public var chosenHyperparameters: [String: ChosenCost]?
    public var cvMetric: String?
    public var classes: [ClassRecord]?
    public var models: Models?

    // MARK: Low-shot protocols only

    public var selectionRules: SelectionRules?
    /// `vissl` or `cv`: the rule behind `value`.
    public var headlineRule: String?
    public var kValues: [Int]?
    public var sampleIndices: [Int]?
    public var resultsByK: [LowShotResult]?
    /// Per class name, per `k=<k>`, per sample: the test AP of every cost (nil: no record).
    public var perClassTestAPByK: [String: [String: [[Double?]?]]]?
    /// The recorded draws (`low_shot_samples.json`), relative to the layer folder.
    public var samplesFile: String?

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case method
        case protocolKind = "protocol"
        case layer, metric, value, unit, costs, convergence, fingerprint, features
        case featureProvenance = "feature_provenance"
        case settings, warnings, provenance
        case metricDefinition = "metric_definition"
        case metrics
        case perClass = "per_class"
        case perClass11Point = "per_class_11point"
        case chosenHyperparameters = "chosen_hyperparameters"
        case cvMetric = "cv_metric"
        case classes, models
        case selectionRules = "selection_rules"
        case headlineRule = "headline_rule"
        case kValues = "k_values"
        case sampleIndices = "sample_inds"
        case resultsByK = "results_by_k"
        case perClassTestAPByK = "per_class_test_ap_by_k"
        case samplesFile = "samples_file"
    }

    /// A document of the current version with the fields every protocol has; set the protocol's
    /// own fields afterwards.
    public init(
        protocolKind: ProtocolKind, layer: String, metric: String, value: Double?, costs: [Double],
        convergence: Convergence, fingerprint: String, features: Features,
        featureProvenance: FeatureProvenancePair?, settings: JSONValue, warnings: [String],
        provenance: Provenance
    ) {
        format = Self.format
        formatVersion = Self.currentVersion
        method = "svm"
        unit = "percent"
        self.protocolKind = protocolKind
        self.layer = layer
        self.metric = metric
        self.value = value
        self.costs = costs
        self.convergence = convergence
        self.fingerprint = fingerprint
        self.features = features
        self.featureProvenance = featureProvenance
        self.settings = settings
        self.warnings = warnings
        self.provenance = provenance
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(formatVersion, forKey: .formatVersion)
        try c.encode(method, forKey: .method)
        try c.encode(protocolKind, forKey: .protocolKind)
        try c.encode(layer, forKey: .layer)
        try c.encode(metric, forKey: .metric)
        try c.encode(value, forKey: .value)  // null when undefined
        try c.encode(unit, forKey: .unit)
        try c.encode(costs, forKey: .costs)
        try c.encode(convergence, forKey: .convergence)
        try c.encode(fingerprint, forKey: .fingerprint)
        try c.encode(features, forKey: .features)
        try c.encodeIfPresent(featureProvenance, forKey: .featureProvenance)
        try c.encode(settings, forKey: .settings)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(provenance, forKey: .provenance)
        try c.encodeIfPresent(metricDefinition, forKey: .metricDefinition)
        try c.encodeIfPresent(metrics, forKey: .metrics)
        try c.encodeIfPresent(perClass, forKey: .perClass)
        try c.encodeIfPresent(perClass11Point, forKey: .perClass11Point)
        try c.encodeIfPresent(chosenHyperparameters, forKey: .chosenHyperparameters)
        try c.encodeIfPresent(cvMetric, forKey: .cvMetric)
        try c.encodeIfPresent(classes, forKey: .classes)
        try c.encodeIfPresent(models, forKey: .models)
        try c.encodeIfPresent(selectionRules, forKey: .selectionRules)
        try c.encodeIfPresent(headlineRule, forKey: .headlineRule)
        try c.encodeIfPresent(kValues, forKey: .kValues)
        try c.encodeIfPresent(sampleIndices, forKey: .sampleIndices)
        try c.encodeIfPresent(resultsByK, forKey: .resultsByK)
        try c.encodeIfPresent(perClassTestAPByK, forKey: .perClassTestAPByK)
        try c.encodeIfPresent(samplesFile, forKey: .samplesFile)
    }
}

// MARK: - Nested types

extension SVMResultsDocument {
    /// Fits run (CV and refits) and how many stopped at `max_iter`.
    public struct Convergence: Codable, Sendable, Equatable {
        public var fits: Int
        public var notConverged: Int

        enum CodingKeys: String, CodingKey {
            case fits
            case notConverged = "not_converged"
        }

        public init(fits: Int, notConverged: Int) {
            self.fits = fits
            self.notConverged = notConverged
        }
    }

    /// Where the two stores were, as `features.train` / `features.test`.
    public struct StoreReference: Codable, Sendable, Equatable {
        public var path: String
        public var fingerprint: String
        public var rows: Int

        public init(path: String, fingerprint: String, rows: Int) {
            self.path = path
            self.fingerprint = fingerprint
            self.rows = rows
        }
    }

    public struct Features: Codable, Sendable, Equatable {
        public var train: StoreReference
        public var test: StoreReference

        public init(train: StoreReference, test: StoreReference) {
            self.train = train
            self.test = test
        }
    }

    /// `feature_provenance`: the two stores' provenance as the stage read it.
    public typealias FeatureProvenancePair = LinprobeCore.FeatureProvenancePair

    /// How the numbers were computed: tool, BLAS, kernels, threads, solver layouts, timings.
    public struct Provenance: Codable, Sendable, Equatable {
        public var tool: String
        public var toolVersion: String?
        public var blas: String?
        public var blasCore: String?
        public var vectorKernels: String?
        public var threads: Int?
        /// `gram`, `dense` (or `none` when a low-shot run had nothing left to fit).
        public var solverLayout: String?
        /// VOC07 only: the layout of the refits on every row.
        public var refitLayout: String?
        /// Seconds per phase (`load_and_gram_seconds`, `cross_validation_seconds`, …, `total_seconds`).
        public var timings: [String: Double]?

        enum CodingKeys: String, CodingKey {
            case tool
            case toolVersion = "tool_version"
            case blas
            case blasCore = "blas_core"
            case vectorKernels = "vector_kernels"
            case threads
            case solverLayout = "solver_layout"
            case refitLayout = "refit_layout"
            case timings
        }

        public init(
            tool: String = "linprobe", toolVersion: String?, blas: String?, blasCore: String?,
            vectorKernels: String?, threads: Int?, solverLayout: String? = nil, refitLayout: String? = nil,
            timings: [String: Double]? = nil
        ) {
            self.tool = tool
            self.toolVersion = toolVersion
            self.blas = blas
            self.blasCore = blasCore
            self.vectorKernels = vectorKernels
            self.threads = threads
            self.solverLayout = solverLayout
            self.refitLayout = refitLayout
            self.timings = timings
        }
    }

    /// VOC07 `metrics`: mAP and 11-point mAP × 100 over the classes with test positives.
    public struct Metrics: Codable, Sendable, Equatable {
        public var mAP: Double?
        public var mAP11Point: Double?
        public var classesInMean: Int

        enum CodingKeys: String, CodingKey {
            case mAP
            case mAP11Point = "mAP_11point"
            case classesInMean = "classes_in_mean"
        }

        public init(mAP: Double?, mAP11Point: Double?, classesInMean: Int) {
            self.mAP = mAP
            self.mAP11Point = mAP11Point
            self.classesInMean = classesInMean
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(mAP, forKey: .mAP)
            try c.encode(mAP11Point, forKey: .mAP11Point)
            try c.encode(classesInMean, forKey: .classesInMean)
        }
    }

    /// `chosen_hyperparameters[<class>]`.
    public struct ChosenCost: Codable, Sendable, Equatable {
        public var C: Double

        public init(C: Double) { self.C = C }
    }

    /// `models`: the chosen models of the trained classes (`models.npy`).
    public struct Models: Codable, Sendable, Equatable {
        public var file: String
        public var sha256: String
        /// The class index of each row.
        public var classes: [Int]
        public var layout: String?

        public init(file: String, sha256: String, classes: [Int], layout: String?) {
            self.file = file
            self.sha256 = sha256
            self.classes = classes
            self.layout = layout
        }
    }

    /// `selection_rules` of the low-shot protocols, in words.
    public struct SelectionRules: Codable, Sendable, Equatable {
        public var visslRule: String
        public var cvRule: String

        enum CodingKeys: String, CodingKey {
            case visslRule = "vissl_rule"
            case cvRule = "cv_rule"
        }

        public init(visslRule: String, cvRule: String) {
            self.visslRule = visslRule
            self.cvRule = cvRule
        }
    }
}

// MARK: - VOC07 classes

extension SVMResultsDocument {
    public enum ClassStatus: String, Codable, Sendable, Equatable {
        case trained
        case skipped
    }

    /// One entry of `classes`. A skipped class has index, name, status and reason only; a trained
    /// one has every other field, its test APs null when undefined.
    public struct ClassRecord: Codable, Sendable, Equatable {
        public var index: Int
        public var name: String
        public var status: ClassStatus
        public var reason: String?
        public var trainPositives: Int?
        public var trainNegatives: Int?
        public var trainDifficultAsNegative: Int?
        public var testPositives: Int?
        public var testNegatives: Int?
        public var testDifficultDropped: Int?
        /// Mean CV AP per cost (nil: undefined).
        public var cvAP: [Double?]?
        /// CV AP per cost and fold.
        public var cvAPFolds: [[Double?]]?
        public var chosenCost: Double?
        public var chosenCostIndex: Int?
        public var testAP: Double?
        public var testAP11Point: Double?
        public var fits: [Fit]?

        enum CodingKeys: String, CodingKey {
            case index, name, status, reason
            case trainPositives = "train_positives"
            case trainNegatives = "train_negatives"
            case trainDifficultAsNegative = "train_difficult_as_negative"
            case testPositives = "test_positives"
            case testNegatives = "test_negatives"
            case testDifficultDropped = "test_difficult_dropped"
            case cvAP = "cv_ap"
            case cvAPFolds = "cv_ap_folds"
            case chosenCost = "chosen_cost"
            case chosenCostIndex = "chosen_cost_index"
            case testAP = "test_ap"
            case testAP11Point = "test_ap_11point"
            case fits
        }

        /// A skipped class.
        public init(skipped index: Int, name: String, reason: String) {
            self.index = index
            self.name = name
            status = .skipped
            self.reason = reason
        }

        /// A trained class; set its counts, CV results and fits afterwards.
        public init(trained index: Int, name: String) {
            self.index = index
            self.name = name
            status = .trained
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(name, forKey: .name)
            try c.encode(status, forKey: .status)
            try c.encodeIfPresent(reason, forKey: .reason)
            try c.encodeIfPresent(trainPositives, forKey: .trainPositives)
            try c.encodeIfPresent(trainNegatives, forKey: .trainNegatives)
            try c.encodeIfPresent(trainDifficultAsNegative, forKey: .trainDifficultAsNegative)
            try c.encodeIfPresent(testPositives, forKey: .testPositives)
            try c.encodeIfPresent(testNegatives, forKey: .testNegatives)
            try c.encodeIfPresent(testDifficultDropped, forKey: .testDifficultDropped)
            try c.encodeIfPresent(cvAP, forKey: .cvAP)
            try c.encodeIfPresent(cvAPFolds, forKey: .cvAPFolds)
            try c.encodeIfPresent(chosenCost, forKey: .chosenCost)
            try c.encodeIfPresent(chosenCostIndex, forKey: .chosenCostIndex)
            if status == .trained {
                try c.encode(testAP, forKey: .testAP)  // null when undefined
                try c.encode(testAP11Point, forKey: .testAP11Point)
            }
            try c.encodeIfPresent(fits, forKey: .fits)
        }
    }

    /// The fold of a fit: a CV fold index, or `all` (the refit on every training row).
    public enum FitFold: Codable, Sendable, Equatable {
        case index(Int)
        case all

        public init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) {
                self = .index(i)
            } else if try c.decode(String.self) == "all" {
                self = .all
            } else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a fold index or \"all\"")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .index(let i): try c.encode(i)
            case .all: try c.encode("all")
            }
        }
    }

    /// One fit of a class: a CV fit (`ap` present, null when the fold could not be fit, then with
    /// a `note`) or the refit (`fold` `all`, no `ap`).
    public struct Fit: Codable, Sendable, Equatable {
        public var cost: Double
        public var fold: FitFold
        public var iterations: Int?
        public var converged: Bool?
        public var ap: Double?
        public var note: String?

        public init(
            cost: Double, fold: FitFold, iterations: Int? = nil, converged: Bool? = nil, ap: Double? = nil,
            note: String? = nil
        ) {
            self.cost = cost
            self.fold = fold
            self.iterations = iterations
            self.converged = converged
            self.ap = ap
            self.note = note
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(cost, forKey: .cost)
            try c.encode(fold, forKey: .fold)
            try c.encodeIfPresent(iterations, forKey: .iterations)
            try c.encodeIfPresent(converged, forKey: .converged)
            if case .index = fold {
                try c.encode(ap, forKey: .ap)  // null when the fold could not be fit
            } else {
                try c.encodeIfPresent(ap, forKey: .ap)
            }
            try c.encodeIfPresent(note, forKey: .note)
        }
    }
}

// MARK: - Low-shot results

extension SVMResultsDocument {
    /// Mean, min, max and std (× 100) over samples. `mean` is always written (null when
    /// undefined); `cost` names the cost (per-cost and VISSL-rule entries); `note` says why a
    /// rule is undefined.
    public struct LowShotStatistics: Codable, Sendable, Equatable {
        public var cost: Double?
        public var mean: Double?
        public var min: Double?
        public var max: Double?
        public var std: Double?
        public var note: String?

        public init(
            cost: Double? = nil, mean: Double?, min: Double? = nil, max: Double? = nil, std: Double? = nil,
            note: String? = nil
        ) {
            self.cost = cost
            self.mean = mean
            self.min = min
            self.max = max
            self.std = std
            self.note = note
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(cost, forKey: .cost)
            try c.encode(mean, forKey: .mean)  // null when undefined
            try c.encodeIfPresent(min, forKey: .min)
            try c.encodeIfPresent(max, forKey: .max)
            try c.encodeIfPresent(std, forKey: .std)
            try c.encodeIfPresent(note, forKey: .note)
        }
    }

    /// One entry of `results_by_k`.
    public struct LowShotResult: Codable, Sendable, Equatable {
        public var k: Int
        /// Null when no cost has a mAP on every sample.
        public var visslRule: LowShotStatistics?
        public var cvRule: LowShotStatistics
        public var perCost: [LowShotStatistics]
        /// mAP × 100 per sample and cost (nil: undefined).
        public var perSampleMAP: [[Double?]]

        enum CodingKeys: String, CodingKey {
            case k
            case visslRule = "vissl_rule"
            case cvRule = "cv_rule"
            case perCost = "per_cost"
            case perSampleMAP = "per_sample_map"
        }

        public init(
            k: Int, visslRule: LowShotStatistics?, cvRule: LowShotStatistics, perCost: [LowShotStatistics],
            perSampleMAP: [[Double?]]
        ) {
            self.k = k
            self.visslRule = visslRule
            self.cvRule = cvRule
            self.perCost = perCost
            self.perSampleMAP = perSampleMAP
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(k, forKey: .k)
            try c.encode(visslRule, forKey: .visslRule)  // null when undefined
            try c.encode(cvRule, forKey: .cvRule)
            try c.encode(perCost, forKey: .perCost)
            try c.encode(perSampleMAP, forKey: .perSampleMAP)
        }
    }
}

// MARK: - Reading and writing

extension SVMResultsDocument {
    /// Pretty, key-sorted JSON: the bytes `JSONValue.prettyText()` gives for the same values.
    public func prettyText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(self), as: UTF8.self)
        } catch {
            throw LinprobeError(.numerical, "SVM results of layer '\(layer)': cannot encode (\(oneLine(error)))")
        }
    }

    /// Writes the document atomically (`AtomicFile`), with a final newline.
    public func write(to path: String) throws {
        try AtomicFile.write(try prettyText() + "\n", to: path)
    }

    /// Reads and checks a results document; every error is one line naming the file.
    public static func read(path: String) throws -> SVMResultsDocument {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw LinprobeError(
                .missingInput, "\(path): cannot read the SVM results (\(oneLine(error))); run train-svm")
        }
        return try decode(data, path: path)
    }

    /// Decodes and checks `data` (`path` names it in errors): JSON, `format`, `format_version`,
    /// then every field.
    public static func decode(_ data: Data, path: String) throws -> SVMResultsDocument {
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: data) } catch {
            if (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) == nil {
                throw LinprobeError(.corruptInput, "\(path): not valid JSON; rerun train-svm with --force")
            }
            throw LinprobeError(
                .corruptInput, "\(path): not an SVM results document (no \"format\": \"\(format)\" object)")
        }
        guard header.format == format else {
            throw LinprobeError(
                .corruptInput,
                "\(path): not an SVM results document (format '\(header.format ?? "none")', expected '\(format)')")
        }
        guard let version = header.formatVersion, supportedVersions.contains(version) else {
            let found = header.formatVersion.map(String.init) ?? "missing"
            throw LinprobeError(
                .unsupported,
                "\(path): SVM results format_version \(found) is not supported (this linprobe reads "
                    + "\(supportedVersions.lowerBound)–\(supportedVersions.upperBound)); "
                    + "rerun train-svm with --force")
        }
        do {
            return try JSONDecoder().decode(SVMResultsDocument.self, from: data)
        } catch {
            throw LinprobeError(.corruptInput, "\(path): malformed SVM results (\(describe(error)))")
        }
    }

    /// The fields checked before the document is decoded.
    private struct Header: Decodable {
        var format: String?
        var formatVersion: Int?

        enum CodingKeys: String, CodingKey {
            case format
            case formatVersion = "format_version"
        }
    }

    /// A decoding error as `key.path: what`.
    static func describe(_ error: any Error) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            let text = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.hasPrefix(".") ? String(text.dropFirst()) : (text.isEmpty ? "top level" : text)
        }
        guard let e = error as? DecodingError else { return oneLine(error) }
        switch e {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): missing"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): null where \(type) is required"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return oneLine(error)
        }
    }
}
