import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeReport

// The JSON Schemas in `schemas/` checked against the Swift types, in both directions: a
// fully-populated instance (every optional set, checked by reflection) validates against its
// schema and emits only keys the schema declares; and every property the schema declares is
// emitted by one of the instances, so a schema field with no type behind it fails.

/// JSON of an encodable value, as the documents are written.
private func json<T: Encodable>(_ value: T) throws -> JSONValue {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return try JSONDecoder().decode(JSONValue.self, from: encoder.encode(value))
}

/// Paths of optional stored properties that are nil in every one of `values` (`.a.b[].c`).
private func unsetOptionals(_ values: [Any]) -> [String] {
    var seen: [String: Bool] = [:]
    for value in values { collectOptionals(value, path: "", into: &seen) }
    return seen.filter { !$0.value }.keys.sorted()
}

private func collectOptionals(_ value: Any, path: String, into seen: inout [String: Bool]) {
    let mirror = Mirror(reflecting: value)
    switch mirror.displayStyle {
    case .optional:
        if let wrapped = mirror.children.first?.value {
            seen[path] = true
            collectOptionals(wrapped, path: path, into: &seen)
        } else if seen[path] == nil {
            seen[path] = false
        }
    case .struct, .class:
        for child in mirror.children {
            collectOptionals(child.value, path: "\(path).\(child.label ?? "?")", into: &seen)
        }
    case .collection, .set:
        for child in mirror.children { collectOptionals(child.value, path: "\(path)[]", into: &seen) }
    case .dictionary:
        for child in mirror.children {
            if let entry = Mirror(reflecting: child.value).children.dropFirst().first?.value {
                collectOptionals(entry, path: "\(path){}", into: &seen)
            }
        }
    default:
        return
    }
}

// MARK: - Fully-populated instances

private func provenance(_ fingerprint: String, split: String) -> FeatureProvenance {
    FeatureProvenance(
        fingerprint: fingerprint, path: "/w/features/\(fingerprint)/\(split).h5", split: split, rows: 10,
        trunk: ["NAME": "resnet", "DEPTH": 50],
        weights: ["path": "/m/rn50.torch", "sha256": "ab12", "init": "checkpoint"],
        transforms: [["name": "ToTensor"]], poolOps: [["res4", ["AvgPool2d", [[8, 8], 3, 0]]]],
        dataset: ["root": "/data/voc", "settings": ["data_paths": ["/data/voc"]]], writtenBy: "linprobe 0.1.0")
}

private func svmCommon(_ kind: SVMResultsDocument.ProtocolKind) -> SVMResultsDocument {
    SVMResultsDocument(
        protocolKind: kind, layer: "res4", metric: "mAP", value: 71.5, costs: [0.1, 1],
        convergence: .init(fits: 12, notConverged: 1), fingerprint: "svmfp",
        features: .init(
            train: .init(path: "/w/features/a/train.h5", fingerprint: "a", rows: 10),
            test: .init(path: "/w/features/b/test.h5", fingerprint: "b", rows: 8)),
        featureProvenance: .init(train: provenance("a", split: "train"), test: provenance("b", split: "test")),
        settings: ["cross_val_folds": 3, "normalize": true], warnings: ["1 of 12 fits stopped at max_iter"],
        provenance: .init(
            toolVersion: "0.2.0", blas: "OpenBLAS", blasCore: "Haswell", vectorKernels: "avx2", threads: 2,
            solverLayout: "gram", refitLayout: "gram", timings: ["total_seconds": 1.5]))
}

