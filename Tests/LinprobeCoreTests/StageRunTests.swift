import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

/// A stage that writes one file, counting its runs and reuses.
private final class CountingStage: PipelineStage, @unchecked Sendable {
    struct Boom: Error {}
    let plan: StagePlan
    let file: String
    var runs = 0
    var reuses = 0
    var fail = false

    init(kind: StageKind, fingerprint: String, file: String) {
        plan = StagePlan(
            kind: kind, fingerprint: fingerprint, inputs: ["features": "x"], parameters: ["C": 1],
            outputs: [file], pipeline: "demo")
        self.file = file
    }

    func run(_ context: StageContext) throws -> String {
        runs += 1
        if fail { throw Boom() }
        try AtomicFile.write("{}", to: context.layout.resolve(file))
        return "ran"
    }

    func reuse(_ context: StageContext, record: ManifestRecord) throws -> String { reuses += 1; return "reused" }

    func manifestMessage(_ outcome: String) -> String? { "message \(runs)" }
}

@Suite struct StageRunTests {
    @Test func runsOnceThenReusesAndRecordsFailures() throws {
        let dir = try TemporaryDirectory()
        let layout = WorkdirLayout(dir.path)
        let stage = CountingStage(kind: .trainSVM, fingerprint: "f1", file: "svm/f1/out.json")
        let runner = StageRunner(layout: layout)
        let first = try runner.execute(stage)
        #expect(!first.reused && first.outcome == "ran" && first.record.message == "message 1")
        let second = try runner.execute(stage)
        #expect(second.reused && second.outcome == "reused" && stage.reuses == 1)
        #expect(stage.runs == 1)
        var forced = runner
        forced.force = true
        #expect(try !forced.execute(stage).reused)
        #expect(stage.runs == 2)
        // A deleted output makes the record untrustworthy: the stage runs again.
        try FileManager.default.removeItem(atPath: layout.resolve("svm/f1/out.json"))
        #expect(try !runner.execute(stage).reused)
        #expect(stage.runs == 3)
        // The lock file of the artifact is where the layout says.
        #expect(FileManager.default.fileExists(atPath: layout.path(.lock(.trainSVM, fingerprint: "f1"))))

        let failing = CountingStage(kind: .extract, fingerprint: "f2", file: "features/f2/train.h5")
        failing.fail = true
        #expect(throws: CountingStage.Boom.self) { try runner.execute(failing) }
        let failed = try #require(try ManifestStore(layout: layout).read().record(stage: "extract", fingerprint: "f2"))
        #expect(failed.status == .failed)
        #expect(failed.finished != nil)
        #expect(failed.pipeline == "demo")
    }

    @Test func layoutSpellsEveryPathOnce() {
        let layout = WorkdirLayout("/w")
        #expect(layout.path(.manifest) == "/w/manifest.json")
        #expect(layout.relativePath(.featureStore(fingerprint: "ab", split: "train")) == "features/ab/train.h5")
        #expect(layout.relativePath(.svmLayer(fingerprint: "cd", layer: "res5")) == "svm/cd/res5")
        #expect(layout.relativePath(.linearHead(fingerprint: "ef", head: "res4")) == "linear/ef/res4")
        #expect(layout.relativePath(.reportFile(pipeline: "demo", name: "report.md")) == "reports/demo/report.md")
        #expect(layout.relativePath(.lock(.trainLinear, fingerprint: "01")) == ".locks/train-linear-01.lock")
        #expect(layout.relative("/w/svm/cd/res5") == "svm/cd/res5")
        #expect(layout.relative("/elsewhere/x") == "/elsewhere/x")
        #expect(layout.resolve("/abs/p") == "/abs/p")
        #expect(layout.relativePath(.knnLayer(fingerprint: "aa", layer: "res5")) == "knn/aa/res5")
        #expect(layout.relativePath(.knnRun(fingerprint: "aa")) == "knn/aa")
        #expect(
            StageKind.allCases.map(\.name) == [
                "extract", "import-features", "train-svm", "train-linear", "knn", "report",
            ])
    }

    @Test func featureLayerNamesFollowTheMap() {
        #expect(
            FeatureLayers.names(forTaps: ["res5", "lastCLS", "lastCLS", "res5"]) == [
                "res5", "lastCLS", "lastCLS_1", "res5_1",
            ])
    }
}

@Suite struct ProgressReporterTests {
    final class Lines: @unchecked Sendable {
        var items: [String] = []
        let lock = NSLock()
        func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    }

    @Test func logModeWritesPeriodicAndFinalLines() throws {
        let lines = Lines()
        let p = ProgressReporter(stage: "train-svm", mode: .log(interval: 0), sink: { lines.add($0) })
        p.begin("res5 cross-validation", total: 4, unit: "fits")
        p.advance(by: 1)
        p.advance(by: 1)
        p.finish()
        #expect(lines.items.count == 3)
        #expect(lines.items.allSatisfy { $0.hasSuffix("\n") && !$0.contains("\r") })
        let last = try #require(lines.items.last)
        #expect(last.hasPrefix("train-svm res5 cross-validation: 2/4 fits (50%)"))
        #expect(last.contains("elapsed"))
    }

