import Foundation
import LinprobeCodecs
import LinprobeCore
import LinprobeData
import LinprobeStore
import LinprobeTrunk

/// An image that could not be decoded; VISSL's gray image was used in its place.
public struct UnreadableRecord: Sendable, Equatable {
    /// Store row (several rows per sample with augmented views).
    public var row: Int
    /// The sample's index in the dataset listing.
    public var sampleIndex: Int
    /// Path relative to the dataset root.
    public var path: String
    /// Why it could not be read.
    public var reason: String

    public init(row: Int, sampleIndex: Int, path: String, reason: String) {
        self.row = row
        self.sampleIndex = sampleIndex
        self.path = path
        self.reason = reason
    }
}

/// How the engine streams: batch size, decode parallelism, read-ahead and durability.
public struct StreamSettings: Sendable, Equatable {
    /// Rows per trunk forward pass (`DATA.<SPLIT>.BATCHSIZE_PER_REPLICA`); results do not depend
    /// on it (BatchNorm is folded, the trunk is in eval mode).
    public var batchSize: Int
    /// Threads decoding and transforming images while the trunk runs; 0 decodes on the trunk's
    /// thread between batches (PyTorch's `num_workers=0`).
    public var decodeWorkers: Int
    /// Batches decoded ahead beyond one per worker (bounds memory: every batch in flight holds
    /// `batchSize × 3 × H × W` floats).
    public var readAhead: Int
    /// Seconds between `flush()` calls. 0 flushes after every batch. A flush keeps whole store
    /// chunks only, so a SIGKILL loses about this much work plus up to one chunk of rows.
    public var flushInterval: TimeInterval
    /// Stop at the first unreadable image (`--strict`, `LINPROBE.STRICT_IMAGES`).
    public var strict: Bool
    /// Images of more pixels are unreadable before they are decoded (`LINPROBE.MAX_IMAGE_PIXELS`).
    public var maxImagePixels: Int

    public init(
        batchSize: Int, decodeWorkers: Int, readAhead: Int = 1, flushInterval: TimeInterval = 5, strict: Bool = false,
        maxImagePixels: Int = ImageLimits.maxPixels
    ) {
        self.batchSize = max(1, batchSize)
        self.decodeWorkers = max(0, decodeWorkers)
        self.readAhead = max(0, readAhead)
        self.flushInterval = max(0, flushInterval)
        self.strict = strict
        self.maxImagePixels = maxImagePixels
    }
}

/// What one run of the engine did.
public struct StreamReport: Sendable {
    /// Rows this run appended (from the resume point to the end, or to where it stopped).
    public var rows: Int
    /// Unreadable images met by this run, in row order.
    public var unreadable: [UnreadableRecord]
    /// Wall time of the run and of its parts on the trunk's thread.
    public var seconds: Double
    public var forwardSeconds: Double
    public var waitSeconds: Double
    public var writeSeconds: Double

    public var rowsPerSecond: Double { seconds > 0 ? Double(rows) / seconds : 0 }
}

/// Why the engine stopped early (the caller turns these into one-line errors).
public enum StreamStop: Error, Sendable {
    /// `strict` and an image could not be read; rows before its batch were appended.
    case unreadable(UnreadableRecord, rowsAppended: Int)
    /// `shouldStop` returned true (SIGINT/SIGTERM); rows before the current batch were appended.
    case interrupted(rowsAppended: Int)
}

/// Streams rows of a dataset through a model into a feature store:
///
///     decode workers ──► bounded read-ahead ──► reorder by batch number ──► forward ──► append
///
/// Row r is view `r mod K` of sample `r / K` (K augmented views per sample, sample-major).
/// Batches are `[start + j·B, start + (j+1)·B)`; each worker claims the next batch number,
/// decodes and transforms its rows into one of a fixed pool of input buffers, and hands it
/// over; the trunk's thread takes batches strictly in order, so rows reach the store in dataset
/// order whatever order workers finish in. Memory is fixed: `decodeWorkers + readAhead` input
/// buffers (or one without workers), one output buffer per layer, and the store's chunk buffer.
final class ExtractionEngine: @unchecked Sendable {
    let listing: DatasetListing
    let views: Int
    let pipeline: TransformPipeline
    let grayImageSize: Int
    let seed: UInt64
    let model: FeatureModel
    let writer: FeatureStoreWriter
    let settings: StreamSettings
    let shouldStop: @Sendable () -> Bool
    let progress: (Int) -> Void

    /// The rows this engine streams (of the split's `listing.count × views`): all of them, or one
    /// shard's contiguous range. Row numbers stay the split's, so a shard's batches and samples are
    /// those of an unsharded run.
    let rowRange: Range<Int>

    var totalRows: Int { rowRange.count }
    private var imageFloats: Int { 3 * model.inputHeight * model.inputWidth }

