import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeSVM

/// The committed reference data (scripts/make_svm_fixtures.py).
enum Reference {
    static let json: JSONValue = {
        let path = fixturePath("svm/reference.json")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let value = try? JSONValue.parse(text)
        else {
            return .null
        }
        return value
    }()

    static func store(_ name: String) -> String { fixturePath("svm/\(name).h5") }
}

extension JSONValue {
    var doubles: [Double?] { (arrayValue ?? []).map { $0.doubleValue } }
    var ints: [Int] { (arrayValue ?? []).compactMap { $0.intValue.map(Int.init) } }
    var double: Double? { doubleValue }
}

/// VISSL's eleven costs as a configuration.
func visslSettings(_ extra: [String: JSONValue] = [:], linprobe: [String: JSONValue] = [:]) throws -> SVMSettings {
    var svm: [String: JSONValue] = [
        "costs": ["costs_list": [0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0], "base": -1.0]
    ]
    for (k, v) in extra { svm[k] = v }
    let root: JSONValue = ["SVM": .object(svm), "LINPROBE": .object(linprobe), "SEED_VALUE": 0]
    return try SVMSettings(config: ConfigNode(path: "", value: root))
}

/// Writes a small multi- or single-label store with Linprobe's writer (one layer, `feat`).
func writeStore(
    _ path: String, rows: Int, dim: Int, targets: [Int64], multiLabel: Int?, value: (Int, Int) -> Float,
    finish: Bool = true, fingerprint: String = "test-store", views: Int = 1
) throws {
    try writeLayeredStore(
        path, layers: [("feat", dim)], rows: rows, targets: targets, multiLabel: multiLabel,
        value: { _, r, j in value(r, j) }, finish: finish, fingerprint: fingerprint, views: views)
}

/// Writes a store holding `layers` (name, width) in that order; `value(layer, row, column)`.
func writeLayeredStore(
    _ path: String, layers: [(String, Int)], rows: Int, targets: [Int64], multiLabel: Int?,
    value: (Int, Int, Int) -> Float, finish: Bool = true, fingerprint: String = "test-store", views: Int = 1
) throws {
    let layout: TargetLayout = multiLabel.map { .multiLabel(classes: $0) } ?? .singleLabel
    let writer = try FeatureStoreWriter(
        creating: path, layers: layers.map { StoreLayer(name: $0.0, shapeCHW: [$0.1, 1, 1]) }, targetLayout: layout,
        metadata: StoreMetadata(
            fingerprint: fingerprint, split: "train", numClasses: multiLabel ?? 3, classNames: [], trainViews: views),
        chunkRows: 8)
    var features: [[Float]] = []
    for (l, layer) in layers.enumerated() {
        var values: [Float] = []
        for r in 0..<rows { for j in 0..<layer.1 { values.append(value(l, r, j)) } }
        features.append(values)
    }
    try writer.append(
        FeatureBatch(
            count: rows, features: features, targets: targets, indices: (0..<rows).map { Int64($0 / views) },
            imagePaths: (0..<rows).map { "img\($0).png" }))
    if finish { try writer.finish() } else { try writer.flush() }
}

/// `train-svm` through `StageRunner` in the work folder `workdir` (opening the two stores).
func runSVM(
    train: String, test: String, settings: SVMSettings, workdir: String, layers: [String] = [], threads: Int = 2,
    force: Bool = false, notes: Locked<[String]>? = nil
) throws -> StageResult<SVMRunSummary> {
    let layout = WorkdirLayout(workdir)
    let stage = try SVMStage(
        train: try FeatureStoreReader(path: train), test: try FeatureStoreReader(path: test), settings: settings,
        layers: layers, pipeline: "test", layout: layout, threads: threads)
    let runner = StageRunner(layout: layout, force: force, note: { line in notes?.withLock { $0.append(line) } })
    return try runner.execute(stage, progress: ProgressReporter(stage: "train-svm", mode: .silent))
}

/// The results document of the run's only (or first) layer.
func firstResults(_ result: StageResult<SVMRunSummary>) throws -> SVMResultsDocument {
    let layer = try #require(result.outcome.layers.first)
    return try SVMResultsDocument.read(path: layer.resultsPath)
}

extension SVMResultsDocument {
    /// The document without its timings (they differ between runs).
    var withoutTimings: SVMResultsDocument {
        var d = self
        d.provenance.timings = nil
        return d
    }
}
