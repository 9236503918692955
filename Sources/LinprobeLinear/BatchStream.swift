import Foundation
import LinprobeCore
import LinprobeStore

/// The order in which an epoch visits the training rows.
///
/// Shuffle granularity (what `LINPROBE.LINEAR.SHUFFLE_CHUNK_ROWS` controls): the store is cut
/// into blocks of contiguous rows (its HDF5 chunk height), an epoch visits the blocks in a
/// seeded random order and groups them into *shuffle chunks* of about `chunkRows` rows; the rows
/// of one shuffle chunk are held in memory and shuffled uniformly among themselves, then cut into
/// batches. When `chunkRows` ≥ N this is a uniform random permutation of all rows (what VISSL's
/// sampler draws); with smaller chunks a batch draws its rows from `chunkRows / blockRows` random
/// blocks, so rows that were stored next to each other (e.g. the same class when a store was
/// written class by class) are somewhat more likely to share a batch. Memory is bounded by
/// `chunkRows × Σ layer widths × 4` bytes.
public enum EpochOrder: Sendable {
    /// Seeded block shuffle as described above; the same seed and epoch give the same order.
    case shuffled(seed: Int, chunkRows: Int, blockRows: Int)
    /// Explicit row order per epoch (used to reproduce a reference run's batch order).
    case explicit([[Int]])

    /// The rows of epoch `epoch` in visiting order (a permutation of 0..<count).
    func rows(epoch: Int, count: Int) throws -> [Int] {
        switch self {
        case .explicit(let orders):
            guard epoch < orders.count else {
                throw LinprobeError(
                    .usage, "explicit batch order has \(orders.count) epochs, epoch \(epoch + 1) was asked for")
            }
            let order = orders[epoch]
            guard order.count == count, Set(order).count == count, order.allSatisfy({ $0 >= 0 && $0 < count }) else {
                throw LinprobeError(
                    .usage, "explicit batch order of epoch \(epoch + 1) is not a permutation of 0..<\(count)")
            }
            return order
        case .shuffled(let seed, let chunkRows, let blockRows):
            var rng = Xoshiro256(seed: seed, stream: 0x5_0FF1E, index: UInt64(epoch))
            if chunkRows >= count {
                var all = Array(0..<count)
                all.shuffle(using: &rng)
                return all
            }
            let block = max(1, blockRows)
            var blocks = Array(0..<((count + block - 1) / block))
            blocks.shuffle(using: &rng)
            var order: [Int] = []
            order.reserveCapacity(count)
            var window: [Int] = []
            for b in blocks {
                window.append(contentsOf: (b * block)..<min(count, (b + 1) * block))
                if window.count >= chunkRows {
                    window.shuffle(using: &rng)
                    order.append(contentsOf: window)
                    window.removeAll(keepingCapacity: true)
                }
            }
            window.shuffle(using: &rng)
            order.append(contentsOf: window)
            return order
        }
    }
}

/// Streams the rows of one epoch, in the order given, as batches of every needed layer.
///
/// Rows are read a *window* at a time (a whole number of batches): the window's row indices are
/// sorted, merged into contiguous runs and each run is read with one hyperslab read per layer
/// into a preallocated window buffer; batches are then gathered from it. Memory: one window
/// buffer per layer plus one batch buffer per layer.
final class BatchStream {
    let store: FeatureStoreReader
    let layers: [StoredLayerInfo]
    let batchSize: Int
    let windowRows: Int
    private let windowBuffers: [FloatBuffer]
    /// Batch matrices (batchSize × dim), one per layer.
    let batchBuffers: [FloatBuffer]
    private var slots: [Int] = []

    init(store: FeatureStoreReader, layers: [StoredLayerInfo], batchSize: Int, windowRows: Int) {
        self.store = store
        self.layers = layers
        self.batchSize = batchSize
        let w = max(batchSize, (windowRows / batchSize) * batchSize)
        self.windowRows = w
        windowBuffers = layers.map { FloatBuffer(w * $0.dim) }
        batchBuffers = layers.map { FloatBuffer(batchSize * $0.dim) }
    }

    /// Visits `order` in batches of `batchSize` (the last may be smaller). `body` receives the
    /// batch's store rows (in batch order) after the batch buffers have been filled; it may throw.
    func forEachBatch(_ order: [Int], skipBatches: Int = 0, _ body: (_ rows: ArraySlice<Int>) throws -> Void) throws {
        var start = 0
        var batchIndex = 0
        while start < order.count {
            let end = min(order.count, start + windowRows)
            let firstBatch = batchIndex
            let batches = (end - start + batchSize - 1) / batchSize
            if firstBatch + batches <= skipBatches {
                batchIndex += batches
                start = end
                continue
            }
            let window = order[start..<end]
            try readWindow(window)
            var b = start
            while b < end {
                let e = min(end, b + batchSize)
                if batchIndex >= skipBatches {
                    gather(from: b - start, count: e - b)
                    try body(order[b..<e])
                }
                batchIndex += 1
                b = e
            }
            start = end
        }
    }

