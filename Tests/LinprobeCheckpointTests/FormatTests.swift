import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeCheckpoint

/// Values written by `torch.save` (zip and legacy) and a hand-written safetensors file, against
/// the values PyTorch recorded in `expected.json`.
@Suite("Checkpoint formats")
struct FormatTests {
    /// Read once; a missing or unreadable fixture fails every test that uses it.
    private static let loaded = Result { () throws -> JSONValue in
        let text = try String(contentsOfFile: fixturePath("trunk/checkpoints/expected.json"), encoding: .utf8)
        return try JSONValue.parse(text)
    }

    static var expected: JSONValue {
        get throws { try loaded.get() }
    }

    static func file(_ name: String) -> String { fixturePath("trunk/checkpoints/" + name) }

    static func tensors(_ checkpoint: Checkpoint) throws -> [String: CheckpointTensor] {
        guard case .dict(let d) = checkpoint.root else { throw LinprobeError(.corruptInput, "not a dict") }
        var out: [String: CheckpointTensor] = [:]
        for (k, v) in zip(d.keys, d.values) {
            if case .string(let name) = k, case .tensor(let record) = v { out[name] = try record.resolve(what: name) }
        }
        return out
    }

    @Test(
        "every dtype, strides, storage offsets and parameters read exactly",
        arguments: [
            ("small_zip.pt", Checkpoint.Format.torchZip), ("small_legacy.pt", .torchLegacy),
            ("small.safetensors", .safetensors),
        ])
    func smallStateDict(name: String, format: Checkpoint.Format) throws {
        let checkpoint = try Checkpoint.load(path: Self.file(name))
        #expect(checkpoint.format == format)
        let tensors = try Self.tensors(checkpoint)
        let expected = try Self.expected["small"]!.objectValue!
        if format == .safetensors {
            #expect(Set(tensors.keys) == ["conv.weight", "half", "bfloat", "double", "long"])
        } else {
            #expect(Set(tensors.keys) == Set(expected.keys))
        }
        for (key, t) in tensors {
            let e = expected[key]!
            #expect(t.dtype.rawValue == e["dtype"]!.stringValue!, "\(key)")
            #expect(t.shape == e["shape"]!.arrayValue!.map { Int($0.intValue!) }, "\(key)")
            let values = e["values"]!.arrayValue!.map { Float($0.doubleValue!) }
            #expect(t.floats() == values, "\(key): \(t.floats()) vs \(values)")
        }
        if format != .safetensors {
            #expect(tensors["transposed"]!.strides == [1, 6])
            #expect(tensors["slice"]!.storageOffset == 5)
            #expect(tensors["scalar"]!.shape == [])
        }
    }

