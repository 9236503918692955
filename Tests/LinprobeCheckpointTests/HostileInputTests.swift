import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeCheckpoint

#if canImport(Glibc)
    import Glibc
#endif

/// An empty dict, pickled with protocol 2.
let emptyDictPickle: [UInt8] = [0x80, 0x02, 0x7D, 0x2E]

/// Runs `body` on its own thread and waits up to `seconds` for the error it throws (nil: it
/// returned). When it is still running — blocked opening the FIFO at `fifo` — an issue is
/// recorded and the FIFO is opened for writing, which releases the blocked `open`.
func errorWithin(_ seconds: Double, fifo: String, _ body: @escaping @Sendable () throws -> Void) -> (any Error)? {
    final class Box: @unchecked Sendable {
        var error: (any Error)?
    }
    let box = Box()
    let done = DispatchSemaphore(value: 0)
    Thread {
        do { try body() } catch { box.error = error }
        done.signal()
    }.start()
    if done.wait(timeout: .now() + seconds) == .timedOut {
        Issue.record("still blocked after \(seconds) s (opening the FIFO \(fifo))")
        let fd = open(fifo, O_WRONLY | O_NONBLOCK)
        if fd >= 0 { close(fd) }
        _ = done.wait(timeout: .now() + 10)
    }
    return box.error
}

/// Issue 19: zip64 fields near 2⁶³ and 2⁶⁴−1 (case 2), pickles nested 30,000 deep (case 3) and
/// weights paths that are FIFOs or devices (case 10) end in one line naming the file.
@Suite("Checkpoint hostile input (issue 19)")
struct CheckpointHostileInputTests {
    static func loadError(_ path: String) -> LinprobeError? {
        #expect(throws: LinprobeError.self) { _ = try Checkpoint.load(path: path) }
    }

    static func expectOneLine(
        _ error: LinprobeError?, path: String, _ fragment: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let message = error?.message ?? ""
        #expect(message.hasPrefix(path + ":"), "\(message)", sourceLocation: sourceLocation)
        #expect(message.contains(fragment), "\(message) lacks '\(fragment)'", sourceLocation: sourceLocation)
        #expect(!message.contains("\n"), sourceLocation: sourceLocation)
    }

