import Dispatch
import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// The k most similar training rows (by inner product) of every test row, best first.
public struct Neighbours: Sendable {
    public let k: Int
    public let queries: Int
    /// `queries × k` similarities, each row descending.
    public var similarities: [Float]
    /// `queries × k` training rows (equal similarities: the lower row first).
    public var rows: [Int32]

    /// Similarity and training row of neighbour `j` (0-based) of test row `q`.
    public func neighbour(_ q: Int, _ j: Int) -> (similarity: Float, row: Int) {
        (similarities[q * k + j], Int(rows[q * k + j]))
    }
}

/// How a search was laid out and how long it took.
public struct SearchFigures: Sendable, Equatable {
    /// Test rows held at once, training rows read at once, test rows per GEMM tile.
    public var queryBlock: Int
    public var trainChunk: Int
    public var tile: Int
    public var threads: Int
    public var seconds: Double
    /// Train × test inner products computed.
    public var similarities: Double

    public var similaritiesPerSecond: Double { seconds > 0 ? similarities / seconds : 0 }
}

/// Brute-force nearest-neighbour search over a training store that streams: the test rows are
/// held in blocks, the training rows are read chunk by chunk (the next one while the current one
/// is searched), and each worker thread multiplies a tile of test rows by the chunk (one
/// single-threaded GEMM) and pushes the similarities into the tile's bounded heaps (one per test
/// row, `k` entries). Memory is the test block, two training chunks, one similarity tile per
/// worker and the heaps — independent of the training-set size.
public enum NeighbourSearch {
    /// Test rows per GEMM tile: a 128 × chunk similarity tile stays in a core's cache.
    static let tileRows = 128

    public struct Layout: Sendable, Equatable {
        public var queryBlock: Int
        public var trainChunk: Int
        public var tile: Int
    }

    /// Splits `memoryBytes` between the test block (rows + heaps), two training chunks (one read
    /// while the other is searched) and the workers' similarity tiles. Nothing here depends on
    /// more than `trainChunk` training rows.
    public static func layout(
        queries: Int, trainRows: Int, dim: Int, k: Int, threads: Int, memoryBytes: Int, storeChunk: Int?
    ) -> Layout {
        let rowBytes = max(1, dim) * 4
        var chunk = min(8192, max(256, memoryBytes / 8 / rowBytes))
        if let c = storeChunk, c > 0, c < chunk { chunk = (chunk / c) * c }
        chunk = max(1, min(chunk, trainRows))
        let tile = max(1, min(tileRows, queries))
        let fixed = 2 * chunk * rowBytes + threads * tile * chunk * 4
        let perQuery = rowBytes + k * 8
        let block = max(tile, min(queries, (memoryBytes - fixed) / perQuery))
        return Layout(queryBlock: max(1, block), trainChunk: chunk, tile: tile)
    }

    /// Searches `layer` of `test` among the rows of `train`.
    ///
    /// - Parameters:
    ///   - k: neighbours kept per test row (at most the training rows).
    ///   - normalize: L2-normalise every row first (`x / max(‖x‖, 1e-12)`, as torch's F.normalize).
    ///   - progress: training rows searched so far and in all (over every test block).
    public static func run(
        train: FeatureStoreReader, test: FeatureStoreReader, layer: String, k: Int, normalize: Bool,
        threads: Int, memoryBytes: Int, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> (Neighbours, SearchFigures) {
        let info = try train.layer(layer)
        let dim = info.dim
        let (m, n) = (test.count, train.count)
        guard k >= 1, k <= n else {
            throw LinprobeError(
                .incompatible, "\(train.path): \(n) training rows, fewer than the k = \(k) neighbours asked for")
        }
        let workers = max(1, threads)
        let plan = layout(
            queries: m, trainRows: n, dim: dim, k: k, threads: workers, memoryBytes: memoryBytes,
            storeChunk: info.chunkRows)
        let start = Date()
        var result = Neighbours(
            k: k, queries: m, similarities: [Float](repeating: 0, count: m * k),
            rows: [Int32](repeating: -1, count: m * k))
        let blocks = (m + plan.queryBlock - 1) / max(1, plan.queryBlock)
        let before = BLAS.threads
        BLAS.setThreads(1)
        defer { BLAS.setThreads(before) }
        let query = FloatBuffer(count: min(m, plan.queryBlock) * dim)
        let tiles = (0..<workers).map { _ in FloatBuffer(count: plan.tile * plan.trainChunk) }
        let chunks = stride(from: 0, to: n, by: plan.trainChunk).map { $0..<min(n, $0 + plan.trainChunk) }
        var done = 0
        for q0 in stride(from: 0, to: m, by: plan.queryBlock) {
            let qn = min(plan.queryBlock, m - q0)
            try test.readFeatures(layer: layer, rows: q0..<(q0 + qn), into: query.buffer)
            if normalize { normalizeRows(query.pointer, rows: qn, dim: dim, threads: workers) }
            let heaps = Heaps(count: qn, k: k)
            let prefetch = ChunkPrefetcher(chunks: chunks, dim: dim) { rows, into in
                try train.readFeatures(layer: layer, rows: rows, into: into)
                if normalize, let base = into.baseAddress {
                    normalizeRows(base, rows: rows.count, dim: dim, threads: 1)
                }
            }
            for (c, rows) in chunks.enumerated() {
                let chunk = try prefetch.take(c)
                let work = TileWork(
                    query: query.pointer, chunk: chunk, dim: dim, queries: qn, trainRows: rows.count,
                    firstRow: rows.lowerBound, tile: plan.tile, heaps: heaps)
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    work.run(worker: w, of: workers, tile: tiles[w].pointer)
                }
                done += rows.count
                progress(done, n * blocks)
            }
            heaps.sorted(into: &result, from: q0)
        }
        let figures = SearchFigures(
            queryBlock: plan.queryBlock, trainChunk: plan.trainChunk, tile: plan.tile, threads: workers,
            seconds: Date().timeIntervalSince(start), similarities: Double(m) * Double(n))
        return (result, figures)
    }

