import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeLinear

/// Head *i* trains on the layer named by entry *i* of the pool-op map, whatever the store's layer
/// order, and a store may hold more layers than the heads use.
@Suite("train-linear pairs heads with pool-map taps by name")
struct PairingTests {
    static let avg = StoreLayer(name: "avg", shapeCHW: [8, 1, 1])
    static let grid = StoreLayer(name: "grid", shapeCHW: [5, 2, 2])
    static let extra = StoreLayer(name: "extra", shapeCHW: [4, 1, 1])

    /// A store holding `layers` in the given order. Labels depend on `seed` only, and each layer's
    /// values on (`seed`, layer name, row) only, so a layer holds the same rows in every store.
    static func store(
        _ path: String, layers: [StoreLayer], rows: Int, seed: UInt64, split: String
    ) throws
        -> FeatureStoreReader
    {
        let classes = 4
        var labelRNG = SeededGenerator(seed: seed)
        let targets = (0..<rows).map { _ in Int64(Int.random(in: 0..<classes, using: &labelRNG)) }
        let features = layers.map { layer -> [Float] in
            let salt = layer.name.unicodeScalars.reduce(UInt64(7)) { $0 &* 31 &+ UInt64($1.value) }
            var rng = SeededGenerator(seed: seed &* 1_000_003 &+ salt)
            var values: [Float] = []
            for r in 0..<rows {
                for j in 0..<layer.dim {
                    let signal: Float = (j % classes) == Int(targets[r]) ? 1.5 : 0
                    values.append(signal + Float.random(in: -1...1, using: &rng))
                }
            }
            return values
        }
        let writer = try FeatureStoreWriter(
            creating: path, layers: layers, targetLayout: .singleLabel,
            metadata: StoreMetadata(
                fingerprint: "pairing-\(split)-\(layers.map(\.name).joined(separator: "-"))", split: split,
                numClasses: classes, classNames: (0..<classes).map { "c\($0)" }),
            chunkRows: 16)
        try writer.append(
            FeatureBatch(
                count: rows, features: features, targets: targets, indices: (0..<Int64(rows)).map { $0 },
                imagePaths: (0..<rows).map { "img\($0).png" }))
        try writer.finish()
        return try FeatureStoreReader(path: path)
    }

    /// A pipeline whose pool-op map lists `taps` (grid, then avg by default), with an eval_mlp head
    /// for `grid` and an mlp head for `avg`.
    static func pipeline(taps: [String] = ["grid", "avg"], heads: JSONValue? = nil) throws -> PipelineConfig {
        let ops: [String: JSONValue] = [
            "grid": ["AvgPool2d", [[1, 1], 1, 0]], "avg": ["Identity", []],
            "extra": ["Identity", []],
        ]
        var root: JSONValue =
            TestStores.config(
                heads: heads ?? [
                    ["eval_mlp", ["in_channels": 5, "dims": [20, 4]]],
                    ["mlp", ["dims": [8, 4]]],
                ]
            ).value ?? .null
        if case .object(var o) = root, case .object(var model)? = o["MODEL"] {
            model["FEATURE_EVAL_SETTINGS"] = [
                "LINEAR_EVAL_FEAT_POOL_OPS_MAP": .array(
                    taps.map { .array([.string($0), ops[$0] ?? ["Identity", []]]) })
            ]
            o["MODEL"] = .object(model)
            root = .object(o)
        }
        return try PipelineConfig.load(text: try root.prettyText(), source: "pairing.yaml", name: "pairing")
    }

