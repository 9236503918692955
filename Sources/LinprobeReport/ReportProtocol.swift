import Foundation
import LinprobeCore

/// The protocol block of report.json (`protocol`): for every run of the report, the feature stores,
/// SVM runs and linear runs behind its numbers — preprocessing, pool ops, trunk, weights, solver
/// settings, hyper-parameters, versions — keyed by fingerprint. Free-form parts are copies of what
/// the results documents record.
public struct ReportProtocol: Sendable, Equatable, Codable {
    /// The tool that wrote the report.
    public var report: ReportTool
    /// One block per run label.
    public var runs: [String: RunProtocol]

    public init(report: ReportTool = ReportTool(), runs: [String: RunProtocol] = [:]) {
        self.report = report
        self.runs = runs
    }
}

/// `{"tool": "linprobe", "version": …}`.
public struct ReportTool: Sendable, Equatable, Codable {
    public var tool: String
    public var version: String

    public init(tool: String = "linprobe", version: String = LinprobeVersion.string) {
        self.tool = tool
        self.version = version
    }
}

/// What produced one run's numbers.
public struct RunProtocol: Sendable, Equatable, Codable {
    /// Feature stores by fingerprint.
    public var features: [String: FeaturesProtocol]
    /// SVM runs by results fingerprint (`svm/<fp>`); nil when the run has none.
    public var svm: [String: SVMRunProtocol]?
    /// Linear runs by results fingerprint (`linear/<fp>`); nil when the run has none.
    public var linear: [String: LinearRunProtocol]?
    /// kNN runs by results fingerprint (`knn/<fp>`); nil when the run has none.
    public var knn: [String: KNNRunProtocol]?

    public init(
        features: [String: FeaturesProtocol] = [:], svm: [String: SVMRunProtocol]? = nil,
        linear: [String: LinearRunProtocol]? = nil, knn: [String: KNNRunProtocol]? = nil
    ) {
        self.features = features
        self.svm = svm
        self.linear = linear
        self.knn = knn
    }
}

/// A feature store as the results recorded it (`feature_provenance`).
public struct FeaturesProtocol: Sendable, Equatable, Codable {
    /// False when the results did not record the store's provenance (results format 1), or, in a
    /// report of format 1, when the store was not found (`found: false`).
    public var recorded: Bool
    public var path: String?
    public var split: String?
    public var rows: Int?
    /// The store's own attributes, copied unchanged.
    public var trunk: JSONValue?
    public var weights: JSONValue?
    public var transforms: JSONValue?
    public var poolOps: JSONValue?
    /// The dataset the store was extracted from (listing root, settings, counts).
    public var dataset: JSONValue?
    /// Format 1 reports only: the store's whole `provenance` attribute (kept when merged).
    public var provenance: JSONValue?

    enum CodingKeys: String, CodingKey {
        case recorded, found, path, split, rows, trunk, weights, transforms, dataset, provenance
        case poolOps = "pool_ops"
    }

    public init(
        recorded: Bool, path: String? = nil, split: String? = nil, rows: Int? = nil, trunk: JSONValue? = nil,
        weights: JSONValue? = nil, transforms: JSONValue? = nil, poolOps: JSONValue? = nil,
        dataset: JSONValue? = nil, provenance: JSONValue? = nil
    ) {
        self.recorded = recorded
        self.path = path
        self.split = split
        self.rows = rows
        self.trunk = trunk
        self.weights = weights
        self.transforms = transforms
        self.poolOps = poolOps
        self.dataset = dataset
        self.provenance = provenance
    }

