import Foundation
import LinprobeCore
import LinprobeData
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeExtract

/// The streaming engine with a cheap probe model: order, views, resumption, strictness,
/// interruption and failures, independent of the trunk.
@Suite struct StreamingEngine {
    struct Case: CustomTestStringConvertible, Sendable {
        var workers: Int, batch: Int, readAhead: Int
        var testDescription: String { "\(workers) workers, batch \(batch), read-ahead \(readAhead)" }
    }

    static func input(_ dir: TemporaryDirectory, transforms: String = testTransforms) throws -> SplitInput {
        let root = try makeImageFolder(in: dir, smallLayout, extra: ["b/notes.txt": "not an image"])
        let config = try loadConfig(pipelineText(root: root, transforms: transforms))
        return try SplitInput.load(
            split: .test, data: config.node("DATA.TEST"), catalog: nil, workingDirectory: dir.path)
    }

    static func engine(
        _ input: SplitInput, writer: FeatureStoreWriter, model: ProbeModel, settings: StreamSettings,
        views: Int = 1, seed: UInt64 = 7, stop: @escaping @Sendable () -> Bool = { false }
    ) -> ExtractionEngine {
        ExtractionEngine(
            listing: input.listing, views: views, pipeline: input.pipeline, grayImageSize: 224, seed: seed,
            model: model, writer: writer, settings: settings, shouldStop: stop)
    }

    @Test(arguments: [
        Case(workers: 0, batch: 1, readAhead: 0), Case(workers: 1, batch: 3, readAhead: 1),
        Case(workers: 3, batch: 2, readAhead: 2), Case(workers: 2, batch: 7, readAhead: 0),
    ])
    func rowsArriveInDatasetOrder(_ c: Case) throws {
        let dir = try TemporaryDirectory()
        let input = try Self.input(dir)
        let path = dir.file("out.h5")
        let writer = try probeWriter(path, listing: input.listing)
        let model = ProbeModel(height: 32, width: 32)
        let report = try Self.engine(
            input, writer: writer, model: model,
            settings: StreamSettings(batchSize: c.batch, decodeWorkers: c.workers, readAhead: c.readAhead)
        )
        .run(from: 0)
        try writer.finish()
        let n = input.listing.count
        #expect(n == 9)  // notes.txt is not listed
        #expect(report.rows == n)
        #expect(model.imagesSeen == n)
        #expect(model.calls == (n + c.batch - 1) / c.batch)

        let expected = try expectedProbeRows(
            listing: input.listing, pipeline: input.pipeline, views: 1, seed: 7, h: 32, w: 32)
        let stored = try StoreContents(path)
        #expect(stored.features == expected.features)
        #expect(stored.indices == (0..<Int64(n)).map { $0 })
        #expect(stored.paths == input.listing.samples.map(\.relativePath))
        #expect(stored.targets == [0, 0, 0, 0, 1, 1, 1, 1, 1])
        let garbage = try #require(input.listing.samples.firstIndex { $0.relativePath == "b/garbage.jpg" })
        #expect(stored.unreadable == [garbage])
        #expect(report.unreadable.map(\.path) == ["b/garbage.jpg"])
        #expect(report.unreadable.first?.reason.isEmpty == false)
    }