private func svmStandard() -> SVMResultsDocument {
    var doc = svmCommon(.voc07)
    doc.metricDefinition = "mean over classes of VISSL's all-points AP"
    doc.metrics = .init(mAP: 71.5, mAP11Point: 70.25, classesInMean: 1)
    doc.perClass = ["cat": 71.5, "dog": nil]
    doc.perClass11Point = ["cat": 70.25, "dog": nil]
    doc.chosenHyperparameters = ["cat": .init(C: 0.1)]
    doc.cvMetric = "scikit-learn average_precision"
    var trained = SVMResultsDocument.ClassRecord(trained: 0, name: "cat")
    trained.reason = "every field set"
    trained.trainPositives = 4
    trained.trainNegatives = 6
    trained.trainDifficultAsNegative = 1
    trained.testPositives = 3
    trained.testNegatives = 5
    trained.testDifficultDropped = 0
    trained.cvAP = [0.5, nil]
    trained.cvAPFolds = [[0.5, 0.5], [nil, 0.25]]
    trained.chosenCost = 0.1
    trained.chosenCostIndex = 0
    trained.testAP = 0.715
    trained.testAP11Point = 0.7025
    trained.fits = [
        .init(cost: 0.1, fold: .index(0), iterations: 12, converged: true, ap: 0.5, note: "fold 0"),
        .init(cost: 0.1, fold: .all, iterations: 20, converged: false),
    ]
    doc.classes = [trained, .init(skipped: 1, name: "dog", reason: "no positives")]
    doc.models = .init(file: "models.npy", sha256: "cd34", classes: [0], layout: "row per class")
    return doc
}

private func svmLowShot() -> SVMResultsDocument {
    var doc = svmCommon(.voc07LowShot)
    doc.selectionRules = .init(visslRule: "best mean test mAP", cvRule: "per class by CV")
    doc.headlineRule = "vissl"
    doc.kValues = [1, 2]
    doc.sampleIndices = [1, 2]
    let stats = SVMResultsDocument.LowShotStatistics(
        cost: 0.1, mean: 50, min: 40, max: 60, std: 5, note: "undefined at k=1")
    doc.resultsByK = [
        .init(k: 1, visslRule: stats, cvRule: stats, perCost: [stats], perSampleMAP: [[50, nil]]),
        .init(k: 2, visslRule: nil, cvRule: .init(mean: nil), perCost: [], perSampleMAP: []),
    ]
    doc.perClassTestAPByK = ["cat": ["k=1": [[0.5, nil], nil]]]
    doc.samplesFile = "low_shot_samples.json"
    return doc
}

private func linear() -> LinearResultsDocument {
    LinearResultsDocument(
        head: "res4", headType: .mlp, layer: "res4", split: "test", metric: .mAP, value: 50.25,
        metrics: LinearMetricValues(values: ["mAP": 50.25, "top_5": 80], loss: 1.5, perClassAP: [50, nil]),
        perClass: [50.5, nil], bestTest: .init(epoch: 3, value: 51), epochs: 4,
        hyperParameters: ["batch_size": 32, "lr": ["name": "constant", "value": 0.1]],
        headSpec: .init(
            name: .mlp, dims: [8, 4], useBN: true, useReLU: false, inChannels: 8, useDropout: false,
            useBias: true, skipLastLayerReLUBN: false),
        fingerprint: "a", testFingerprint: "b", resultsFingerprint: "linfp",
        provenance: .init(version: "0.2.0", blas: "OpenBLAS", blasCore: "Haswell", threads: 2),
        featureProvenance: .init(train: provenance("a", split: "train"), test: provenance("b", split: "test")))
}

