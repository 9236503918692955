import Foundation
import LinprobeCore

/// The central directory of a zip file held in memory (a `MappedFile`). Only what PyTorch's
/// writer produces is needed: stored (uncompressed) entries, optionally ZIP64. Every entry's
/// bounds are checked against the file, and its CRC-32 is verified when its data is taken.
struct ZipArchive {
    struct Entry {
        let name: String
        let method: UInt16
        let crc32: UInt32
        let compressedSize: Int
        let uncompressedSize: Int
        let localHeaderOffset: Int
    }

    let file: MappedFile
    let entries: [Entry]
    private let index: [String: Int]

    init(file: MappedFile) throws {
        self.file = file
        let b = file.bytes
        let path = file.path
        func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        func u64(_ o: Int) -> Int { u32(o) | u32(o + 4) << 32 }
        func corrupt(_ what: String) -> LinprobeError {
            LinprobeError(.corruptInput, "\(path): \(what); the zip-format checkpoint is truncated or corrupt (re-download or re-save it)")
        }

        // End of central directory: the last "PK\u{5}\u{6}" within the final 64 KiB + 22 bytes.
        guard b.count >= 22 else { throw corrupt("file too short for a zip archive (\(b.count) bytes)") }
        var eocd = -1
        var o = b.count - 22
        let lowest = max(0, b.count - 22 - 65535)
        while o >= lowest {
            if b[o] == 0x50, b[o + 1] == 0x4B, b[o + 2] == 0x05, b[o + 3] == 0x06 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else { throw corrupt("no end-of-central-directory record") }
        var entryCount = u16(eocd + 10)
        var cdSize = u32(eocd + 12)
        var cdOffset = u32(eocd + 16)
        if entryCount == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // ZIP64: a locator sits just before the EOCD and points at the ZIP64 EOCD record.
            let loc = eocd - 20
            guard loc >= 0, u32(loc) == 0x0706_4B50 else { throw corrupt("missing ZIP64 locator") }
            let rec = u64(loc + 8)
            guard rec >= 0, rec + 56 <= b.count, u32(rec) == 0x0606_4B50 else { throw corrupt("bad ZIP64 end record") }
            entryCount = u64(rec + 32)
            cdSize = u64(rec + 40)
            cdOffset = u64(rec + 48)
        }
        guard cdOffset >= 0, cdSize >= 0, cdOffset + cdSize <= b.count else {
            throw corrupt("central directory [\(cdOffset), +\(cdSize)) lies outside the \(b.count)-byte file")
        }

        var entries: [Entry] = []
        var index: [String: Int] = [:]
        var p = cdOffset
        for _ in 0..<entryCount {
            guard p + 46 <= cdOffset + cdSize, u32(p) == 0x0201_4B50 else { throw corrupt("bad central directory entry at byte \(p)") }
            let method = UInt16(u16(p + 10))
            let crc = UInt32(u32(p + 16))
            var csize = u32(p + 20), usize = u32(p + 24)
            let nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32)
            var local = u32(p + 42)
            guard p + 46 + nameLen + extraLen + commentLen <= cdOffset + cdSize else { throw corrupt("central directory entry at byte \(p) overruns") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: b[(p + 46)..<(p + 46 + nameLen)]), as: UTF8.self)
            // ZIP64 extra field: the 64-bit values of those fields that are 0xFFFFFFFF, in order.
            var e = p + 46 + nameLen
            let eEnd = e + extraLen
            while e + 4 <= eEnd {
                let id = u16(e), len = u16(e + 2)
                if id == 0x0001 {
                    var q = e + 4
                    if usize == 0xFFFF_FFFF, q + 8 <= e + 4 + len { usize = u64(q); q += 8 }
                    if csize == 0xFFFF_FFFF, q + 8 <= e + 4 + len { csize = u64(q); q += 8 }
                    if local == 0xFFFF_FFFF, q + 8 <= e + 4 + len { local = u64(q); q += 8 }
                }
                e += 4 + len
            }
            index[name] = entries.count
            entries.append(Entry(name: name, method: method, crc32: crc, compressedSize: csize,
                                 uncompressedSize: usize, localHeaderOffset: local))
            p += 46 + nameLen + extraLen + commentLen
        }
        self.entries = entries
        self.index = index
    }

    func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The bytes of a stored entry, bounds- and CRC-checked.
    func data(of entry: Entry, verify: Bool = true) throws -> ByteRegion {
        let b = file.bytes
        let path = file.path
        func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        let h = entry.localHeaderOffset
        guard h >= 0, h + 30 <= b.count, b[h] == 0x50, b[h + 1] == 0x4B, b[h + 2] == 0x03, b[h + 3] == 0x04 else {
            throw LinprobeError(.corruptInput, "\(path): entry '\(entry.name)' has no local header at byte \(h); the checkpoint is truncated or corrupt")
        }
        guard entry.method == 0 else {
            throw LinprobeError(.unsupported, "\(path): entry '\(entry.name)' is compressed (method \(entry.method)); PyTorch checkpoints store tensors uncompressed — re-save it with torch.save")
        }
        let start = h + 30 + u16(h + 26) + u16(h + 28)
        guard entry.compressedSize == entry.uncompressedSize, start + entry.uncompressedSize <= b.count else {
            throw LinprobeError(.corruptInput, "\(path): entry '\(entry.name)' (\(entry.uncompressedSize) bytes at byte \(start)) runs past the end of the \(b.count)-byte file; the checkpoint is truncated")
        }
        let bytes = UnsafeRawBufferPointer(rebasing: b[start..<(start + entry.uncompressedSize)])
        if verify {
            let crc = CRC32.checksum(bytes)
            guard crc == entry.crc32 else {
                throw LinprobeError(.corruptInput,
                    "\(path): entry '\(entry.name)' fails its CRC-32 check (stored \(String(entry.crc32, radix: 16)), computed \(String(crc, radix: 16))); the checkpoint is corrupt — re-download or re-save it")
            }
        }
        return ByteRegion(owner: file, bytes: bytes)
    }
}

/// CRC-32 (IEEE 802.3, as in zip), slicing-by-8.
enum CRC32 {
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

    static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = data.baseAddress, data.count > 0 else { return 0 }
        let n = data.count
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            var i = 0
            while i + 8 <= n {
                let lo = base.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian ^ crc
                let hi = base.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                crc = t[1792 + Int(lo & 0xFF)] ^ t[1536 + Int((lo >> 8) & 0xFF)]
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
