import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeLinear

@Suite("train-linear stage: outputs, resume, bad input")
struct StageTests {
    struct Fixture {
        let dir: TemporaryDirectory
        let train: FeatureStoreReader
        let test: FeatureStoreReader
    }

    func stores(
        trainRows: Int = 200, testRows: Int = 64, classes: Int = 4, trainLabel: ((Int) -> Int64)? = nil
    ) throws -> Fixture {
        let dir = try TemporaryDirectory()
        let train = try TestStores.write(
            dir.file("train.h5"), rows: trainRows, classes: classes, seed: 1, split: "train", label: trainLabel)
        let test = try TestStores.write(dir.file("test.h5"), rows: testRows, classes: classes, seed: 2, split: "test")
        return Fixture(dir: dir, train: train, test: test)
    }

    @Test("a run writes metrics, checkpoints, results and state, and learns")
    func writesOutputs() throws {
        let f = try stores()
        let settings = try LinearSettings(config: TestStores.config())
        let result = try LinearStage.run(
            train: f.train, test: f.test, settings: settings, workdir: f.dir.path,
            options: LinearRunOptions(threads: 2))
        #expect(result.complete && !result.reused && result.epochsDone == 3)
        #expect(result.directory.hasSuffix("linear/\(result.fingerprint)"))
        for head in result.heads {
            #expect(head.history.count == 3)
            #expect(head.value > 60, "\(head.name) top-1 \(head.value) on separable data")
            let files = try FileManager.default.contentsOfDirectory(atPath: head.directory).sorted()
            #expect(files == ["checkpoint_epoch3.lpck", "metrics.json", "results.json"])
            let results = try JSONValue.parse(
                String(decoding: FileManager.default.contents(atPath: head.directory + "/results.json")!, as: UTF8.self)
            )
            #expect(results["method"] == "linear")
            #expect(results["metric"] == "top_1")
            #expect(results["value"]?.doubleValue == head.value)
            #expect(results["fingerprint"]?.stringValue == f.train.fingerprint)
            #expect(results["hyper_parameters"]?["batch_size"]?.intValue == 16)
            // `feature_provenance` (results format 2) is checked by ResultsDocumentTests; schemas/results.schema.json
            // gains it with the schema work of issue 12 — until then the rest of the file is validated.
            var validated = results
            if case .object(var o) = results, o.removeValue(forKey: "feature_provenance") != nil {
                validated = .object(o)
            }
            let problems = try SchemaValidator(schemaPath: schemaPath("results.schema.json")).validate(validated)
            #expect(problems.isEmpty, "results.json against schemas/results.schema.json: \(problems)")
        }
        #expect(result.heads.map(\.name) == ["res4", "res5avg"])
        let state = try JSONValue.parse(
            String(decoding: FileManager.default.contents(atPath: result.directory + "/state.json")!, as: UTF8.self))
        #expect(state["status"] == "complete")
        #expect(state["epochs_done"]?.intValue == 3)

        // A second run with the same inputs reuses the finished one.
        let again = try LinearStage.run(
            train: f.train, test: f.test, settings: settings, workdir: f.dir.path,
            options: LinearRunOptions(threads: 2))
        #expect(again.reused)
        #expect(again.heads.map(\.value) == result.heads.map(\.value))
    }

