import Dispatch
import Foundation

/// SIGINT/SIGTERM during extraction: the first one asks the stage to stop after the current
/// batch and flush (the rows so far are kept for a resume); a second one exits at once.
public final class StopRequest: @unchecked Sendable {
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
                    Data("\nstopping after the current batch (again to stop at once)…\n".utf8))
            }
            source.resume()
            request.sources.append(source)
        }
        return request
    }
}