    @Test func newLabelBeginsNewPhaseAndQuietPhasesWriteNothing() {
        let lines = Lines()
        let p = ProgressReporter(stage: "train-linear", mode: .log(interval: 3600), sink: { lines.add($0) })
        p.report("epoch 1/2 train", done: 1, total: 10, unit: "batches")
        p.report("epoch 1/2 train", done: 5, total: 10, unit: "batches")
        #expect(p.line().hasPrefix("train-linear epoch 1/2 train: 5/10 batches (50%)"))
        p.report("epoch 1/2 test", done: 1, total: 3, unit: "batches")
        #expect(p.line().hasPrefix("train-linear epoch 1/2 test: 1/3 batches"))
        p.finish()
        // Phases of well under a few seconds leave no line in a log.
        #expect(lines.items.isEmpty)
        let silent = Lines()
        let q = ProgressReporter(stage: "x", mode: .silent, sink: { silent.add($0) })
        q.begin("a", total: 1, unit: "u")
        q.advance()
        q.finish()
        #expect(silent.items.isEmpty)
    }

    @Test func clockFormats() {
        #expect(ProgressReporter.clock(75) == "1:15")
        #expect(ProgressReporter.clock(3725) == "1:02:05")
        #expect(ProgressReporter.clock(.infinity) == "?")
    }
}

@Suite struct FileHelperTests {
    @Test func atomicWriteReplacesAndLeavesNoTemporaryFile() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("sub/a.json")
        try AtomicFile.write("one", to: path)
        try AtomicFile.write("two", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "two")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("sub")) == ["a.json"])
    }

    @Test func atomicWriteFailureKeepsThePreviousVersion() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("a.json")
        try AtomicFile.write("keep", to: path)
        // A folder where the file should go cannot be replaced by a rename.
        try FileManager.default.createDirectory(atPath: dir.file("b.json"), withIntermediateDirectories: true)
        #expect(throws: LinprobeError.self) { try AtomicFile.write("x", to: dir.file("b.json")) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep")
    }

    @Test func npyWriterRoundTripsThroughTheReader() throws {
        let data = NPYWriter.float64([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect(data.count % 64 == 48)  // header padded to 64 bytes, then 48 bytes of data
        let array = try data.withUnsafeBytes { try NPYArray.parse($0, path: "x.npy") }
        #expect(array.shape == [2, 3])
        #expect(array.values == .floats([1, 2, 3, 4, 5, 6]))
        let ints = try NPYWriter.int64([7, -8], shape: [2]).withUnsafeBytes { try NPYArray.parse($0, path: "y.npy") }
        #expect(ints.values == .integers([7, -8]))
    }

    @Test func npyHeaderWithOverflowingShapeIsOneLine() throws {
        var data = NPYWriter.header(descr: "<i8", shape: [4611686018427387904])
        data.append(contentsOf: [UInt8](repeating: 0, count: 8))
        #expect(throws: LinprobeError.self) { try data.withUnsafeBytes { try NPYArray.parse($0, path: "big.npy") } }
        var square = NPYWriter.header(descr: "<i8", shape: [4294967296, 4294967296])
        square.append(contentsOf: [UInt8](repeating: 0, count: 8))
        #expect(throws: LinprobeError.self) { try square.withUnsafeBytes { try NPYArray.parse($0, path: "sq.npy") } }
    }

    @Test func pathsResolveAgainstABase() {
        #expect(Paths.absolute("a/b", relativeTo: "/r") == "/r/a/b")
        #expect(Paths.absolute("/x", relativeTo: "/r") == "/x")
        #expect(Paths.standardized("a/../b", relativeTo: "/r") == "/r/b")
        #expect(Paths.join("/a", "", "b") == "/a/b")
    }
}

@Suite struct HostileYAMLTests {
    @Test func aliasBombIsOneConfigErrorNotMemory() throws {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            let refs = Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ")
            text += "a\(level): &a\(level) [\(refs)]\n"
        }
        let error = try #require(throws: LinprobeError.self) {
            try PipelineConfig.load(text: text, source: "bomb.yaml")
        }
        #expect(error.exitCode == 64)
        #expect(error.message.hasPrefix("bomb.yaml: expands to more than"))
    }

    @Test(arguments: [5000, 201]) func deepNestingIsOneConfigError(_ depth: Int) throws {
        let flow = "k: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        let flowError = try #require(throws: LinprobeError.self) {
            try PipelineConfig.load(text: flow, source: "flow.yaml")
        }
        #expect(flowError.message.contains("nested deeper than"))
        var block = ""
        for level in 0..<depth { block += String(repeating: " ", count: level) + "k\(level):\n" }
        let blockError = try #require(throws: LinprobeError.self) {
            try PipelineConfig.load(text: block, source: "block.yaml")
        }
        #expect(blockError.message.contains("nested deeper than"))
        let dashes = String(repeating: "- ", count: depth) + "x\n"
        #expect(throws: LinprobeError.self) { try PipelineConfig.load(text: "k:\n" + dashes, source: "dash.yaml") }
    }

    @Test func ordinaryNestingStillLoads() throws {
        let text = "config:\n  SVM:\n    costs:\n      costs_list: [[0.1, [1.0]], {a: [2]}]  # [not, a, bracket\n"
        _ = try YAMLProbe.parse(text)
    }
}

/// `ConfigYAML` is internal; `PipelineConfig.load(text:)` may reject keys, so parse errors are
/// told apart from key errors by their message.
private enum YAMLProbe {
    static func parse(_ text: String) throws -> Bool {
        do { _ = try PipelineConfig.load(text: text, source: "ok.yaml") } catch let e as LinprobeError {
            #expect(!e.message.contains("nested deeper") && !e.message.contains("expands to more"), "\(e.message)")
        }
        return true
    }
}
