import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeImport

/// What `scripts/make_import_fixtures.py` says a correct import gives.
enum ImportFixtures {
    static let expected: JSONValue = {
        let text = (try? String(contentsOfFile: fixturePath("import/expected.json"), encoding: .utf8)) ?? "{}"
        return (try? JSONValue.parse(text)) ?? .null
    }()

    static var dump: String { fixturePath("import/vissl") }
    static func format(_ name: String) -> String { fixturePath("import/formats/\(name)") }

    /// Imports `source` as `split` into `workdir`; returns the finished store.
    static func importStore(_ source: ImportSource, split: String, workdir: String) throws -> FeatureStoreReader {
        let layout = WorkdirLayout(workdir)
        let stage = ImportStage(
            split: try ImportSplitPlan(split: split, source: source, layout: layout), layout: layout, pipeline: nil)
        let outcome = try StageRunner(layout: layout).execute(
            stage, progress: ProgressReporter(stage: "import", mode: .silent))
        return try FeatureStoreReader(path: outcome.outcome.storePath)
    }

    /// The store's features, targets and indices against the generator's summary of them.
    static func check(_ store: FeatureStoreReader, against e: JSONValue) throws {
        #expect(store.count == Int(e["rows"]?.intValue ?? -1))
        #expect(try store.indices() == (e["indices"]?.arrayValue ?? []).compactMap(\.intValue))
        #expect(try store.targets().reduce(0, +) == e["targets_sum"]?.intValue)
        for (name, want) in e["layers"]?.objectValue ?? [:] {
            let values: [Double] = try store.readLayer(name).map { Double($0) }
            let dim = try store.layer(name).dim
            let sum: Double = values.reduce(0, +)
            let wantSum: Double = want["sum"]?.doubleValue ?? .nan
            #expect(abs(sum - wantSum) < 1e-6 * max(1, abs(sum)), "\(name)")
            let first: [Double] = (want["first_row"]?.arrayValue ?? []).compactMap(\.doubleValue)
            let last: [Double] = (want["last_row"]?.arrayValue ?? []).compactMap(\.doubleValue)
            #expect(Array(values.prefix(dim)) == first, "\(name)")
            #expect(Array(values.suffix(dim)) == last, "\(name)")
            let shape = (want["shape"]?.arrayValue ?? []).compactMap(\.intValue).map { Int($0) }
            if shape.count == 4 { #expect(try store.layer(name).shapeCHW == Array(shape.dropFirst())) }
        }
    }
}

@Suite struct VISSLDumpTests {
    @Test(
        "VISSL's shards merge by index: padded duplicates dropped, rows ordered, every layer aligned",
        arguments: ["train", "test"])
    func mergesLikeVISSLsLoader(_ split: String) throws {
        let source = try ImportSource.open(
            features: ImportFixtures.dump, labels: nil, split: split, layers: [], singleLayer: "heads")
        let e = try #require(ImportFixtures.expected[split])
        #expect(source.kind == .visslDump)
        #expect(source.layerNames == ["res4", "res5avg"])
        #expect(source.duplicatesDropped == Int(e["duplicates_dropped"]?.intValue ?? -1))
        #expect(source.targetLayout == .multiLabel(classes: 6))
        #expect(source.storeLayers.map(\.shapeCHW) == [[4, 2, 2], [32, 1, 1]])
        let tmp = try TemporaryDirectory()
        let store = try ImportFixtures.importStore(source, split: split, workdir: tmp.path)
        try ImportFixtures.check(store, against: e)
        #expect(store.split == split)
        #expect(store.featureProvenance.datasetName == "vissl")
    }

    @Test("the pool-op map chooses the layers; a layer the dump lacks is one line listing what it holds")
    func layersFollowTheMap() throws {
        let one = try ImportSource.open(
            features: ImportFixtures.dump, labels: nil, split: "train", layers: ["res5avg"], singleLayer: "heads")
        #expect(one.layerNames == ["res5avg"])
        #expect(one.files.count == 18)  // 2 ranks × 3 chunks of one layer, each features, targets and inds
        #expect(throws: LinprobeError.self) {
            _ = try ImportSource.open(
                features: ImportFixtures.dump, labels: nil, split: "train", layers: ["res3"], singleLayer: "heads")
        }
        do {
            _ = try ImportSource.open(
                features: ImportFixtures.dump, labels: nil, split: "train", layers: ["res3"], singleLayer: "heads")
        } catch {
            #expect(oneLine(error).contains("res4, res5avg"), "\(error)")
        }
    }

