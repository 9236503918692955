import Foundation
import LinprobeCore

#if canImport(Glibc)
    import Glibc
#endif

/// libhdf5 cannot be trusted with a damaged file in-process: a few single-byte changes to a
/// store's metadata make it crash (SIGSEGV, "double free") rather than fail (issue 19 case 8;
/// `h5dump` crashes on the same files). So, when the executable has set `command`, the first
/// `FeatureStoreReader` of each file (by path, size and modification time) has a child process
/// open the store and read its structure — every attribute and dataset, the targets, indices,
/// flags and image paths, and the first and last row of each layer — and a child killed by a signal becomes one line naming
/// the store. A child that fails with an ordinary error proves the open is safe; the reader
/// then reports the error itself. Costs one process start (tens of milliseconds) per store.
public enum StoreStructureCheck {
    /// The program and arguments that check the store given as a last argument; nil (library
    /// use, tests) checks nothing.
    nonisolated(unsafe) public static var command: [String]? = nil
    /// How long the check may take (it reads the labels, so it grows with the rows: a
    /// 1.28 M-row store takes about a second).
    nonisolated(unsafe) public static var timeoutSeconds: Double = 120

    private static let lock = NSLock()
    nonisolated(unsafe) private static var passed: Set<String> = []

    /// Throws when a child process reading `path`'s structure dies by a signal.
    public static func verify(_ path: String) throws {
        try verify(path, command: command, timeoutSeconds: timeoutSeconds)
    }

    /// `verify` with an explicit check command and time limit.
    public static func verify(_ path: String, command: [String]?, timeoutSeconds: Double) throws {
        guard let command, let program = command.first else { return }
        var st = stat()
        guard stat(path, &st) == 0 else { return }  // the open reports a missing file
        let key = "\(path)\u{0}\(st.st_size)\u{0}\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        if lock.withLock({ passed.contains(key) }) { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = Array(command.dropFirst()) + [path]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch {
            throw LinprobeError(.io, "\(path): cannot start the store check (\(program)): \(oneLine(error))")
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw LinprobeError(
                .corruptInput,
                "\(path): the store is damaged — HDF5 did not finish reading its structure in \(Int(timeoutSeconds)) s (a check process; damaged metadata can make it loop); extract it again (--force) or restore the file"
            )
        }
        if process.terminationReason == .uncaughtSignal {
            throw LinprobeError(
                .corruptInput,
                "\(path): the store is damaged — HDF5 crashed reading its structure (signal \(process.terminationStatus) in a check process); extract it again (--force) or restore the file"
            )
        }
        lock.withLock { _ = passed.insert(key) }
    }

    /// What the check process does: open the store and read its structure (throws as the reader does).
    public static func readStructure(_ path: String) throws {
        let reader = try FeatureStoreReader(path: path, allowIncomplete: true)
        for name in try reader.attributeNames() { _ = try reader.attribute(name) }
        _ = try reader.targets()
        _ = try reader.indices()
        _ = try reader.unreadableRows()
        // Variable-length strings live in HDF5's global heap, outside any checksum: a damaged
        // heap reference crashes the read (a fuzzed store did), so the paths are read here too.
        _ = try reader.imagePaths()
        guard reader.count > 0 else { return }
        for layer in reader.layers {
            let row = FloatBuffer(count: layer.dim)
            let buffer = UnsafeMutableBufferPointer(start: row.pointer, count: layer.dim)
            try reader.readFeatures(layer: layer.name, rows: 0..<1, into: buffer)
            try reader.readFeatures(layer: layer.name, rows: (reader.count - 1)..<reader.count, into: buffer)
        }
    }
}