    @Test("a store in another order with an extra layer: head 0 reads grid, head 1 avg, as on a store of just those")
    func mapOrderWins() throws {
        let dir = try TemporaryDirectory()
        let config = try Self.pipeline()
        let taps = try FeatureLayers.names(config: config)
        #expect(taps == ["grid", "avg"])
        let settings = try LinearSettings(config: config.root)
        let options = LinearRunOptions(threads: 1)

        let wide = [Self.avg, Self.grid, Self.extra]
        let train = try Self.store(dir.file("wide-train.h5"), layers: wide, rows: 120, seed: 1, split: "train")
        let test = try Self.store(dir.file("wide-test.h5"), layers: wide, rows: 48, seed: 2, split: "test")
        let stage = try LinearStage(
            train: train, test: test, settings: settings, taps: taps, pipeline: config.name,
            layout: WorkdirLayout(dir.file("wide")), options: options)
        #expect(stage.layers.map(\.name) == ["grid", "avg"])
        let fingerprintLayers = LinearStage.fingerprintJSON(
            train: train, test: test, settings: settings, layers: stage.layers)["layers"]
        #expect(fingerprintLayers == ["grid", "avg"])
        let result = try stage.fit()

        let narrow = [Self.grid, Self.avg]
        let train2 = try Self.store(dir.file("narrow-train.h5"), layers: narrow, rows: 120, seed: 1, split: "train")
        let test2 = try Self.store(dir.file("narrow-test.h5"), layers: narrow, rows: 48, seed: 2, split: "test")
        let reference = try LinearStage.run(
            train: train2, test: test2, settings: settings, workdir: dir.file("narrow"),
            options: options)

        #expect(result.complete && reference.complete)
        #expect(result.heads.map(\.name) == ["grid", "avg"])
        #expect(result.heads.map(\.kind) == [.evalMLP, .mlp])
        try #require(result.heads.count == reference.heads.count)
        for (a, b) in zip(result.heads, reference.heads) {
            #expect(a.name == b.name && a.layer == b.layer)
            #expect(a.history == b.history, "head \(a.name): same numbers as on a store of just the map's taps")
            #expect(a.value > 40, "head \(a.name) learns (top-1 \(a.value))")
            let doc = try LinearResultsDocument.read(path: a.resultsPath)
            #expect(doc.layer == a.name && doc.head == a.name)
        }
        let first = try LinearResultsDocument.read(path: result.heads[0].resultsPath)
        #expect(first.headType == .evalMLP && first.headSpec.dims == [20, 4])
    }

    @Test("a map naming a tap the store lacks is one line naming it and listing the store's layers")
    func missingTap() throws {
        let dir = try TemporaryDirectory()
        let layers = [Self.avg, Self.grid, Self.extra]
        let train = try Self.store(dir.file("train.h5"), layers: layers, rows: 40, seed: 1, split: "train")
        let test = try Self.store(dir.file("test.h5"), layers: layers, rows: 20, seed: 2, split: "test")
        let config = try Self.pipeline(taps: ["grid", "mnv2avg"])
        let settings = try LinearSettings(config: config.root)
        let error = try #require(throws: LinprobeError.self) {
            try LinearStage(
                train: train, test: test, settings: settings, taps: try FeatureLayers.names(config: config),
                pipeline: nil, layout: WorkdirLayout(dir.path))
        }
        #expect(!error.message.contains("\n"))
        #expect(error.message.contains("'mnv2avg'") && error.message.contains("avg, grid, extra"), "\(error.message)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("linear")))
    }

    @Test("dimensions are checked per tap, naming head, tap and both sizes; head and tap counts must agree")
    func checks() throws {
        let dir = try TemporaryDirectory()
        let layers = [Self.avg, Self.grid, Self.extra]
        let train = try Self.store(dir.file("train.h5"), layers: layers, rows: 40, seed: 1, split: "train")
        let test = try Self.store(dir.file("test.h5"), layers: layers, rows: 20, seed: 2, split: "test")
        // The heads in the store's order while the map lists grid first.
        let swapped: JSONValue = [["mlp", ["dims": [8, 4]]], ["eval_mlp", ["in_channels": 5, "dims": [20, 4]]]]
        let config = try Self.pipeline(heads: swapped)
        let error = try #require(throws: LinprobeError.self) {
            try LinearStage(
                train: train, test: test, settings: try LinearSettings(config: config.root),
                taps: try FeatureLayers.names(config: config), pipeline: nil, layout: WorkdirLayout(dir.path))
        }
        #expect(error.exitCode == 64)
        #expect(error.message.contains("MODEL.HEAD.PARAMS[0] (mlp)") && error.message.contains("dims[0] = 8"))
        #expect(error.message.contains("tap 'grid'") && error.message.contains("20 features"), "\(error.message)")

        let three = try Self.pipeline(taps: ["grid", "avg", "extra"])
        let e2 = try #require(throws: LinprobeError.self) {
            try LinearStage(
                train: train, test: test, settings: try LinearSettings(config: three.root),
                taps: try FeatureLayers.names(config: three), pipeline: nil, layout: WorkdirLayout(dir.path))
        }
        #expect(
            e2.exitCode == 64 && e2.message.contains("2 heads for 3 taps") && e2.message.contains("grid, avg, extra"))

        // Without a map, the heads pair with the store's layers in order, and the counts must match.
        let e3 = try #require(throws: LinprobeError.self) {
            try LinearStage(
                train: train, test: test, settings: try LinearSettings(config: config.root), taps: [],
                pipeline: nil, layout: WorkdirLayout(dir.path))
        }
        #expect(e3.exitCode == 64 && e3.message.contains("2 heads for 3 stored layers"))
    }
}
