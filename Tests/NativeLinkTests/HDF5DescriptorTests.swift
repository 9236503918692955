import Foundation
import LinprobeHDF5
import Testing

/// HDF5 opens files without `O_CLOEXEC`; a child process started while a store is open must not
/// inherit the descriptor (and with it the file's lock).
@Suite struct HDF5DescriptorTests {
    /// The close-on-exec flag of every descriptor of this process that points at `path`.
    static func closeOnExecFlags(of path: String) throws -> [Bool] {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        return try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { name in
            guard let fd = Int32(name),
                let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)"),
                link == target
            else { return nil }
            return fcntl(fd, F_GETFD) & FD_CLOEXEC != 0
        }
    }

    @Test func openAndCreatedFilesAreCloseOnExec() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lp-cloexec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("a.h5").path
        let created = try HDF5File.create(path)
        let whileCreated = try Self.closeOnExecFlags(of: path)
        #expect(whileCreated == [true], "\(whileCreated)")
        try created.close()
        let opened = try HDF5File.open(path)
        let whileOpen = try Self.closeOnExecFlags(of: path)
        #expect(whileOpen == [true], "\(whileOpen)")
        try opened.close()
    }
}

/// HDF5's file lock is `flock` on the open file description, so a copy of a descriptor held for a
/// moment elsewhere (a child between fork and exec) makes a reopen fail with EAGAIN; `open` waits
/// that out, and still fails, with the system's reason, on a lock held for good.
@Suite struct HDF5FileLockTests {
    static func lockedFile() throws -> (path: String, fd: Int32) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lp-lock-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("a.h5").path
        try HDF5File.create(path).close()
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        #expect(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
        return (path, fd)
    }

    @Test func aLockReleasedWithinAMomentIsWaitedFor() throws {
        let (path, fd) = try Self.lockedFile()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { close(fd) }
        let file = try HDF5File.open(path, writable: true)
        try file.close()
    }

    @Test func aLockHeldForGoodFailsWithTheSystemsReason() throws {
        let (path, fd) = try Self.lockedFile()
        defer {
            close(fd)
            try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
        }
        let error = #expect(throws: HDF5Error.self) { _ = try HDF5File.open(path) }
        #expect(
            error?.description == "\(path): H5Fopen failed: Resource temporarily unavailable",
            "\(String(describing: error))")
    }
}
