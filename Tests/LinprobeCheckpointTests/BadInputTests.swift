import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeCheckpoint

/// Truncated, corrupt and hostile files: a one-line error naming the file and what is wrong
/// (key, entry or byte offset) — never a crash, never code execution.
@Suite("Checkpoint bad input")
struct BadInputTests {
    static func loadError(_ path: String) -> LinprobeError? {
        #expect(throws: LinprobeError.self) {
            let checkpoint = try Checkpoint.load(path: path)
            // Some damage only shows when the tensors are resolved.
            _ = try TrunkStateDict.select(from: checkpoint, settings: WeightsInit(stateDictKeyName: []))
        }
    }

    @Test(
        "bad files fail with one line naming the file and the problem",
        arguments: [
            ("truncated_zip.pt", "truncated"),
            ("truncated_legacy.pt", "truncated"),
            ("corrupt_data.pt", "CRC-32"),
            ("corrupt_pickle.pt", "unknown pickle opcode 0xff"),
            ("not_a_checkpoint.txt", "not a PyTorch checkpoint"),
            ("evil_global.pt", "pickle global 'posix.system' is not allowed"),
            ("evil_opcode.pt", "opcode INST"),
            ("whole_model.pt", "save model.state_dict()"),
            ("fsdp_shard_list.torch", "convert_sharded_checkpoint.py"),
        ])
    func badFile(name: String, fragment: String) throws {
        let path = FormatTests.file(name)
        let error = Self.loadError(path)
        let message = error?.message ?? ""
        #expect(message.hasPrefix(path + ":"), "\(message)")
        #expect(message.contains(fragment), "\(message) lacks '\(fragment)'")
        #expect(!message.contains("\n"))
        #expect(error?.exitCode == 1)
    }

    @Test("missing, empty and directory paths")
    func paths() throws {
        let dir = try TemporaryDirectory()
        let missing = Self.loadError(dir.file("nope.pth"))
        #expect(missing?.code == .missingInput)
        #expect(missing?.message.contains("PARAMS_FILE") == true)
        FileManager.default.createFile(atPath: dir.file("empty.pth"), contents: Data())
        #expect(Self.loadError(dir.file("empty.pth"))?.message.contains("empty") == true)
        #expect(Self.loadError(dir.path)?.message.contains("not a regular file") == true)
    }

    @Test("safetensors with lying headers")
    func badSafetensors() throws {
        let dir = try TemporaryDirectory()
        func write(_ header: String, dataBytes: Int) -> String {
            let path = dir.file(UUID().uuidString + ".safetensors")
            var d = Data()
            withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { d.append(contentsOf: $0) }
            d.append(Data(header.utf8))
            d.append(Data(count: dataBytes))
            FileManager.default.createFile(atPath: path, contents: d)
            return path
        }
        let outOfRange = write(#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#, dataBytes: 8)
        #expect(Self.loadError(outOfRange)?.message.contains("spans bytes [0, 16)") == true)
        let wrongSize = write(#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}"#, dataBytes: 16)
        #expect(Self.loadError(wrongSize)?.message.contains("needs 16 bytes") == true)
        let badJSON = write(#"{"w": {"dtype": "F32", "#, dataBytes: 0)
        #expect(Self.loadError(badJSON)?.message.contains("not valid JSON") == true)
        let badType = write(#"{"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}"#, dataBytes: 8)
        #expect(Self.loadError(badType)?.message.contains("unsupported dtype C64") == true)
        // Header length beyond the file.
        let path = dir.file("huge.safetensors")
        var d = Data()
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { d.append(contentsOf: $0) }
        d.append(Data("{}".utf8))
        FileManager.default.createFile(atPath: path, contents: d)
        #expect(Self.loadError(path) != nil)
    }

    @Test("a tensor reaching past its storage is refused")
    func tensorBeyondStorage() throws {
        let region = ByteRegion(copying: [UInt8](repeating: 0, count: 16))
        #expect(throws: LinprobeError.self) {
            try CheckpointTensor(dtype: .float32, shape: [2, 3], storage: region, what: "w")
        }
        #expect(throws: LinprobeError.self) {
            try CheckpointTensor(
                dtype: .float32, shape: [2], strides: [3], storageOffset: 1, storage: region, what: "w")
        }
        let ok = try CheckpointTensor(
            dtype: .float32, shape: [2], strides: [3], storageOffset: 0, storage: region, what: "w")
        #expect(ok.floats() == [0, 0])
    }

    /// Random damage to real files: every outcome is a clean error or a successful read.
    @Test(
        "mutated files never crash",
        arguments: ["small_zip.pt", "small_legacy.pt", "vissl_nested.torch", "small.safetensors"])
    func fuzz(name: String) throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: FormatTests.file(name)))
        let dir = try TemporaryDirectory()
        var rng = SeededGenerator(seed: Self.fnvSeed(name))
        for i in 0..<150 {
            var bytes = [UInt8](original)
            switch i % 3 {
            case 0:
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            case 1:
                bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            default:
                let at = Int(rng.next() % UInt64(bytes.count))
                bytes.insert(contentsOf: (0..<8).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            }
            let path = dir.file("m\(i)")
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            do {
                let c = try Checkpoint.load(path: path)
                let sd = try TrunkStateDict.select(from: c, settings: WeightsInit(stateDictKeyName: []))
                for name in sd.order { _ = sd.tensors[name]!.tensor.floats() }
            } catch let e as LinprobeError {
                #expect(!e.message.isEmpty && !e.message.contains("\n"))
            }
        }
    }

    static func fnvSeed(_ s: String) -> UInt64 {
        s.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }
    }
}

