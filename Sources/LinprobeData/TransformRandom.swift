/// The random numbers of one sample's transforms: xoshiro256** seeded through SplitMix64 from
/// (base seed, sample index, view). The same triple always gives the same crops and flips, so
/// a rerun — or a resumed run on any number of threads — is identical.
///
/// (torchvision draws from PyTorch's global generator, which depends on worker scheduling; the
/// distributions here are the same, the individual draws are not.)
public struct TransformRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var sm = seed
        func next() -> UInt64 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = next(); s1 = next(); s2 = next(); s3 = next()
    }

    /// The generator of sample `index`, augmented view `view`, under `baseSeed`.
    public init(baseSeed: UInt64, sampleIndex: Int, view: Int = 0) {
        var h = baseSeed ^ 0x6C69_6E70_726F_6265  // "linprobe"
        for v in [UInt64(bitPattern: Int64(sampleIndex)), UInt64(bitPattern: Int64(view))] {
            h = (h ^ v) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
        }
        self.init(seed: h)
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Uniform in [a, b).
    public mutating func uniform(_ a: Double, _ b: Double) -> Double {
        a + (b - a) * uniform()
    }

    /// Uniform integer in `0..<n` (unbiased).
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0)
        return Int(next(upperBound: UInt64(n)))
    }
}
