import Dispatch
import Foundation
import LinprobeCore

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