private func knn(_ metric: KNNResultsDocument.Metric) -> KNNResultsDocument {
    let results: [KNNResultsDocument.KResult] =
        metric == .mAP
        ? [.init(k: 20, mAP: 61.5, perClassAP: [60, nil, 63])]
        : [.init(k: 20, top1: 70.5, top5: 90, correctTop1: 141, correctTop5: 180)]
    return KNNResultsDocument(
        layer: "res5avg", split: "test", protocolKind: metric == .mAP ? .vissl : .dino, metric: metric,
        results: results, testRows: 200, trainRows: 500,
        settings: .init(topk: [20], temperature: 0.07, l2Normalize: true, numClasses: 10, vote: "exp"),
        fingerprint: "knnfp",
        features: .init(
            train: .init(path: "/w/features/a/train.h5", fingerprint: "a", rows: 500),
            test: .init(path: "/w/features/b/test.h5", fingerprint: "b", rows: 200)),
        featureProvenance: .init(train: provenance("a", split: "train"), test: provenance("b", split: "test")),
        provenance: .init(
            version: "0.2.0", blas: "OpenBLAS", blasCore: "Haswell", threads: 2, seconds: 1.5,
            similaritiesPerSecond: 1e9))
}

private func report() -> ReportDocument {
    let svm = svmStandard()
    let head = linear()
    let features = FeaturesProtocol(
        recorded: true, path: "/w/features/a/train.h5", split: "train", rows: 10, trunk: ["NAME": "resnet"],
        weights: ["path": "/m/rn50.torch"], transforms: [["name": "ToTensor"]], poolOps: [["res4", ["Identity", []]]],
        dataset: ["root": "/data/voc"], provenance: ["tool": "linprobe 0.1.0"])
    let block = RunProtocol(
        features: ["a": features],
        svm: [
            "svmfp": SVMRunProtocol(
                protocolName: "voc07", metricDefinition: svm.metricDefinition, cvMetric: svm.cvMetric, costs: svm.costs,
                settings: svm.settings, selectionRules: .init(visslRule: "v", cvRule: "c"), headlineRule: "vissl",
                kValues: [1], sampleInds: [1], provenance: svm.provenance, trainFeatures: "a", testFeatures: "b",
                layers: [
                    "res4": SVMLayerProtocol(
                        results: "/w/svm/svmfp/res4/results.json", convergence: svm.convergence,
                        classesInMean: 1)
                ])
        ],
        linear: [
            "linfp": LinearRunProtocol(
                hyperParameters: head.hyperParameters, provenance: head.provenance, trainFeatures: "a",
                testFeatures: "b",
                heads: [
                    "res4": LinearHeadProtocol(
                        results: "/w/linear/linfp/res4/results.json", layer: "res4", headType: .mlp,
                        headSpec: head.headSpec,
                        epochs: 4, bestTest: head.bestTest)
                ])
        ],
        knn: [
            "knnfp": KNNRunProtocol(
                protocolName: "dino", settings: knn(.top1).settings, provenance: knn(.top1).provenance,
                trainFeatures: "a", testFeatures: "b",
                layers: ["res5avg": KNNLayerProtocol(results: "/w/knn/knnfp/res5avg/results.json")])
        ])
    let row = ReportRow(
        run: "r", dataset: "voc", split: "test", layer: "res4", method: "svm", metric: "mAP", value: 71.5,
        fingerprint: "svmfp", hyperparameters: "C 0.1 ×1 of 2 costs")
    let chart = ReportChart(
        title: "mAP per layer", dataset: "voc", xLabel: "layer", yLabel: "mAP (%)", logX: false,
        categories: ["res4"], series: [.init(name: "svm", points: [.init(0, 71.5)])],
        id: "layers/mAP", run: "r")
    return ReportDocument(
        title: "t", rows: [row], charts: [chart], protocolInfo: ReportProtocol(runs: ["r": block]),
        notes: ["a note"])
}

// MARK: - Tests

