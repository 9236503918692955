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
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let value = try? JSONValue.parse(text) else {
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
        "costs": ["costs_list": [0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0], "base": -1.0],
    ]
    for (k, v) in extra { svm[k] = v }
    let root: JSONValue = ["SVM": .object(svm), "LINPROBE": .object(linprobe), "SEED_VALUE": 0]
    return try SVMSettings(config: ConfigNode(path: "", value: root))
}

/// Writes a small multi- or single-label store with Linprobe's writer.
func writeStore(
    _ path: String, rows: Int, dim: Int, targets: [Int64], multiLabel: Int?, value: (Int, Int) -> Float,
    finish: Bool = true, fingerprint: String = "test-store", views: Int = 1
) throws {
    let layout: TargetLayout = multiLabel.map { .multiLabel(classes: $0) } ?? .singleLabel
    let writer = try FeatureStoreWriter(
        creating: path, layers: [StoreLayer(name: "feat", shapeCHW: [dim, 1, 1])], targetLayout: layout,
        metadata: StoreMetadata(fingerprint: fingerprint, split: "train", numClasses: multiLabel ?? 3, classNames: [], trainViews: views),
        chunkRows: 8)
    var features: [Float] = []
    for r in 0..<rows { for j in 0..<dim { features.append(value(r, j)) } }
    try writer.append(FeatureBatch(
        count: rows, features: [features], targets: targets, indices: (0..<rows).map { Int64($0 / views) },
        imagePaths: (0..<rows).map { "img\($0).png" }))
    if finish { try writer.finish() } else { try writer.flush() }
}
