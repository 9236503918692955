import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A NumPy `.npy` array read a row range at a time, so features of any size stream through a
/// buffer of the caller's size (`NPYArray` reads a whole, small array: labels, paths).
///
/// The array may start at a byte offset of its file (an uncompressed entry of an `.npz`). Rows
/// are the first dimension; a row holds the product of the other dimensions. Supported element
/// types: little/big-endian float16/32/64 and signed/unsigned integers of 1–8 bytes, read as
/// float32 or int64. Fortran-ordered arrays of more than one dimension are refused (their rows are
/// not contiguous); object arrays too.
public final class NPYFile: @unchecked Sendable {
    public let path: String
    /// NumPy's dtype text, e.g. `<f4`.
    public let dtype: String
    public let shape: [Int]
    /// Rows (the first dimension; 1 for a 0-d array).
    public let rows: Int
    /// Elements per row (the product of the other dimensions).
    public let rowElements: Int
    /// Where the elements start in the file.
    public let dataOffset: Int

    private let kind: Character
    private let itemSize: Int
    private let bigEndian: Bool
    private let fd: Int32

    /// Opens the array at `offset` of `path` (0 for a `.npy` file); `length` bounds it (an `.npz`
    /// entry), nil = to the end of the file.
    public init(path: String, offset: Int = 0, length: Int? = nil) throws {
        self.path = path
        try NPYArray.requireRegularFile(path)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw LinprobeError(.missingInput, "\(path): cannot open (\(String(cString: strerror(errno))))")
        }
        self.fd = fd
        do {
            let fileSize = Int(lseek(fd, 0, SEEK_END))
            let end = length.map { offset + $0 } ?? fileSize
            guard offset >= 0, end <= fileSize, offset <= end else {
                throw LinprobeError(.corruptInput, "\(path): array at byte \(offset) lies outside the file")
            }
            let parsed = try Self.header(fd: fd, path: path, offset: offset, end: end)
            (dtype, shape, dataOffset) = (parsed.descr, parsed.shape, parsed.dataOffset)
            (kind, itemSize, bigEndian) = (parsed.kind, parsed.itemSize, parsed.bigEndian)
            rows = shape.first ?? 1
            rowElements = MemoryBudget.product(Array(shape.dropFirst())) ?? 0
            guard let count = MemoryBudget.product(shape), let bytes = MemoryBudget.product([count, itemSize]),
                bytes <= end - dataOffset
            else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): shape \(shape) of '\(dtype)' needs more bytes than the array's \(end - dataOffset); the file is truncated"
                )
            }
            if parsed.fortran && shape.count > 1 && shape.dropFirst().contains(where: { $0 > 1 }) && rows > 1 {
                throw LinprobeError(
                    .unsupported,
                    "\(path): the array is stored in Fortran order, whose rows are not contiguous; save it with np.save(path, np.ascontiguousarray(a))"
                )
            }
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    /// Whether the elements are floating point.
    public var isFloat: Bool { kind == "f" }

    /// Reads rows `range` as float32, row-major, into `buffer` (at least `range.count × rowElements`).
    public func readFloats(rows range: Range<Int>, into buffer: UnsafeMutableBufferPointer<Float>) throws {
        try checkRange(range, capacity: buffer.count)
        let n = range.count * rowElements
        guard n > 0, let out = buffer.baseAddress else { return }
        if kind == "f" && itemSize == 4 && !bigEndian {
            try readBytes(
                into: UnsafeMutableRawPointer(out), count: n * 4, at: dataOffset + range.lowerBound * rowElements * 4)
            return
        }
        try convert(range, count: n) { raw in
            for i in 0..<n { out[i] = Float(self.element(raw, i)) }
        }
    }

    /// Reads rows `range` as int64 (integers exactly; floats must hold whole numbers).
    public func readInt64(rows range: Range<Int>) throws -> [Int64] {
        try checkRange(range, capacity: Int.max)
        let n = range.count * rowElements
        var out = [Int64](repeating: 0, count: n)
        try convert(range, count: n) { raw in
            for i in 0..<n {
                if self.kind != "f" {
                    out[i] = self.integer(raw, i)
                    continue
                }
                let v = self.element(raw, i)
                guard v == v.rounded(), abs(v) < 9.2e18 else {
                    let at = range.lowerBound * self.rowElements + i
                    throw LinprobeError(.corruptInput, "\(self.path): element \(at) = \(v) is not an integer")
                }
                out[i] = Int64(v)
            }
        }
        return out
    }

    /// Whether the elements are strings (`<U…` unicode or `|S…` bytes, read as UTF-8).
    public var isText: Bool { kind == "U" || kind == "S" }

    /// Reads rows `range` of a one-dimensional string array (NumPy pads with NUL; a NUL ends a string).
    public func readStrings(rows range: Range<Int>) throws -> [String] {
        guard isText, rowElements == 1 else {
            throw LinprobeError(.unsupported, "\(path): dtype '\(dtype)' \(shape) is not a list of strings")
        }
        guard range.lowerBound >= 0, range.upperBound <= rows else {
            throw LinprobeError(.usage, "\(path): rows \(range) outside 0..<\(rows)")
        }
        var out: [String] = []
        out.reserveCapacity(range.count)
        try convert(range, count: range.count) { raw in
            for i in 0..<range.count { out.append(try self.string(raw + i * self.itemSize)) }
        }
        return out
    }

    private func string(_ p: UnsafeRawPointer) throws -> String {
        if kind == "S" {
            var n = 0
            while n < itemSize, p.load(fromByteOffset: n, as: UInt8.self) != 0 { n += 1 }
            return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
        }
        var scalars = String.UnicodeScalarView()
        for k in 0..<(itemSize / 4) {
            var v: UInt32 = 0
            for b in 0..<4 {
                let byte = UInt32(p.load(fromByteOffset: 4 * k + b, as: UInt8.self))
                if bigEndian { v = v << 8 | byte } else { v |= byte << (8 * UInt32(b)) }
            }
            if v == 0 { break }
            guard let scalar = Unicode.Scalar(v) else {
                throw LinprobeError(.corruptInput, "\(path): invalid code point \(v)")
            }
            scalars.append(scalar)
        }
        return String(scalars)
    }

    private func checkRange(_ range: Range<Int>, capacity: Int) throws {
        guard range.lowerBound >= 0, range.upperBound <= rows else {
            throw LinprobeError(.usage, "\(path): rows \(range) outside 0..<\(rows)")
        }
        guard range.count * rowElements <= capacity else {
            throw LinprobeError(.usage, "\(path): \(range.count) rows do not fit a buffer of \(capacity) values")
        }
        guard kind == "f" || kind == "i" || kind == "u" || kind == "b" else {
            throw LinprobeError(.unsupported, "\(path): dtype '\(dtype)' is not numeric")
        }
    }

    /// Reads the raw bytes of rows `range` into a temporary buffer and hands it to `body`.
    private func convert(
        _ range: Range<Int>, count n: Int, _ body: (UnsafeRawPointer) throws -> Void
    ) throws {
        let bytes = n * itemSize
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes), alignment: 16)
        defer { raw.deallocate() }
        try readBytes(into: raw, count: bytes, at: dataOffset + range.lowerBound * rowElements * itemSize)
        try body(UnsafeRawPointer(raw))
    }

    private func bits(_ raw: UnsafeRawPointer, _ i: Int) -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<itemSize {
            let byte = UInt64(raw.load(fromByteOffset: i * itemSize + k, as: UInt8.self))
            if bigEndian { v = v << 8 | byte } else { v |= byte << (8 * UInt64(k)) }
        }
        return v
    }

    private func integer(_ raw: UnsafeRawPointer, _ i: Int) -> Int64 {
        let b = bits(raw, i)
        if kind == "i" {
            let shift = UInt64(64 - 8 * itemSize)
            return Int64(bitPattern: b << shift) >> Int64(shift)
        }
        return Int64(bitPattern: b)
    }

    private func element(_ raw: UnsafeRawPointer, _ i: Int) -> Double {
        if kind == "f" {
            let b = bits(raw, i)
            switch itemSize {
            case 2: return Double(Float(Float16(bitPattern: UInt16(b))))
            case 4: return Double(Float(bitPattern: UInt32(b)))
            default: return Double(bitPattern: b)
            }
        }
        if kind == "u" || kind == "b" { return Double(bits(raw, i)) }
        return Double(integer(raw, i))
    }

    /// `pread` until `count` bytes are in, retrying interrupted and short reads.
    private func readBytes(into pointer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws {
        var done = 0
        while done < count {
            let r = pread(fd, pointer + done, count - done, off_t(offset + done))
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else {
                let reason = r < 0 ? String(cString: strerror(errno)) : "unexpected end of file"
                throw LinprobeError(.io, "\(path): reading \(count) bytes at \(offset) failed (\(reason))")
            }
            done += r
        }
    }

    struct Parsed {
        var descr: String
        var shape: [Int]
        var fortran: Bool
        var dataOffset: Int
        var kind: Character
        var itemSize: Int
        var bigEndian: Bool
    }

    /// Magic, version, header dict and dtype of the array at `offset`.
    private static func header(fd: Int32, path: String, offset: Int, end: Int) throws -> Parsed {
        func fail(_ what: String) -> LinprobeError {
            LinprobeError(.corruptInput, "\(path): not a valid NumPy .npy array (\(what))")
        }
        func read(_ count: Int, at: Int) throws -> [UInt8] {
            guard at + count <= end else { throw fail("header runs past the end") }
            var out = [UInt8](repeating: 0, count: count)
            let got = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(at)) }
            guard got == count else { throw fail("short header") }
            return out
        }
        let start = try read(12, at: offset)
        guard start[0] == 0x93, Array(start[1..<6]) == Array("NUMPY".utf8) else { throw fail("missing magic") }
        let wide = start[6] >= 2
        guard (1...3).contains(start[6]) else { throw fail("format version \(start[6]) is not supported") }
        let length =
            wide
            ? Int(start[8]) | Int(start[9]) << 8 | Int(start[10]) << 16 | Int(start[11]) << 24
            : Int(start[8]) | Int(start[9]) << 8
        guard length <= 1 << 20 else { throw fail("header of \(length) bytes") }
        let textStart = offset + (wide ? 12 : 10)
        let text = String(decoding: try read(length, at: textStart), as: UTF8.self)
        let h = try NPYHeader.parse(text, fail: fail)
        let d = h.descr
        guard d.count >= 3, let order = d.first, "<>|=".contains(order), let kind = d.dropFirst().first,
            let size = Int(d.dropFirst(2))
        else { throw fail("dtype '\(d)'") }
        if kind == "O" {
            throw LinprobeError(.unsupported, "\(path): object arrays (pickled Python objects) are not supported")
        }
        let sizes: [Character: [Int]] = ["f": [2, 4, 8], "i": [1, 2, 4, 8], "u": [1, 2, 4, 8], "b": [1]]
        let isText = (kind == "U" || kind == "S") && (1...4096).contains(size)
        guard isText || sizes[kind]?.contains(size) == true else {
            throw LinprobeError(.unsupported, "\(path): dtype '\(d)' is not supported (expected numbers or strings)")
        }
        return Parsed(
            descr: d, shape: h.shape, fortran: h.fortranOrder, dataOffset: textStart + length, kind: kind,
            itemSize: kind == "U" ? 4 * size : size, bigEndian: order == ">")
    }
}
