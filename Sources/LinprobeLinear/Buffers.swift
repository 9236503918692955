import Dispatch
import Foundation
import LinprobeCore

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
