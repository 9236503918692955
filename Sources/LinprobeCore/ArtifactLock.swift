import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on one artifact (a store being extracted, a results folder being trained),
/// so two Linprobe processes that need the same artifact — e.g. two pipelines under `make -j2`
/// sharing one feature store — never write it at the same time: the second waits, then finds the
/// artifact complete in the manifest and reuses it. An `flock` on `<artifact>.lock`, released by
/// the kernel if the process dies.
public enum ArtifactLock {
    public static func withLock<T>(_ artifactPath: String, waiting: (String) -> Void = { _ in }, _ body: () throws -> T) throws -> T {
        let lockPath = artifactPath + ".lock"
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
            waiting("waiting for another linprobe process working on \(artifactPath)")
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