@Suite("Restricted unpickler")
struct UnpicklerTests {
    static func run(_ bytes: [UInt8]) throws -> PickleValue {
        try bytes.withUnsafeBytes { raw in
            var u = Unpickler(data: raw, source: "t.pkl", persistentLoad: nil)
            return try u.load()
        }
    }

    @Test("protocol-0 text opcodes, memo and containers")
    func textProtocol() throws {
        // pickle.dumps({'a': [1, 2.5, 'x'], 'b': (True, None)}, protocol=0)
        let p0 = Array("(dp0\nVa\np1\n(lp2\nI1\naF2.5\naVx\np3\nasVb\np4\n(I01\nNtp5\ns.".utf8)
        guard case .dict(let d) = try Self.run(p0) else { Issue.record("not a dict"); return }
        #expect(d.keyDescriptions == ["a", "b"])
        #expect(d["a"]?.sequence?.count == 3)
        if case .float(let f)? = d["a"]?.sequence?[1] { #expect(f == 2.5) } else { Issue.record("no float") }
        if case .bool(true)? = d["b"]?.sequence?[0] {} else { Issue.record("no bool") }
    }

    @Test("big integers and negative BININT")
    func integers() throws {
        // pickle.dumps([-5, 2**70, -(2**40)], protocol=2)
        let bytes: [UInt8] = [
            0x80, 0x02, 0x5D, 0x71, 0x00, 0x28, 0x4A, 0xFB, 0xFF, 0xFF, 0xFF, 0x8A, 0x09, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x8A, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x65, 0x2E,
        ]
        let v = try Self.run(bytes)
        let items = try #require(v.sequence)
        #expect(items[0].intValue == -5)
        if case .bigInt(let b) = items[1] { #expect(b.count == 9) } else { Issue.record("not big") }
        #expect(items[2].intValue == -(1 << 40))
    }

    @Test(
        "forbidden globals, calls and opcodes are named with their offset",
        arguments: [
            (
                [0x80, 0x02] + Array("cbuiltins\neval\n.".utf8),
                "pickle global 'builtins.eval' is not allowed at byte 2"
            ),
            ([0x80, 0x02] + Array("ctorch\nFloatStorage\n)R.".utf8), "calling 'torch.FloatStorage' is not allowed"),
            ([0x80, 0x02, 0x28, 0x6F, 0x2E], "opcode OBJ"),
            ([0x80, 0x02, 0x82, 0x01, 0x2E], "opcode EXT"),
            ([0x80, 0x05, 0x97, 0x2E], "out-of-band"),
            ([0x80, 0x02, 0xFF], "unknown pickle opcode 0xff"),
            ([0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0x7F], "exceeds the pickle's size"),
            ([0x80, 0x02, 0x58, 0x05, 0x00, 0x00, 0x00, 0x61], "past the end"),
            ([0x80, 0x02, 0x68, 0x05, 0x2E], "memo entry 5"),
            ([0x80, 0x02, 0x2E], "stack underflow"),
            ([0x80, 0x02, 0x4E, 0x51, 0x2E], "persistent id"),
        ])
    func forbidden(bytes: [UInt8], fragment: String) {
        let error = #expect(throws: LinprobeError.self) { try Self.run(bytes) }
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "") lacks \(fragment)")
        #expect(error?.message.hasPrefix("t.pkl:") == true)
    }
}