    /// The entry of a store whose provenance the results carry.
    init(_ p: FeatureProvenance) {
        self.init(
            recorded: true, path: p.path, split: p.split, rows: p.rows, trunk: p.trunk, weights: p.weights,
            transforms: p.transforms, poolOps: p.poolOps, dataset: p.dataset,
            provenance: p.writtenBy.map { ["tool": .string($0)] })
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let found = try c.decodeIfPresent(Bool.self, forKey: .found) ?? true
        recorded = try c.decodeIfPresent(Bool.self, forKey: .recorded) ?? found
        path = try c.decodeIfPresent(String.self, forKey: .path)
        split = try c.decodeIfPresent(String.self, forKey: .split)
        rows = try c.decodeIfPresent(Int.self, forKey: .rows)
        trunk = try c.decodeIfPresent(JSONValue.self, forKey: .trunk)
        weights = try c.decodeIfPresent(JSONValue.self, forKey: .weights)
        transforms = try c.decodeIfPresent(JSONValue.self, forKey: .transforms)
        poolOps = try c.decodeIfPresent(JSONValue.self, forKey: .poolOps)
        dataset = try c.decodeIfPresent(JSONValue.self, forKey: .dataset)
        provenance = try c.decodeIfPresent(JSONValue.self, forKey: .provenance)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(recorded, forKey: .recorded)
        try c.encodeIfPresent(path, forKey: .path)
        try c.encodeIfPresent(split, forKey: .split)
        try c.encodeIfPresent(rows, forKey: .rows)
        try c.encodeIfPresent(trunk, forKey: .trunk)
        try c.encodeIfPresent(weights, forKey: .weights)
        try c.encodeIfPresent(transforms, forKey: .transforms)
        try c.encodeIfPresent(poolOps, forKey: .poolOps)
        try c.encodeIfPresent(dataset, forKey: .dataset)
        try c.encodeIfPresent(provenance, forKey: .provenance)
    }
}

/// One SVM run (`svm/<fp>`): its protocol, costs and solver settings, and its layers.
public struct SVMRunProtocol: Sendable, Equatable, Codable {
    public var protocolName: String?
    public var metricDefinition: String?
    public var cvMetric: String?
    public var costs: [Double]?
    /// The SVM settings exactly as the results record them.
    public var settings: JSONValue?
    public var selectionRules: SVMResultsDocument.SelectionRules?
    public var headlineRule: String?
    public var kValues: [Int]?
    public var sampleInds: [Int]?
    /// The results' provenance without timings (tool version, BLAS, threads, solver layouts).
    public var provenance: SVMResultsDocument.Provenance?
    public var trainFeatures: String
    public var testFeatures: String
    public var layers: [String: SVMLayerProtocol]

    enum CodingKeys: String, CodingKey {
        case protocolName = "protocol"
        case metricDefinition = "metric_definition"
        case cvMetric = "cv_metric"
        case costs, settings
        case selectionRules = "selection_rules"
        case headlineRule = "headline_rule"
        case kValues = "k_values"
        case sampleInds = "sample_inds"
        case provenance
        case trainFeatures = "train_features"
        case testFeatures = "test_features"
        case layers
    }

    public init(
        protocolName: String? = nil, metricDefinition: String? = nil, cvMetric: String? = nil, costs: [Double]? = nil,
        settings: JSONValue? = nil, selectionRules: SVMResultsDocument.SelectionRules? = nil,
        headlineRule: String? = nil, kValues: [Int]? = nil, sampleInds: [Int]? = nil,
        provenance: SVMResultsDocument.Provenance? = nil, trainFeatures: String,
        testFeatures: String, layers: [String: SVMLayerProtocol] = [:]
    ) {
        self.protocolName = protocolName
        self.metricDefinition = metricDefinition
        self.cvMetric = cvMetric
        self.costs = costs
        self.settings = settings
        self.selectionRules = selectionRules
        self.headlineRule = headlineRule
        self.kValues = kValues
        self.sampleInds = sampleInds
        self.provenance = provenance
        self.trainFeatures = trainFeatures
        self.testFeatures = testFeatures
        self.layers = layers
    }
}