    init(
        listing: DatasetListing, views: Int, pipeline: TransformPipeline, grayImageSize: Int, seed: UInt64,
        model: FeatureModel, writer: FeatureStoreWriter, settings: StreamSettings,
        rows: Range<Int>? = nil, shouldStop: @escaping @Sendable () -> Bool = { false },
        progress: @escaping (Int) -> Void = { _ in }
    ) {
        self.listing = listing
        self.views = max(1, views)
        self.rowRange = rows ?? 0..<(listing.count * max(1, views))
        self.pipeline = pipeline
        self.grayImageSize = grayImageSize
        self.seed = seed
        self.model = model
        self.writer = writer
        self.settings = settings
        self.shouldStop = shouldStop
        self.progress = progress
    }

    /// Appends rows `rowRange.lowerBound + startRow ..< rowRange.upperBound` to the writer (the caller flushes and finishes).
    func run(from startRow: Int) throws -> StreamReport {
        precondition(startRow >= 0 && startRow <= totalRows, "start row \(startRow) outside 0...\(totalRows)")
        let clock = Date()
        // Never more than the rows left: a batch larger than the split is one batch of every row,
        // and its buffers are sized by the rows, not by the configured batch.
        let batchSize = max(1, min(settings.batchSize, totalRows - startRow))
        let batchCount = (totalRows - startRow + batchSize - 1) / batchSize
        let coordinator = Coordinator(batchCount: batchCount)
        let workers = settings.decodeWorkers
        let bufferCount = workers == 0 ? 1 : workers + settings.readAhead
        try checkBuffers(batchSize: batchSize, bufferCount: bufferCount)
        let buffers = (0..<bufferCount).map { _ in InputBatch(floats: batchSize * imageFloats) }
        coordinator.free = buffers
        defer { buffers.forEach { $0.release() } }

        let total = rowRange.upperBound
        let first = rowRange.lowerBound + startRow
        let rows: @Sendable (Int) -> Range<Int> = { j in
            let lo = first + j * batchSize
            return lo..<min(total, lo + batchSize)
        }

        // Decode workers (plain threads: the trunk uses Dispatch's pool for its own workers), at a
        // lower priority than the trunk's threads (see `ThreadPriority`).
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            let loader = makeLoader()
            let thread = Thread {
                defer { group.leave() }
                ThreadPriority.lowerCurrentThread(by: ThreadPriority.decodeNiceIncrement)
                while let (j, batch) = coordinator.claim() {
                    self.fill(batch, rows: rows(j), loader: loader, coordinator: coordinator)
                    coordinator.deliver(j, batch)
                }
            }
            thread.name = "linprobe-decode"
            thread.stackSize = 1 << 20
            thread.start()
        }
        defer {
            coordinator.stop()
            group.wait()
        }
        let inlineLoader = workers == 0 ? makeLoader() : nil

