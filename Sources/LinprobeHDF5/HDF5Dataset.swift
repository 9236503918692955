internal import CLinprobeHDF5
import Foundation

/// An open dataset. Rows are along the first dimension; every read and write addresses whole
/// rows (all other dimensions in full), which is how the feature store uses datasets.
public final class HDF5Dataset: HDF5AttributeHolder {
    private(set) var id: hid_t
    public let objectName: String
    public var rawID: Int64 { Int64(id) }
    /// The element type as stored in the file.
    public let type: HDF5TypeInfo
    /// Whether the stored type is IEEE half precision.
    public let isFloat16: Bool

    init(id: hid_t, name: String) throws(HDF5Error) {
        self.id = id
        self.objectName = name
        let t = H5Dget_type(id)
        if t < 0 {
            H5Dclose(id)
            throw HDF5Error(function: "H5Dget_type", message: currentHDF5ErrorMessage(), object: name)
        }
        self.type = typeInfo(t)
        self.isFloat16 = isHalfFloat(t)
        H5Tclose(t)
    }

    deinit {
        _ = silenceHDF5  // closing the last object of a file flushes it, on whichever thread frees it
        if id >= 0 { H5Dclose(id) }
    }

    /// Closes the dataset now (a file is only really closed, and its lock released, once every
    /// object in it is closed). Later use of the dataset fails with HDF5's error.
    public func close() {
        _ = silenceHDF5
        if id >= 0 { H5Dclose(id) }
        id = -1
    }

    /// Drops the identifier without closing it, for an object of a file HDF5 cannot close
    /// cleanly (see `HDF5File.forget`).
    public func forget() { id = -1 }

    /// Current dimensions.
    public func dims() throws(HDF5Error) -> [Int] {
        let space = try checkID(H5Dget_space(id), "H5Dget_space", objectName)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        if rank < 0 {
            throw HDF5Error(
                function: "H5Sget_simple_extent_ndims", message: currentHDF5ErrorMessage(), object: objectName)
        }
        if rank == 0 { return [] }
        var d = [hsize_t](repeating: 0, count: rank)
        try checkStatus(H5Sget_simple_extent_dims(space, &d, nil), "H5Sget_simple_extent_dims", objectName)
        return try exactInts(d, "dimensions")
    }

    /// `values` as `Int`s, or an error naming the dataset when one exceeds `Int.max`.
    private func exactInts(_ values: [hsize_t], _ what: String) throws(HDF5Error) -> [Int] {
        var out: [Int] = []
        for v in values {
            guard let i = Int(exactly: v) else {
                throw HDF5Error(
                    function: "H5Sget_simple_extent_dims", message: "\(what) \(values) exceed \(Int.max)",
                    object: objectName)
            }
            out.append(i)
        }
        return out
    }

    /// Elements per row (product of all dimensions after the first), overflow-checked.
    public func rowWidth() throws(HDF5Error) -> Int {
        let d = try dims()
        var width = 1
        for n in d.dropFirst() {
            let (p, overflow) = width.multipliedReportingOverflow(by: n)
            if overflow {
                throw HDF5Error(function: "rowWidth", message: "row of dimensions \(d) overflows", object: objectName)
            }
            width = p
        }
        return width
    }

    /// Chunk dimensions, or nil for a contiguous dataset.
    public func chunkDims() throws(HDF5Error) -> [Int]? {
        let dcpl = try checkID(H5Dget_create_plist(id), "H5Dget_create_plist", objectName)
        defer { H5Pclose(dcpl) }
        guard H5Pget_layout(dcpl) == H5D_CHUNKED else { return nil }
        var d = [hsize_t](repeating: 0, count: 8)
        let rank = H5Pget_chunk(dcpl, 8, &d)
        if rank < 0 {
            throw HDF5Error(function: "H5Pget_chunk", message: currentHDF5ErrorMessage(), object: objectName)
        }
        return try exactInts(Array(d.prefix(Int(rank))), "chunk dimensions")
    }

    /// Changes the number of rows (the other dimensions stay).
    public func setRowCount(_ rows: Int) throws(HDF5Error) {
        var d = try dims().map { hsize_t($0) }
        d[0] = hsize_t(rows)
        try checkStatus(H5Dset_extent(id, &d), "H5Dset_extent", objectName)
    }

