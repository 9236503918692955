import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh temporary folder per test, removed when the value is released.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String
    public let url: URL

    public init(_ label: String = "linprobe-test") throws {
        let base = FileManager.default.temporaryDirectory
        url = base.appendingPathComponent("\(label)-\(UUID().uuidString)", isDirectory: true)
        path = url.path
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Path of a file inside the folder.
    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// The repository root (found from this source file's location).
public let repositoryRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
}()

/// Path of a committed test fixture under `Tests/Fixtures`.
public func fixturePath(_ relative: String) -> String {
    repositoryRoot.appendingPathComponent("Tests/Fixtures").appendingPathComponent(relative).path
}

/// A deterministic pseudo-random generator for test data (SplitMix64).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Result of running a program.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// The environment of every program a test starts: this process's, with the trunk's static
/// defaults (no timing-dependent choice: a killed run and its resumption must compute the same
/// bits) and a cache folder that is never the user's.
public func childEnvironment() -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    env["LINPROBE_TRUNK_TUNING"] = "0"
    env["XDG_CACHE_HOME"] = (NSTemporaryDirectory() as NSString).appendingPathComponent("linprobe-test-cache")
    return env
}

/// Runs a program to completion, capturing its output.
///
/// Spawned directly (not through Foundation's `Process`) so that the child starts as from a
/// shell: no signal blocked or ignored, no descriptor of this process beyond the three standard
/// ones, stdin from /dev/null. `Process` on Linux passes the child its blocked signal mask and
/// learns of the exit through a socket the child inherits, so a daemon started by the child (a
/// local Slurm) kept that wait from ever returning. Here the exit is seen by `waitpid`; output
/// still held open by a grandchild is read for at most 5 s after the exit. After `timeout`
/// seconds the child's process group is killed and the result says so.
@discardableResult
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
    currentDirectory: String? = nil, timeout: Double = 1800
) throws -> ProcessResult {
    let out = try SpawnPipe(), err = try SpawnPipe()
    var env = childEnvironment()
    if let environment { env.merge(environment) { _, new in new } }
    let pid = try spawn(
        executable, [executable] + arguments, env.map { "\($0.key)=\($0.value)" },
        currentDirectory: currentDirectory, stdout: out.write, stderr: err.write)
    out.closeWrite()
    err.closeWrite()
    let started = Date()
    var killed = false
    var readers = [out, err]
    var status: Int32
    while true {
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid {
            status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : raw & 0x7f
            break
        }
        if !killed && Date().timeIntervalSince(started) > timeout {
            kill(-pid, SIGKILL)
            killed = true
        }
        SpawnPipe.drain(&readers, waitMilliseconds: readers.isEmpty ? 5 : 100)
    }
    let exited = Date()
    while !readers.isEmpty && Date().timeIntervalSince(exited) < 5 {
        SpawnPipe.drain(&readers, waitMilliseconds: 100)
    }
    var stderr = err.text
    if killed { stderr += "\nrunProcess: killed \(executable) after \(Int(timeout)) s\n" }
    return ProcessResult(status: status, stdout: out.text, stderr: stderr)
}

/// posix_spawn with a clean signal state, its own process group, stdin from /dev/null and only
/// the given descriptors as stdout/stderr.
private func spawn(
    _ executable: String, _ argv: [String], _ envp: [String], currentDirectory: String?, stdout: Int32,
    stderr: Int32
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    // Each call returns an error number (0: done); a failed set-up must not spawn a different child.
    let codes = [
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0),
        posix_spawn_file_actions_adddup2(&actions, stdout, 1),
        posix_spawn_file_actions_adddup2(&actions, stderr, 2),
        GlibcSpawnExtensions.closeFrom(&actions, 3),
        currentDirectory.map { GlibcSpawnExtensions.changeDirectory(&actions, $0) } ?? 0,
    ]
    func failure(_ code: Int32) -> CocoaError {
        CocoaError(
            .fileReadUnknown,
            userInfo: [NSLocalizedDescriptionKey: "spawn \(executable): \(String(cString: strerror(code)))"])
    }
    if let code = codes.first(where: { $0 != 0 }) { throw failure(code) }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setpgroup(&attributes, 0)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
    var cArgv = argv.map { strdup($0) } + [nil]
    var cEnvp = envp.map { strdup($0) } + [nil]
    defer { (cArgv + cEnvp).forEach { free($0) } }
    var pid: pid_t = 0
    let code = posix_spawn(&pid, executable, &actions, &attributes, &cArgv, &cEnvp)
    guard code == 0 else { throw failure(code) }
    return pid
}

