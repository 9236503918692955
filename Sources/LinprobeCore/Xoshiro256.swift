/// xoshiro256** seeded through SplitMix64: every seeded random stream of Linprobe (transform
/// draws, initial weights, shuffling, dropout, the SVM solver's visiting order, low-shot
/// sampling). The whole state is four words, so it can be saved in checkpoints.
public struct Xoshiro256: RandomNumberGenerator, Sendable, Equatable {
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var s = seed
        func splitmix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    /// A generator for a named stream of a seed (e.g. the shuffle of epoch 7).
    public init(seed: Int, stream: UInt64, index: UInt64 = 0) {
        var mixed = UInt64(bitPattern: Int64(seed)) &* 0x9E37_79B9_7F4A_7C15
        mixed ^= stream &* 0xD1B5_4A32_D192_ED03
        mixed ^= index &* 0x8CB9_2BA7_2F3D_8DD7
        self.init(seed: mixed)
    }

    public init(words: [UInt64]) {
        precondition(words.count == 4)
        state = (words[0], words[1], words[2], words[3])
    }

    public var words: [UInt64] { [state.0, state.1, state.2, state.3] }

    public static func == (a: Xoshiro256, b: Xoshiro256) -> Bool { a.words == b.words }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 24 random bits (exactly representable as Float).
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Uniform in [a, b).
    public mutating func uniform(_ a: Double, _ b: Double) -> Double {
        a + (b - a) * uniform()
    }

    /// Uniform integer in `0..<n`, unbiased (Lemire's multiply-and-reject, as the standard
    /// library's `next(upperBound:)`).
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0)
        return Int(next(upperBound: UInt64(n)))
    }
}
