import Foundation
import LinprobeCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A read-only memory mapping of a whole file. Checkpoint tensors point into the mapping, so
/// reading a 100 MB state dict copies nothing until a tensor is converted; the mapping lives
/// as long as any tensor (or reader) holds this object.
public final class MappedFile: @unchecked Sendable {
    /// Path as given by the caller (used in error messages).
    public let path: String
    /// Size of the file in bytes.
    public let count: Int
    /// Start of the mapping (nil for an empty file).
    public let base: UnsafeRawPointer?

    public init(path: String) throws {
        self.path = path
        try MappedFile.requireRegularFile(path)
        // O_NONBLOCK: should the path become a FIFO after the check, open returns at once.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw LinprobeError(
                .missingInput, "\(path): cannot open the weights file (\(reason)); check MODEL.WEIGHTS_INIT.PARAMS_FILE"
            )
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw LinprobeError(.io, "\(path): cannot stat the weights file (\(String(cString: strerror(errno))))")
        }
        try MappedFile.requireRegular(st, path)
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw LinprobeError(
                .io, "\(path): cannot map the weights file into memory (\(String(cString: strerror(errno))))")
        }
        base = UnsafeRawPointer(p)
    }

    /// Refuses a weights path that is not (a link to) a regular file before anything opens or
    /// reads it: opening a FIFO blocks until a writer appears, and a device such as `/dev/zero`
    /// or `/dev/urandom` never ends. Call it before hashing a `PARAMS_FILE`, too.
    public static func requireRegularFile(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            throw LinprobeError(
                .missingInput,
                "\(path): cannot open the weights file (\(reason)); check MODEL.WEIGHTS_INIT.PARAMS_FILE")
        }
        try requireRegular(st, path)
    }

    private static func requireRegular(_ st: stat, _ path: String) throws {
        let kind: String
        switch st.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: kind = "a directory"
        case S_IFIFO: kind = "a FIFO"
        case S_IFCHR: kind = "a character device"
        case S_IFBLK: kind = "a block device"
        case S_IFSOCK: kind = "a socket"
        default: kind = "a special file"
        }
        throw LinprobeError(
            .missingInput,
            "\(path): not a regular file (\(kind)); MODEL.WEIGHTS_INIT.PARAMS_FILE must name a checkpoint file")
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// The bytes of the whole file.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// A range of bytes inside a mapped file (or an owned buffer), kept alive by its owner.
public struct ByteRegion: @unchecked Sendable {
    /// Keeps the memory alive (a `MappedFile` or an owned box).
    let owner: AnyObject
    public let bytes: UnsafeRawBufferPointer

    init(owner: AnyObject, bytes: UnsafeRawBufferPointer) {
        self.owner = owner
        self.bytes = bytes
    }

    /// A region over a copy of `data` (for tensors built in memory, e.g. by tests).
    public init(copying data: some Collection<UInt8>) {
        let box = OwnedBytes(data)
        owner = box
        bytes = UnsafeRawBufferPointer(rebasing: box.buffer[0..<data.count])
    }

    public var count: Int { bytes.count }

    /// Tells the kernel that the mapped pages lying wholly inside `range` (byte offsets in this
    /// region) are not needed for now. They are clean pages of a read-only file mapping, so a
    /// later read simply faults them in again from the file: nothing changes but the resident
    /// size, which no longer holds a second copy of weights already converted to float32.
    /// Regions over owned memory are left alone.
    public func releaseResidentPages(_ range: Range<Int>) {
        guard owner is MappedFile, let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = UInt(bitPattern: base + range.lowerBound)
        let end = UInt(bitPattern: base + range.upperBound)
        let first = (start + UInt(page) - 1) / UInt(page) * UInt(page)
        let last = end / UInt(page) * UInt(page)
        guard last > first, let p = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(p, Int(last - first), MADV_DONTNEED)
    }
}

final class OwnedBytes {
    let buffer: UnsafeMutableRawBufferPointer
    init(_ data: some Collection<UInt8>) {
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, data.count), alignment: 64)
        _ = buffer.initializeMemory(as: UInt8.self, from: data)
    }
    deinit { buffer.deallocate() }
}
