import Foundation
import LinprobeCore

/// A folder written by VISSL's `extract_features` engine (`vissl/trainer/trainer_main.py`): per
/// rank, chunk, split and layer `<prefix>_<split>_<layer>_{features,targets,inds}.npy`, with
/// `<prefix>` = `rank<R>_chunk<C>`. Merged as VISSL's `ExtractedFeaturesLoader.load_features`
/// does: every shard's rows keyed by their dataset index (so the copies DistributedSampler pads
/// the last batch with collapse into one row, the last shard in (rank, chunk) order winning, as
/// the last write wins in VISSL's dict), then ordered by index.
struct VISSLDump {
    /// One shard's three files.
    struct Shard {
        var prefix: String
        var features: String
        var targets: String
        var indices: String
    }

    let folder: String
    let split: String
    /// Layer name → its shards, in (rank, chunk) order.
    let shards: [String: [Shard]]

    /// Whether `folder` holds VISSL feature files of `split`.
    static func holds(_ folder: String, split: String) -> Bool {
        (try? FileManager.default.contentsOfDirectory(atPath: folder))?.contains {
            $0.hasSuffix("_features.npy") && $0.contains("_\(split)_")
        } ?? false
    }

    init(folder: String, split: String) throws {
        self.folder = folder
        self.split = split
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
            throw LinprobeError(.missingInput, "\(folder): cannot list the folder (\(oneLine(error)))")
        }
        let present = Set(names)
        var found: [String: [Shard]] = [:]
        for name in names where name.hasSuffix("_features.npy") {
            let stem = String(name.dropLast("_features.npy".count))
            guard let r = stem.range(of: "_\(split)_"), r.lowerBound > stem.startIndex else { continue }
            let prefix = String(stem[..<r.lowerBound])
            let layer = String(stem[r.upperBound...])
            guard !layer.isEmpty else { continue }
            let base = "\(prefix)_\(split)_\(layer)"
            for needed in ["\(base)_targets.npy", "\(base)_inds.npy"] where !present.contains(needed) {
                throw LinprobeError(
                    .missingInput,
                    "\(Paths.join(folder, needed)): missing beside \(name); VISSL writes features, targets and inds for every shard"
                )
            }
            found[layer, default: []].append(
                Shard(
                    prefix: prefix, features: Paths.join(folder, name),
                    targets: Paths.join(folder, "\(base)_targets.npy"), indices: Paths.join(folder, "\(base)_inds.npy"))
            )
        }
        shards = found.mapValues { $0.sorted { Self.shardOrder($0.prefix, $1.prefix) } }
    }

    var layers: [String] { shards.keys.sorted() }

    /// `rank2_chunk10` before `rank10_chunk0`: numbers compared as numbers.
    static func shardOrder(_ a: String, _ b: String) -> Bool {
        let na = numbers(a)
        let nb = numbers(b)
        return na != nb ? na.lexicographicallyPrecedes(nb) : a < b
    }

    private static func numbers(_ s: String) -> [Int] {
        s.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    }

    /// The merge of one layer's shards: for each output row (ascending dataset index) the shard
    /// and row it comes from; and how many padded copies were dropped.
    struct Merge {
        var order: [(shard: Int, row: Int)]
        var indices: [Int64]
        var duplicates: Int
        /// Every shard's inds, to check that the other layers come from the same rows.
        var shardIndices: [[Int64]]
    }

    func merge(layer: String) throws -> Merge {
        let list = shards[layer] ?? []
        var shardIndices: [[Int64]] = []
        var entries: [(index: Int64, shard: Int, row: Int)] = []
        for (s, shard) in list.enumerated() {
            let file = try NPYFile(path: shard.indices)
            guard file.shape.count == 1 || file.rowElements == 1 else {
                throw LinprobeError(
                    .corruptInput, "\(shard.indices): inds must be [N] dataset indices, found shape \(file.shape)")
            }
            let inds = try file.readInt64(rows: 0..<file.rows)
            shardIndices.append(inds)
            for (r, i) in inds.enumerated() { entries.append((i, s, r)) }
        }
        // By index; for one index, the last shard (then row) wins, as the last write in VISSL's dict.
        entries.sort { ($0.index, $0.shard, $0.row) < ($1.index, $1.shard, $1.row) }
        var order: [(shard: Int, row: Int)] = []
        var indices: [Int64] = []
        for (k, e) in entries.enumerated() where k + 1 == entries.count || entries[k + 1].index != e.index {
            order.append((e.shard, e.row))
            indices.append(e.index)
        }
        return Merge(
            order: order, indices: indices, duplicates: entries.count - order.count, shardIndices: shardIndices)
    }
}

/// One array of a VISSL dump (a layer's features, or the targets) in merged order: output rows
/// gathered from the shards, each shard read in runs of consecutive rows.
final class MergedRows: RowSource {
    let what: String
    let shape: [Int]
    private let files: [NPYFile]
    private let order: [(shard: Int, row: Int)]

    init(files: [NPYFile], order: [(shard: Int, row: Int)], what: String) throws {
        guard let first = files.first else { throw LinprobeError(.missingInput, "\(what): no shard files") }
        let tail = Array(first.shape.dropFirst())
        for f in files where Array(f.shape.dropFirst()) != tail {
            throw LinprobeError(
                .incompatible, "\(f.path): shape \(f.shape) differs from \(first.path)'s \(first.shape) beyond the rows"
            )
        }
        self.files = files
        self.order = order
        self.what = what
        shape = [order.count] + tail
    }

    func readFloats(_ range: Range<Int>, into buffer: UnsafeMutableBufferPointer<Float>) throws {
        let width = rowElements
        if range.isEmpty { return }
        guard let base = buffer.baseAddress, buffer.count >= range.count * width else {
            throw LinprobeError(.usage, "\(what): a buffer of \(buffer.count) values for \(range.count) rows")
        }
        try gather(range) { file, rows, positions in
            let temp = FloatBuffer(count: rows.count * width)
            try file.readFloats(rows: rows, into: temp.buffer)
            for (k, p) in positions.enumerated() {
                (base + p * width).update(from: temp.pointer + k * width, count: width)
            }
        }
    }

    func readInt64(_ range: Range<Int>) throws -> [Int64] {
        let width = rowElements
        var out = [Int64](repeating: 0, count: range.count * width)
        try gather(range) { file, rows, positions in
            let values = try file.readInt64(rows: rows)
            for (k, p) in positions.enumerated() {
                for j in 0..<width { out[p * width + j] = values[k * width + j] }
            }
        }
        return out
    }

    /// Calls `body` with runs of consecutive shard rows and the output positions they fill.
    private func gather(_ range: Range<Int>, _ body: (NPYFile, Range<Int>, [Int]) throws -> Void) throws {
        var byShard: [Int: [(row: Int, position: Int)]] = [:]
        for (p, o) in order[range].enumerated() { byShard[o.shard, default: []].append((o.row, p)) }
        for shard in byShard.keys.sorted() {
            let list = (byShard[shard] ?? []).sorted { $0.row < $1.row }
            var start = 0
            while start < list.count {
                var end = start + 1
                while end < list.count, list[end].row == list[end - 1].row + 1 { end += 1 }
                let rows = list[start].row..<(list[end - 1].row + 1)
                try body(files[shard], rows, list[start..<end].map(\.position))
                start = end
            }
        }
    }
}