    // MARK: Selections

    /// A file dataspace with rows `range` selected, and the matching memory dataspace.
    private func rowSelection(_ range: Range<Int>) throws(HDF5Error) -> (file: hid_t, memory: hid_t) {
        let d = try dims()
        guard range.lowerBound >= 0, range.upperBound <= (d.first ?? 0) else {
            throw HDF5Error(
                function: "select rows", message: "rows \(range) outside 0..<\(d.first ?? 0)", object: objectName)
        }
        let fileSpace = try checkID(H5Dget_space(id), "H5Dget_space", objectName)
        var start = [hsize_t](repeating: 0, count: d.count)
        var count = d.map { hsize_t($0) }
        start[0] = hsize_t(range.lowerBound)
        count[0] = hsize_t(range.count)
        let status = H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil)
        if status < 0 {
            H5Sclose(fileSpace)
            throw HDF5Error(function: "H5Sselect_hyperslab", message: currentHDF5ErrorMessage(), object: objectName)
        }
        let memSpace = H5Screate_simple(Int32(count.count), &count, nil)
        if memSpace < 0 {
            H5Sclose(fileSpace)
            throw HDF5Error(function: "H5Screate_simple", message: currentHDF5ErrorMessage(), object: objectName)
        }
        return (fileSpace, memSpace)
    }

    private func withRowSelection<T>(
        _ range: Range<Int>, _ body: (hid_t, hid_t) throws(HDF5Error) -> T
    ) throws(HDF5Error) -> T {
        let (fileSpace, memSpace) = try rowSelection(range)
        defer { H5Sclose(fileSpace); H5Sclose(memSpace) }
        return try body(fileSpace, memSpace)
    }

    // MARK: Floats

    /// Writes `rows` rows of floats (row-major, `rowWidth` per row). Float16 datasets are
    /// converted here (round to nearest even).
    public func writeFloats(rows range: Range<Int>, from buffer: UnsafeBufferPointer<Float>) throws(HDF5Error) {
        if range.isEmpty { return }
        let width = try rowWidth()
        precondition(buffer.count >= range.count * width, "buffer smaller than the rows written")
        try withRowSelection(range) { (fileSpace, memSpace) throws(HDF5Error) in
            if isFloat16 {
                let halfType = try makeHalfType(object: objectName)
                defer { H5Tclose(halfType) }
                var half = [UInt16](repeating: 0, count: range.count * width)
                for i in 0..<half.count { half[i] = Float16(buffer[i]).bitPattern }
                let status = half.withUnsafeBytes {
                    H5Dwrite(id, halfType, memSpace, fileSpace, lp_H5P_DEFAULT(), $0.baseAddress)
                }
                try checkStatus(status, "H5Dwrite", objectName)
            } else {
                try checkStatus(
                    H5Dwrite(id, lp_H5T_NATIVE_FLOAT(), memSpace, fileSpace, lp_H5P_DEFAULT(), buffer.baseAddress),
                    "H5Dwrite", objectName)
            }
        }
    }

    /// Reads rows into a caller-provided buffer as float32, whatever the stored float or
    /// integer type (float16 is widened here, other types by HDF5's conversion).
    public func readFloats(rows range: Range<Int>, into buffer: UnsafeMutableBufferPointer<Float>) throws(HDF5Error) {
        if range.isEmpty { return }
        let width = try rowWidth()
        precondition(buffer.count >= range.count * width, "buffer smaller than the rows read")
        guard type.kind == .float || type.kind == .integer else {
            throw HDF5Error(
                function: "H5Dread", message: "expected numbers, the dataset holds \(type)", object: objectName)
        }
        if isFloat16 {
            // Widen in blocks of rows through one bounded scratch buffer (a named copy).
            let halfType = try makeHalfType(object: objectName)
            defer { H5Tclose(halfType) }
            let blockRows = max(1, (1 << 21) / max(1, width))
            var halves = [UInt16](repeating: 0, count: min(range.count, blockRows) * width)
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(range.upperBound, start + blockRows)
                try withRowSelection(start..<end) { (fs, ms) throws(HDF5Error) in
                    let status = halves.withUnsafeMutableBytes {
                        H5Dread(id, halfType, ms, fs, lp_H5P_DEFAULT(), $0.baseAddress)
                    }
                    try checkStatus(status, "H5Dread", objectName)
                }
                let offset = (start - range.lowerBound) * width
                for j in 0..<((end - start) * width) { buffer[offset + j] = Float(Float16(bitPattern: halves[j])) }
                start = end
            }
            return
        }
        try withRowSelection(range) { (fileSpace, memSpace) throws(HDF5Error) in
            try checkStatus(
                H5Dread(id, lp_H5T_NATIVE_FLOAT(), memSpace, fileSpace, lp_H5P_DEFAULT(), buffer.baseAddress),
                "H5Dread", objectName)
        }
    }

    /// Reads an arbitrary set of rows (any order, repeats allowed) into `buffer`, row `k` of
    /// the buffer receiving dataset row `rows[k]`. Consecutive rows are read as one range.
    public func readFloats(rowIndices rows: [Int], into buffer: UnsafeMutableBufferPointer<Float>) throws(HDF5Error) {
        if rows.isEmpty { return }
        let width = try rowWidth()
        let total = try dims().first ?? 0
        precondition(buffer.count >= rows.count * width, "buffer smaller than the rows read")
        if let bad = rows.first(where: { $0 < 0 || $0 >= total }) {
            throw HDF5Error(function: "read rows", message: "row \(bad) outside 0..<\(total)", object: objectName)
        }
        // Fast path: already a run of consecutive rows.
        if zip(rows, rows.dropFirst()).allSatisfy({ $1 == $0 + 1 }) {
            return try readFloats(rows: rows[0]..<(rows[0] + rows.count), into: buffer)
        }
        let order = rows.indices.sorted { rows[$0] < rows[$1] }
        var scratch = [Float]()
        var k = 0
        while k < order.count {
            var end = k + 1
            while end < order.count, rows[order[end]] <= rows[order[end - 1]] + 1 { end += 1 }
            let first = rows[order[k]]
            let last = rows[order[end - 1]]
            let count = last - first + 1
            if scratch.count < count * width { scratch = [Float](repeating: 0, count: count * width) }
            try scratch.withUnsafeMutableBufferPointer { (s) throws(HDF5Error) in
                try readFloats(rows: first..<(last + 1), into: s)
            }
            for p in k..<end {
                let src = (rows[order[p]] - first) * width
                let dst = order[p] * width
                for j in 0..<width { buffer[dst + j] = scratch[src + j] }
            }
            k = end
        }
    }

    // MARK: Integers

    /// Writes int64 rows (row-major).
    public func writeInt64(rows range: Range<Int>, from values: [Int64]) throws(HDF5Error) {
        if range.isEmpty { return }
        let width = try rowWidth()
        precondition(values.count >= range.count * width, "buffer smaller than the rows written")
        try withRowSelection(range) { (fileSpace, memSpace) throws(HDF5Error) in
            let status = values.withUnsafeBufferPointer {
                H5Dwrite(id, lp_H5T_NATIVE_INT64(), memSpace, fileSpace, lp_H5P_DEFAULT(), $0.baseAddress)
            }
            try checkStatus(status, "H5Dwrite", objectName)
        }
    }

    /// Reads rows as int64 whatever the stored integer width.
    public func readInt64(rows range: Range<Int>) throws(HDF5Error) -> [Int64] {
        let width = try rowWidth()
        var out = [Int64](repeating: 0, count: range.count * width)
        if range.isEmpty { return out }
        guard type.kind == .integer else {
            throw HDF5Error(
                function: "H5Dread", message: "expected integers, the dataset holds \(type)", object: objectName)
        }
        try withRowSelection(range) { (fileSpace, memSpace) throws(HDF5Error) in
            let status = out.withUnsafeMutableBufferPointer {
                H5Dread(id, lp_H5T_NATIVE_INT64(), memSpace, fileSpace, lp_H5P_DEFAULT(), $0.baseAddress)
            }
            try checkStatus(status, "H5Dread", objectName)
        }
        return out
    }

    /// Reads every row as int64.
    public func readAllInt64() throws(HDF5Error) -> [Int64] {
        try readInt64(rows: 0..<(try dims().first ?? 0))
    }

    // MARK: Strings

    /// Writes rows of a one-dimensional variable-length string dataset.
    public func writeStrings(rows range: Range<Int>, from strings: [String]) throws(HDF5Error) {
        if range.isEmpty { return }
        precondition(strings.count >= range.count, "fewer strings than rows")
        let memType = try makeFileType(.utf8String, object: objectName)
        defer { H5Tclose(memType) }
        var cStrings: [UnsafeMutablePointer<CChar>?] = strings.prefix(range.count).map { strdup($0) }
        defer { for p in cStrings { free(p) } }
        try withRowSelection(range) { (fileSpace, memSpace) throws(HDF5Error) in
            let status = cStrings.withUnsafeMutableBufferPointer {
                H5Dwrite(id, memType, memSpace, fileSpace, lp_H5P_DEFAULT(), $0.baseAddress)
            }
            try checkStatus(status, "H5Dwrite", objectName)
        }
    }

    /// Reads rows of a one-dimensional string dataset, fixed- or variable-length.
    public func readStrings(rows range: Range<Int>) throws(HDF5Error) -> [String] {
        if range.isEmpty { return [] }
        guard type.kind == .string else {
            throw HDF5Error(
                function: "H5Dread", message: "expected strings, the dataset holds \(type)", object: objectName)
        }
        let fileType = try checkID(H5Dget_type(id), "H5Dget_type", objectName)
        defer { H5Tclose(fileType) }
        return try withRowSelection(range) { (fileSpace, memSpace) throws(HDF5Error) -> [String] in
            try readStringValues(count: range.count, fileType: fileType, object: objectName) { (memType, buffer) in
                H5Dread(id, memType, memSpace, fileSpace, lp_H5P_DEFAULT(), buffer)
            } reclaim: { (memType, buffer) in
                H5Dvlen_reclaim(memType, memSpace, lp_H5P_DEFAULT(), buffer)
            }
        }
    }

    /// Reads every row of a string dataset.
    public func readAllStrings() throws(HDF5Error) -> [String] {
        try readStrings(rows: 0..<(try dims().first ?? 0))
    }
}