    /// Divides each row by max(‖row‖₂, 1e-12), rows split over `threads`.
    static func normalizeRows(_ p: UnsafeMutablePointer<Float>, rows: Int, dim: Int, threads: Int) {
        let box = UncheckedPointer(p)
        let parts = max(1, min(threads, rows))
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lo = rows * part / parts
            let hi = rows * (part + 1) / parts
            for r in lo..<hi {
                let row = box.pointer + r * dim
                let norm = max(BLAS.sdot(dim, row, row).squareRoot(), 1e-12)
                for j in 0..<dim { row[j] /= norm }
            }
        }
    }
}

/// Reads the training chunks one ahead of the search, on a thread of its own (the only thread
/// reading the store meanwhile), into two buffers taken in turn: reading chunk c + 1 overlaps the
/// GEMMs of chunk c. `take(c)` waits for chunk c, starts chunk c + 1 and rethrows a read error.
final class ChunkPrefetcher: @unchecked Sendable {
    private let chunks: [Range<Int>]
    private let dim: Int
    private let read: (Range<Int>, UnsafeMutableBufferPointer<Float>) throws -> Void
    private let buffers: [FloatBuffer]
    private let slots: [Slot]
    private let queue = DispatchQueue(label: "linprobe.knn.prefetch")

    /// What one buffer's last read left: its completion and its error.
    private final class Slot: @unchecked Sendable {
        let done = DispatchGroup()
        var error: (any Error)?
    }

    init(
        chunks: [Range<Int>], dim: Int, read: @escaping (Range<Int>, UnsafeMutableBufferPointer<Float>) throws -> Void
    ) {
        self.chunks = chunks
        self.dim = dim
        self.read = read
        let rows = chunks.map(\.count).max() ?? 0
        buffers = (0..<min(2, chunks.count)).map { _ in FloatBuffer(count: rows * dim) }
        slots = buffers.map { _ in Slot() }
        start(0)
    }

    private func start(_ c: Int) {
        guard c < chunks.count else { return }
        let slot = slots[c % 2]
        let buffer = buffers[c % 2]
        let rows = chunks[c]
        slot.done.enter()
        queue.async { [self] in
            do {
                try read(rows, UnsafeMutableBufferPointer(start: buffer.pointer, count: rows.count * dim))
            } catch {
                slot.error = error
            }
            slot.done.leave()
        }
    }

    /// Chunk c's rows, once read; the read of chunk c + 1 starts before this returns.
    func take(_ c: Int) throws -> UnsafeMutablePointer<Float> {
        let slot = slots[c % 2]
        slot.done.wait()
        if let error = slot.error { throw error }
        start(c + 1)
        return buffers[c % 2].pointer
    }

    deinit {
        // A search stopped by an error leaves no read running into a freed buffer.
        for slot in slots { slot.done.wait() }
    }
}

