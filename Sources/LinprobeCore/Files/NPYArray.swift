import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A NumPy `.npy` array as VISSL's `disk_filelist` uses them: image path strings and integer
/// or string labels.
///
/// Supported: format versions 1–3; little/big/native-endian signed and unsigned integers of
/// 1–8 bytes, booleans, float32/64 (read, but rejected as labels); fixed-width unicode (`<U`,
/// `>U`) and byte strings (`|S`); C and Fortran order; 1-D and 2-D (any rank is read).
/// Object arrays (`|O`) hold pickled Python objects and are refused with a clear error.
public struct NPYArray: Sendable {
    public enum Values: Sendable, Equatable {
        case integers([Int64])
        case floats([Double])
        case strings([String])
    }

    /// NumPy's dtype text, e.g. `<i8`, `<U34`, `|S12`.
    public let dtype: String
    public let shape: [Int]
    /// Elements in C (row-major) order, whatever the file's order.
    public let values: Values

    public var count: Int { shape.reduce(1, *) }

    public init(dtype: String, shape: [Int], values: Values) {
        self.dtype = dtype
        self.shape = shape
        self.values = values
    }

    /// Reads a `.npy` file; errors name the file and what is wrong with it. Only regular files
    /// are read (a FIFO or a device such as `/dev/zero` would block or never end).
    public static func read(path: String) throws -> NPYArray {
        try requireRegularFile(path)
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw LinprobeError(.missingInput, "\(path): cannot read the NumPy file (\(oneLine(error)))")
        }
        return try data.withUnsafeBytes { try parse($0, path: path) }
    }

    /// Refuses a path that is not (a link to) a regular file, before anything opens it.
    public static func requireRegularFile(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            throw LinprobeError(.missingInput, "\(path): cannot read the NumPy file (\(reason))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw LinprobeError(.corruptInput, "\(path): not a regular file (a NumPy .npy file is expected)")
        }
    }

    /// Parses `.npy` bytes (`path` is only used in messages).
    public static func parse(_ b: UnsafeRawBufferPointer, path: String) throws -> NPYArray {
        func fail(_ what: String) -> LinprobeError {
            LinprobeError(.corruptInput, "\(path): not a valid NumPy .npy file (\(what))")
        }
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard b.count >= 10, Array(b[0..<6]) == magic else { throw fail("missing \\x93NUMPY magic") }
        let major = b[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(b[8]) | Int(b[9]) << 8
            headerStart = 10
        case 2, 3:
            guard b.count >= 12 else { throw fail("short header") }
            headerLength = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
            headerStart = 12
        default:
            throw fail("format version \(major) is not supported")
        }
        guard headerStart + headerLength <= b.count else { throw fail("header runs past the end") }
        let headerText = String(
            decoding: UnsafeRawBufferPointer(rebasing: b[headerStart..<(headerStart + headerLength)]),
            as: UTF8.self)
        let header = try NPYHeader.parse(headerText, fail: fail)
        let dataStart = headerStart + headerLength
        guard let count = MemoryBudget.product(header.shape) else {
            throw fail("shape \(header.shape) has more elements than can be addressed")
        }
        let dt = header.descr
        guard let kind = dt.dropFirst().first, dt.count >= 2 else { throw fail("dtype '\(dt)'") }
        let order = dt.first ?? " "
        guard "<>|=".contains(order) else { throw fail("dtype '\(dt)' has no byte-order mark") }
        let bigEndian = order == ">"
        let size = Int(dt.dropFirst(2)) ?? -1
        if kind == "O" {
            throw LinprobeError(
                .unsupported,
                "\(path): object arrays are not supported (pickled object array, dtype '\(dt)'); save the array with a fixed-width string or integer dtype, e.g. np.save(path, np.array(list_of_str))"
            )
        }
        guard size >= 0 else { throw fail("dtype '\(dt)'") }
        let (itemBytes, itemOverflow) = size.multipliedReportingOverflow(by: kind == "U" ? 4 : 1)
        guard !itemOverflow, itemBytes > 0 || count == 0 else {
            throw fail("dtype '\(dt)' has items of \(itemOverflow ? "more than \(Int.max)" : "0") bytes")
        }
        let needed = count.multipliedReportingOverflow(by: itemBytes)
        guard !needed.overflow, needed.partialValue <= b.count - dataStart else {
            throw fail("shape \(header.shape) of '\(dt)' needs more bytes than the file's \(b.count - dataStart)")
        }
        guard let start = b.baseAddress else { throw fail("empty file") }
        let base = start.advanced(by: dataStart)

        func unsignedAt(_ offset: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<n {
                let byte = UInt64(base.load(fromByteOffset: offset + k, as: UInt8.self))
                if bigEndian { v = v << 8 | byte } else { v |= byte << (8 * UInt64(k)) }
            }
            return v
        }

        var values: Values
        switch kind {
        case "i", "u", "b":
            guard [1, 2, 4, 8].contains(size) else { throw fail("integer dtype '\(dt)'") }
            var out = [Int64](repeating: 0, count: count)
            for i in 0..<count {
                let raw = unsignedAt(i * size, size)
                if kind == "i" {
                    let shift = UInt64(64 - 8 * size)
                    out[i] = Int64(bitPattern: raw << shift) >> Int64(shift)
                } else {
                    guard raw <= UInt64(Int64.max) else { throw fail("value \(raw) does not fit int64") }
                    out[i] = Int64(raw)
                }
            }
            values = .integers(out)
        case "f":
            guard size == 4 || size == 8 else { throw fail("float dtype '\(dt)'") }
            var out = [Double](repeating: 0, count: count)
            for i in 0..<count {
                let raw = unsignedAt(i * size, size)
                out[i] = size == 4 ? Double(Float(bitPattern: UInt32(raw))) : Double(bitPattern: raw)
            }
            values = .floats(out)
        case "U":
            var out = [String]()
            out.reserveCapacity(count)
            var scalars = String.UnicodeScalarView()
            for i in 0..<count {
                scalars.removeAll(keepingCapacity: true)
                for k in 0..<size {
                    let v = UInt32(unsignedAt(i * itemBytes + 4 * k, 4))
                    if v == 0 { break }  // NumPy pads with NUL; a NUL ends the string
                    guard let s = Unicode.Scalar(v) else { throw fail("invalid code point \(v) in element \(i)") }
                    scalars.append(s)
                }
                out.append(String(scalars))
            }
            values = .strings(out)
        case "S", "a":
            var out = [String]()
            out.reserveCapacity(count)
            for i in 0..<count {
                let start = base.advanced(by: i * size).assumingMemoryBound(to: UInt8.self)
                var n = 0
                while n < size, start[n] != 0 { n += 1 }
                out.append(String(decoding: UnsafeBufferPointer(start: start, count: n), as: UTF8.self))
            }
            values = .strings(out)
        default:
            throw LinprobeError(
                .unsupported, "\(path): NumPy dtype '\(dt)' is not supported (expected integers or strings)")
        }
        if header.fortranOrder && header.shape.count > 1 {
            values = reorderFortran(values, shape: header.shape)
        }
        return NPYArray(dtype: dt, shape: header.shape, values: values)
    }

    /// Column-major → row-major.
    private static func reorderFortran(_ v: Values, shape: [Int]) -> Values {
        let count = shape.reduce(1, *)
        // Strides are products of dimensions: they cannot overflow when there are elements.
        guard count > 0 else { return v }
        // Index mapping: C index of each F-ordered element.
        var cIndexOfF = [Int](repeating: 0, count: count)
        var stridesC = [Int](repeating: 1, count: shape.count)
        for d in stride(from: shape.count - 2, through: 0, by: -1) { stridesC[d] = stridesC[d + 1] * shape[d + 1] }
        var idx = [Int](repeating: 0, count: shape.count)
        for f in 0..<count {
            cIndexOfF[f] = zip(idx, stridesC).reduce(0) { $0 + $1.0 * $1.1 }
            for d in 0..<shape.count {
                idx[d] += 1
                if idx[d] < shape[d] { break }
                idx[d] = 0
            }
        }
        func permute<T>(_ a: [T]) -> [T] {
            var out = a
            for f in 0..<count { out[cIndexOfF[f]] = a[f] }
            return out
        }
        switch v {
        case .integers(let a): return .integers(permute(a))
        case .floats(let a): return .floats(permute(a))
        case .strings(let a): return .strings(permute(a))
        }
    }
}

