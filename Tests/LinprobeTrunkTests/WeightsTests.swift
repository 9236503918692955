import Foundation
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

@Suite("Trunk weights: strict loading, random init, files")
struct WeightsTests {
    static func tensors(_ spec: ResNetSpec, seed: UInt64 = 1) -> [String: CheckpointTensor] {
        TrunkWeights.random(architecture: spec, seed: seed).tensors
    }

    @Test("random init is seeded, deterministic, within PyTorch's default bound, and said so in provenance")
    func randomInit() throws {
        let spec = try ResNetSpec(depth: 18)
        let a = TrunkWeights.random(architecture: spec, seed: 7), b = TrunkWeights.random(architecture: spec, seed: 7)
        let c = TrunkWeights.random(architecture: spec, seed: 8)
        let w = a.tensors["layer2.0.conv1.weight"]!.floats()
        #expect(w == b.tensors["layer2.0.conv1.weight"]!.floats())
        #expect(w != c.tensors["layer2.0.conv1.weight"]!.floats())
        let bound = Float(1 / (64.0 * 9).squareRoot())
        #expect(w.allSatisfy { abs($0) <= bound })
        #expect(w.map { abs($0) }.max()! > 0.95 * bound)
        #expect(a.tensors["bn1.running_var"]!.floats().allSatisfy { $0 == 1 })
        #expect(a.provenance["init"]?.stringValue == "random")
        #expect(a.provenance["seed"]?.intValue == 7)
        #expect(a.sha256 == nil)
        #expect(a.notes.contains { $0.contains("random") })
        // The random trunk runs and gives finite, seed-dependent features.
        let extractor = try ResNetExtractor(
            trunk: ResNetTrunk(weights: a), map: PoolOpsMap(entries: []), inputHeight: 64, inputWidth: 64)
        let f = try extractor.forward([Float](repeating: 0.5, count: 3 * 64 * 64), count: 1)[0]
        #expect(f.count == 512 && f.allSatisfy(\.isFinite) && f.contains { $0 != 0 })
    }

