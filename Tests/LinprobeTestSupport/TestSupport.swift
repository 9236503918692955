import Foundation

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

/// Runs a program to completion, capturing its output.
@discardableResult
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
    currentDirectory: String? = nil
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    }
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Drain both pipes concurrently so a chatty child never blocks on a full pipe.
    let errData = LockedData()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData.set(err.fileHandleForReading.readDataToEndOfFile())
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData.get(), as: UTF8.self))
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
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