/// Shared by dataset and attribute string reads: reads `count` strings stored as `fileType`
/// (variable- or fixed-length) through `read`, then lets HDF5 free what it allocated.
func readStringValues(
    count: Int, fileType: hid_t, object: String,
    read: (hid_t, UnsafeMutableRawPointer) -> herr_t,
    reclaim: (hid_t, UnsafeMutableRawPointer) -> herr_t
) throws(HDF5Error) -> [String] {
    if H5Tis_variable_str(fileType) > 0 {
        let memType = try makeFileType(.utf8String, object: object)
        defer { H5Tclose(memType) }
        var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
        let status = pointers.withUnsafeMutableBytes { raw in
            raw.baseAddress.map { read(memType, $0) } ?? 0  // no rows: nothing to read
        }
        try checkStatus(status, "H5Dread/H5Aread", object)
        let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
        _ = pointers.withUnsafeMutableBytes { raw in raw.baseAddress.map { reclaim(memType, $0) } }
        return strings
    }
    let size = Int(H5Tget_size(fileType))
    let memType = try checkID(H5Tcopy(lp_H5T_C_S1()), "H5Tcopy", object)
    defer { H5Tclose(memType) }
    try checkStatus(H5Tset_size(memType, size), "H5Tset_size", object)
    // Keep NUL padding so every value can be cut at its first NUL.
    H5Tset_strpad(memType, H5T_STR_NULLPAD)
    let (total, overflow) = count.multipliedReportingOverflow(by: size)
    guard !overflow else {
        throw HDF5Error(
            function: "H5Dread/H5Aread", message: "\(count) strings of \(size) bytes overflow",
            object: object)
    }
    var bytes = [UInt8](repeating: 0, count: max(1, total))
    let status = bytes.withUnsafeMutableBytes { raw in
        raw.baseAddress.map { read(memType, $0) } ?? -1  // never nil: `bytes` holds at least one byte
    }
    try checkStatus(status, "H5Dread/H5Aread", object)
    var out: [String] = []
    out.reserveCapacity(count)
    for i in 0..<count {
        let slice = bytes[(i * size)..<((i + 1) * size)]
        let end = slice.firstIndex(of: 0) ?? slice.endIndex
        var s = String(decoding: slice[slice.startIndex..<end], as: UTF8.self)
        while s.hasSuffix(" ") { s.removeLast() }
        out.append(s)
    }
    return out
}