    @Test func augmentedViewsAreSampleMajorSeededAndRepeatable() throws {
        let dir = try TemporaryDirectory()
        let input = try Self.input(dir, transforms: randomTransforms)
        let views = 3
        func extract(_ name: String, workers: Int, batch: Int) throws -> StoreContents {
            let writer = try probeWriter(dir.file(name), listing: input.listing, views: views)
            _ = try Self.engine(
                input, writer: writer, model: ProbeModel(height: 32, width: 32),
                settings: StreamSettings(batchSize: batch, decodeWorkers: workers), views: views
            ).run(from: 0)
            try writer.finish()
            return try StoreContents(dir.file(name))
        }
        let a = try extract("a.h5", workers: 2, batch: 4)
        let b = try extract("b.h5", workers: 0, batch: 5)
        #expect(a.bitwiseEqual(b), "the same seed gives the same views whatever the threads and batches")
        let n = input.listing.count
        #expect(a.indices == (0..<n).flatMap { Array(repeating: Int64($0), count: views) })
        #expect(a.paths.count == n * views)
        let expected = try expectedProbeRows(
            listing: input.listing, pipeline: input.pipeline, views: views, seed: 7, h: 32, w: 32)
        #expect(a.features == expected.features)
        // Views of one (readable) photo differ: random crops and flips per view.
        let photo = try #require(input.listing.samples.firstIndex { $0.relativePath == "a/photo_500x375.jpg" })
        let checksums = (0..<views).map { a.features[1][photo * views + $0] }
        #expect(Set(checksums).count == views)
        let reader = try FeatureStoreReader(path: dir.file("a.h5"))
        #expect(reader.views == views)
        #expect(reader.sampleCount == n)
        #expect(reader.rows(view: 4) == (0..<n).map { $0 * views + 1 })
    }

    @Test func anotherSeedGivesOtherViews() throws {
        let dir = try TemporaryDirectory()
        let input = try Self.input(dir, transforms: randomTransforms)
        var sums: [[Float]] = []
        for seed: UInt64 in [1, 2] {
            let name = "s\(seed).h5"
            let writer = try probeWriter(dir.file(name), listing: input.listing)
            _ = try Self.engine(
                input, writer: writer, model: ProbeModel(height: 32, width: 32),
                settings: StreamSettings(batchSize: 4, decodeWorkers: 1), seed: seed
            ).run(from: 0)
            try writer.finish()
            sums.append(try StoreContents(dir.file(name)).features[1])
        }
        #expect(sums[0] != sums[1])
    }