    @Test("the fingerprint follows the content, not the folder's place")
    func fingerprintFromContent() throws {
        let tmp = try TemporaryDirectory()
        let copy = tmp.file("moved")
        try FileManager.default.copyItem(atPath: ImportFixtures.dump, toPath: copy)
        func plan(_ folder: String) throws -> ImportSplitPlan {
            let source = try ImportSource.open(
                features: folder, labels: nil, split: "train", layers: [], singleLayer: "heads")
            return try ImportSplitPlan(split: "train", source: source, layout: WorkdirLayout(tmp.file("w")))
        }
        let a = try plan(ImportFixtures.dump)
        #expect(try plan(copy).fingerprint == a.fingerprint)
        // One feature value changed: another store.
        let file = Paths.join(copy, "rank1_chunk0_train_res5avg_features.npy")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: file))
        #expect(try plan(copy).fingerprint != a.fingerprint)
    }

    @Test("a shard without its targets or inds, or layers from other rows, is one line naming the file")
    func brokenDumps() throws {
        let tmp = try TemporaryDirectory()
        let copy = tmp.file("dump")
        try FileManager.default.copyItem(atPath: ImportFixtures.dump, toPath: copy)
        try FileManager.default.removeItem(atPath: Paths.join(copy, "rank0_chunk1_train_res4_inds.npy"))
        do {
            _ = try ImportSource.open(features: copy, labels: nil, split: "train", layers: [], singleLayer: "heads")
            Issue.record("a missing inds file was accepted")
        } catch {
            #expect(oneLine(error).contains("rank0_chunk1_train_res4_inds.npy"), "\(error)")
        }
        // A shard's features with a row fewer than its inds (another extraction's file).
        let truncated = tmp.file("truncated")
        try FileManager.default.copyItem(atPath: ImportFixtures.dump, toPath: truncated)
        let name = Paths.join(truncated, "rank1_chunk0_train_res5avg_features.npy")
        try NPYWriter.float32([Float](repeating: 0, count: 23 * 32), shape: [23, 32]).write(
            to: URL(fileURLWithPath: name))
        do {
            _ = try ImportSource.open(
                features: truncated, labels: nil, split: "train", layers: ["res5avg"], singleLayer: "heads")
            Issue.record("a shard with fewer feature rows than inds was accepted")
        } catch {
            #expect(oneLine(error).contains("rank1_chunk0_train_res5avg_features.npy: 23 rows"), "\(error)")
        }
    }
}

@Suite struct ArrayFormatTests {
    static let cases: [(features: String, labels: String?, layers: [String])] = [
        ("arrays.npz", nil, []),
        ("dict.pth", nil, []),
        ("legacy.pth", nil, []),
        ("plain_features.npy", "plain_labels.npy", ["res5avg"]),
        ("trainfeat.pth", "trainlabels.pth", ["res5avg"]),
    ]

    @Test(
        "npz, torch dicts (zip and legacy), .npy and DINO's tensor files import the same arrays",
        arguments: 0..<5)
    func everyFormat(_ index: Int) throws {
        let c = Self.cases[index]
        let source = try ImportSource.open(
            features: ImportFixtures.format(c.features), labels: c.labels.map(ImportFixtures.format), split: "train",
            layers: c.layers, singleLayer: "res5avg")
        let tmp = try TemporaryDirectory()
        let store = try ImportFixtures.importStore(source, split: "train", workdir: tmp.path)
        var e = try #require(ImportFixtures.expected["formats"])
        if c.layers == ["res5avg"] {
            // Bare arrays: one layer, indices 0..<N, no paths.
            e = e.replacing("layers", with: .object(["res5avg": e["layers"]?["res5avg"] ?? .null]))
                .replacing("indices", with: .array((0..<Int64(40)).map { .int($0) }))
        }
        try ImportFixtures.check(store, against: e)
        #expect(store.targetLayout == .singleLabel)
        #expect(store.numClasses == 10)
        if c.labels == nil {
            #expect(try store.imagePaths(rows: 0..<3) == (e["image_paths"]?.arrayValue ?? []).compactMap(\.stringValue))
            #expect(try store.layer("res4").shapeCHW == [2, 2, 2])
        }
    }