    @Test("CRC-32 matches the standard check value")
    func crc() {
        let bytes = Array("123456789".utf8)
        #expect(bytes.withUnsafeBytes { CRC32.checksum($0) } == 0xCBF4_3926)
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        // Slicing-by-8 against the bytewise definition.
        var c: UInt32 = 0xFFFF_FFFF
        for b in long {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        #expect(long.withUnsafeBytes { CRC32.checksum($0) } == ~c)
    }

    @Test("half precision conversion covers subnormals, infinities and NaN")
    func halfConversion() {
        #expect(Float(halfBits: 0x3C00) == 1)
        #expect(Float(halfBits: 0xC000) == -2)
        #expect(Float(halfBits: 0x0001) == 0x1p-24)
        #expect(Float(halfBits: 0x03FF) == Float(Float16(bitPattern: 0x03FF)))
        #expect(Float(halfBits: 0x7C00) == .infinity)
        #expect(Float(halfBits: 0xFC00) == -.infinity)
        #expect(Float(halfBits: 0x7E00).isNaN)
        for bits in stride(from: UInt16(0), to: 0x7C00, by: 37) {
            #expect(Float(halfBits: bits) == Float(Float16(bitPattern: bits)))
        }
    }
}

@Suite("Checkpoint key handling (VISSL WEIGHTS_INIT)")
struct KeyHandlingTests {
    static func check(_ sd: TrunkStateDict, sourceKeyPrefix: String) throws {
        let trunkExpected = try #require(
            FormatTests.expected["trunk"]?.objectValue,
            "expected.json has no trunk values")
        for name in [
            "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "layer1.0.conv1.weight",
        ] {
            let entry = try #require(sd.tensors[name], "\(name) missing; have \(sd.order)")
            #expect(entry.originalKey.hasSuffix(name))
            #expect(entry.originalKey.hasPrefix(sourceKeyPrefix))
            let stored = try #require(trunkExpected[name]?["values"]?.arrayValue, "expected.json has no trunk.\(name)")
            let values = try stored.map { Float(try #require($0.doubleValue)) }
            #expect(entry.tensor.floats() == values, "\(name)")
        }
        // num_batches_tracked is skipped by VISSL's default SKIP_LAYERS.
        #expect(sd.tensors["bn1.num_batches_tracked"] == nil)
    }

    @Test("VISSL checkpoint: classy_state_dict → base_model → model → trunk; heads and training state ignored")
    func visslNested() throws {
        let checkpoint = try Checkpoint.load(path: FormatTests.file("vissl_nested.torch"))
        let sd = try TrunkStateDict.select(from: checkpoint, settings: WeightsInit())
        try Self.check(sd, sourceKeyPrefix: "trunk._feature_blocks.")
        #expect(sd.ignoredKeys.contains("heads.0.channel_bn.weight") == false)  // heads live outside the trunk dict
        #expect(sd.order.count == 6)
    }

    @Test("DataParallel `module.` prefix, flat file (STATE_DICT_KEY_NAME '')")
    func modulePrefix() throws {
        let checkpoint = try Checkpoint.load(path: FormatTests.file("module_prefix.pth"))
        try Self.check(
            try TrunkStateDict.select(from: checkpoint, settings: WeightsInit(stateDictKeyName: [])),
            sourceKeyPrefix: "module.")
        // Under VISSL's default key a flat file is read as such, with a note.
        let sd = try TrunkStateDict.select(from: checkpoint, settings: WeightsInit())
        try Self.check(sd, sourceKeyPrefix: "module.")
        #expect(sd.notes.contains { $0.contains("flat state dict") })
    }

    @Test("converted Caffe2 layout: model_state_dict + APPEND_PREFIX trunk.base_model.")
    func modelStateDict() throws {
        let checkpoint = try Checkpoint.load(path: FormatTests.file("model_state_dict.torch"))
        let settings = WeightsInit(stateDictKeyName: ["model_state_dict"], appendPrefix: "trunk.base_model.")
        try Self.check(
            try TrunkStateDict.select(from: checkpoint, settings: settings),
            sourceKeyPrefix: "trunk.base_model._feature_blocks.")
    }

    @Test("torchvision names in a legacy file, with or without VISSL's APPEND_PREFIX")
    func torchvisionNames() throws {
        let checkpoint = try Checkpoint.load(path: FormatTests.file("torchvision_names_legacy.pth"))
        #expect(checkpoint.format == .torchLegacy)
        let vissl = WeightsInit(stateDictKeyName: [], appendPrefix: "trunk.base_model._feature_blocks.")
        let sd = try TrunkStateDict.select(from: checkpoint, settings: vissl)
        try Self.check(sd, sourceKeyPrefix: "trunk.base_model._feature_blocks.")
        #expect(sd.tensors["fc.weight"] != nil)  // left for the trunk matcher to report as not part of the trunk
        try Self.check(
            try TrunkStateDict.select(from: checkpoint, settings: WeightsInit(stateDictKeyName: [])),
            sourceKeyPrefix: "")
    }

    @Test("MoCo-style file: state_dict key + REMOVE_PREFIX module.encoder_q.")
    func removePrefix() throws {
        let checkpoint = try Checkpoint.load(path: FormatTests.file("moco_style.pth.tar"))
        let settings = WeightsInit(stateDictKeyName: ["state_dict"], removePrefix: "module.encoder_q.")
        try Self.check(try TrunkStateDict.select(from: checkpoint, settings: settings), sourceKeyPrefix: "")
        // Without it the keys keep `encoder_q.` and match nothing.
        let raw = try TrunkStateDict.select(from: checkpoint, settings: WeightsInit(stateDictKeyName: ["state_dict"]))
        #expect(raw.tensors["encoder_q.conv1.weight"] != nil)
    }

    @Test("a missing STATE_DICT_KEY_NAME is named with the keys that exist")
    func missingKey() throws {
        let checkpoint = try Checkpoint.load(path: FormatTests.file("moco_style.pth.tar"))
        let error = #expect(throws: LinprobeError.self) {
            try TrunkStateDict.select(from: checkpoint, settings: WeightsInit(stateDictKeyName: ["model"]))
        }
        #expect(error?.message.contains("no key 'model'") == true)
        #expect(error?.message.contains("state_dict, epoch") == true, "\(error?.message ?? "")")
        let error2 = #expect(throws: LinprobeError.self) {
            try TrunkStateDict.select(from: checkpoint, settings: WeightsInit())
        }
        #expect(error2?.message.contains("STATE_DICT_KEY_NAME") == true)
    }

    @Test("two keys naming one parameter are an error, not a silent choice")
    func ambiguous() throws {
        let checkpoint = try Checkpoint.load(path: FormatTests.file("module_prefix.pth"))
        let error = #expect(throws: LinprobeError.self) {
            // APPEND_PREFIX is applied to every key; the duplicate comes from a second prefix form.
            var settings = WeightsInit(stateDictKeyName: [])
            settings.appendPrefix = ""
            let sd = try TrunkStateDict.select(from: checkpoint, settings: settings)
            // Simulate a file holding both `module.conv1.weight` and `conv1.weight`.
            var dict = PickleDict()
            dict = PickleDict()
            for name in sd.order {
                let t = sd.tensors[name]!.tensor
                let record = TensorRecord(
                    storage: StorageRef(key: name, dtype: t.dtype, numel: t.count, region: t.storage),
                    dtype: t.dtype, shape: t.shape, strides: t.strides, storageOffset: t.storageOffset)
                dict.set(.string("module." + name), .tensor(record))
                dict.set(.string(name), .tensor(record))
            }
            _ = try TrunkStateDict.select(
                from: Checkpoint(path: "both.pth", format: .torchZip, root: .dict(dict)), settings: settings)
        }
        #expect(error?.message.contains("both name the trunk parameter") == true)
    }

    @Test("WEIGHTS_INIT from config: VISSL defaults, string or list key, unknown keys rejected")
    func config() throws {
        func parse(_ json: String) throws -> WeightsInit {
            try WeightsInit(config: ConfigNode(path: "MODEL.WEIGHTS_INIT", value: try JSONValue.parse(json)))
        }
        #expect(try parse("{}") == WeightsInit())
        #expect(try parse(#"{"STATE_DICT_KEY_NAME": ""}"#).stateDictKeyName == [])
        #expect(try parse(#"{"STATE_DICT_KEY_NAME": ["a", "b"]}"#).stateDictKeyName == ["a", "b"])
        #expect(try parse(#"{"SKIP_LAYERS": []}"#).skipLayers == [])
        let error = #expect(throws: LinprobeError.self) { try parse(#"{"PARAM_FILE": "x"}"#) }
        #expect(error?.exitCode == 64)
        #expect(error?.message.hasPrefix("MODEL.WEIGHTS_INIT.PARAM_FILE") == true)
    }
}
