import Foundation
import LinprobeCheckpoint
import LinprobeCore

/// An array read a row range at a time (rows = its first dimension): a `.npy` file or `.npz`
/// entry, a tensor of a `torch.save` file, VISSL's shards merged by index, or values in memory.
protocol RowSource: AnyObject {
    /// The file (and key) it comes from, for messages.
    var what: String { get }
    /// The whole shape, rows first.
    var shape: [Int] { get }
    func readFloats(_ range: Range<Int>, into buffer: UnsafeMutableBufferPointer<Float>) throws
    func readInt64(_ range: Range<Int>) throws -> [Int64]
}

extension RowSource {
    var rows: Int { shape.first ?? 0 }
    /// Values per row (the product of the other dimensions).
    var rowElements: Int { MemoryBudget.product(Array(shape.dropFirst())) ?? 0 }
}

/// Strings read a row range at a time (image paths).
protocol StringSource: AnyObject {
    var what: String { get }
    var count: Int { get }
    func strings(_ range: Range<Int>) throws -> [String]
}

/// A `.npy` array (a file, or an uncompressed `.npz` entry at an offset of its file).
final class NPYRows: RowSource, StringSource {
    let file: NPYFile
    let what: String

    init(_ file: NPYFile, what: String) {
        self.file = file
        self.what = what
    }

    var shape: [Int] { file.shape }
    var count: Int { file.rows }

    func readFloats(_ range: Range<Int>, into buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard !file.isText else { throw LinprobeError(.incompatible, "\(what): holds strings, not numbers") }
        try file.readFloats(rows: range, into: buffer)
    }

    func readInt64(_ range: Range<Int>) throws -> [Int64] {
        guard !file.isText else { throw LinprobeError(.incompatible, "\(what): holds strings, not integers") }
        return try file.readInt64(rows: range)
    }

    func strings(_ range: Range<Int>) throws -> [String] { try file.readStrings(rows: range) }
}

/// A tensor of a `torch.save` file (a view into the memory-mapped file).
final class TensorRows: RowSource {
    let tensor: CheckpointTensor
    let what: String

    init(_ tensor: CheckpointTensor, what: String) {
        self.tensor = tensor
        self.what = what
    }

    var shape: [Int] { tensor.shape }

    func readFloats(_ range: Range<Int>, into buffer: UnsafeMutableBufferPointer<Float>) throws {
        let values = try tensor.rows(range).floats()
        guard values.count <= buffer.count else { throw LinprobeError(.usage, "\(what): buffer too small") }
        for (i, v) in values.enumerated() { buffer[i] = v }
    }

    func readInt64(_ range: Range<Int>) throws -> [Int64] {
        let view = try tensor.rows(range)
        if view.dtype.isFloatingPoint {
            let values = view.floats()
            if let bad = values.first(where: { $0 != $0.rounded() || !$0.isFinite }) {
                throw LinprobeError(.corruptInput, "\(what): value \(bad) is not an integer")
            }
            return values.map { Int64($0) }
        }
        return view.integers()
    }
}

/// Integers (or strings) held in memory: merged indices, a torch list of paths.
final class MemoryRows: RowSource, StringSource {
    let what: String
    let shape: [Int]
    let values: [Int64]
    let texts: [String]

    init(_ values: [Int64], what: String) {
        self.what = what
        shape = [values.count]
        self.values = values
        texts = []
    }

    init(strings: [String], what: String) {
        self.what = what
        shape = [strings.count]
        values = []
        texts = strings
    }

    var count: Int { shape[0] }

    func readFloats(_ range: Range<Int>, into buffer: UnsafeMutableBufferPointer<Float>) throws {
        for (i, r) in range.enumerated() { buffer[i] = Float(values[r]) }
    }

    func readInt64(_ range: Range<Int>) throws -> [Int64] { Array(values[range]) }

    func strings(_ range: Range<Int>) throws -> [String] { Array(texts[range]) }
}
