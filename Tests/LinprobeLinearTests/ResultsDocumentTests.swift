import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeLinear

/// `results.json` and `metrics.json` through the typed documents: the bytes of the JSONValue writer
/// they replace (apart from `format_version` 2 and `feature_provenance`), v1 files still read, and
/// every damaged file one line naming it.
@Suite("train-linear results and metrics documents")
struct ResultsDocumentTests {
    /// `results.json` as the JSONValue writer before LinearResultsDocument built it (Trainer.writeResults).
    static func legacyResults(
        _ h: LinearHeadResult, settings: LinearSettings, spec: HeadSpec, train: FeatureStoreReader,
        test: FeatureStoreReader, fingerprint: String, provenance: JSONValue
    ) -> JSONValue? {
        let metric = h.metric
        guard let last = h.history.last, let finalTest = last.test else { return nil }
        var metrics = finalTest.mapValues { JSONValue.double($0) }
        if let l = last.testLoss { metrics["loss"] = .double(l) }
        let best = h.history.compactMap { m in m.test?[metric].map { (m.epoch, $0) } }.max { $0.1 < $1.1 }
        var doc: [String: JSONValue] = [
            "format": "linprobe.results", "format_version": 1, "method": "linear", "head": .string(h.name),
            "head_type": .string(spec.kind.rawValue), "layer": .string(h.name),
            "split": .string(test.split.isEmpty ? "test" : test.split),
            "metric": .string(metric), "value": .double(finalTest[metric] ?? .nan), "metrics": .object(metrics),
            "epochs": .int(Int64(h.history.count)), "hyper_parameters": settings.json, "head_spec": spec.json,
            "fingerprint": .string(train.fingerprint), "test_fingerprint": .string(test.fingerprint),
            "results_fingerprint": .string(fingerprint), "provenance": provenance,
        ]
        if let best { doc["best_test"] = ["epoch": .int(Int64(best.0)), "value": .double(best.1)] }
        if let ap = last.testPerClassAP { doc["per_class"] = .array(ap.map { $0.map { .double(100 * $0) } ?? .null }) }
        return .object(doc)
    }

    /// One epoch of `metrics.json` as the JSONValue writer built it (LinearEpochMetrics.json).
    static func legacyEpoch(_ m: LinearEpochMetrics) -> JSONValue {
        var o: [String: JSONValue] = [
            "epoch": .int(Int64(m.epoch)), "lr": .double(m.learningRate),
            "train": .object(m.train.mapValues { .double($0) }.merging(["loss": .double(m.trainLoss)]) { a, _ in a }),
        ]
        if let test = m.test {
            var t = test.mapValues { JSONValue.double($0) }
            if let testLoss = m.testLoss { t["loss"] = .double(testLoss) }
            if let ap = m.testPerClassAP { t["AP"] = .array(ap.map { $0.map { .double(100 * $0) } ?? .null }) }
            o["test"] = .object(t)
        }
        return .object(o)
    }

    static func text(_ path: String) throws -> String {
        String(decoding: try #require(FileManager.default.contents(atPath: path), "\(path) missing"), as: UTF8.self)
    }

    @Test(
        "the files are what the JSONValue writer gave, plus feature_provenance and format_version 2",
        arguments: [false, true])
    func sameBytes(multiLabel: Bool) throws {
        let dir = try TemporaryDirectory()
        let (train, test, settings) = try multiLabel ? Self.multiLabelRun(dir) : Self.singleLabelRun(dir)
        let result = try LinearStage.run(
            train: train, test: test, settings: settings, workdir: dir.file("work"),
            options: LinearRunOptions(threads: 1))
        try #require(result.heads.count == settings.heads.count)
        for (h, spec) in zip(result.heads, settings.heads) {
            let resultsText = try Self.text(h.resultsPath)
            var parsed = try JSONValue.parse(resultsText)
            // Written with JSONValue.prettyText()'s encoder: re-printing the parsed file gives the same bytes.
            #expect(try parsed.prettyText() + "\n" == resultsText)
            guard case .object(var o) = parsed else { Issue.record("results.json is not an object"); continue }
            let provenance = try #require(o["provenance"])
            #expect(o["format_version"] == 2)
            let removed = o.removeValue(forKey: "feature_provenance")
            let features = try #require(removed)
            #expect(features["train"]?["fingerprint"]?.stringValue == train.fingerprint)
            #expect(features["test"]?["rows"]?.intValue == Int64(test.count))
            o["format_version"] = 1
            parsed = .object(o)
            let legacy = try #require(
                Self.legacyResults(
                    h, settings: settings, spec: spec, train: train, test: test,
                    fingerprint: result.fingerprint, provenance: provenance))
            #expect(try parsed.prettyText() == legacy.prettyText())
            #expect((legacy["per_class"] != nil) == multiLabel)

            // The v1 file decodes (no feature_provenance) and encodes back to the same bytes.
            let v1Path = dir.file("v1-\(h.name).json")
            try (legacy.prettyText() + "\n").write(toFile: v1Path, atomically: true, encoding: .utf8)
            let v1 = try LinearResultsDocument.read(path: v1Path)
            #expect(v1.formatVersion == 1 && v1.featureProvenance == nil)
            #expect(try v1.text() == legacy.prettyText() + "\n")

            let metricsText = try Self.text(Paths.join(h.directory, "metrics.json"))
            let metrics = try JSONValue.parse(metricsText)
            #expect(try metrics.prettyText() + "\n" == metricsText)
            let legacyMetrics: JSONValue = [
                "format": "linprobe.linear-metrics", "format_version": 2, "head": .string(h.name),
                "head_type": .string(spec.kind.rawValue), "layer": .string(h.name),
                "fingerprint": .string(result.fingerprint),
                "epochs": .array(h.history.map(Self.legacyEpoch)),
            ]
            #expect(try metrics.prettyText() == legacyMetrics.prettyText())
            let doc = try LinearMetricsDocument.read(path: Paths.join(h.directory, "metrics.json"))
            #expect(doc.epochs.map(LinearEpochMetrics.init(document:)).count == h.history.count)
        }
    }