    @Test("a killed run resumes at its last epoch and ends exactly where an uninterrupted run ends")
    func resumeIsExact() throws {
        let f = try stores()
        let settings = try LinearSettings(config: TestStores.config(epochs: 4))
        let other = try TemporaryDirectory()
        let straight = try LinearStage.run(
            train: f.train, test: f.test, settings: settings, workdir: other.path,
            options: LinearRunOptions(threads: 2))

        let first = try LinearStage.run(
            train: f.train, test: f.test, settings: settings, workdir: f.dir.path,
            options: LinearRunOptions(threads: 2, stopAfterEpochs: 2))
        #expect(!first.complete && first.epochsDone == 2)
        var resumedSteps: [Int] = []
        let second = try LinearStage.run(
            train: f.train, test: f.test, settings: settings, workdir: f.dir.path,
            options: LinearRunOptions(threads: 2, onStep: { resumedSteps.append($0.epoch) }))
        #expect(second.resumedFromEpoch == 2)
        #expect(second.complete)
        #expect(Set(resumedSteps) == [2, 3])
        try #require(straight.heads.count == second.heads.count)
        for (a, b) in zip(straight.heads, second.heads) {
            #expect(a.history == b.history)
            let wa = try HeadCheckpoint.read(path: a.directory + "/checkpoint_epoch4.lpck").tensors
            let wb = try HeadCheckpoint.read(path: b.directory + "/checkpoint_epoch4.lpck").tensors
            #expect(wa.keys.sorted() == wb.keys.sorted())
            for (k, v) in wa { #expect(v.values == wb[k]?.values, "\(a.name) \(k)") }
        }
    }

    @Test(
        "heads with hidden layers, BatchNorm1d, ReLU and dropout train, and resume exactly (dropout RNG in the checkpoint)"
    )
    func dropoutHeadsResume() throws {
        let f = try stores()
        let heads: JSONValue = [
            ["eval_mlp", ["in_channels": 4, "dims": [16, 12, 4], "use_bn": true, "use_relu": true]],
            ["mlp", ["dims": [8, 12, 4], "use_relu": true, "use_dropout": true]],
        ]
        let settings = try LinearSettings(config: TestStores.config(epochs: 3, lr: 0.05, heads: heads))
        let other = try TemporaryDirectory()
        let straight = try LinearStage.run(
            train: f.train, test: f.test, settings: settings, workdir: other.path,
            options: LinearRunOptions(threads: 1))
        _ = try LinearStage.run(
            train: f.train, test: f.test, settings: settings, workdir: f.dir.path,
            options: LinearRunOptions(threads: 1, stopAfterEpochs: 1))
        let resumed = try LinearStage.run(
            train: f.train, test: f.test, settings: settings, workdir: f.dir.path,
            options: LinearRunOptions(threads: 1))
        #expect(resumed.resumedFromEpoch == 1)
        try #require(straight.heads.count == resumed.heads.count)
        for (a, b) in zip(straight.heads, resumed.heads) {
            #expect(a.history == b.history)
            #expect(a.value > 40, "\(a.name) learns (top-1 \(a.value))")
        }
        let keys = try HeadCheckpoint.read(path: straight.heads[1].directory + "/checkpoint_epoch3.lpck").tensors.keys
            .sorted()
        #expect(keys.contains("clf.0.weight") && keys.contains("clf.3.weight"))  // Linear, ReLU, Dropout, Linear
        let evalKeys = try HeadCheckpoint.read(path: straight.heads[0].directory + "/checkpoint_epoch3.lpck").tensors
            .keys.sorted()
        // Linear, BN, ReLU, Linear
        #expect(evalKeys.contains("clf.clf.1.running_var") && evalKeys.contains("clf.clf.3.weight"))
    }

    @Test("the shuffled order is seeded, a permutation, and block-local for small shuffle chunks")
    func shuffledOrder() throws {
        let small = EpochOrder.shuffled(seed: 5, chunkRows: 32, blockRows: 16)
        let a = try small.rows(epoch: 0, count: 192)
        #expect(a.sorted() == Array(0..<192))
        #expect(try small.rows(epoch: 0, count: 192) == a)
        #expect(try small.rows(epoch: 1, count: 192) != a)
        // Each 32-row shuffle chunk holds two whole 16-row blocks.
        for start in stride(from: 0, to: 192, by: 32) {
            let blocks = Set(a[start..<(start + 32)].map { $0 / 16 })
            #expect(blocks.count == 2)
        }
        let ragged = try small.rows(epoch: 0, count: 200)
        #expect(ragged.sorted() == Array(0..<200))
        let full = EpochOrder.shuffled(seed: 5, chunkRows: 1000, blockRows: 16)
        let b = try full.rows(epoch: 0, count: 200)
        #expect(b.sorted() == Array(0..<200))
        #expect(Set(b[0..<32].map { $0 / 16 }).count > 2)
    }

    @Test("batches stream the right rows through a window smaller than the store")
    func streamDeliversRows() throws {
        let f = try stores(trainRows: 100)
        let order = try EpochOrder.shuffled(seed: 1, chunkRows: 24, blockRows: 16).rows(epoch: 0, count: 100)
        let stream = BatchStream(store: f.train, layers: f.train.layers, batchSize: 8, windowRows: 24)
        let full = try f.train.layers.map { try f.train.readLayer($0.name) }
        var seen: [Int] = []
        try stream.forEachBatch(order) { rows in
            for (r, row) in rows.enumerated() {
                for (l, layer) in f.train.layers.enumerated() {
                    let got = Array(
                        UnsafeBufferPointer(start: stream.batchBuffers[l].pointer + r * layer.dim, count: layer.dim))
                    #expect(got == Array(full[l][(row * layer.dim)..<((row + 1) * layer.dim)]))
                }
            }
            seen.append(contentsOf: rows)
        }
        #expect(seen == order)
    }

    @Test("head dims that do not match the stored layer are a config error naming head and layer")
    func dimsMismatch() throws {
        let f = try stores()
        let heads: JSONValue = [["eval_mlp", ["in_channels": 4, "dims": [20, 4]]], ["mlp", ["dims": [8, 4]]]]
        let settings = try LinearSettings(config: TestStores.config(heads: heads))
        let error = try #require(throws: LinprobeError.self) {
            try LinearStage.run(train: f.train, test: f.test, settings: settings, workdir: f.dir.path)
        }
        #expect(error.exitCode == 64)
        #expect(
            error.message.contains("MODEL.HEAD.PARAMS[0]") && error.message.contains("res4")
                && error.message.contains("16"))

