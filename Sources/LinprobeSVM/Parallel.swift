import Foundation

/// Runs `count` independent jobs on `threads` worker threads (one level of parallelism: the
/// jobs themselves are single-threaded). Jobs are taken in index order; the first error stops
/// the hand-out of further jobs and is rethrown once the running ones finish.
enum Parallel {
    static func forEach(count: Int, threads: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
        if count == 0 { return }
        let workers = max(1, min(threads, count))
        let state = SharedState()
        if workers == 1 {
            for i in 0..<count { try body(i) }
            return
        }
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<workers {
            let thread = Thread {
                while let i = state.take(limit: count) {
                    do { try body(i) } catch { state.fail(error) }
                }
                done.signal()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        for _ in 0..<workers { done.wait() }
        if let error = state.error { throw error }
    }

    private final class SharedState: @unchecked Sendable {
        private let lock = NSLock()
        private var next = 0
        private var firstError: (any Error)?

        func take(limit: Int) -> Int? {
            lock.lock()
            defer { lock.unlock() }
            guard firstError == nil, next < limit else { return nil }
            next += 1
            return next - 1
        }

        func fail(_ error: any Error) {
            lock.lock()
            if firstError == nil { firstError = error }
            lock.unlock()
        }

        var error: (any Error)? {
            lock.lock()
            defer { lock.unlock() }
            return firstError
        }
    }
}

/// A value shared by worker threads behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
