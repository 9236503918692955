import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeLinear

/// Collects a progress reporter's lines.
final class LineSink: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) { lock.withLock { stored.append(line) } }
    var lines: [String] { lock.withLock { stored } }
}

/// `LinearStage` under `StageRunner`: plan, run, manifest record, reuse, resume, progress.
@Suite("train-linear as a PipelineStage")
struct StageContractTests {
    func stage(
        _ dir: TemporaryDirectory, epochs: Int = 3, options: LinearRunOptions = LinearRunOptions(threads: 1)
    )
        throws -> LinearStage
    {
        let train = try TestStores.write(dir.file("train.h5"), rows: 120, seed: 1, split: "train")
        let test = try TestStores.write(dir.file("test.h5"), rows: 40, seed: 2, split: "test")
        return try LinearStage(
            train: train, test: test, settings: try LinearSettings(config: TestStores.config(epochs: epochs)),
            taps: [], pipeline: "demo", layout: WorkdirLayout(dir.file("work")), options: options)
    }

    @Test(
        "the plan names the inputs, the settings and linear/<fp>; a run is recorded, then reused with the same outcome")
    func runAndReuse() throws {
        let dir = try TemporaryDirectory()
        let stage = try stage(dir)
        let plan = stage.plan
        #expect(plan.kind == .trainLinear && plan.pipeline == "demo")
        #expect(plan.outputs == ["linear/\(stage.fingerprint)"])
        #expect(plan.inputs["train_features"]?.stringValue == stage.train.fingerprint)
        #expect(plan.inputs["test_path"]?.stringValue == stage.test.path)
        #expect(plan.parameters == stage.settings.json)
        #expect(
            stage.fingerprint == LinearStage.fingerprint(train: stage.train, test: stage.test, settings: stage.settings)
        )

        let sink = LineSink()
        let runner = StageRunner(layout: stage.layout)
        let first = try runner.execute(
            stage,
            progress: ProgressReporter(
                stage: "train-linear", mode: .log(interval: 0),
                sink: { sink.append($0) }))
        #expect(!first.reused && first.record.status == .complete && first.record.message == nil)
        let outcome = first.outcome
        #expect(outcome.heads.map(\.name) == ["res4", "res5avg"])
        #expect(outcome.heads.map(\.kind) == [.evalMLP, .mlp])
        #expect(outcome.epochsDone == 3 && outcome.resumedFromEpoch == nil)
        #expect(outcome.directory == stage.layout.path(.linearRun(fingerprint: stage.fingerprint)))
        for head in outcome.heads {
            let doc = try LinearResultsDocument.read(path: head.resultsPath)
            #expect(doc.metric == head.metric && doc.value == head.value && doc.layer == head.layer)
            #expect(doc.formatVersion == LinearResultsDocument.currentVersion)
            #expect(doc.featureProvenance?.train.fingerprint == stage.train.fingerprint)
            #expect(doc.featureProvenance?.test.split == "test")
        }
        #expect(sink.lines.contains { $0.contains("epoch 1/3 train") && $0.contains("batches") }, "\(sink.lines)")
        #expect(sink.lines.contains { $0.contains("epoch 3/3 test") })

        let again = try runner.execute(stage)
        #expect(again.reused)
        #expect(again.outcome == outcome)
    }

    @Test("a run stopped early is recorded failed; the next one resumes and says so in the manifest")
    func resumeUnderTheManifest() throws {
        let dir = try TemporaryDirectory()
        let stopped = try stage(dir, options: LinearRunOptions(threads: 1, stopAfterEpochs: 1))
        let runner = StageRunner(layout: stopped.layout)
        let error = try #require(throws: LinprobeError.self) { try runner.execute(stopped) }
        #expect(error.code == .interrupted && error.message.contains("epoch 1 of 3"))
        let record = try #require(
            try runner.manifest.read().record(stage: "train-linear", fingerprint: stopped.fingerprint))
        #expect(record.status == .failed)

        let resumed = try runner.execute(try stage(dir))
        #expect(resumed.outcome.resumedFromEpoch == 1 && resumed.outcome.epochsDone == 3)
        #expect(resumed.record.status == .complete && resumed.record.message == "resumed at epoch 1")

        let state = try JSONDecoder().decode(
            LinearRunState.self,
            from: try #require(FileManager.default.contents(atPath: resumed.outcome.directory + "/state.json")))
        #expect(
            state.status == .complete && state.epochsDone == 3 && state.formatVersion == LinearRunState.currentVersion)
        #expect(state.heads.map(\.layer) == ["res4", "res5avg"])
    }

    @Test("a reused record whose results.json is damaged is one line naming the file")
    func damagedResultsOnReuse() throws {
        let dir = try TemporaryDirectory()
        let stage = try stage(dir, epochs: 3)
        let runner = StageRunner(layout: stage.layout)
        let first = try runner.execute(stage)
        let path = first.outcome.heads[1].resultsPath
        try Data("{\"format\": \"linprobe.results\"".utf8).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: LinprobeError.self) { try runner.execute(stage) }
        #expect(error.message.hasPrefix(path) && !error.message.contains("\n"), "\(error.message)")
    }
}