/// One layer of an SVM run.
public struct SVMLayerProtocol: Sendable, Equatable, Codable {
    /// The layer's results.json.
    public var results: String
    public var convergence: SVMResultsDocument.Convergence?
    public var classesInMean: Int?

    enum CodingKeys: String, CodingKey {
        case results, convergence
        case classesInMean = "classes_in_mean"
    }

    public init(results: String, convergence: SVMResultsDocument.Convergence? = nil, classesInMean: Int? = nil) {
        self.results = results
        self.convergence = convergence
        self.classesInMean = classesInMean
    }
}

/// One linear run (`linear/<fp>`): its hyper-parameters and its heads.
public struct LinearRunProtocol: Sendable, Equatable, Codable {
    /// The effective train-linear settings exactly as the results record them.
    public var hyperParameters: JSONValue?
    public var provenance: LinearResultsDocument.Tool?
    public var trainFeatures: String
    public var testFeatures: String
    public var heads: [String: LinearHeadProtocol]

    enum CodingKeys: String, CodingKey {
        case hyperParameters = "hyper_parameters"
        case provenance
        case trainFeatures = "train_features"
        case testFeatures = "test_features"
        case heads
    }

    public init(
        hyperParameters: JSONValue? = nil, provenance: LinearResultsDocument.Tool? = nil, trainFeatures: String,
        testFeatures: String, heads: [String: LinearHeadProtocol] = [:]
    ) {
        self.hyperParameters = hyperParameters
        self.provenance = provenance
        self.trainFeatures = trainFeatures
        self.testFeatures = testFeatures
        self.heads = heads
    }
}

/// One head of a linear run.
public struct LinearHeadProtocol: Sendable, Equatable, Codable {
    /// The head's results.json.
    public var results: String
    /// The tap it reads.
    public var layer: String
    public var headType: LinearResultsDocument.HeadType?
    public var headSpec: LinearResultsDocument.HeadSpec?
    public var epochs: Int?
    public var bestTest: LinearResultsDocument.BestTest?

    enum CodingKeys: String, CodingKey {
        case results, layer, epochs
        case headType = "head_type"
        case headSpec = "head_spec"
        case bestTest = "best_test"
    }

    public init(
        results: String, layer: String, headType: LinearResultsDocument.HeadType? = nil,
        headSpec: LinearResultsDocument.HeadSpec? = nil, epochs: Int? = nil,
        bestTest: LinearResultsDocument.BestTest? = nil
    ) {
        self.results = results
        self.layer = layer
        self.headType = headType
        self.headSpec = headSpec
        self.epochs = epochs
        self.bestTest = bestTest
    }
}

/// One kNN run (`knn/<fp>`): its protocol and settings, and its layers.
public struct KNNRunProtocol: Sendable, Equatable, Codable {
    /// `vissl` or `dino`.
    public var protocolName: String
    public var settings: KNNResultsDocument.Settings
    /// The results' provenance without timings (tool version, BLAS, threads).
    public var provenance: KNNResultsDocument.Tool
    public var trainFeatures: String
    public var testFeatures: String
    public var layers: [String: KNNLayerProtocol]

    enum CodingKeys: String, CodingKey {
        case protocolName = "protocol"
        case settings, provenance
        case trainFeatures = "train_features"
        case testFeatures = "test_features"
        case layers
    }

    public init(
        protocolName: String, settings: KNNResultsDocument.Settings, provenance: KNNResultsDocument.Tool,
        trainFeatures: String, testFeatures: String, layers: [String: KNNLayerProtocol] = [:]
    ) {
        self.protocolName = protocolName
        self.settings = settings
        self.provenance = provenance
        self.trainFeatures = trainFeatures
        self.testFeatures = testFeatures
        self.layers = layers
    }
}

/// One layer of a kNN run.
public struct KNNLayerProtocol: Sendable, Equatable, Codable {
    /// The layer's results.json.
    public var results: String

    public init(results: String) { self.results = results }
}
