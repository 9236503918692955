import Foundation
import LinprobeCore
import LinprobeStore

/// The labels of every test row's neighbours, read from the training store's `/targets` in
/// chunks (the neighbours' rows sorted once), so no label array of the training-set size is held.
struct NeighbourLabels {
    /// Single-label: the class of each neighbour slot (`queries × k`; −1 for an empty slot).
    var classes: [Int32] = []
    /// Multi-label: for each neighbour slot, an index into `positives` (−1 for an empty slot).
    var slotRow: [Int32] = []
    /// Multi-label: the classes marked present (1) of each distinct neighbour row.
    var positives: [[Int32]] = []
    /// The largest training label (single-label; −1 when there is none).
    var maxTrainLabel: Int64 = -1

    /// Rows of `/targets` read at once.
    static let chunkRows = 1 << 16

    static func resolve(_ neighbours: Neighbours, train: FeatureStoreReader) throws -> NeighbourLabels {
        // (row << 32 | slot), sorted: the slots of each training row, in row order.
        var pairs: [UInt64] = []
        pairs.reserveCapacity(neighbours.rows.count)
        for (slot, row) in neighbours.rows.enumerated() where row >= 0 {
            pairs.append(UInt64(row) << 32 | UInt64(slot))
        }
        pairs.sort()
        var out = NeighbourLabels()
        let width = train.targetLayout.width
        if case .singleLabel = train.targetLayout {
            out.classes = [Int32](repeating: -1, count: neighbours.rows.count)
        } else {
            out.slotRow = [Int32](repeating: -1, count: neighbours.rows.count)
        }
        var next = 0
        for start in stride(from: 0, to: train.count, by: chunkRows) {
            let rows = start..<min(train.count, start + chunkRows)
            let targets = try train.targets(rows: rows)
            if width == 1 { try out.scan(targets, first: start, path: train.path) }
            var lastRow = -1
            while next < pairs.count, Int(pairs[next] >> 32) < rows.upperBound {
                let row = Int(pairs[next] >> 32)
                let slot = Int(pairs[next] & 0xFFFF_FFFF)
                let local = row - start
                if width == 1 {
                    out.classes[slot] = Int32(clamping: targets[local])
                } else {
                    if row != lastRow {
                        let values = targets[(local * width)..<((local + 1) * width)]
                        out.positives.append(
                            values.indices.filter { values[$0] == 1 }.map { Int32($0 - local * width) })
                        lastRow = row
                    }
                    out.slotRow[slot] = Int32(out.positives.count - 1)
                }
                next += 1
            }
        }
        return out
    }

    /// Single-label training targets: every row needs a class (VISSL's vote scatters the label
    /// into a one-hot row, which fails for −1); records the largest.
    private mutating func scan(_ targets: [Int64], first: Int, path: String) throws {
        for (i, t) in targets.enumerated() {
            guard t >= 0, t < Int64(Int32.max) else {
                throw LinprobeError(
                    .incompatible,
                    "\(path): training row \(first + i) has label \(t); the kNN vote needs a class index for every training row"
                )
            }
            if t > maxTrainLabel { maxTrainLabel = t }
        }
    }
}
