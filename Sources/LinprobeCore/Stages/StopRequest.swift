import Dispatch
import Foundation

/// SIGINT/SIGTERM during extraction: the first one asks the stage to stop after the current
/// batch and flush (the rows so far are kept for a resume); a second one exits at once. Work
/// before the first batch (hashing the weights, converting them, listing the dataset) polls
/// `StopRequest.check(_:)` and stops at once with one line, having written nothing.
public final class StopRequest: @unchecked Sendable {
    /// The request installed in this process, if any (the executable installs one).
    private static let installedLock = NSLock()
    nonisolated(unsafe) private static var current: StopRequest?

    /// Throws `interrupted` when a stop was requested, naming what was being done; a no-op in a
    /// process without an installed request (tests, library use). Cheap enough for any loop
    /// whose iterations take a millisecond or more.
    public static func check(_ doing: @autoclosure () -> String) throws {
        installedLock.lock()
        let request = current
        installedLock.unlock()
        guard let request, request.isRequested else { return }
        throw LinprobeError(.interrupted, "interrupted while \(doing()); nothing was written, rerun the same command")
    }

    private let lock = NSLock()
    private var requested = false
    private var sources: [DispatchSourceSignal] = []

    public var isRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return requested
    }

    public static func installed() -> StopRequest {
        let request = StopRequest()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [request] in
                request.lock.lock()
                let again = request.requested
                request.requested = true
                request.lock.unlock()
                if again {
                    FileHandle.standardError.write(Data("\nstopping now (rows up to the last flush are kept)\n".utf8))
                    exit(130)
                }
                FileHandle.standardError.write(
                    Data("\nstopping at the next safe point (again to stop at once)…\n".utf8))
            }
            source.resume()
            request.sources.append(source)
        }
        installedLock.lock()
        current = request
        installedLock.unlock()
        return request
    }
}
