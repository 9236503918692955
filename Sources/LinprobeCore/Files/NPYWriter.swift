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

    /// The data bytes of `strings` as NumPy unicode elements (`<U<width>`): UTF-32LE, NUL-padded.
    public static func unicodeElements(_ strings: [String], width: Int) -> Data {
        var data = Data(count: strings.count * width * 4)
        data.withUnsafeMutableBytes { out in
            for (i, s) in strings.enumerated() {
                for (k, scalar) in s.unicodeScalars.prefix(width).enumerated() {
                    out.storeBytes(of: scalar.value.littleEndian, toByteOffset: (i * width + k) * 4, as: UInt32.self)
                }
            }
        }
        return data
    }

    /// Magic, version 1.0, and the header dict padded so the data starts on a 64-byte boundary.
    public static func header(descr: String, shape: [Int]) -> Data {
        let dims =
            shape.count == 1 ? "\(shape[0])," : shape.map(String.init).joined(separator: ", ")
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

extension NPYWriter {
    /// A `.npy` file written as a stream: the header (whose shape is known), then the data block
    /// by block. It is written to `<path>.partial` and renamed when `finish` finds every byte in,
    /// so a stopped export never leaves a file that looks whole.
    public final class Stream {
        public let path: String
        private let partial: String
        private let handle: FileHandle
        private var remaining: Int

        /// - Parameters:
        ///   - descr: NumPy's dtype text (`<f4`, `<i8`, `<U12`).
        ///   - itemSize: bytes per element.
        public init(path: String, descr: String, shape: [Int], itemSize: Int) throws {
            self.path = path
            partial = path + ".partial"
            guard let count = MemoryBudget.product(shape + [itemSize]) else {
                throw LinprobeError(.usage, "\(path): shape \(shape) overflows")
            }
            remaining = count
            guard FileManager.default.createFile(atPath: partial, contents: nil),
                let handle = FileHandle(forWritingAtPath: partial)
            else {
                throw LinprobeError(.io, "\(partial): cannot create the file (is the folder writable?)")
            }
            self.handle = handle
            try write(NPYWriter.header(descr: descr, shape: shape), counted: false)
        }

        deinit { try? handle.close() }

        /// Appends data bytes.
        public func append(_ data: Data) throws {
            guard data.count <= remaining else {
                throw LinprobeError(.usage, "\(path): more data than the header's shape holds")
            }
            try write(data, counted: true)
        }

        /// Checks that the data is complete, then closes and renames the file into place.
        public func finish() throws {
            guard remaining == 0 else {
                throw LinprobeError(.usage, "\(path): \(remaining) bytes of data missing")
            }
            do {
                try handle.synchronize()
                try handle.close()
            } catch {
                throw LinprobeError(.io, "\(partial): closing failed (is the disk full?): \(oneLine(error))")
            }
            if rename(partial, path) != 0 {
                throw LinprobeError(.io, "\(partial): cannot rename to \(path): \(String(cString: strerror(errno)))")
            }
        }

        private func write(_ data: Data, counted: Bool) throws {
            do { try handle.write(contentsOf: data) } catch {
                throw LinprobeError(.io, "\(partial): writing failed (is the disk full?): \(oneLine(error))")
            }
            if counted { remaining -= data.count }
        }
    }
}
