internal import CLinprobeHDF5
import Foundation

/// The storage element types Linprobe writes. Reading accepts more (any integer width, any
/// float width, fixed- or variable-length strings) and converts.
public enum HDF5StorageType: Sendable, Equatable {
    case float32
    /// IEEE half precision, as h5py and NumPy store `float16` (`<f2`).
    case float16
    case int64
    /// Variable-length UTF-8 strings.
    case utf8String
}

/// What a dataset or attribute holds, as read from the file.
public struct HDF5TypeInfo: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable { case float, integer, string, other }
    public var kind: Kind
    /// Element size in bytes (for variable-length strings, the pointer size).
    public var size: Int
    public var isVariableLengthString: Bool

    public var description: String {
        switch kind {
        case .float: return "float\(size * 8)"
        case .integer: return "int\(size * 8)"
        case .string: return isVariableLengthString ? "string (variable length)" : "string (fixed length \(size))"
        case .other: return "unsupported type"
        }
    }
}

/// Something attributes can hang on: the file's root group or a dataset.
public protocol HDF5AttributeHolder: AnyObject {
    /// The raw HDF5 identifier (an escape hatch; do not close it).
    var rawID: Int64 { get }
    /// `file` or `file:/object`, for error messages.
    var objectName: String { get }
}

/// An open HDF5 file. Owns its identifier and closes it in `deinit`. Not thread-safe: one
/// owner uses it at a time (HDF5 itself is built thread-safe on Debian, but our objects are not).
public final class HDF5File: HDF5AttributeHolder {
    public let path: String
    private(set) var id: hid_t
    private var rootID: hid_t

    public var rawID: Int64 { Int64(rootID) }
    public var objectName: String { path }

    private init(path: String, id: hid_t) throws(HDF5Error) {
        let root = H5Gopen2(id, "/", lp_H5P_DEFAULT())
        if root < 0 {
            let message = currentHDF5ErrorMessage()
            H5Fclose(id)
            throw HDF5Error(function: "H5Gopen2", message: message, object: path)
        }
        self.path = path
        self.id = id
        self.rootID = root
        Self.closeOnExec(id)
    }

    /// Marks the file's descriptor close-on-exec. HDF5 opens it without `O_CLOEXEC`, so a child
    /// process started meanwhile (by this process or a library in it) would inherit the descriptor
    /// and, with it, HDF5's `flock`, keeping the file locked after this process closed it.
    private static func closeOnExec(_ id: hid_t) {
        var handle: UnsafeMutableRawPointer? = nil
        guard H5Fget_vfd_handle(id, lp_H5P_DEFAULT(), &handle) >= 0, let handle else { return }
        let fd = handle.load(as: Int32.self)  // the sec2 driver's handle points at its descriptor
        let flags = fcntl(fd, F_GETFD)
        if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }

    /// Creates a new file, replacing any file at `path`.
    public static func create(_ path: String) throws(HDF5Error) -> HDF5File {
        _ = silenceHDF5
        let fid = try checkID(
            H5Fcreate(path, lp_H5F_ACC_TRUNC(), lp_H5P_DEFAULT(), lp_H5P_DEFAULT()), "H5Fcreate", path)
        return try HDF5File(path: path, id: fid)
    }

    /// Opens an existing file for reading, or for reading and writing.
    public static func open(_ path: String, writable: Bool = false) throws(HDF5Error) -> HDF5File {
        _ = silenceHDF5
        guard FileManager.default.fileExists(atPath: path) else {
            throw HDF5Error(function: "H5Fopen", message: "no such file", object: path)
        }
        let isHDF5 = H5Fis_hdf5(path)
        if isHDF5 == 0 {
            throw HDF5Error(function: "H5Fis_hdf5", message: "not an HDF5 file (no HDF5 signature)", object: path)
        } else if isHDF5 < 0 {
            throw HDF5Error(function: "H5Fis_hdf5", message: currentHDF5ErrorMessage(), object: path)
        }
        let flags = writable ? lp_H5F_ACC_RDWR() : lp_H5F_ACC_RDONLY()
        return try HDF5File(path: path, id: openRetryingWhileLocked(path, flags: flags))
    }

