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
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw LinprobeError(.missingInput, "\(path): cannot open the weights file (\(reason)); check MODEL.WEIGHTS_INIT.PARAMS_FILE")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw LinprobeError(.io, "\(path): cannot stat the weights file (\(String(cString: strerror(errno))))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw LinprobeError(.missingInput, "\(path): is not a regular file; MODEL.WEIGHTS_INIT.PARAMS_FILE must name a checkpoint file")
        }
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw LinprobeError(.io, "\(path): cannot map the weights file into memory (\(String(cString: strerror(errno))))")
        }
        base = UnsafeRawPointer(p)
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
}

final class OwnedBytes {
    let buffer: UnsafeMutableRawBufferPointer
    init(_ data: some Collection<UInt8>) {
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, data.count), alignment: 64)
        _ = buffer.initializeMemory(as: UInt8.self, from: data)
    }
    deinit { buffer.deallocate() }
}
