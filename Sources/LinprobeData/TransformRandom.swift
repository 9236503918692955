import LinprobeCore

/// The random numbers of one sample's transforms: the shared xoshiro256** generator seeded from
/// (base seed, sample index, view). The same triple always gives the same crops and flips, so
/// a rerun — or a resumed run on any number of threads — is identical.
///
/// (torchvision draws from PyTorch's global generator, which depends on worker scheduling; the
/// distributions here are the same, the individual draws are not.)
public typealias TransformRandom = Xoshiro256

extension Xoshiro256 {
    /// The generator of sample `index`, augmented view `view`, under `baseSeed`.
    public init(baseSeed: UInt64, sampleIndex: Int, view: Int = 0) {
        var h = baseSeed ^ 0x6C69_6E70_726F_6265  // "linprobe"
        for v in [UInt64(bitPattern: Int64(sampleIndex)), UInt64(bitPattern: Int64(view))] {
            h = (h ^ v) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
        }
        self.init(seed: h)
    }
}