    /// `H5Fopen`, tried again for up to two seconds while HDF5's file lock (`flock`) is busy. The
    /// lock follows the open file description, so a child process this program (or a test
    /// running beside it) spawns holds a copy of every descriptor between its fork and its exec:
    /// reopening a file just closed can meet that copy for a moment. A lock held longer (another
    /// process writing the file) still fails, with the system's reason.
    private static func openRetryingWhileLocked(_ path: String, flags: UInt32) throws(HDF5Error) -> hid_t {
        let deadline = Date().addingTimeInterval(2)
        while true {
            do {
                return try checkID(H5Fopen(path, flags, lp_H5P_DEFAULT()), "H5Fopen", path)
            } catch {
                let busy = error.systemReason?.contains("Resource temporarily unavailable") == true
                guard busy, Date() < deadline else { throw error }
                usleep(10_000)
            }
        }
    }

    deinit {
        _ = silenceHDF5  // a deinit may run on a thread that never opened a file
        if rootID >= 0 { H5Gclose(rootID) }
        if id >= 0 { H5Fclose(id) }
    }

    /// Closes the file now, reporting any error (for example a full disk while HDF5 writes
    /// its metadata). Further use of the object fails.
    public func close() throws(HDF5Error) {
        _ = silenceHDF5
        if rootID >= 0 { H5Gclose(rootID); rootID = -1 }
        if id >= 0 {
            let status = H5Fclose(id)
            id = -1
            try checkStatus(status, "H5Fclose", path)
        }
    }

    /// Drops the identifiers without closing them. For a file whose writes failed: closing it
    /// makes HDF5 flush its cache into the same failure, and HDF5 can crash on the
    /// half-destroyed file afterwards. The process must not close the library at exit either
    /// (`HDF5Library.skipCleanupAtExit`); the kernel closes the descriptor.
    public func forget() {
        rootID = -1
        id = -1
    }

    /// Writes everything buffered by HDF5 for this file to the operating system.
    public func flush() throws(HDF5Error) {
        try checkStatus(H5Fflush(id, H5F_SCOPE_GLOBAL), "H5Fflush", path)
    }

    /// Number of objects still open in this file, this file included (leak checks).
    public var openObjectCount: Int {
        Int(H5Fget_obj_count(id, lp_H5F_OBJ_ALL()))
    }

    /// Whether a link (group or dataset) exists at an absolute path such as `/features/res5`.
    public func exists(_ objectPath: String) throws(HDF5Error) -> Bool {
        var prefix = ""
        for component in objectPath.split(separator: "/") {
            prefix += "/" + component
            let present = try checkTri(H5Lexists(id, prefix, lp_H5P_DEFAULT()), "H5Lexists", "\(path):\(prefix)")
            if !present { return false }
        }
        return true
    }

