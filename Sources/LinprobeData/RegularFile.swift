import LinprobeCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Refuses a path that is not (a link to) a regular file before anything opens it: opening a
/// FIFO blocks until a writer appears, and reading a device such as `/dev/zero` never ends.
/// `what` names the file in the message ("the dataset catalog", ...).
func requireRegularFile(_ path: String, what: String) throws {
    var st = stat()
    guard stat(path, &st) == 0 else {
        throw LinprobeError(.missingInput, "\(path): cannot read \(what) (\(String(cString: strerror(errno))))")
    }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
        throw LinprobeError(.corruptInput, "\(path): not a regular file (\(what) must be a file)")
    }
}
