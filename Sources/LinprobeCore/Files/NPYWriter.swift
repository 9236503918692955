import Foundation

/// Writes NumPy `.npy` files (format 1.0, little-endian, C order) that `np.load` reads; the one
/// writer beside the one reader, `NPYArray`.
public enum NPYWriter {
    /// The bytes of a float64 array of `shape` (the product of `shape` must equal `values.count`).
    public static func float64(_ values: [Double], shape: [Int]) -> Data {
        precondition(
            MemoryBudget.product(shape) == values.count, "shape \(shape) does not hold \(values.count) values")
        var data = header(descr: "<f8", shape: shape)
        values.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: UInt8.self) { data.append(contentsOf: $0) }
        }
        return data
    }

    /// The bytes of a float32 array of `shape`.
    public static func float32(_ values: [Float], shape: [Int]) -> Data {
        precondition(
            MemoryBudget.product(shape) == values.count, "shape \(shape) does not hold \(values.count) values")
        var data = header(descr: "<f4", shape: shape)
        values.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: UInt8.self) { data.append(contentsOf: $0) }
        }
        return data
    }

    /// The bytes of an int64 array of `shape`.
    public static func int64(_ values: [Int64], shape: [Int]) -> Data {
        precondition(
            MemoryBudget.product(shape) == values.count, "shape \(shape) does not hold \(values.count) values")
        var data = header(descr: "<i8", shape: shape)
        values.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: UInt8.self) { data.append(contentsOf: $0) }
        }
        return data
    }

    /// Magic, version 1.0, and the header dict padded so the data starts on a 64-byte boundary.
    public static func header(descr: String, shape: [Int]) -> Data {
        let dims = shape.count == 1 ? "\(shape[0])," : shape.map(String.init).joined(separator: ", ")
        var text = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
        let unpadded = 10 + text.utf8.count + 1
        text += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(text.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(text.utf8))
        return data
    }
}
