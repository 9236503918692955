import Foundation
import LinprobeCore

/// Writes a zip archive of stored (uncompressed) entries as a stream — what NumPy's `np.savez`
/// writes, so `np.load` reads it (and `ZipArchive` reads it back). An entry's size is given when
/// it starts and its bytes are appended block by block; its CRC-32 is computed on the way and
/// patched into the local header when it ends. ZIP64 fields are used where a size or an offset
/// does not fit 32 bits. Times are fixed (1980-01-01), so the same content gives the same bytes.
public final class ZipWriter {
    public let path: String
    private let handle: FileHandle
    private var offset: UInt64 = 0
    private var records: [Record] = []
    private var open: Record?

    private struct Record {
        var name: [UInt8]
        var headerOffset: UInt64
        var size: UInt64
        var written: UInt64 = 0
        var crc: UInt32 = 0
        var zip64Size: Bool { size >= 0xFFFF_FFFF }
    }

    private static let dosDate: UInt16 = 0x21  // 1980-01-01
    private static let utf8Flag: UInt16 = 0x0800

    /// Creates (or truncates) the file.
    public init(path: String) throws {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else {
            throw LinprobeError(.io, "\(path): cannot create the file (is the folder writable?)")
        }
        self.handle = handle
    }

    deinit { try? handle.close() }

    /// Starts an entry of exactly `size` bytes.
    public func beginEntry(name: String, size: UInt64) throws {
        guard open == nil else { throw LinprobeError(.usage, "\(path): an entry is still open") }
        let record = Record(name: Array(name.utf8), headerOffset: offset, size: size)
        var h = Bytes()
        h.u32(0x0403_4B50)
        h.u16(record.zip64Size ? 45 : 20)
        h.u16(Self.utf8Flag)
        h.u16(0)  // stored
        h.u16(0)
        h.u16(Self.dosDate)
        h.u32(0)  // CRC-32, patched by endEntry
        h.u32(record.zip64Size ? 0xFFFF_FFFF : UInt32(size))
        h.u32(record.zip64Size ? 0xFFFF_FFFF : UInt32(size))
        h.u16(UInt16(record.name.count))
        h.u16(record.zip64Size ? 20 : 0)
        h.bytes.append(contentsOf: record.name)
        if record.zip64Size {
            h.u16(0x0001)
            h.u16(16)
            h.u64(size)
            h.u64(size)
        }
        try append(h.bytes)
        open = record
    }

    /// Appends bytes to the open entry.
    public func write(_ data: UnsafeRawBufferPointer) throws {
        guard var record = open else { throw LinprobeError(.usage, "\(path): no entry is open") }
        guard record.written + UInt64(data.count) <= record.size else {
            throw LinprobeError(.usage, "\(path): more bytes than the \(record.size) announced for an entry")
        }
        record.crc = CRC32.update(record.crc, data)
        record.written += UInt64(data.count)
        open = record
        try append(data)
    }

    /// Appends the bytes of `data` to the open entry.
    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// Ends the open entry: checks its size and writes its CRC-32 into its local header.
    public func endEntry() throws {
        guard let record = open else { throw LinprobeError(.usage, "\(path): no entry is open") }
        guard record.written == record.size else {
            throw LinprobeError(.usage, "\(path): entry got \(record.written) of \(record.size) bytes")
        }
        var crc = Bytes()
        crc.u32(record.crc)
        do {
            try handle.seek(toOffset: record.headerOffset + 14)
            try handle.write(contentsOf: crc.bytes)
            try handle.seek(toOffset: offset)
        } catch {
            throw LinprobeError(.io, "\(path): writing failed (is the disk full?): \(oneLine(error))")
        }
        records.append(record)
        open = nil
    }

    /// Writes the central directory and closes the file.
    public func finish() throws {
        guard open == nil else { throw LinprobeError(.usage, "\(path): an entry is still open") }
        let directoryStart = offset
        for record in records { try append(centralHeader(record)) }
        let directorySize = offset - directoryStart
        var end = Bytes()
        let zip64 =
            directoryStart >= 0xFFFF_FFFF || directorySize >= 0xFFFF_FFFF || records.count >= 0xFFFF
        if zip64 {
            let recordOffset = offset
            end.u32(0x0606_4B50)
            end.u64(44)
            end.u16(45)
            end.u16(45)
            end.u32(0)
            end.u32(0)
            end.u64(UInt64(records.count))
            end.u64(UInt64(records.count))
            end.u64(directorySize)
            end.u64(directoryStart)
            end.u32(0x0706_4B50)
            end.u32(0)
            end.u64(recordOffset)
            end.u32(1)
        }
        end.u32(0x0605_4B50)
        end.u16(0)
        end.u16(0)
        end.u16(UInt16(min(records.count, 0xFFFF)))
        end.u16(UInt16(min(records.count, 0xFFFF)))
        end.u32(UInt32(min(directorySize, 0xFFFF_FFFF)))
        end.u32(UInt32(min(directoryStart, 0xFFFF_FFFF)))
        end.u16(0)
        try append(end.bytes)
        do { try handle.close() } catch {
            throw LinprobeError(.io, "\(path): closing failed (is the disk full?): \(oneLine(error))")
        }
    }

    private func centralHeader(_ r: Record) -> [UInt8] {
        let bigOffset = r.headerOffset >= 0xFFFF_FFFF
        var extra = Bytes()
        if r.zip64Size || bigOffset {
            var fields = Bytes()
            if r.zip64Size {
                fields.u64(r.size)
                fields.u64(r.size)
            }
            if bigOffset { fields.u64(r.headerOffset) }
            extra.u16(0x0001)
            extra.u16(UInt16(fields.bytes.count))
            extra.bytes.append(contentsOf: fields.bytes)
        }
        var h = Bytes()
        h.u32(0x0201_4B50)
        h.u16(45)
        h.u16(extra.bytes.isEmpty ? 20 : 45)
        h.u16(Self.utf8Flag)
        h.u16(0)
        h.u16(0)
        h.u16(Self.dosDate)
        h.u32(r.crc)
        h.u32(r.zip64Size ? 0xFFFF_FFFF : UInt32(r.size))
        h.u32(r.zip64Size ? 0xFFFF_FFFF : UInt32(r.size))
        h.u16(UInt16(r.name.count))
        h.u16(UInt16(extra.bytes.count))
        h.u16(0)
        h.u16(0)
        h.u16(0)
        h.u32(0)  // external attributes
        h.u32(bigOffset ? 0xFFFF_FFFF : UInt32(r.headerOffset))
        h.bytes.append(contentsOf: r.name)
        h.bytes.append(contentsOf: extra.bytes)
        return h.bytes
    }

    private func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    private func append(_ data: UnsafeRawBufferPointer) throws {
        do { try handle.write(contentsOf: Data(data)) } catch {
            throw LinprobeError(.io, "\(path): writing failed (is the disk full?): \(oneLine(error))")
        }
        offset += UInt64(data.count)
    }

    /// Little-endian fields.
    private struct Bytes {
        var bytes: [UInt8] = []
        mutating func u16(_ v: UInt16) { bytes += [UInt8(v & 0xFF), UInt8(v >> 8)] }
        mutating func u32(_ v: UInt32) { for k in 0..<4 { bytes.append(UInt8((v >> (8 * UInt32(k))) & 0xFF)) } }
        mutating func u64(_ v: UInt64) { for k in 0..<8 { bytes.append(UInt8((v >> (8 * UInt64(k))) & 0xFF)) } }
    }
}
