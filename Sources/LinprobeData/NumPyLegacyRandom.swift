/// NumPy's legacy global generator (`np.random.seed(s)` + `np.random.choice(n, k, replace=False)`),
/// reproduced bit for bit so that `DATA_LIMIT` picks exactly the samples VISSL picks.
///
/// MT19937 seeded with `init_genrand(seed)`; `choice` without replacement is
/// `permutation(n)[:k]`, a Fisher–Yates shuffle of `arange(n)` from the end whose draws are
/// `random_interval(i)`: 32-bit outputs masked to the smallest all-ones mask ≥ i, rejected
/// until ≤ i.
struct NumPyLegacyRandom {
    private var state = [UInt32](repeating: 0, count: 624)
    private var position = 624

    init(seed: UInt32) {
        state[0] = seed
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
        position = 624
    }

    mutating func nextUInt32() -> UInt32 {
        if position >= 624 { twist() }
        var y = state[position]
        position += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            var v = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { v ^= 0x9908_B0DF }
            state[i] = v
        }
        position = 0
    }

    mutating func nextUInt64() -> UInt64 {
        UInt64(nextUInt32()) << 32 | UInt64(nextUInt32())
    }

    /// NumPy's `random_interval(max)`: uniform in 0...max by masked rejection.
    mutating func interval(_ max: UInt64) -> UInt64 {
        if max == 0 { return 0 }
        var mask = max
        mask |= mask >> 1
        mask |= mask >> 2
        mask |= mask >> 4
        mask |= mask >> 8
        mask |= mask >> 16
        mask |= mask >> 32
        if max <= 0xFFFF_FFFF {
            while true {
                let v = UInt64(nextUInt32()) & mask
                if v <= max { return v }
            }
        }
        while true {
            let v = nextUInt64() & mask
            if v <= max { return v }
        }
    }

    /// `RandomState.permutation(n)`.
    mutating func permutation(_ n: Int) -> [Int] {
        var a = Array(0..<n)
        var i = n - 1
        while i >= 1 {
            let j = Int(interval(UInt64(i)))
            a.swapAt(i, j)
            i -= 1
        }
        return a
    }

    /// `RandomState.choice(n, size: k, replace: false)` as indices into `0..<n`.
    mutating func choiceWithoutReplacement(_ n: Int, _ k: Int) -> [Int] {
        Array(permutation(n).prefix(k))
    }
}