    /// Creates a group (and its parents).
    public func createGroup(_ groupPath: String) throws(HDF5Error) {
        if try exists(groupPath) { return }
        let lcpl = try checkID(H5Pcreate(lp_H5P_LINK_CREATE()), "H5Pcreate", path)
        defer { H5Pclose(lcpl) }
        try checkStatus(H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group", path)
        let gid = try checkID(
            H5Gcreate2(id, groupPath, lcpl, lp_H5P_DEFAULT(), lp_H5P_DEFAULT()), "H5Gcreate2", "\(path):\(groupPath)")
        H5Gclose(gid)
    }

    /// Names of the members of a group, in HDF5's name order.
    public func members(ofGroup groupPath: String) throws(HDF5Error) -> [String] {
        let gid = try checkID(H5Gopen2(id, groupPath, lp_H5P_DEFAULT()), "H5Gopen2", "\(path):\(groupPath)")
        defer { H5Gclose(gid) }
        var info = H5G_info_t()
        try checkStatus(H5Gget_info(gid, &info), "H5Gget_info", "\(path):\(groupPath)")
        var names: [String] = []
        for i in 0..<info.nlinks {
            let length = H5Lget_name_by_idx(gid, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, lp_H5P_DEFAULT())
            if length < 0 {
                throw HDF5Error(
                    function: "H5Lget_name_by_idx", message: currentHDF5ErrorMessage(), object: "\(path):\(groupPath)")
            }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            _ = H5Lget_name_by_idx(gid, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, lp_H5P_DEFAULT())
            names.append(String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    /// Opens an existing dataset.
    public func openDataset(_ datasetPath: String) throws(HDF5Error) -> HDF5Dataset {
        let did = try checkID(H5Dopen2(id, datasetPath, lp_H5P_DEFAULT()), "H5Dopen2", "\(path):\(datasetPath)")
        return try HDF5Dataset(id: did, name: "\(path):\(datasetPath)")
    }

    /// Creates a dataset whose first dimension can grow without bound.
    ///
    /// - Parameters:
    ///   - dims: initial dimensions (the first is usually 0).
    ///   - chunkRows: rows per chunk; chunks span the full width of the other dimensions.
    ///   - deflate: gzip level 1–9, or nil for no compression.
    ///   - checksum: add HDF5's Fletcher-32 filter, so a chunk changed after it was written fails
    ///     to read ("data error detected by Fletcher32 checksum") rather than giving other numbers.
    public func createExtensibleDataset(
        _ datasetPath: String, type: HDF5StorageType, dims: [Int], chunkRows: Int, deflate: Int? = nil,
        checksum: Bool = false
    ) throws(HDF5Error) -> HDF5Dataset {
        let object = "\(path):\(datasetPath)"
        precondition(!dims.isEmpty && chunkRows > 0, "dataset needs at least one dimension and a positive chunk")
        var current = dims.map { hsize_t($0) }
        var maximum = current
        maximum[0] = lp_H5S_UNLIMITED()
        let space = try checkID(H5Screate_simple(Int32(dims.count), &current, &maximum), "H5Screate_simple", object)
        defer { H5Sclose(space) }
        let dcpl = try checkID(H5Pcreate(lp_H5P_DATASET_CREATE()), "H5Pcreate", object)
        defer { H5Pclose(dcpl) }
        var chunk = current
        chunk[0] = hsize_t(chunkRows)
        for i in 1..<chunk.count where chunk[i] == 0 { chunk[i] = 1 }
        try checkStatus(H5Pset_chunk(dcpl, Int32(chunk.count), &chunk), "H5Pset_chunk", object)
        if let level = deflate {
            try checkStatus(H5Pset_shuffle(dcpl), "H5Pset_shuffle", object)
            try checkStatus(H5Pset_deflate(dcpl, UInt32(level)), "H5Pset_deflate", object)
        }
        if checksum { try checkStatus(H5Pset_fletcher32(dcpl), "H5Pset_fletcher32", object) }
        let fileType = try makeFileType(type, object: object)
        defer { H5Tclose(fileType) }
        let lcpl = try checkID(H5Pcreate(lp_H5P_LINK_CREATE()), "H5Pcreate", object)
        defer { H5Pclose(lcpl) }
        try checkStatus(H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group", object)
        let did = try checkID(
            H5Dcreate2(id, datasetPath, fileType, space, lcpl, dcpl, lp_H5P_DEFAULT()), "H5Dcreate2", object)
        return try HDF5Dataset(id: did, name: object)
    }
}

/// Builds a (caller-closed) HDF5 datatype for one of our storage types.
func makeFileType(_ type: HDF5StorageType, object: String) throws(HDF5Error) -> hid_t {
    switch type {
    case .float32:
        return try checkID(H5Tcopy(lp_H5T_IEEE_F32LE()), "H5Tcopy", object)
    case .int64:
        return try checkID(H5Tcopy(lp_H5T_STD_I64LE()), "H5Tcopy", object)
    case .float16:
        return try makeHalfType(object: object)
    case .utf8String:
        let t = try checkID(H5Tcopy(lp_H5T_C_S1()), "H5Tcopy", object)
        try checkStatus(H5Tset_size(t, lp_H5T_VARIABLE()), "H5Tset_size", object)
        try checkStatus(H5Tset_cset(t, H5T_CSET_UTF8), "H5Tset_cset", object)
        return t
    }
}

/// IEEE 754 binary16, little endian: the layout NumPy and h5py use for `float16`.
func makeHalfType(object: String) throws(HDF5Error) -> hid_t {
    let t = try checkID(H5Tcopy(lp_H5T_IEEE_F32LE()), "H5Tcopy", object)
    try checkStatus(H5Tset_fields(t, 15, 10, 5, 0, 10), "H5Tset_fields", object)
    try checkStatus(H5Tset_size(t, 2), "H5Tset_size", object)
    try checkStatus(H5Tset_ebias(t, 15), "H5Tset_ebias", object)
    return t
}

/// Reads the kind of an HDF5 datatype.
func typeInfo(_ t: hid_t) -> HDF5TypeInfo {
    let cls = H5Tget_class(t)
    let size = Int(H5Tget_size(t))
    switch cls {
    case H5T_FLOAT: return HDF5TypeInfo(kind: .float, size: size, isVariableLengthString: false)
    case H5T_INTEGER: return HDF5TypeInfo(kind: .integer, size: size, isVariableLengthString: false)
    case H5T_STRING:
        return HDF5TypeInfo(kind: .string, size: size, isVariableLengthString: H5Tis_variable_str(t) > 0)
    default: return HDF5TypeInfo(kind: .other, size: size, isVariableLengthString: false)
    }
}

/// Whether a float datatype is IEEE half precision (2 bytes, 5-bit exponent).
func isHalfFloat(_ t: hid_t) -> Bool {
    guard H5Tget_class(t) == H5T_FLOAT, H5Tget_size(t) == 2 else { return false }
    var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
    guard H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) >= 0 else { return false }
    return esize == 5 && msize == 10 && H5Tget_ebias(t) == 15
}

/// The HDF5 library version, e.g. `1.10.8`.
public func hdf5LibraryVersion() -> String {
    var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
    H5get_libversion(&major, &minor, &release)
    return "\(major).\(minor).\(release)"
}

/// One source of a virtual dataset: rows `0..<rows` of `dataset` in `file` (a path relative to the
/// virtual dataset's own file, as HDF5 resolves it, or absolute), placed from row `firstRow` on.
public struct HDF5VirtualSource: Sendable, Equatable {
    public var file: String
    public var dataset: String
    public var firstRow: Int
    public var rows: Int

    public init(file: String, dataset: String, firstRow: Int, rows: Int) {
        self.file = file
        self.dataset = dataset
        self.firstRow = firstRow
        self.rows = rows
    }
}

extension HDF5File {
    /// Creates a virtual dataset (HDF5 ≥ 1.10.0, `H5Pset_virtual`) of `dims` whose rows are drawn
    /// from other files' datasets, each mapping whole rows (every other dimension in full). The
    /// data stays in the sources; readers (this library, h5py, h5dump) see one dataset.
    public func createVirtualDataset(
        _ datasetPath: String, type: HDF5StorageType, dims: [Int], sources: [HDF5VirtualSource]
    ) throws(HDF5Error) -> HDF5Dataset {
        let object = "\(path):\(datasetPath)"
        precondition(!dims.isEmpty, "a virtual dataset needs at least one dimension")
        var current = dims.map { hsize_t($0) }
        let space = try checkID(H5Screate_simple(Int32(dims.count), &current, nil), "H5Screate_simple", object)
        defer { H5Sclose(space) }
        let dcpl = try checkID(H5Pcreate(lp_H5P_DATASET_CREATE()), "H5Pcreate", object)
        defer { H5Pclose(dcpl) }
        for source in sources where source.rows > 0 {
            var sourceDims = current
            sourceDims[0] = hsize_t(source.rows)
            let sourceSpace = try checkID(
                H5Screate_simple(Int32(dims.count), &sourceDims, nil), "H5Screate_simple", object)
            defer { H5Sclose(sourceSpace) }
            var start = [hsize_t](repeating: 0, count: dims.count)
            start[0] = hsize_t(source.firstRow)
            try checkStatus(
                H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nil, &sourceDims, nil), "H5Sselect_hyperslab",
                object)
            try checkStatus(
                H5Pset_virtual(dcpl, space, source.file, source.dataset, sourceSpace), "H5Pset_virtual", object)
        }
        let fileType = try makeFileType(type, object: object)
        defer { H5Tclose(fileType) }
        let lcpl = try checkID(H5Pcreate(lp_H5P_LINK_CREATE()), "H5Pcreate", object)
        defer { H5Pclose(lcpl) }
        try checkStatus(H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group", object)
        H5Sselect_all(space)
        let did = try checkID(
            H5Dcreate2(id, datasetPath, fileType, space, lcpl, dcpl, lp_H5P_DEFAULT()), "H5Dcreate2", object)
        return try HDF5Dataset(id: did, name: object)
    }
}
