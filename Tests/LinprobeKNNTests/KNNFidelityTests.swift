import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeKNN

/// The knn stage against a NumPy transcription of VISSL's `knn_utils.run_knn_at_layer` and DINO's
/// `eval_knn.knn_classifier` (checked there against the same operations in torch), on h5py-written
/// stores (`scripts/make_knn_fixtures.py`, fixtures in `Tests/Fixtures/knn`).
@Suite("kNN fidelity against VISSL / DINO")
struct KNNFidelityTests {
    static let expected: JSONValue = {
        let text = (try? String(contentsOfFile: fixturePath("knn/expected.json"), encoding: .utf8)) ?? "{}"
        return (try? JSONValue.parse(text)) ?? .null
    }()

    static func stores(_ name: String) throws -> (FeatureStoreReader, FeatureStoreReader) {
        (
            try FeatureStoreReader(path: fixturePath("knn/\(name)_train.h5")),
            try FeatureStoreReader(path: fixturePath("knn/\(name)_test.h5"))
        )
    }

    static func settings(_ c: JSONValue, protocolKind: KNNSettings.ProtocolKind) throws -> KNNSettings {
        var s = KNNSettings()
        s.protocolKind = protocolKind
        s.ks = try #require(c["topk"]?.arrayValue).compactMap(\.intValue).map { Int($0) }
        s.temperature = try #require(c["sigma"]?.doubleValue)
        s.l2Normalize = c["l2_norm_feats"] == .bool(true)
        s.threads = 2
        return s
    }

    static func evaluate(
        _ settings: KNNSettings, layer: String, train: FeatureStoreReader, test: FeatureStoreReader
    ) throws -> KNNResultsDocument {
        let tmp = try TemporaryDirectory()
        let stage = try KNNStage(
            train: train, test: test, settings: settings, layers: [layer], pipeline: "fixture",
            layout: WorkdirLayout(tmp.path))
        return try stage.evaluate(layer: layer, progress: ProgressReporter(stage: "knn", mode: .silent))
    }

    @Test("single-label top-1 / top-5 counts equal VISSL's and DINO's", arguments: 0..<6)
    func singleLabel(_ index: Int) throws {
        let cases = try #require(Self.expected["single"]?.arrayValue)
        try #require(cases.count == 6)
        let c = cases[index]
        let kind = KNNSettings.ProtocolKind(rawValue: c["protocol"]?.stringValue ?? "") ?? .vissl
        let layer = try #require(c["layer"]?.stringValue)
        let (train, test) = try Self.stores("single")
        let document = try Self.evaluate(
            try Self.settings(c, protocolKind: kind), layer: layer, train: train, test: test)
        let want = try #require(c["results"]?.arrayValue)
        #expect(document.results.count == want.count)
        for (got, w) in zip(document.results, want) {
            #expect(got.k == Int(w["k"]?.intValue ?? -1))
            #expect(got.correctTop1 == w["correct_top_1"]?.intValue.map { Int($0) }, "k=\(got.k) \(kind) \(layer)")
            #expect(got.correctTop5 == w["correct_top_5"]?.intValue.map { Int($0) }, "k=\(got.k) \(kind) \(layer)")
            #expect(abs((got.top1 ?? -1) - (w["top_1"]?.doubleValue ?? -2)) < 1e-9)
        }
        #expect(document.settings.numClasses == 10)
        #expect(document.metric == .top1)
        #expect(document.value == document.results.first?.top1)
    }

    @Test("multi-label mAP equals the NumPy transcription of Linprobe's definition", arguments: 0..<2)
    func multiLabel(_ index: Int) throws {
        let cases = try #require(Self.expected["multi_label"]?.arrayValue)
        let c = cases[index]
        let (train, test) = try Self.stores("voc")
        let document = try Self.evaluate(
            try Self.settings(c, protocolKind: .vissl), layer: "feat", train: train, test: test)
        #expect(document.metric == .mAP)
        for (got, w) in zip(document.results, try #require(c["results"]?.arrayValue)) {
            #expect(abs((got.mAP ?? -1) - (w["mAP"]?.doubleValue ?? -2)) < 1e-9, "k=\(got.k)")
            let perClass = try #require(w["per_class_ap"]?.arrayValue)
            #expect(got.perClassAP?.count == perClass.count)
            for (a, b) in zip(got.perClassAP ?? [], perClass) {
                #expect(abs((a ?? -1) - (b.doubleValue ?? -1)) < 1e-9)
            }
        }
    }

    @Test("the fixtures' decisions are not closer than float rounding")
    func fixturesHaveMargins() throws {
        for c in try #require(Self.expected["single"]?.arrayValue) {
            for r in try #require(c["results"]?.arrayValue) {
                if let gap = r["min_similarity_gap"]?.doubleValue { #expect(gap > 1e-6) }
                if let gap = r["min_score_gap"]?.doubleValue { #expect(gap > 1e-5) }
            }
        }
    }
}