@Suite struct DocumentSchemaTests {
    /// Checks instances of one schema definition both ways; returns nothing, records issues.
    private func check(_ instances: [JSONValue], schemaFile: String, definition: String?) throws {
        let validator = try SchemaValidator(schemaPath: schemaPath(schemaFile))
        let coverage = try SchemaCoverage(schemaPath: schemaPath(schemaFile))
        let schema = definition.map(coverage.at) ?? coverage.document
        var reached = Set<String>()
        for instance in instances {
            #expect(validator.validate(instance) == [], "\(schemaFile): instance does not validate")
            #expect(
                coverage.undeclared(instance, schema: schema) == [], "\(schemaFile): keys the schema does not declare")
            reached.formUnion(coverage.reached(instance, schema: schema))
        }
        let unbacked = coverage.declared(schema).subtracting(reached).sorted()
        #expect(unbacked == [], "\(schemaFile) \(definition ?? ""): declared, but no instance of the type emits it")
    }

    @Test func svmResultsAndTheirSchema() throws {
        let documents = [svmStandard(), svmLowShot()]
        #expect(unsetOptionals(documents) == [], "fixtures must set every optional property")
        try check(documents.map(json), schemaFile: "results.schema.json", definition: "#/$defs/svm")
    }

    @Test func linearResultsAndTheirSchema() throws {
        let document = linear()
        #expect(unsetOptionals([document]) == [], "fixtures must set every optional property")
        try check([try json(document)], schemaFile: "results.schema.json", definition: "#/$defs/linear")
    }

    @Test func knnResultsAndTheirSchema() throws {
        let documents = [knn(.top1), knn(.mAP)]
        #expect(unsetOptionals(documents) == [], "fixtures must set every optional property")
        try check(documents.map(json), schemaFile: "results.schema.json", definition: "#/$defs/knn")
        // And back: the decoder reads what the encoder wrote.
        for document in documents {
            let text = try document.text()
            let decoded = try JSONDecoder().decode(KNNResultsDocument.self, from: Data(text.utf8))
            #expect(decoded == document)
        }
    }

    @Test func reportAndItsSchema() throws {
        let document = report()
        #expect(unsetOptionals([document]) == [], "fixtures must set every optional property")
        try check([try json(document)], schemaFile: "report.schema.json", definition: nil)
    }

    @Test func documentsOfFormatVersion1StillValidate() throws {
        let results = try SchemaValidator(schemaPath: schemaPath("results.schema.json"))
        let files = try ResultsLoader.resultFiles(in: [
            reportFixture("v1/workdir/svm"), reportFixture("v1/workdir/linear"),
        ])
        #expect(files.count == 6)
        for file in files {
            let instance = try JSONValue.parse(String(contentsOfFile: file, encoding: .utf8))
            #expect(instance["format_version"] == 1)
            #expect(results.validate(instance) == [], "\(file)")
        }
        let report = try JSONValue.parse(String(contentsOfFile: reportFixture("v1/report.json"), encoding: .utf8))
        #expect(try SchemaValidator(schemaPath: schemaPath("report.schema.json")).validate(report) == [])
    }

    /// The comparison sees a key the schema lacks and a property no instance emits.
    @Test func theCoverageCheckFindsBothKindsOfDrift() throws {
        let coverage = SchemaCoverage(document: [
            "type": "object", "additionalProperties": false,
            "properties": [
                "a": ["type": "integer"], "old": ["type": "integer", "deprecated": true],
                "m": [
                    "type": "object",
                    "additionalProperties": [
                        "type": "object", "additionalProperties": false,
                        "properties": ["x": ["type": "integer"]],
                    ],
                ],
                "free": ["additionalProperties": true], "closed": ["type": "object"],
            ],
        ])
        let instance: JSONValue = [
            "a": 1, "extra": 2, "m": ["k": ["x": 1, "y": 2]], "free": ["z": 1], "closed": ["q": 1],
        ]
        #expect(
            coverage.undeclared(instance, schema: coverage.document).sorted() == [
                "$.closed: an object whose schema declares no properties (say additionalProperties: true)",
                "$.extra: not declared in the schema", "$.m{}.y: not declared in the schema",
            ])
        #expect(coverage.declared(coverage.document) == ["a", "m", "m{}.x", "free", "closed"])
        #expect(coverage.reached(["a": 1], schema: coverage.document) == ["a"])
    }
}
