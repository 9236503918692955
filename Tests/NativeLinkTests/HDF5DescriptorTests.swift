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
