import Foundation
import LinprobeCore

/// The central directory of a zip file held in memory (a `MappedFile`). Only what PyTorch's
/// writer (and NumPy's `np.savez`) produces is needed: stored (uncompressed) entries, optionally ZIP64. Every size,
/// offset and count — ZIP64 values up to 2^64−1 included — is checked against the file's size
/// with overflow-checked arithmetic before it is used, and an entry's CRC-32 is verified when
/// its data is taken.
public struct ZipArchive: @unchecked Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let method: UInt16
        public let crc32: UInt32
        /// Bytes of the stored data (at most the file's size).
        public let compressedSize: Int
        /// As recorded (meaningful only for stored entries, where it must equal `compressedSize`).
        public let uncompressedSize: UInt64
        /// Offset of the local header (inside the file).
        public let localHeaderOffset: Int
    }

    public let file: MappedFile
    public let entries: [Entry]
    private let index: [String: Int]

    public init(file: MappedFile) throws {
        self.file = file
        let fields = ZipFields(bytes: file.bytes, path: file.path)
        let (count, directory) = try fields.centralDirectory()
        var entries: [Entry] = []
        var index: [String: Int] = [:]
        var p = directory.lowerBound
        for _ in 0..<count {
            let (entry, next) = try fields.entry(at: p, in: directory)
            index[entry.name] = entries.count
            entries.append(entry)
            p = next
        }
        self.entries = entries
        self.index = index
    }

    public func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The bytes of a stored entry, bounds- and CRC-checked (`verify`: reads every byte).
    public func data(of entry: Entry, verify: Bool = true) throws -> ByteRegion {
        let b = file.bytes
        let path = file.path
        let h = entry.localHeaderOffset
        guard h <= b.count - 30, b[h] == 0x50, b[h + 1] == 0x4B, b[h + 2] == 0x03, b[h + 3] == 0x04 else {
            throw LinprobeError(
                .corruptInput,
                "\(path): entry '\(entry.name)' has no local header at byte \(h); the checkpoint is truncated or corrupt"
            )
        }
        guard entry.method == 0 else {
            throw LinprobeError(
                .unsupported,
                "\(path): entry '\(entry.name)' is compressed (method \(entry.method)); PyTorch checkpoints store tensors uncompressed — re-save it with torch.save"
            )
        }
        let fields = ZipFields(bytes: b, path: path)
        let start = h + 30 + fields.u16(h + 26) + fields.u16(h + 28)  // h ≤ count − 30: no overflow
        guard entry.uncompressedSize == UInt64(entry.compressedSize), start <= b.count,
            entry.compressedSize <= b.count - start
        else {
            throw LinprobeError(
                .corruptInput,
                "\(path): entry '\(entry.name)' (\(entry.uncompressedSize) bytes at byte \(start)) runs past the end of the \(b.count)-byte file; the checkpoint is truncated"
            )
        }
        let bytes = UnsafeRawBufferPointer(rebasing: b[start..<(start + entry.compressedSize)])
        let region = ByteRegion(owner: file, bytes: bytes)
        if verify {
            let crc = Self.checksumReleasingPages(region)
            guard crc == entry.crc32 else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): entry '\(entry.name)' fails its CRC-32 check (stored \(String(entry.crc32, radix: 16)), computed \(String(crc, radix: 16))); the checkpoint is corrupt — re-download or re-save it"
                )
            }
        }
        return region
    }

    /// The CRC-32 of a region, 64 MiB at a time, each block's file pages released once read: the
    /// check of a multi-gigabyte tensor storage (SEER) does not leave the whole file resident.
    static func checksumReleasingPages(_ region: ByteRegion) -> UInt32 {
        let block = 64 << 20
        var crc: UInt32 = 0
        var start = 0
        while start < region.count {
            let end = min(region.count, start + block)
            crc = CRC32.update(crc, UnsafeRawBufferPointer(rebasing: region.bytes[start..<end]))
            region.releaseResidentPages(start..<end)
            start = end
        }
        return crc
    }
}

/// Reads the little-endian fields of a zip file and checks each size, offset and count against
/// the file before it becomes an `Int`.
private struct ZipFields {
    let b: UnsafeRawBufferPointer
    let path: String

    init(bytes: UnsafeRawBufferPointer, path: String) {
        b = bytes
        self.path = path
    }