        let channels: JSONValue = [["eval_mlp", ["in_channels": 2, "dims": [16, 4]]], ["mlp", ["dims": [8, 4]]]]
        let e2 = try #require(throws: LinprobeError.self) {
            try LinearStage.run(
                train: f.train, test: f.test, settings: try LinearSettings(config: TestStores.config(heads: channels)),
                workdir: f.dir.path)
        }
        #expect(e2.message.contains("in_channels = 2") && e2.message.contains("res4"))

        let count: JSONValue = [["mlp", ["dims": [16, 4]]]]
        let e3 = try #require(throws: LinprobeError.self) {
            try LinearStage.run(
                train: f.train, test: f.test, settings: try LinearSettings(config: TestStores.config(heads: count)),
                workdir: f.dir.path)
        }
        #expect(e3.exitCode == 64 && e3.message.contains("1 heads for 2 stored layers"))
    }

    @Test("labels outside the class range are refused with the row and value")
    func labelsOutOfRange() throws {
        let f = try stores(trainLabel: { $0 == 37 ? 9 : Int64($0 % 4) })
        let settings = try LinearSettings(config: TestStores.config())
        let error = try #require(throws: LinprobeError.self) {
            try LinearStage.run(train: f.train, test: f.test, settings: settings, workdir: f.dir.path)
        }
        #expect(error.exitCode == 1)
        #expect(error.message.contains("row 37") && error.message.contains("label 9"))
        #expect(!FileManager.default.fileExists(atPath: f.dir.file("linear")))
    }

    @Test("a head with fewer outputs than the store's classes is a config error")
    func tooFewOutputs() throws {
        let f = try stores(classes: 4)
        let heads: JSONValue = [["eval_mlp", ["in_channels": 4, "dims": [16, 3]]], ["mlp", ["dims": [8, 4]]]]
        let error = try #require(throws: LinprobeError.self) {
            try LinearStage.run(
                train: f.train, test: f.test,
                settings: try LinearSettings(config: TestStores.config(classes: 3, heads: heads)),
                workdir: f.dir.path)
        }
        #expect(
            error.exitCode == 64 && error.message.contains("MODEL.HEAD.PARAMS[0]")
                && error.message.contains("4 classes"))
    }

    @Test("an empty split is refused")
    func emptySplit() throws {
        let dir = try TemporaryDirectory()
        let train = try TestStores.write(dir.file("train.h5"), rows: 0, split: "train")
        let test = try TestStores.write(dir.file("test.h5"), rows: 20, seed: 2, split: "test")
        let settings = try LinearSettings(config: TestStores.config())
        let error = try #require(throws: LinprobeError.self) {
            try LinearStage.run(train: train, test: test, settings: settings, workdir: dir.path)
        }
        #expect(error.message.contains("training split is empty") && error.message.contains("train.h5"))
        let e2 = try #require(throws: LinprobeError.self) {
            try LinearStage.run(train: test, test: train, settings: settings, workdir: dir.path)
        }
        #expect(e2.message.contains("test split is empty"))
    }

    @Test("NaN or Inf in stored features is refused naming the store, layer and row, not as a divergence")
    func nonFiniteFeatures() throws {
        let dir = try TemporaryDirectory()
        let settings = try LinearSettings(config: TestStores.config())
        let cases: [(split: String, layer: String, row: Int, value: Float)] = [
            ("train", "res5avg", 37, .nan), ("test", "res4", 5, .infinity),
        ]
        for c in cases {
            let folder = dir.file(c.split + "-poisoned")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let poison = (layer: c.layer, row: c.row, value: c.value)
            let train = try TestStores.write(
                folder + "/train.h5", rows: 200, split: "train", poison: c.split == "train" ? poison : nil)
            let test = try TestStores.write(
                folder + "/test.h5", rows: 64, seed: 2, split: "test", poison: c.split == "test" ? poison : nil)
            let error = try #require(throws: LinprobeError.self) {
                try LinearStage.run(train: train, test: test, settings: settings, workdir: folder)
            }
            #expect(error.exitCode == 1)
            #expect(error.code != .numerical, "\(error.message)")
            #expect(error.message.contains(folder + "/\(c.split).h5"), "\(error.message)")
            #expect(error.message.contains("layer \(c.layer) row \(c.row) "), "\(error.message)")
            #expect(!error.message.contains("diverged") && !error.message.contains("\n"), "\(error.message)")
        }
    }

    @Test("a diverging run stops with a clear message and keeps the last good checkpoint")
    func divergence() throws {
        let f = try stores()
        // Epoch 1 at a sane rate, then an absurd one from epoch 2 on.
        let lr: JSONValue = [
            "name": "multistep", "values": [0.05, 1e30], "milestones": [1], "update_interval": "epoch",
        ]
        let settings = try LinearSettings(
            config: TestStores.config(epochs: 3, extra: ["OPTIMIZER.param_schedulers.lr": lr]))
        let error = try #require(throws: LinprobeError.self) {
            try LinearStage.run(train: f.train, test: f.test, settings: settings, workdir: f.dir.path)
        }
        #expect(error.code == .numerical)
        #expect(
            error.message.contains("diverged at epoch 2") && error.message.contains("last good checkpoint (epoch 1)"))
        let fp = LinearStage.fingerprint(train: f.train, test: f.test, settings: settings)
        let runDir = f.dir.file("linear/\(fp)")
        let kept = try HeadCheckpoint.read(path: runDir + "/res4/checkpoint_epoch1.lpck")
        #expect(kept.tensors["clf.clf.0.weight"]?.values.allSatisfy(\.isFinite) == true)
        let state = try JSONValue.parse(
            String(decoding: FileManager.default.contents(atPath: runDir + "/state.json")!, as: UTF8.self))
        #expect(state["status"] == "failed")
        #expect(state["epochs_done"]?.intValue == 1)
    }

    @Test("the default initialisation is PyTorch's distribution and the same for every head")
    func initialisation() throws {
        let spec = HeadSpec(kind: .mlp, dims: [400, 50])
        let a = Head(
            spec: spec, name: "a", shapeCHW: [400, 1, 1], eps: 1e-5, momentum: 0.1, maxRows: 4, threads: 1,
            dropoutSeed: 0)
        let b = Head(
            spec: spec, name: "b", shapeCHW: [400, 1, 1], eps: 1e-5, momentum: 0.1, maxRows: 4, threads: 1,
            dropoutSeed: 1)
        a.initialize(seed: 9, multiplier: 1)
        b.initialize(seed: 9, multiplier: 1)
        let w = a.tensors(optimizer: false)[0].buffer.array
        #expect(w == b.tensors(optimizer: false)[0].buffer.array)
        let bound = 1 / Float(400).squareRoot()
        #expect(w.allSatisfy { abs($0) <= bound })
        let mean = w.reduce(0, +) / Float(w.count)
        let variance = w.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(w.count)
        #expect(abs(mean) < 0.05 * bound)
        #expect(abs(variance - bound * bound / 3) < 0.05 * bound * bound / 3)
        let c = Head(
            spec: spec, name: "c", shapeCHW: [400, 1, 1], eps: 1e-5, momentum: 0.1, maxRows: 4, threads: 1,
            dropoutSeed: 0)
        c.initialize(seed: 9, multiplier: 0.5)
        #expect(zip(c.tensors(optimizer: false)[0].buffer.array, w).allSatisfy { $0 == $1 * 0.5 })
    }

    @Test("initial weights are loaded strictly")
    func strictInitialWeights() throws {
        let f = try stores()
        let settings = try LinearSettings(config: TestStores.config())
        let bad: [[String: (shape: [Int], values: [Float])]] = [
            ["clf.clf.0.weight": ([4, 15], Array(repeating: 0, count: 60))], [:],
        ]
        let error = try #require(throws: LinprobeError.self) {
            try LinearStage.run(
                train: f.train, test: f.test, settings: settings, workdir: f.dir.path,
                options: LinearRunOptions(initialWeights: bad))
        }
        #expect(error.message.contains("channel_bn") || error.message.contains("[4, 15]"))
    }
}