    /// Reads the window's rows into the window buffers; `slots[p]` = buffer row of window position p.
    private func readWindow(_ window: ArraySlice<Int>) throws {
        let sorted = window.enumerated().map { ($0.element, $0.offset) }.sorted { $0.0 < $1.0 }
        slots = Array(repeating: 0, count: window.count)
        var runs: [(rows: Range<Int>, at: Int)] = []
        var i = 0
        while i < sorted.count {
            var j = i + 1
            while j < sorted.count && sorted[j].0 == sorted[j - 1].0 + 1 { j += 1 }
            runs.append((sorted[i].0..<(sorted[j - 1].0 + 1), i))
            for k in i..<j { slots[sorted[k].1] = k }
            i = j
        }
        for (l, layer) in layers.enumerated() {
            let buf = windowBuffers[l]
            for run in runs {
                let target = UnsafeMutableBufferPointer(
                    start: buf.pointer + run.at * layer.dim, count: run.rows.count * layer.dim)
                try store.readFiniteFeatures(layer: layer.name, rows: run.rows, into: target)
            }
        }
    }

    private func gather(from position: Int, count: Int) {
        for (l, layer) in layers.enumerated() {
            let src = windowBuffers[l].pointer
            let dst = batchBuffers[l].pointer
            for r in 0..<count {
                (dst + r * layer.dim).update(from: src + slots[position + r] * layer.dim, count: layer.dim)
            }
        }
    }
}

extension FeatureStoreReader {
    /// Reads `rows` of `layer` (row-major, the layer's width per row) and refuses a non-finite
    /// value with one line naming the store, the layer and the first bad row: a NaN or Inf in the
    /// features is the store's fault, not the learning rate's (the heads would only "diverge").
    func readFiniteFeatures(layer: String, rows: Range<Int>, into target: UnsafeMutableBufferPointer<Float>) throws {
        try readFeatures(layer: layer, rows: rows, into: target)
        guard let bad = target.firstIndex(where: { !$0.isFinite }) else { return }
        let width = max(1, target.count / max(1, rows.count))
        throw LinprobeError(
            .corruptInput,
            "\(path): layer \(layer) row \(rows.lowerBound + bad / width) column \(bad % width) holds \(target[bad]) "
                + "(NaN or Inf features); re-extract the store or drop the layer")
    }

    /// Labels as the heads need them, validated against the number of outputs.
    func linearLabels(multiLabel: Bool, classes: Int, ignoreIndex: Int) throws -> Labels {
        let raw = try targets()
        switch targetLayout {
        case .singleLabel:
            guard !multiLabel else {
                throw LinprobeError(
                    .incompatible,
                    "\(path): the multi-label loss needs [N, C] targets, this store has single labels; set LINPROBE.LINEAR.MULTI_LABEL=false"
                )
            }
            var out = [Int32](repeating: 0, count: count)
            for (row, t) in raw.prefix(count).enumerated() {
                if t == Int64(ignoreIndex) {
                    out[row] = Int32(truncatingIfNeeded: ignoreIndex)
                    continue
                }
                guard t >= 0, t < Int64(classes) else {
                    throw LinprobeError(
                        .corruptInput,
                        "\(path): row \(row) has label \(t), outside the heads' class range 0…\(classes - 1) (ignore_index is \(ignoreIndex)); check num_classes and the heads' dims"
                    )
                }
                out[row] = Int32(t)
            }
            return Labels(storage: .single(out), count: count)
        case .multiLabel(let c):
            guard multiLabel else {
                throw LinprobeError(
                    .incompatible,
                    "\(path): the store has multi-label [N, \(c)] targets; use the multi-label loss (LINPROBE.LINEAR.MULTI_LABEL=true)"
                )
            }
            guard c == classes else {
                throw LinprobeError.config(
                    "MODEL.HEAD.PARAMS: heads have \(classes) outputs but \(path) has \(c) label columns")
            }
            var out = [Int8](repeating: 0, count: count * c)
            for i in 0..<(count * c) {
                let t = raw[i]
                guard t == -1 || t == 0 || t == 1 else {
                    throw LinprobeError(
                        .corruptInput,
                        "\(path): row \(i / c), class \(i % c) has target \(t); multi-label targets must be 1, 0 or -1")
                }
                out[i] = Int8(t)
            }
            return Labels(storage: .multi(out, classes: c), count: count)
        }
    }
}