    static func singleLabelRun(
        _ dir: TemporaryDirectory
    ) throws -> (FeatureStoreReader, FeatureStoreReader, LinearSettings) {
        let train = try TestStores.write(dir.file("train.h5"), rows: 64, seed: 1, split: "train")
        let test = try TestStores.write(dir.file("test.h5"), rows: 24, seed: 2, split: "test")
        return (train, test, try LinearSettings(config: TestStores.config(epochs: 3)))
    }

    static func multiLabelRun(
        _ dir: TemporaryDirectory
    ) throws -> (FeatureStoreReader, FeatureStoreReader, LinearSettings) {
        let train = try FeatureStoreReader(path: fixturePath("linear/multi_train.h5"))
        let test = try FeatureStoreReader(path: fixturePath("linear/multi_test.h5"))
        let ref = try ReferenceRun("run_multilabel")
        var settings = try LinearSettings(config: ref.config, multiLabelStore: true)
        settings.optimizer.numEpochs = 1
        return (train, test, settings)
    }

    @Test("values that are not finite are null, and read back as nil")
    func nonFinite() throws {
        let dir = try TemporaryDirectory()
        let doc = LinearResultsDocument(
            head: "res5", headType: .mlp, layer: "res5", split: "test", metric: .mAP, value: .nan,
            metrics: LinearMetricValues(values: ["mAP": .nan], loss: .infinity), perClass: [50, nil, .nan],
            bestTest: LinearResultsDocument.BestTest(epoch: 1, value: .nan), epochs: 1, hyperParameters: ["seed": 1],
            headSpec: LinearResultsDocument.HeadSpec(name: .mlp, dims: [4, 2], useBN: false, useReLU: false),
            fingerprint: "a", testFingerprint: "b", resultsFingerprint: "c",
            provenance: LinearResultsDocument.Tool(version: "test"), featureProvenance: nil)
        let path = dir.file("results.json")
        try doc.write(to: path)
        let json = try JSONValue.parse(try Self.text(path))
        #expect(json["value"] == .null && json["metrics"]?["mAP"] == .null && json["metrics"]?["loss"] == nil)
        #expect(json["per_class"] == [50, nil, nil])
        let back = try LinearResultsDocument.read(path: path)
        #expect(back == doc)
        #expect(back.value == nil && back.metrics["mAP"] == nil)
    }

    @Test("a missing, truncated, foreign, newer or incomplete file is one line naming it")
    func damagedFiles() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("results.json")
        func failure(_ text: String?) throws -> LinprobeError {
            if let text { try text.write(toFile: path, atomically: true, encoding: .utf8) }
            let error = try #require(throws: LinprobeError.self) { try LinearResultsDocument.read(path: path) }
            #expect(error.message.hasPrefix(path) && !error.message.contains("\n"), "\(error.message)")
            return error
        }
        #expect(try failure(nil).code == .missingInput)
        #expect(try failure("{\"format\": \"linprobe.res").message.contains("not a JSON object"))
        let svm = try failure(#"{"format": "linprobe.svm.results", "format_version": 1, "method": "svm"}"#)
        #expect(svm.message.contains("wrong format") && svm.message.contains("linprobe.svm.results"))
        let newer = try failure(#"{"format": "linprobe.results", "format_version": 3, "method": "linear"}"#)
        #expect(newer.code == .unsupported && newer.message.contains("format_version 3"))
        let partial = try failure(
            #"{"format": "linprobe.results", "format_version": 2, "method": "linear", "head": "x"}"#)
        #expect(partial.code == .corruptInput && partial.message.contains("field 'head_type' is missing"))
        // A metrics.json whose learning rate is not a number: not a results file; read as metrics, the field is named.
        let badMetrics =
            #"{"format": "linprobe.linear-metrics", "format_version": 2, "head": "x", "head_type": "mlp", "#
            + #""layer": "x", "fingerprint": "f", "epochs": [{"epoch": 1, "lr": "fast", "train": {}}]}"#
        #expect(try failure(badMetrics).message.contains("wrong format"))
        try badMetrics.write(toFile: path, atomically: true, encoding: .utf8)
        let metrics = try #require(throws: LinprobeError.self) { try LinearMetricsDocument.read(path: path) }
        #expect(metrics.message.hasPrefix(path) && metrics.message.contains("epochs[0].lr"), "\(metrics.message)")
    }

    @Test("the mean AP of the linear heads ranks tied scores the VOC way (Core's AveragePrecision)")
    func meanAPTieOrder() {
        // Class 0: scores [0.9, 0.4, 0.4, 0.4, 0.1], targets F T F F T → VOC AP 0.4 (see AveragePrecisionTests).
        // Class 1: the only positive row is ignored (−1) → no AP, left out of the mean.
        let scores: [Float] = [0.9, 0.0, 0.4, 0.0, 0.4, 0.7, 0.4, 0.0, 0.1, 0.0]
        let targets: [Int8] = [0, 0, 1, 0, 0, -1, 0, 0, 1, 0]
        let (mAP, perClass) = MeanAP.compute(scores: scores, targets: targets, classes: 2)
        #expect(perClass.count == 2 && perClass[1] == nil)
        #expect(abs((perClass[0] ?? -1) - 0.4) < 1e-7)
        #expect(abs(mAP - 0.4) < 1e-7)
    }
}