/// The Python-literal header dict: `{'descr': '<i8', 'fortran_order': False, 'shape': (3, 20), }`.
struct NPYHeader {
    var descr: String
    var fortranOrder: Bool
    var shape: [Int]

    static func parse(_ text: String, fail: (String) -> LinprobeError) throws -> NPYHeader {
        func value(of key: String) -> Substring? {
            for quote in ["'", "\""] {
                if let r = text.range(of: "\(quote)\(key)\(quote)") {
                    var rest = text[r.upperBound...].drop { $0 == " " }
                    guard rest.first == ":" else { continue }
                    rest = rest.dropFirst().drop { $0 == " " }
                    return rest
                }
            }
            return nil
        }
        guard let d = value(of: "descr"), let q = d.first, q == "'" || q == "\"" else {
            if let d = value(of: "descr"), d.first == "[" {
                throw LinprobeError(
                    .unsupported,
                    "structured NumPy dtypes are not supported (header \(text.trimmingCharacters(in: .whitespacesAndNewlines)))"
                )
            }
            throw fail("no 'descr' in header")
        }
        let descr = String(d.dropFirst().prefix { $0 != q })
        guard let f = value(of: "fortran_order") else { throw fail("no 'fortran_order' in header") }
        let fortran = f.hasPrefix("True")
        guard let s = value(of: "shape"), s.first == "(" else { throw fail("no 'shape' in header") }
        let inside = s.dropFirst().prefix { $0 != ")" }
        var shape = [Int]()
        for part in inside.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if t.isEmpty { continue }
            guard let n = Int(t), n >= 0 else { throw fail("shape '(\(inside))'") }
            shape.append(n)
        }
        return NPYHeader(descr: descr, fortranOrder: fortran, shape: shape)
    }
}