    @Test("the forging builder makes a valid archive when nothing is forged")
    func builderIsValid() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("ok.pt")
        try Zip64Builder([("archive/data.pkl", emptyDictPickle)]).write(to: path)
        let checkpoint = try Checkpoint.load(path: path)
        #expect(checkpoint.format == .torchZip)
        #expect(checkpoint.root.dictValue?.count == 0)
    }

    static let hostileValues: [UInt64] = [
        UInt64(Int64.max), UInt64(Int64.max) - 29, 1 << 63, UInt64.max, UInt64.max - 55, 1 << 32,
    ]

    @Test(
        "zip64 fields near 2^63 and 2^64-1 are one line naming the file (case 2)",
        arguments: [
            "entry size", "local header offset", "central directory size", "central directory offset", "entry count",
            "ZIP64 record offset",
        ], hostileValues)
    func forgedZip64Field(field: String, value: UInt64) throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("forged.pt")
        var zip = Zip64Builder([("archive/data.pkl", emptyDictPickle)])
        switch field {
        case "entry size": zip.entrySize = value
        case "local header offset": zip.localHeaderOffset = value
        case "central directory size": zip.directorySize = value
        case "central directory offset": zip.directoryOffset = value
        case "entry count": zip.entryCount = value
        default: zip.recordOffset = value
        }
        try zip.write(to: path)
        let error = Self.loadError(path)
        Self.expectOneLine(error, path: path, "corrupt")
        #expect(error?.code == .corruptInput)
    }

    @Test(
        "a pickle nested 30,000 deep, raw or in the zip, is refused without a stack overflow (case 3)",
        arguments: ["list", "tuple", "dict", "forward-linked lists"])
    func deepPickle(kind: String) throws {
        let pickle = Self.nested(kind, depth: 30_000)
        let raw = #expect(throws: LinprobeError.self) { _ = try UnpicklerTests.run(pickle) }
        #expect(raw?.message.hasPrefix("t.pkl:") == true)
        #expect(
            raw?.message.contains("levels deep") == true || raw?.message.contains("after being placed") == true,
            "\(raw?.message ?? "")")
        let dir = try TemporaryDirectory()
        let path = dir.file("deep.pt")
        try Zip64Builder([("archive/data.pkl", pickle)]).write(to: path)
        Self.expectOneLine(Self.loadError(path), path: path, "at byte")
    }

    @Test("nesting up to the limit still loads; one level more is refused")
    func depthLimitBoundary() throws {
        let ok = try UnpicklerTests.run(Self.nested("list", depth: Unpickler.maxDepth))
        #expect(ok.sequence?.count == 1)
        let error = #expect(throws: LinprobeError.self) {
            _ = try UnpicklerTests.run(Self.nested("list", depth: Unpickler.maxDepth + 1))
        }
        #expect(error?.message.contains("nested more than 1000 levels deep") == true)
    }

    @Test("a list that contains itself is refused (no cycle in the value tree)")
    func selfReference() {
        // l = []; l.append(l): EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP.
        let bytes: [UInt8] = [0x80, 0x02, 0x5D, 0x71, 0, 0x68, 0, 0x61, 0x2E]
        let error = #expect(throws: LinprobeError.self) { _ = try UnpicklerTests.run(bytes) }
        #expect(error?.message.contains("contains itself") == true)
    }

    /// `kind` containers nested `depth` deep, as a protocol-2 pickle.
    static func nested(_ kind: String, depth: Int) -> [UInt8] {
        var p: [UInt8] = [0x80, 0x02]
        switch kind {
        case "list":  // EMPTY_LIST × depth, APPEND × (depth − 1)
            p += [UInt8](repeating: 0x5D, count: depth) + [UInt8](repeating: 0x61, count: depth - 1)
        case "tuple":  // EMPTY_TUPLE, TUPLE1 × (depth − 1)
            p += [0x29] + [UInt8](repeating: 0x85, count: depth - 1)
        case "dict":  // EMPTY_DICT, (BININT1 0, EMPTY_DICT) × (depth − 1), SETITEM × (depth − 1)
            p += [0x7D]
            for _ in 1..<depth { p += [0x4B, 0, 0x7D] }
            p += [UInt8](repeating: 0x73, count: depth - 1)
        default:  // `depth` empty lists memoised, then l[i].append(l[i + 1]) for i = 0, 1, ...
            func index(_ op: UInt8, _ i: Int) -> [UInt8] {
                [op] + withUnsafeBytes(of: UInt32(i).littleEndian) { Array($0) }
            }
            for i in 0..<depth { p += [0x5D] + index(0x72, i) + [0x30] }
            for i in 0..<(depth - 1) { p += index(0x6A, i) + index(0x6A, i + 1) + [0x61, 0x30] }
            p += index(0x6A, 0)
        }
        return p + [0x2E]
    }

    @Test("a weights path naming a FIFO (or a link to a device) is one line, without blocking (case 10)")
    func notARegularFile() throws {
        let dir = try TemporaryDirectory()
        let fifo = dir.file("weights.torch")
        #expect(mkfifo(fifo, 0o600) == 0)
        let error = errorWithin(20, fifo: fifo) { _ = try Checkpoint.load(path: fifo) }
        Self.expectOneLine(error as? LinprobeError, path: fifo, "not a regular file (a FIFO)")
        let link = dir.file("zero.torch")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/dev/zero")
        Self.expectOneLine(Self.loadError(link), path: link, "not a regular file (a character device)")
        #expect(throws: LinprobeError.self) { try MappedFile.requireRegularFile("/dev/urandom") }
    }

    @Test("lying element counts in legacy and safetensors files are errors, not overflows")
    func overflowingCounts() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("huge.safetensors")
        let header = #"{"w": {"dtype": "F32", "shape": [2147483647, 2147483647, 2147483647], "data_offsets": [0, 4]}}"#
        var d = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(Data(header.utf8))
        d.append(Data(count: 4))
        try d.write(to: URL(fileURLWithPath: path))
        Self.expectOneLine(Self.loadError(path), path: path, "more elements than can be addressed")
        // A view whose offset overflows when turned into bytes.
        let bytes = ByteRegion(copying: [UInt8](repeating: 0, count: 16))
        let root = StorageRef(key: "0", dtype: .float32, numel: 4, region: bytes)
        let view = StorageRef(viewKey: "1", of: root, offset: Int.max / 2, numel: 1)
        #expect(throws: LinprobeError.self) { _ = try view.region(what: "w.pt") }
    }
}
