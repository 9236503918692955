import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The one atomic file replacement: write a temporary file in the same folder, fsync it, rename it
/// over the target, then fsync the folder so the rename itself survives a power cut. A failure at
/// any point keeps the previous version and removes the temporary file.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let dir = Paths.parent(path)
        try Paths.ensureDirectory(dir)
        let temp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw LinprobeError(.io, "\(temp): cannot create: \(String(cString: strerror(errno)))")
        }
        let failure = writeAll(fd, data) ?? (fsync(fd) == 0 ? nil : String(cString: strerror(errno)))
        close(fd)
        if let failure {
            unlink(temp)
            throw LinprobeError(.io, "\(path): cannot write (\(failure)); the previous version is kept")
        }
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw LinprobeError(.io, "\(path): cannot replace (\(reason)); the previous version is kept")
        }
        syncDirectory(dir)
    }

    /// Writes text (UTF-8) atomically.
    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    /// Flushes a folder's entries (a finished rename) to disk; best effort, as not every file
    /// system allows opening a folder for it.
    public static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// Writes every byte; the error text, or nil on success.
    private static func writeAll(_ fd: Int32, _ data: Data) -> String? {
        data.withUnsafeBytes { raw -> String? in
            guard let base = raw.baseAddress else { return nil }
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, base + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                offset += n
            }
            return nil
        }
    }
}