/// One training chunk against one test block: tile i goes to worker i mod workers.
private struct TileWork: @unchecked Sendable {
    let query: UnsafeMutablePointer<Float>
    let chunk: UnsafeMutablePointer<Float>
    let dim: Int
    let queries: Int
    let trainRows: Int
    let firstRow: Int
    let tile: Int
    let heaps: Heaps

    func run(worker: Int, of workers: Int, tile sims: UnsafeMutablePointer<Float>) {
        let tiles = (queries + tile - 1) / tile
        for t in stride(from: worker, to: tiles, by: workers) {
            let r0 = t * tile
            let rn = min(tile, queries - r0)
            BLAS.sgemm(
                .none, .transpose, m: rn, n: trainRows, k: dim, a: query + r0 * dim, b: chunk, c: sims)
            for r in 0..<rn {
                heaps.push(query: r0 + r, similarities: sims + r * trainRows, count: trainRows, firstRow: firstRow)
            }
        }
    }
}

/// A pointer carried into `concurrentPerform` (callers hand out disjoint rows).
private struct UncheckedPointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

/// One bounded min-heap per test row: the root is the worst of the k kept (lowest similarity;
/// among equal similarities, the highest training row), so a new row enters only when it is
/// strictly more similar than the root. Training rows arrive in increasing order, so equal
/// similarities keep the lower row. Test rows are disjoint between threads.
final class Heaps: @unchecked Sendable {
    let k: Int
    let count: Int
    private let sims: UnsafeMutablePointer<Float>
    private let rows: UnsafeMutablePointer<Int32>
    /// Entries held per heap (raw memory: threads write disjoint entries).
    private let filled: UnsafeMutablePointer<Int>

    init(count: Int, k: Int) {
        self.k = k
        self.count = count
        sims = .allocate(capacity: max(1, count * k))
        rows = .allocate(capacity: max(1, count * k))
        filled = .allocate(capacity: max(1, count))
        filled.initialize(repeating: 0, count: max(1, count))
    }

    deinit {
        sims.deallocate()
        rows.deallocate()
        filled.deallocate()
    }

    /// Whether entry a is worse than entry b.
    @inline(__always) private func worse(
        _ hs: UnsafeMutablePointer<Float>, _ hr: UnsafeMutablePointer<Int32>, _ a: Int, _ b: Int
    ) -> Bool {
        hs[a] < hs[b] || (hs[a] == hs[b] && hr[a] > hr[b])
    }

    func push(query q: Int, similarities p: UnsafePointer<Float>, count n: Int, firstRow: Int) {
        let hs = sims + q * k
        let hr = rows + q * k
        var size = filled[q]
        var j = 0
        while size < k && j < n {
            hs[size] = p[j]
            hr[size] = Int32(firstRow + j)
            var c = size
            while c > 0 {
                let parent = (c - 1) / 2
                guard worse(hs, hr, c, parent) else { break }
                hs.swapAt(c, parent, hr)
                c = parent
            }
            size += 1
            j += 1
        }
        if size == k {
            var threshold = hs[0]
            while j < n {
                let s = p[j]
                if s > threshold {
                    hs[0] = s
                    hr[0] = Int32(firstRow + j)
                    siftDown(hs, hr)
                    threshold = hs[0]
                }
                j += 1
            }
        }
        filled[q] = size
    }

    private func siftDown(_ hs: UnsafeMutablePointer<Float>, _ hr: UnsafeMutablePointer<Int32>) {
        var c = 0
        while true {
            let l = 2 * c + 1
            if l >= k { return }
            var w = l
            if l + 1 < k && worse(hs, hr, l + 1, l) { w = l + 1 }
            guard worse(hs, hr, w, c) else { return }
            hs.swapAt(c, w, hr)
            c = w
        }
    }

    /// Writes every heap, best first, into rows `from…` of `out`.
    func sorted(into out: inout Neighbours, from first: Int) {
        for q in 0..<count {
            let size = filled[q]
            var entries = (0..<size).map { (sims[q * k + $0], rows[q * k + $0]) }
            entries.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            for (j, e) in entries.enumerated() {
                out.similarities[(first + q) * k + j] = e.0
                out.rows[(first + q) * k + j] = e.1
            }
        }
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    /// Swaps entries `a` and `b` here and in the parallel row array.
    @inline(__always) fileprivate func swapAt(_ a: Int, _ b: Int, _ rows: UnsafeMutablePointer<Int32>) {
        let s = self[a]
        self[a] = self[b]
        self[b] = s
        let r = rows[a]
        rows[a] = rows[b]
        rows[b] = r
    }
}