    @Test("an empty PARAMS_FILE gives the random baseline")
    func emptyParamsFile() throws {
        let spec = try ResNetSpec(depth: 18)
        let w = try TrunkWeights.load(
            WeightsInit(
                config: ConfigNode(path: "MODEL.WEIGHTS_INIT", value: try JSONValue.parse(#"{"PARAMS_FILE": ""}"#))),
            architecture: spec, randomSeed: 3)
        #expect(w.provenance["init"]?.stringValue == "random")
        #expect(
            w.tensors["conv1.weight"]!.floats()
                == TrunkWeights.random(architecture: spec, seed: 3).tensors["conv1.weight"]!.floats())
    }

    @Test("a checkpoint of another depth: missing keys named")
    func otherDepthMissing() throws {
        let error = #expect(throws: LinprobeError.self) {
            try TrunkWeights(
                architecture: ResNetSpec(depth: 34), tensors: Self.tensors(try ResNetSpec(depth: 18)),
                source: "rn18.pth")
        }
        #expect(error?.message.hasPrefix("rn18.pth:") == true)
        #expect(error?.message.contains("missing: layer1.2.conv1.weight") == true, "\(error?.message ?? "")")
        #expect(error?.exitCode == 1)
    }

    @Test("a checkpoint of another architecture: wrong shapes named with both shapes")
    func otherArchitectureShape() throws {
        let error = #expect(throws: LinprobeError.self) {
            try TrunkWeights(
                architecture: ResNetSpec(depth: 50), tensors: Self.tensors(try ResNetSpec(depth: 18)),
                source: "rn18.pth")
        }
        let message = error?.message ?? ""
        #expect(
            message.contains("layer1.0.conv1.weight: checkpoint [64, 64, 3, 3] vs model [64, 64, 1, 1]"), "\(message)")
        #expect(!message.contains("\n"))
    }

    @Test("unexpected trunk keys (a deeper checkpoint) are errors; non-trunk keys are ignored with a note")
    func unexpectedKeys() throws {
        let spec = try ResNetSpec(depth: 18)
        var t = Self.tensors(spec)
        t["layer1.2.conv1.weight"] = CheckpointTensor(
            shape: [64, 64, 3, 3], values: [Float](repeating: 0, count: 64 * 64 * 9))
        let error = #expect(throws: LinprobeError.self) { try TrunkWeights(architecture: spec, tensors: t) }
        #expect(error?.message.contains("unexpected: layer1.2.conv1.weight") == true, "\(error?.message ?? "")")
        var u = Self.tensors(spec)
        u["fc.weight"] = CheckpointTensor(shape: [2, 512], values: [Float](repeating: 0, count: 1024))
        u["layer1.0.bn1.num_batches_tracked"] = CheckpointTensor(shape: [], values: [5])
        let w = try TrunkWeights(architecture: spec, tensors: u)
        #expect(w.notes.contains { $0.contains("fc.weight") })
    }

    @Test("non-finite weights are refused, naming the key")
    func nonFinite() throws {
        let spec = try ResNetSpec(depth: 18)
        var t = Self.tensors(spec)
        var v = t["layer3.1.bn2.running_mean"]!.floats()
        v[7] = .nan
        t["layer3.1.bn2.running_mean"] = CheckpointTensor(shape: [256], values: v)
        let weights = try TrunkWeights(architecture: spec, tensors: t)
        let error = #expect(throws: LinprobeError.self) { try ResNetTrunk(weights: weights) }
        #expect(error?.message.contains("layer3.1.bn2.running_mean") == true)
    }

    /// Writes a safetensors file (the format is a few lines: header length, JSON, raw bytes).
    static func writeSafetensors(_ path: String, _ tensors: [(String, CheckpointTensor)], halfPrecision: Bool) throws {
        var header: [String: JSONValue] = [:]
        var data = Data()
        for (name, t) in tensors {
            let values = t.floats()
            let begin = data.count
            if halfPrecision {
                for v in values {
                    withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { data.append(contentsOf: $0) }
                }
            } else {
                values.withUnsafeBytes { data.append(contentsOf: $0) }
            }
            header[name] = .object([
                "dtype": .string(halfPrecision ? "F16" : "F32"),
                "shape": .array(t.shape.map { .int(Int64($0)) }),
                "data_offsets": .array([.int(Int64(begin)), .int(Int64(data.count))]),
            ])
        }
        let text = Data(JSONValue.object(header).canonicalText.utf8)
        var file = Data()
        withUnsafeBytes(of: UInt64(text.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(text)
        file.append(data)
        try file.write(to: URL(fileURLWithPath: path))
    }

    @Test("converting a mapped tensor lets its file pages go: values unchanged, resident size of the mapping drops")
    func convertedTensorReleasesItsPages() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("big.safetensors")
        let values = (0..<(4 << 20)).map { Float($0 % 9973) * 0.5 }
        try Self.writeSafetensors(
            path, [("w", CheckpointTensor(shape: [values.count], values: values))], halfPrecision: false)
        let checkpoint = try Checkpoint.load(path: path)
        guard case .dict(let d) = checkpoint.root, case .tensor(let record)? = d.values.first else {
            Issue.record("no tensor in \(path)")
            return
        }
        let tensor = try record.resolve(what: "w")
        #expect(tensor.floats() == values)
        let base = try #require(tensor.storage.bytes.baseAddress)
        let before = try Self.residentKilobytes(ofMappingAt: base)
        tensor.releaseResidentPages()
        let after = try Self.residentKilobytes(ofMappingAt: base)
        #expect(before >= 16 * 1024 && after <= 16, "resident kB of the mapping: \(before) before, \(after) after")
        #expect(tensor.floats() == values)
    }

    /// The `Rss` of the mapping that contains `address`, from `/proc/self/smaps`.
    static func residentKilobytes(ofMappingAt address: UnsafeRawPointer) throws -> Int {
        // String(contentsOfFile:) stops after the first read of a /proc file: read to the end.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/smaps") else {
            throw LinprobeError(.io, "cannot open /proc/self/smaps")
        }
        defer { try? handle.close() }
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        let target = UInt(bitPattern: address)
        var inside = false
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
                let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inside = bounds.count == 2 && bounds[0] <= target && target < bounds[1]
            } else if inside, fields.first == "Rss:", fields.count > 1, let kb = Int(fields[1]) {
                return kb
            }
        }
        throw LinprobeError(.io, "no mapping contains \(address) in /proc/self/smaps")
    }

    @Test("a weights file of another architecture fails at load with one line naming the file and key")
    func fileOfOtherArchitecture() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("resnet18.safetensors")
        let r18 = try ResNetSpec(depth: 18)
        let t = Self.tensors(r18)
        try Self.writeSafetensors(path, t.keys.sorted().map { ("module." + $0, t[$0]!) }, halfPrecision: true)
        let settings = WeightsInit(paramsFile: path, stateDictKeyName: [])
        let error = #expect(throws: LinprobeError.self) {
            try TrunkWeights.load(settings, architecture: ResNetSpec(depth: 50))
        }
        let message = error?.message ?? ""
        #expect(message.hasPrefix(path + ":"), "\(message)")
        #expect(
            message.contains("module.layer1.0.conv1.weight: checkpoint [64, 64, 3, 3] vs model [64, 64, 1, 1]"),
            "\(message)")
        #expect(error?.exitCode == 1)
        // The same file loads into the right architecture, float16 → float32, with its SHA-256.
        let w = try TrunkWeights.load(settings, architecture: r18)
        #expect(w.sha256 == (try Fingerprint.sha256(ofFile: path)))
        #expect(w.provenance["format"]?.stringValue == "safetensors")
        let original = t["layer4.1.conv2.weight"]!.floats(), loaded = w.tensors["layer4.1.conv2.weight"]!.floats()
        #expect(zip(original, loaded).allSatisfy { Float(Float16($0)) == $1 })
    }

    @Test("SKIP_LAYERS leaves matching parameters at the seeded initial value, as VISSL does")
    func skipLayers() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("w.safetensors")
        let spec = try ResNetSpec(depth: 18)
        let t = Self.tensors(spec, seed: 99)
        try Self.writeSafetensors(
            path, t.keys.sorted().filter { !$0.hasPrefix("layer4") }.map { ($0, t[$0]!) }, halfPrecision: false)
        let settings = WeightsInit(
            paramsFile: path, stateDictKeyName: [], skipLayers: ["num_batches_tracked", "layer4"])
        let w = try TrunkWeights.load(settings, architecture: spec, randomSeed: 5)
        #expect(
            w.tensors["layer4.0.conv1.weight"]!.floats()
                == TrunkWeights.random(architecture: spec, seed: 5).tensors["layer4.0.conv1.weight"]!.floats())
        #expect(w.tensors["layer3.0.conv1.weight"]!.floats() == t["layer3.0.conv1.weight"]!.floats())
        #expect(w.notes.contains { $0.contains("SKIP_LAYERS") })
    }

    @Test("INPUT_TYPE bgr equals swapping the input's R and B planes")
    func bgr() throws {
        let rgbSpec = try ResNetSpec(depth: 18), bgrSpec = try ResNetSpec(depth: 18, inputType: .bgr)
        let t = Self.tensors(rgbSpec)
        let rgb = try ResNetExtractor(
            trunk: ResNetTrunk(weights: TrunkWeights(architecture: rgbSpec, tensors: t)),
            map: PoolOpsMap(entries: [.init(tap: .conv1, op: .identity)]), inputHeight: 16, inputWidth: 16)
        let bgr = try ResNetExtractor(
            trunk: ResNetTrunk(weights: TrunkWeights(architecture: bgrSpec, tensors: t)),
            map: PoolOpsMap(entries: [.init(tap: .conv1, op: .identity)]), inputHeight: 16, inputWidth: 16)
        var rng = SeededGenerator(seed: 11)
        let x = (0..<(3 * 256)).map { _ in Float.random(in: -1...1, using: &rng) }
        let swapped = Array(x[512..<768] + x[256..<512] + x[0..<256])
        let a = try bgr.forward(x, count: 1)[0], b = try rgb.forward(swapped, count: 1)[0]
        #expect(relativeError(a, b) < 1e-6)
    }
}