    func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
    func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) | UInt64(u32(o + 4)) << 32 }

    func corrupt(_ what: String) -> LinprobeError {
        LinprobeError(
            .corruptInput,
            "\(path): \(what); the zip-format checkpoint is truncated or corrupt (re-download or re-save it)")
    }

    /// `value` as an offset or size inside the file (at most its byte count).
    func inFile(_ value: UInt64, _ field: String) throws -> Int {
        guard value <= UInt64(b.count) else { throw corrupt("\(field) \(value) exceeds the \(b.count)-byte file") }
        return Int(value)
    }

    /// `start..<start+length`, checked to lie inside the file.
    func span(_ start: UInt64, _ length: UInt64, _ what: String) throws -> Range<Int> {
        let (end, overflow) = start.addingReportingOverflow(length)
        guard !overflow, end <= UInt64(b.count) else {
            throw corrupt("\(what) [\(start), +\(length)) lies outside the \(b.count)-byte file")
        }
        return Int(start)..<Int(end)
    }

    /// The entry count and the byte range of the central directory, from the end-of-central-
    /// directory record (the ZIP64 one when the classic fields are saturated).
    func centralDirectory() throws -> (count: Int, range: Range<Int>) {
        // The last "PK\u{5}\u{6}" within the final 64 KiB + 22 bytes.
        guard b.count >= 22 else { throw corrupt("file too short for a zip archive (\(b.count) bytes)") }
        var eocd = -1
        var o = b.count - 22
        let lowest = max(0, b.count - 22 - 65535)
        while o >= lowest {
            if b[o] == 0x50, b[o + 1] == 0x4B, b[o + 2] == 0x05, b[o + 3] == 0x06 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else { throw corrupt("no end-of-central-directory record") }
        var count = UInt64(u16(eocd + 10))
        var size = UInt64(u32(eocd + 12))
        var offset = UInt64(u32(eocd + 16))
        if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
            // ZIP64: a locator sits just before the EOCD and points at the ZIP64 EOCD record.
            let loc = eocd - 20
            guard loc >= 0, u32(loc) == 0x0706_4B50 else { throw corrupt("missing ZIP64 locator") }
            let record = try span(u64(loc + 8), 56, "ZIP64 end-of-central-directory record").lowerBound
            guard u32(record) == 0x0606_4B50 else { throw corrupt("bad ZIP64 end record") }
            count = u64(record + 32)
            size = u64(record + 40)
            offset = u64(record + 48)
        }
        let range = try span(offset, size, "central directory")
        // Every entry takes at least 46 bytes of the directory.
        guard count <= UInt64(range.count / 46) else {
            throw corrupt("entry count \(count) does not fit in the \(range.count)-byte central directory")
        }
        return (Int(count), range)
    }

    /// The central-directory entry at `p` and where the next one starts.
    func entry(at p: Int, in directory: Range<Int>) throws -> (ZipArchive.Entry, next: Int) {
        guard directory.upperBound - p >= 46, u32(p) == 0x0201_4B50 else {
            throw corrupt("bad central directory entry at byte \(p)")
        }
        let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
        let next = p + 46 + nameLength + extraLength + commentLength  // ≤ p + 3·65535 + 46: no overflow
        guard next <= directory.upperBound else { throw corrupt("central directory entry at byte \(p) overruns") }
        let nameBytes = UnsafeRawBufferPointer(rebasing: b[(p + 46)..<(p + 46 + nameLength)])
        let name = String(decoding: nameBytes, as: UTF8.self)
        var csize = UInt64(u32(p + 20)), usize = UInt64(u32(p + 24)), local = UInt64(u32(p + 42))
        // ZIP64 extra field: the 64-bit values of those fields that are 0xFFFFFFFF, in order.
        var e = p + 46 + nameLength
        let extraEnd = e + extraLength
        while e + 4 <= extraEnd {
            let id = u16(e), length = u16(e + 2)
            let fieldEnd = min(e + 4 + length, extraEnd)
            if id == 0x0001 {
                var q = e + 4
                if usize == 0xFFFF_FFFF, q + 8 <= fieldEnd { usize = u64(q); q += 8 }
                if csize == 0xFFFF_FFFF, q + 8 <= fieldEnd { csize = u64(q); q += 8 }
                if local == 0xFFFF_FFFF, q + 8 <= fieldEnd { local = u64(q); q += 8 }
            }
            e += 4 + length
        }
        let entry = ZipArchive.Entry(
            name: name, method: UInt16(u16(p + 10)), crc32: UInt32(u32(p + 16)),
            compressedSize: try inFile(csize, "entry '\(name)': compressed size"), uncompressedSize: usize,
            localHeaderOffset: try inFile(local, "entry '\(name)': local header offset"))
        return (entry, next)
    }
}

/// CRC-32 (IEEE 802.3, as in zip), slicing-by-8.
public enum CRC32 {
    /// Eight 256-entry tables, flattened: table k starts at 256·k.
    static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 256 * 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[256 * (k - 1) + i]
                t[256 * k + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
            }
        }
        return t
    }()

    /// The CRC-32 of `data`.
    public static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        update(0, data)
    }

    /// The CRC-32 of the bytes behind `crc` (0 for none) followed by `data`: a checksum computed
    /// block by block.
    public static func update(_ previous: UInt32, _ data: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = data.baseAddress, data.count > 0 else { return previous }
        let n = data.count
        var crc: UInt32 = previous ^ 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            var i = 0
            while i + 8 <= n {
                let lo = base.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian ^ crc
                let hi = base.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                crc =
                    t[1792 + Int(lo & 0xFF)] ^ t[1536 + Int((lo >> 8) & 0xFF)]
                    ^ t[1280 + Int((lo >> 16) & 0xFF)] ^ t[1024 + Int(lo >> 24)]
                    ^ t[768 + Int(hi & 0xFF)] ^ t[512 + Int((hi >> 8) & 0xFF)]
                    ^ t[256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                crc = t[Int((crc ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) & 0xFF)] ^ (crc >> 8)
                i += 1
            }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