        let dims = model.outputDimensions
        let outputs = dims.map { d -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, d * batchSize))
            p.initialize(repeating: 0, count: max(1, d * batchSize))
            return p
        }
        defer { outputs.forEach { $0.deallocate() } }

        var report = StreamReport(
            rows: 0, unreadable: [], seconds: 0, forwardSeconds: 0, waitSeconds: 0, writeSeconds: 0)
        var lastFlush = Date()
        for j in 0..<batchCount {
            let range = rows(j)
            let waitStart = Date()
            let batch: InputBatch
            if let inlineLoader {
                batch = buffers[0]
                fill(batch, rows: range, loader: inlineLoader, coordinator: coordinator)
            } else {
                guard let b = coordinator.take(j, shouldStop: shouldStop) else {
                    throw StreamStop.interrupted(rowsAppended: startRow + report.rows)
                }
                batch = b
            }
            report.waitSeconds += Date().timeIntervalSince(waitStart)
            if let error = batch.error { throw error }
            if shouldStop() { throw StreamStop.interrupted(rowsAppended: startRow + report.rows) }
            if settings.strict, let first = batch.unreadable.first {
                throw StreamStop.unreadable(first, rowsAppended: startRow + report.rows)
            }

            let n = range.count
            let forwardStart = Date()
            try model.forward(input: UnsafePointer(batch.tensor), count: n, destinations: outputs)
            report.forwardSeconds += Date().timeIntervalSince(forwardStart)

            let writeStart = Date()
            try writer.append(makeBatch(range, outputs: outputs, dims: dims, unreadable: batch.unreadable))
            report.unreadable += batch.unreadable
            report.rows += n
            coordinator.recycle(batch)
            if Date().timeIntervalSince(lastFlush) >= settings.flushInterval {
                try writer.flush()
                lastFlush = Date()
            }
            report.writeSeconds += Date().timeIntervalSince(writeStart)
            progress(n)
        }
        report.seconds = Date().timeIntervalSince(clock)
        return report
    }

    /// The engine's buffers checked against `MemoryBudget` before any is allocated: the decoded
    /// batches in flight, a batch of features three times (trunk output, store batch, writer
    /// buffer) and one store chunk of features.
    private func checkBuffers(batchSize: Int, bufferCount: Int) throws {
        let featureFloats = model.outputDimensions.reduce(0) { $0 + $1 }
        let terms = [
            [bufferCount, batchSize, imageFloats, 4], [3, batchSize, featureFloats, 4],
            [writer.chunkRows, featureFloats, 4],
        ]
        guard let excess = MemoryBudget.excess(sumOf: terms) else { return }
        let key = "DATA.\(listing.split.rawValue).BATCHSIZE_PER_REPLICA"
        throw LinprobeError.config(
            "\(key): batches of \(batchSize) images of 3×\(model.inputHeight)×\(model.inputWidth) with "
                + "\(bufferCount) in flight and their features \(excess); lower the batch size or --decode-workers")
    }

    private func makeLoader() -> SampleLoader {
        SampleLoader(
            pipeline: pipeline, grayImageSize: grayImageSize, baseSeed: seed, maxImagePixels: settings.maxImagePixels)
    }

    /// Decodes and transforms the rows of one batch into its buffer.
    private func fill(_ batch: InputBatch, rows: Range<Int>, loader: SampleLoader, coordinator: Coordinator) {
        batch.unreadable.removeAll(keepingCapacity: true)
        batch.error = nil
        let size = imageFloats
        let expected = [3, model.inputHeight, model.inputWidth]
        for (i, row) in rows.enumerated() {
            if coordinator.isStopped { return }
            let s = row / views
            let sample = listing.samples[s]
            let slot = UnsafeMutableBufferPointer(start: batch.tensor + i * size, count: size)
            do {
                let loaded = try loader.load(path: sample.path, sampleIndex: s, view: row % views, into: slot)
                guard loaded.shape == expected else {
                    throw LinprobeError(
                        .shapeMismatch,
                        "\(sample.path): the transforms gave a \(loaded.shape) tensor, expected \(expected); every image of a split must come out the same size"
                    )
                }
                if let why = loaded.unreadable {
                    batch.unreadable.append(
                        UnreadableRecord(row: row, sampleIndex: s, path: sample.relativePath, reason: why.reason))
                }
            } catch {
                batch.error = error
                return
            }
        }
    }

    /// The rows of a batch as the store takes them.
    private func makeBatch(
        _ range: Range<Int>, outputs: [UnsafeMutablePointer<Float>], dims: [Int],
        unreadable: [UnreadableRecord]
    ) -> FeatureBatch {
        let n = range.count
        let features = zip(outputs, dims).map { p, d in Array(UnsafeBufferPointer(start: p, count: n * d)) }
        var targets: [Int64] = []
        targets.reserveCapacity(n * listing.targets.width)
        var indices: [Int64] = []
        var paths: [String] = []
        indices.reserveCapacity(n)
        paths.reserveCapacity(n)
        for row in range {
            let s = row / views
            targets.append(contentsOf: listing.targets.row(s))
            indices.append(Int64(s))
            paths.append(listing.samples[s].relativePath)
        }
        var flags = [Bool](repeating: false, count: n)
        for u in unreadable { flags[u.row - range.lowerBound] = true }
        return FeatureBatch(
            count: n, features: features, targets: targets, indices: indices, imagePaths: paths,
            unreadable: unreadable.isEmpty ? [] : flags)
    }
}

/// One input buffer: `B × 3 × H × W` floats plus what decoding its rows found.
final class InputBatch: @unchecked Sendable {
    let tensor: UnsafeMutablePointer<Float>
    var unreadable: [UnreadableRecord] = []
    var error: (any Error)?

    init(floats: Int) {
        tensor = UnsafeMutablePointer<Float>.allocate(capacity: max(1, floats))
        tensor.initialize(repeating: 0, count: max(1, floats))
    }

    func release() { tensor.deallocate() }
}

/// Hands out batch numbers and free buffers to workers, and decoded batches to the trunk's
/// thread in batch order. One lock; workers block while every buffer is in flight.
private final class Coordinator: @unchecked Sendable {
    private let condition = NSCondition()
    private let batchCount: Int
    private var next = 0
    private var ready: [Int: InputBatch] = [:]
    private var stopped = false
    var free: [InputBatch] = []

    init(batchCount: Int) { self.batchCount = batchCount }

    var isStopped: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopped
    }

    /// The next batch to decode with a free buffer, or nil when there is none left (or stopped).
    func claim() -> (Int, InputBatch)? {
        condition.lock()
        defer { condition.unlock() }
        while free.isEmpty && !stopped && next < batchCount { condition.wait() }
        guard !stopped, next < batchCount else { return nil }
        let j = next
        next += 1
        return (j, free.removeLast())
    }

    func deliver(_ j: Int, _ batch: InputBatch) {
        condition.lock()
        ready[j] = batch
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for batch `j`; nil when `shouldStop` turned true while waiting.
    func take(_ j: Int, shouldStop: () -> Bool) -> InputBatch? {
        condition.lock()
        defer { condition.unlock() }
        while ready[j] == nil {
            if shouldStop() { return nil }
            _ = condition.wait(until: Date(timeIntervalSinceNow: 0.2))
        }
        return ready.removeValue(forKey: j)
    }

    func recycle(_ batch: InputBatch) {
        condition.lock()
        free.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}
