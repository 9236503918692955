internal import CLinprobeHDF5
import Foundation

/// A failed HDF5 call: the C function, HDF5's own error-stack message and the file or object
/// the call was about.
public struct HDF5Error: Error, LocalizedError, Sendable, CustomStringConvertible {
    /// The HDF5 C function that failed (for example `H5Fopen`).
    public var function: String
    /// HDF5's error stack, innermost first, or our own explanation when HDF5 gave none.
    public var message: String
    /// The file path, optionally followed by `:` and the object path inside the file.
    public var object: String

    public init(function: String, message: String, object: String) {
        self.function = function
        self.message = message
        self.object = object
    }

    /// The operating system's reason, when a system call under HDF5 failed (HDF5's file driver
    /// quotes it as `error message = '…'`), for example "No space left on device".
    public var systemReason: String? {
        guard let start = message.range(of: "error message = '") else { return nil }
        guard let end = message[start.upperBound...].firstIndex(of: "'") else { return nil }
        let reason = message[start.upperBound..<end]
        return reason.isEmpty ? nil : String(reason)
    }

    /// One line: the system's reason alone when there is one (HDF5's stack around it repeats
    /// it a dozen times), else HDF5's whole stack.
    public var description: String {
        "\(object): \(function) failed: \(systemReason ?? message)"
    }

    public var errorDescription: String? { description }
}

private let openHDF5: Void = {
    HDF5Library.keepChunkBuffersOnTheHeap()
    H5open()
}()

/// HDF5 must never print error stacks to stderr on its own; every failure is reported once,
/// as an `HDF5Error`. The library is thread-safe, which makes automatic printing a per-thread
/// setting: it is turned off on every thread that opens or creates a file.
var silenceHDF5: Void {
    openHDF5
    lp_h5_silence()
}

public enum HDF5Library {
    /// Turns HDF5's automatic error printing off on the calling thread. The executable calls it
    /// on its main thread, where HDF5 closes (and flushes) files still open at exit — a
    /// store left partial by a full disk would otherwise print an error stack there.
    public static func silenceErrorPrintingOnThisThread() { silenceHDF5 }

    /// Keeps HDF5 from closing, at process exit, files the program left open. The only such
    /// files are partial stores given up after a failed write (a full disk): closing one again
    /// flushes into the same failure, and HDF5 can crash on the half-destroyed file. Their
    /// durable rows are marked by the store's watermark, so the kernel closing the descriptor is
    /// all they need. Must be the process's first HDF5 call; the executable makes it.
    public static func skipCleanupAtExit() { H5dont_atexit() }

    /// HDF5 allocates, and frees, a buffer of a whole chunk (two with a filter such as
    /// Fletcher-32) for every filtered chunk it writes or reads. A store chunk is 1–2 MiB, just
    /// past glibc's adaptive thresholds: each buffer was either a fresh `mmap` or heap memory
    /// trimmed back to the system on `free`, so every chunk paid page faults and page clearing for
    /// twice its size — half the CPU time of a store write. Starting glibc at the maximums its
    /// adaptive policy would reach (large blocks from the heap below 32 MiB, up to 64 MiB of free
    /// heap kept) lets the buffers be reused. Called once, before the library opens.
    static func keepChunkBuffersOnTheHeap() {
        lp_malloc_thresholds(32 << 20, 64 << 20)
    }
}

/// Collects and clears the calling thread's HDF5 error stack.
func currentHDF5ErrorMessage() -> String {
    var buffer = [CChar](repeating: 0, count: 2048)
    let length = buffer.withUnsafeMutableBufferPointer { ptr in
        lp_h5_error_message(ptr.baseAddress, ptr.count)
    }
    if length == 0 { return "no detail from HDF5" }
    let bytes = buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// Checks an identifier-returning HDF5 call (negative = failure).
@discardableResult
func checkID(_ id: hid_t, _ function: String, _ object: @autoclosure () -> String) throws(HDF5Error) -> hid_t {
    if id < 0 {
        throw HDF5Error(function: function, message: currentHDF5ErrorMessage(), object: object())
    }
    return id
}

/// Checks a status-returning HDF5 call (negative = failure).
func checkStatus(_ status: herr_t, _ function: String, _ object: @autoclosure () -> String) throws(HDF5Error) {
    if status < 0 {
        throw HDF5Error(function: function, message: currentHDF5ErrorMessage(), object: object())
    }
}

/// Checks a tri-state (`htri_t`) HDF5 call and returns its truth value.
func checkTri(_ value: htri_t, _ function: String, _ object: @autoclosure () -> String) throws(HDF5Error) -> Bool {
    if value < 0 {
        throw HDF5Error(function: function, message: currentHDF5ErrorMessage(), object: object())
    }
    return value > 0
}