/// glibc's (2.34+) spawn file actions that Swift's Glibc module does not declare, looked up at
/// run time.
private enum GlibcSpawnExtensions {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias ChangeDirectory =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    static let closeFrom: CloseFrom = unsafeBitCast(
        symbol("posix_spawn_file_actions_addclosefrom_np"), to: CloseFrom.self)
    static let changeDirectory: ChangeDirectory = unsafeBitCast(
        symbol("posix_spawn_file_actions_addchdir_np"), to: ChangeDirectory.self)

    private static func symbol(_ name: String) -> UnsafeMutableRawPointer {
        guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else {
            fatalError("\(name) is missing: runProcess needs glibc 2.34 or later")
        }
        return address
    }
}

/// One output pipe of a spawned child: the parent's read end (close-on-exec) and what was read.
private final class SpawnPipe {
    let read: Int32
    private(set) var write: Int32
    private var bytes: [UInt8] = []
    var text: String { String(decoding: bytes, as: UTF8.self) }

    init() throws {
        var fds: [Int32] = [0, 0]
        // Close-on-exec against other tests' spawns (the window until fcntl is harmless: a leaked
        // copy only delays the EOF, and reading stops 5 s after the exit).
        guard pipe(&fds) == 0, fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(fds[1], F_SETFD, FD_CLOEXEC) == 0 else {
            throw CocoaError(
                .fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "pipe: \(String(cString: strerror(errno)))"])
        }
        (read, write) = (fds[0], fds[1])
    }

    func closeWrite() {
        close(write)
        write = -1
    }

    deinit {
        close(read)
        if write >= 0 { close(write) }
    }

    /// Waits up to `waitMilliseconds` for output, reads what is there, and drops pipes at EOF.
    static func drain(_ pipes: inout [SpawnPipe], waitMilliseconds: Int32) {
        var polls = pipes.map { pollfd(fd: $0.read, events: Int16(POLLIN), revents: 0) }
        guard poll(&polls, nfds_t(polls.count), waitMilliseconds) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var open: [SpawnPipe] = []
        for (pipe, p) in zip(pipes, polls) {
            guard p.revents != 0 else {
                open.append(pipe)
                continue
            }
            let n = Glibc.read(pipe.read, &buffer, buffer.count)
            if n > 0 { pipe.bytes += buffer[..<n] }
            if n > 0 || (n < 0 && errno == EINTR) { open.append(pipe) }
        }
        pipes = open
    }
}

/// The built `linprobe` binary next to the test bundle (same build configuration).
public func linprobeBinary() -> String {
    let bundle = Bundle.main.bundleURL
    let candidates = [
        bundle.deletingLastPathComponent().appendingPathComponent("linprobe").path,
        bundle.appendingPathComponent("linprobe").path,
    ]
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    // Fall back to the build folder layout: .build/<config>/linprobe
    let env = ProcessInfo.processInfo.environment
    if let explicit = env["LINPROBE_BINARY"] { return explicit }
    return repositoryRoot.appendingPathComponent(".build/release/linprobe").path
}

/// The test helper executable (`Tests/LinprobeTestHelper`), built next to `linprobe`.
public func testHelperBinary() -> String {
    URL(fileURLWithPath: linprobeBinary()).deletingLastPathComponent().appendingPathComponent("LinprobeTestHelper").path
}
