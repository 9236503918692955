import LinprobeCore

/// Seeded, deterministic mutations of a seed input: bit flips, byte overwrites, inserts and
/// deletions, interesting integers written at header fields, truncation, duplication and
/// splicing with another seed. The same seed and iteration always give the same mutant.
public struct Mutator: Sendable {
    /// Integers that break size and offset arithmetic: zero, one, sign boundaries, all-ones and
    /// values near 2⁶³ and 2⁶⁴ (written as 1, 2, 4 or 8 bytes, either byte order).
    static let interesting: [UInt64] = [
        0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000,
        0xFFFF_FFFF, 0x1_0000_0000, 1 << 40, 1 << 62, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000,
        0xFFFF_FFFF_FFFF_FFFE, 0xFFFF_FFFF_FFFF_FFFF,
    ]
    /// Fragments that stress text parsers (YAML structure and aliases, `.npy` header dicts).
    static let tokens: [String] = [
        "[", "]", "{", "}", ":", ": ", "- ", "\n", "\n  ", "&a ", "*a", "<<: *a", "!!python/object ", "'", "\"",
        "#", "~", "null", "9223372036854775807", "-1", "18446744073709551616", "1e400", "nan", ".inf", "(",
        ")", ",", "'shape': (", "'descr': '<f8'", "True", "\u{FEFF}", "\t", "\\", "%YAML 1.1\n", "---\n", "...",
    ]

    /// Largest mutant (bytes); inserts stop growing an input past it.
    public var maximumSize: Int

    public init(maximumSize: Int = 1 << 20) { self.maximumSize = maximumSize }

    /// The `iteration`-th mutant of `seeds` under `seed`: one seed input picked, then one to
    /// four mutations, each at a hot offset (a header field of the format) half of the time.
    public func mutant(
        iteration: Int, seed: UInt64, seeds: [[UInt8]], hotspots: ([UInt8]) -> [Int]
    ) -> [UInt8] {
        guard !seeds.isEmpty else { return [] }
        var rng = Xoshiro256(seed: Int(bitPattern: UInt(seed)), stream: 0x6675_7A7A, index: UInt64(iteration))
        var bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
        let hot = hotspots(bytes)
        let rounds = 1 + Int(rng.next() % 4)
        for _ in 0..<rounds {
            let other = seeds[Int(rng.next() % UInt64(seeds.count))]
            mutate(&bytes, hot: hot, other: other, rng: &rng)
        }
        return bytes
    }

    /// Mutation kinds by weight: in-place changes are the most frequent; truncation and splicing,
    /// which end most inputs at the first structure check, the rarest.
    private static let kinds: [Int] = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 6, 6, 7, 7, 8]

    /// Applies one mutation chosen by `rng`.
    func mutate(_ b: inout [UInt8], hot: [Int], other: [UInt8], rng: inout Xoshiro256) {
        let at = offset(in: b.count, hot: hot, rng: &rng)
        switch Self.kinds[Int(rng.next() % UInt64(Self.kinds.count))] {
        case 0:
            if at < b.count { b[at] ^= UInt8(1) << UInt8(rng.next() % 8) }
        case 1:
            if at < b.count { b[at] = UInt8(truncatingIfNeeded: rng.next()) }
        case 2:
            writeInteger(&b, at: at, rng: &rng)
        case 3:
            let n = 1 + Int(rng.next() % 8)
            if b.count + n <= maximumSize { b.insert(contentsOf: (0..<n).map { _ in random(&rng) }, at: at) }
        case 4:
            let n = min(b.count - at, 1 + Int(rng.next() % 16))
            if n > 0 { b.removeSubrange(at..<(at + n)) }
        case 5:
            if at < b.count { b.removeSubrange(at...) }
        case 6:
            let token = Array(Self.tokens[Int(rng.next() % UInt64(Self.tokens.count))].utf8)
            if b.count + token.count <= maximumSize { b.insert(contentsOf: token, at: at) }
        case 7:
            duplicate(&b, at: at, rng: &rng)
        default:
            splice(&b, at: at, other: other, rng: &rng)
        }
    }

    private func offset(in count: Int, hot: [Int], rng: inout Xoshiro256) -> Int {
        guard count > 0 else { return 0 }
        if !hot.isEmpty, rng.next() % 2 == 0 {
            let base = hot[Int(rng.next() % UInt64(hot.count))]
            return min(count, max(0, base + Int(rng.next() % 16) - 4))
        }
        return Int(rng.next() % UInt64(count + 1))
    }

    private func random(_ rng: inout Xoshiro256) -> UInt8 { UInt8(truncatingIfNeeded: rng.next()) }

    private func writeInteger(_ b: inout [UInt8], at: Int, rng: inout Xoshiro256) {
        var value = Self.interesting[Int(rng.next() % UInt64(Self.interesting.count))]
        if rng.next() % 4 == 0 { value = value &+ UInt64(rng.next() % 5) &- 2 }
        let width = [1, 2, 4, 8][Int(rng.next() % 4)]
        let bigEndian = rng.next() % 4 == 0
        var field = (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
        if bigEndian { field.reverse() }
        for (k, byte) in field.enumerated() where at + k < b.count { b[at + k] = byte }
    }

    /// Copies a range of the input to another place (repeated chunks, duplicated headers).
    private func duplicate(_ b: inout [UInt8], at: Int, rng: inout Xoshiro256) {
        guard !b.isEmpty else { return }
        let start = Int(rng.next() % UInt64(b.count))
        let n = min(b.count - start, 1 + Int(rng.next() % 256))
        guard b.count + n <= maximumSize else { return }
        b.insert(contentsOf: Array(b[start..<(start + n)]), at: at)
    }

    /// This input up to `at`, then another seed from a random point.
    private func splice(_ b: inout [UInt8], at: Int, other: [UInt8], rng: inout Xoshiro256) {
        guard !other.isEmpty else { return }
        let from = Int(rng.next() % UInt64(other.count))
        let tail = other[from...].prefix(max(0, maximumSize - at))
        b = Array(b[..<at]) + tail
    }
}
