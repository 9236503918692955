import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Scheduling priority of decode workers.
///
/// Decode workers run beside the trunk's threads on the same cores. At the same priority the
/// scheduler shares a core between a decode worker and a trunk thread, so the trunk thread that
/// loses its slice makes the others wait at the next layer's barrier. A worker whose nice value is
/// raised by `decodeNiceIncrement` only gets a core the trunk leaves idle (or about a tenth of a
/// busy one), so decoding fills the trunk's gaps and, when decoding is the bottleneck, the idle
/// trunk leaves it the whole machine anyway.
enum ThreadPriority {
    /// Nice steps added to each decode worker (CFS weight 1024 → 110 at +10).
    static let decodeNiceIncrement: Int32 = 10

    /// Raises the calling thread's nice value by `steps` (Linux: nice is per thread). Failing is
    /// harmless (the worker keeps the default priority), so errors are ignored.
    static func lowerCurrentThread(by steps: Int32) {
        #if os(Linux)
            guard let tid = currentThreadID() else { return }
            errno = 0
            let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid)
            if current == -1 && errno != 0 { return }
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid, min(19, current + steps))
        #endif
    }

    /// The kernel's id of the calling thread, from `/proc/thread-self` (`<pid>/task/<tid>`);
    /// Swift's Glibc module has neither `gettid` nor `syscall`.
    static func currentThreadID() -> id_t? {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = readlink("/proc/thread-self", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let text = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: "/").last.flatMap { id_t($0) }
    }
}
