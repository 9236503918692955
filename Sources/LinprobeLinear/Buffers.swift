import Dispatch
import Foundation

/// A fixed-size, 64-byte aligned float buffer owned by one object (head parameters, optimizer
/// state and workspaces). Freed in `deinit`.
final class FloatBuffer: @unchecked Sendable {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(_ count: Int, value: Float = 0) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(1, count))
        pointer.initialize(repeating: value, count: max(1, count))
    }

    convenience init(_ values: [Float]) {
        self.init(values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    func fill(_ value: Float) { pointer.update(repeating: value, count: count) }

    func copy(from values: [Float]) {
        precondition(values.count == count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }

    /// True when every value is finite.
    var allFinite: Bool {
        var acc: Float = 0
        for i in 0..<count { acc += pointer[i] * 0 }  // NaN or ±inf turn the sum into NaN
        return acc == 0
    }
}

/// Runs `body` over `count` items split into at most `threads` contiguous ranges (in parallel
/// when more than one). The split depends only on `count` and `threads`, so reductions done by
/// the caller per range are deterministic.
func parallelRanges(_ count: Int, threads: Int, minimumPerThread: Int = 1, _ body: (Int, Range<Int>) -> Void) {
    let parts = max(1, min(threads, count / max(1, minimumPerThread)))
    if parts <= 1 {
        body(0, 0..<count)
        return
    }
    let per = (count + parts - 1) / parts
    withoutActuallyEscaping(body) { body in
        let box = UncheckedBox(body)
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let lo = p * per
            let hi = min(count, lo + per)
            if lo < hi { box.value(p, lo..<hi) }
        }
    }
}

/// Carries a closure into `concurrentPerform`; callers guarantee the ranges they hand out are
/// disjoint, so the closure's writes never overlap.
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// xoshiro256** seeded through SplitMix64: the generator for initial weights, shuffling and
/// dropout. Its whole state is four words, saved in checkpoints.
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
}