    @Test("np.savez_compressed, a bare array without labels and labels of another length are one line each")
    func refusals() throws {
        let bad: [(String, String?, String)] = [
            ("compressed.npz", nil, "np.savez"),
            ("plain_features.npy", nil, "LABELS"),
            ("arrays.npz", "plain_labels.npy", "drop the labels"),
        ]
        for (features, labels, phrase) in bad {
            do {
                _ = try ImportSource.open(
                    features: ImportFixtures.format(features), labels: labels.map(ImportFixtures.format),
                    split: "train",
                    layers: [], singleLayer: "heads")
                Issue.record("\(features) was accepted")
            } catch {
                #expect(oneLine(error).contains(phrase), "\(features): \(error)")
            }
        }
        let tmp = try TemporaryDirectory()
        let short = tmp.file("short.npy")
        try NPYWriter.int64([1, 2, 3], shape: [3]).write(to: URL(fileURLWithPath: short))
        do {
            _ = try ImportSource.open(
                features: ImportFixtures.format("plain_features.npy"), labels: short, split: "train", layers: [],
                singleLayer: "heads")
            Issue.record("3 labels for 40 rows were accepted")
        } catch {
            #expect(oneLine(error).contains("40 rows"), "\(error)")
        }
    }

    @Test("labels outside VOC's 1 / 0 / -1 stop the import before anything is written")
    func badMultiLabelValues() throws {
        let tmp = try TemporaryDirectory()
        let features = tmp.file("f.npy")
        let labels = tmp.file("l.npy")
        try NPYWriter.float32([Float](repeating: 1, count: 8), shape: [4, 2]).write(to: URL(fileURLWithPath: features))
        try NPYWriter.int64([1, 0, 0, 2, -1, 1, 0, 0], shape: [4, 2]).write(to: URL(fileURLWithPath: labels))
        let source = try ImportSource.open(
            features: features, labels: labels, split: "train", layers: [], singleLayer: "heads")
        do {
            _ = try ImportFixtures.importStore(source, split: "train", workdir: tmp.file("w"))
            Issue.record("label 2 in [N, C] labels was accepted")
        } catch {
            #expect(oneLine(error).contains("row 1 column 1 is 2"), "\(error)")
        }
        let leftovers = (FileManager.default.enumerator(atPath: tmp.file("w"))?.allObjects as? [String]) ?? []
        #expect(!leftovers.contains { $0.hasSuffix(".h5") || $0.hasSuffix(".partial") }, "\(leftovers)")
    }
}

@Suite struct ExportRoundTripTests {
    @Test("export → import gives identical features, labels, indices, paths and shapes", arguments: ["npy", "npz"])
    func roundTrip(_ format: String) throws {
        let tmp = try TemporaryDirectory()
        let original = try ImportFixtures.importStore(
            try ImportSource.open(
                features: ImportFixtures.format("arrays.npz"), labels: nil, split: "test", layers: [],
                singleLayer: "heads"),
            split: "test", workdir: tmp.file("a"))
        let out = tmp.file(format == "npz" ? "export.npz" : "export")
        try FeatureExport.export(original, format: FeatureExport.Format(rawValue: format) ?? .npy, to: out)
        let again = try ImportFixtures.importStore(
            try ImportSource.open(features: out, labels: nil, split: "test", layers: [], singleLayer: "heads"),
            split: "test", workdir: tmp.file("b"))
        #expect(again.count == original.count)
        #expect(again.layers.map(\.name) == original.layers.map(\.name))
        for layer in original.layers {
            #expect(try again.readLayer(layer.name) == original.readLayer(layer.name))
            #expect(try again.layer(layer.name).shapeCHW == layer.shapeCHW)
        }
        #expect(try again.targets() == original.targets())
        #expect(try again.indices() == original.indices())
        #expect(try again.imagePaths() == original.imagePaths())
        #expect(again.targetLayout == original.targetLayout)
    }

    @Test("a multi-label VISSL import round-trips too, with a spatial layer kept [N, C, H, W]")
    func multiLabelRoundTrip() throws {
        let tmp = try TemporaryDirectory()
        let original = try ImportFixtures.importStore(
            try ImportSource.open(
                features: ImportFixtures.dump, labels: nil, split: "train", layers: [], singleLayer: "heads"),
            split: "train", workdir: tmp.file("a"))
        try FeatureExport.export(original, format: .npy, to: tmp.file("out"))
        #expect(try NPYFile(path: tmp.file("out/features_res4.npy")).shape == [121, 4, 2, 2])
        #expect(try NPYFile(path: tmp.file("out/targets.npy")).shape == [121, 6])
        let again = try ImportFixtures.importStore(
            try ImportSource.open(
                features: tmp.file("out"), labels: nil, split: "train", layers: [], singleLayer: "heads"),
            split: "train", workdir: tmp.file("b"))
        for layer in original.layers { #expect(try again.readLayer(layer.name) == original.readLayer(layer.name)) }
        #expect(try again.targets() == original.targets())
        #expect(try again.indices() == original.indices())
    }
}

extension JSONValue {
    /// A copy of an object with `key` set to `value`.
    fileprivate func replacing(_ key: String, with value: JSONValue) -> JSONValue {
        var o = objectValue ?? [:]
        o[key] = value
        return .object(o)
    }
}
