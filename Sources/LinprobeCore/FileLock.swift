import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive `flock` on a file (created with its folder if missing) for the duration of
/// `body`; the kernel releases it if the process dies. `onWait` is called once when another
/// process holds it and this one starts waiting.
public enum FileLock {
    public static func exclusive<T>(_ lockPath: String, onWait: () -> Void = {}, _ body: () throws -> T) throws -> T {
        let dir = (lockPath as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: dir.isEmpty ? "." : dir, withIntermediateDirectories: true)
        } catch {
            throw LinprobeError(.io, "\(dir): cannot create the folder: \(oneLine(error))")
        }
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else {
            throw LinprobeError(.io, "\(lockPath): cannot open the lock file: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                throw LinprobeError(.io, "\(lockPath): cannot lock: \(String(cString: strerror(errno)))")
            }
            onWait()
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR {
                    throw LinprobeError(.io, "\(lockPath): cannot lock: \(String(cString: strerror(errno)))")
                }
            }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
