/// Repairs the checksums a mutation broke, so that half of the mutants get past the CRC checks
/// and reach the parsers behind them (zip entries' pickles and tensors, PNG chunk contents).
enum Checksums {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    private static func read(_ b: [UInt8], _ at: Int, _ width: Int, bigEndian: Bool = false) -> Int? {
        guard at >= 0, at + width <= b.count else { return nil }
        var v = 0
        for k in 0..<width { v |= Int(b[at + (bigEndian ? width - 1 - k : k)]) << (8 * k) }
        return v
    }

    private static func write(_ b: inout [UInt8], _ at: Int, _ value: UInt32, bigEndian: Bool = false) {
        guard at >= 0, at + 4 <= b.count else { return }
        for k in 0..<4 { b[at + (bigEndian ? 3 - k : k)] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(k))) }
    }

    /// Stored zip entries: each local header's CRC-32 (and its central-directory copy) set to
    /// the CRC of the bytes its compressed size covers.
    static func fixZip(_ b: [UInt8]) -> [UInt8] {
        var out = b
        var crcs: [Int: UInt32] = [:]
        for o in starts(of: [0x50, 0x4B, 3, 4], in: b) {
            guard let size = read(b, o + 18, 4), let n = read(b, o + 26, 2), let e = read(b, o + 28, 2) else {
                continue
            }
            let start = o + 30 + n + e
            guard start + size <= b.count else { continue }
            let crc = crc32(b[start..<(start + size)])
            write(&out, o + 14, crc)
            crcs[o] = crc
        }
        for o in starts(of: [0x50, 0x4B, 1, 2], in: b) {
            if let local = read(b, o + 42, 4), let crc = crcs[local] { write(&out, o + 16, crc) }
        }
        return out
    }

    /// PNG chunks: each chunk's CRC set to the CRC of its type and data.
    static func fixPNG(_ b: [UInt8]) -> [UInt8] {
        var out = b
        var o = 8
        while let length = read(b, o, 4, bigEndian: true), o + 12 + length <= b.count {
            write(&out, o + 8 + length, crc32(b[(o + 4)..<(o + 8 + length)]), bigEndian: true)
            o += 12 + length
        }
        return out
    }

    private static func starts(of pattern: [UInt8], in b: [UInt8]) -> [Int] {
        guard b.count >= pattern.count else { return [] }
        return (0...(b.count - pattern.count)).filter { i in
            b[i] == pattern[0] && b[i..<(i + pattern.count)].elementsEqual(pattern)
        }
    }
}