    @Test(arguments: [0, 2])
    func resumedRunEqualsUninterruptedRun(workers: Int) throws {
        let dir = try TemporaryDirectory()
        let input = try Self.input(dir)
        let settings = StreamSettings(batchSize: 2, decodeWorkers: workers, flushInterval: 0)
        let clean = dir.file("clean.h5")
        let w0 = try probeWriter(clean, listing: input.listing)
        _ = try Self.engine(input, writer: w0, model: ProbeModel(height: 32, width: 32), settings: settings).run(
            from: 0)
        try w0.finish()

        // Stop after three batches (as SIGINT does), keep what was flushed, resume.
        let path = dir.file("resumed.h5")
        let w1 = try probeWriter(path, listing: input.listing)
        let model = ProbeModel(height: 32, width: 32)
        let stop: @Sendable () -> Bool = { [model] in model.calls >= 3 }
        #expect(throws: StreamStop.self) {
            _ = try Self.engine(input, writer: w1, model: model, settings: settings, stop: stop).run(from: 0)
        }
        try w1.flush()
        #expect(w1.rowsWritten == 4)  // 6 rows appended, chunks of 4
        let w2 = try #require(try FeatureStoreWriter.resume(finalPath: path, fingerprint: "probe"))
        #expect(w2.rowsWritten == 4)
        let report = try Self.engine(input, writer: w2, model: ProbeModel(height: 32, width: 32), settings: settings)
            .run(from: 4)
        #expect(report.rows == input.listing.count - 4)
        try w2.finish()
        #expect(try StoreContents(path).bitwiseEqual(try StoreContents(clean)))
    }

    @Test(arguments: [0, 2])
    func strictStopsAtTheFirstUnreadableImage(workers: Int) throws {
        let dir = try TemporaryDirectory()
        let input = try Self.input(dir)
        let garbage = try #require(input.listing.samples.firstIndex { $0.relativePath == "b/garbage.jpg" })
        let path = dir.file("strict.h5")
        let writer = try probeWriter(path, listing: input.listing, chunkRows: 1)
        let engine = Self.engine(
            input, writer: writer, model: ProbeModel(height: 32, width: 32),
            settings: StreamSettings(batchSize: 1, decodeWorkers: workers, strict: true))
        do {
            _ = try engine.run(from: 0)
            Issue.record("strict mode accepted an unreadable image")
        } catch StreamStop.unreadable(let record, let appended) {
            #expect(record.path == "b/garbage.jpg")
            #expect(record.sampleIndex == garbage)
            #expect(appended == garbage, "every row before the bad image is kept")
        }
        try writer.flush()
        #expect(writer.rowsWritten == garbage)
    }

    @Test func aFailingModelStopsTheWorkersAndReportsItsError() throws {
        let dir = try TemporaryDirectory()
        let input = try Self.input(dir)
        let writer = try probeWriter(dir.file("fail.h5"), listing: input.listing)
        let model = ProbeModel(height: 32, width: 32)
        model.failOnCall = 1
        #expect(throws: LinprobeError.self) {
            _ = try Self.engine(
                input, writer: writer, model: model, settings: StreamSettings(batchSize: 2, decodeWorkers: 3)
            ).run(from: 0)
        }
        #expect(model.imagesSeen == 2)
    }

    /// Case 5 / deliver 2: the batches in flight are sized by min(batch, rows) and checked
    /// against the memory budget before anything is allocated (9 rows of 3×40000×40000 floats,
    /// three batches in flight: 518 GB).
    @Test func buffersBeyondTheMemoryBudgetAreOneConfigErrorBeforeAllocating() throws {
        let dir = try TemporaryDirectory()
        let input = try Self.input(dir)
        let writer = try probeWriter(dir.file("out.h5"), listing: input.listing)
        let model = ProbeModel(height: 40_000, width: 40_000)
        let engine = Self.engine(
            input, writer: writer, model: model,
            settings: StreamSettings(batchSize: 1_000_000, decodeWorkers: 2, readAhead: 1))
        let error = #expect(throws: LinprobeError.self) { try engine.run(from: 0) }
        #expect(error?.code == .invalidConfig)
        let message = error?.message ?? ""
        #expect(message.hasPrefix("DATA.TEST.BATCHSIZE_PER_REPLICA: batches of 9 images"), "\(message)")
        #expect(message.contains("with 3 in flight") && message.contains("needs 518.4 GB"), "\(message)")
        #expect(model.calls == 0)
    }

    @Test func aResumeAtTheEndDoesNothing() throws {
        let dir = try TemporaryDirectory()
        let input = try Self.input(dir)
        let writer = try probeWriter(dir.file("end.h5"), listing: input.listing)
        let model = ProbeModel(height: 32, width: 32)
        let report = try Self.engine(
            input, writer: writer, model: model, settings: StreamSettings(batchSize: 2, decodeWorkers: 2)
        )
        .run(from: input.listing.count)
        #expect(report.rows == 0)
        #expect(model.calls == 0)
    }
}

/// Decode workers lower their own priority only: the nice value of the calling thread rises, the
/// process's other threads keep theirs.
@Suite struct DecodeWorkerPriority {
    @Test func lowersTheCallingThreadOnly() throws {
        #if os(Linux)
            let main = try #require(ThreadPriority.currentThreadID())
            let before = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), main)
            let result = PriorityProbe()
            let thread = Thread {
                guard let tid = ThreadPriority.currentThreadID() else { return }
                let own = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid)
                ThreadPriority.lowerCurrentThread(by: 3)
                let after = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid)
                result.set((own, after))
            }
            thread.start()
            while !thread.isFinished { usleep(1000) }
            let (own, after) = try #require(result.get())
            #expect(after == min(19, own + 3))
            #expect(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), main) == before)
        #endif
    }
}

/// What the probe thread saw: its nice value before and after lowering it.
private final class PriorityProbe: @unchecked Sendable {
    private let lock = NSLock()
    private var value: (Int32, Int32)?
    func set(_ v: (Int32, Int32)) { lock.withLock { value = v } }
    func get() -> (Int32, Int32)? { lock.withLock { value } }
}
