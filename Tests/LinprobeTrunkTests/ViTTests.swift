import Foundation
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

/// The timm reference data made by `scripts/make_vit_fixtures.py`.
struct ViTFixtures: @unchecked Sendable {
    let manifest: JSONValue
    let blob: [Float]

    private static let loaded = Result { () throws -> ViTFixtures in
        let json = try String(contentsOfFile: fixturePath("vit/reference.json"), encoding: .utf8)
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("vit/reference.bin")))
        let floats = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return ViTFixtures(manifest: try JSONValue.parse(json), blob: floats)
    }

    static var shared: ViTFixtures {
        get throws { try loaded.get() }
    }

    func slice(_ entry: JSONValue?) throws -> [Float] {
        let e = try #require(entry)
        let offset = Int(try #require(e["offset"]?.intValue)), count = Int(try #require(e["count"]?.intValue))
        try #require(offset >= 0 && count >= 0 && offset + count <= blob.count, "slice outside vit/reference.bin")
        return Array(blob[offset..<(offset + count)])
    }

    func testCase(_ name: String) throws -> JSONValue {
        try #require(manifest["cases"]?.arrayValue?.first { $0["case"]?.stringValue == name }, "no case \(name)")
    }

    /// The VISSL spec of a fixture model (timm keyword arguments in the JSON).
    static func spec(_ model: JSONValue?) throws -> ViTSpec {
        let m = try #require(model)
        func int(_ k: String) throws -> Int { Int(try #require(m[k]?.intValue, "model.\(k)")) }
        let dim = try int("embed_dim")
        let ratio = try #require(m["mlp_ratio"]?.doubleValue)
        return try ViTSpec(
            imageSize: try int("img_size"), patchSize: try int("patch_size"), hiddenDim: dim,
            numLayers: try int("depth"), numHeads: try int("num_heads"), mlpDim: Int(Double(dim) * ratio),
            qkvBias: m["qkv_bias"] != .bool(false), useClassToken: m["class_token"] != .bool(false))
    }
}

/// Runs `taps` of a network on `count` images; one array per tap. `microBatch` (ViT only) sets the
/// extractor's micro-batch instead of its default.
func runTaps(
    _ network: any TrunkNetwork, taps: [String], input: [Float], count: Int, height: Int, width: Int, threads: Int = 2,
    microBatch: Int? = nil
) throws -> [[Float]] {
    let map = PoolOpsMap(entries: taps.map { PoolOpsMap.Entry(tap: $0, op: .identity) })
    let outputs = try map.outputs(architecture: network.architecture, inputHeight: height, inputWidth: width)
    let options = TrunkRunOptions(threads: threads)
    let extractor: any TrunkExtractor
    if let microBatch {
        let vit = try #require(network as? ViTNetwork, "a micro-batch is set for ViT extractors only")
        extractor = try ViTExtractor(
            network: vit, outputs: outputs, inputHeight: height, inputWidth: width, options: options,
            microBatch: microBatch)
    } else {
        extractor = try network.extractor(outputs: outputs, inputHeight: height, inputWidth: width, options: options)
    }
    let buffers = outputs.map { FloatBuffer(count: count * $0.dimension) }
    try input.withUnsafeBufferPointer { p in
        let base = try #require(p.baseAddress)
        try extractor.forward(input: base, count: count, destinations: buffers.map(\.pointer))
    }
    return buffers.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) }
}

@Suite("Vision transformer: fidelity against timm, taps, position-embedding interpolation")
struct ViTFidelityTests {
    static func network(_ file: String, spec: ViTSpec) throws -> any TrunkNetwork {
        let settings = WeightsInit(paramsFile: fixturePath("vit/\(file)"), stateDictKeyName: [])
        let weights = try TrunkWeights.load(settings, architecture: spec)
        return try spec.build(weights: weights, options: TrunkRunOptions(threads: 2))
    }

    @Test(
        "every tap kind matches timm within 1e-4 of its magnitude",
        arguments: [("cls", "cls.pth"), ("nocls", "nocls.pth"), ("cls64", "cls.pth"), ("cls48", "cls.pth")])
    func taps(_ name: String, _ file: String) throws {
        let fx = try ViTFixtures.shared
        let c = try fx.testCase(name)
        let spec = try ViTFixtures.spec(c["model"])
        let net = try Self.network(file, spec: spec)
        let dims = try #require(c["input"]?.arrayValue).compactMap { $0.intValue.map(Int.init) }
        let entries = try #require(c["taps"]?.arrayValue)
        let taps = entries.compactMap { $0["tap"]?.stringValue }
        let got = try runTaps(
            net, taps: taps, input: try fx.slice(c["input_data"]), count: dims[0], height: dims[2], width: dims[3])
        for (i, entry) in entries.enumerated() {
            let want = try fx.slice(entry)
            try #require(got[i].count == want.count, "\(name) \(taps[i]): \(got[i].count) values, want \(want.count)")
            let err = relativeError(got[i], want)
            #expect(err < 1e-4, "\(name) \(taps[i]): relative error \(err)")
        }
    }

    @Test("the position grid is resized as F.interpolate(scale_factor, mode='bicubic') does")
    func bicubic() throws {
        let fx = try ViTFixtures.shared
        let spec = try ViTFixtures.spec(try fx.testCase("cls")["model"])
        let net = try #require(try Self.network("cls.pth", spec: spec) as? ViTNetwork)
        for (name, side) in [("cls64", 8), ("cls48", 6)] {
            let c = try fx.testCase(name)
            let geometry = try spec.geometry(inputHeight: side * 8, inputWidth: side * 8)
            #expect(geometry.interpolationScale == Double(side) / 4)
            let got = Array(net.positions(for: geometry).dropFirst(spec.hiddenDim))
            let want = try fx.slice(c["pos_embed_interpolated"])
            #expect(relativeError(got, want) < 1e-6, "\(name)")
        }
    }

    @Test("the forward pass is the same with one thread and two: bit for bit at equal micro-batches")
    func threading() throws {
        let fx = try ViTFixtures.shared
        let c = try fx.testCase("cls")
        let spec = try ViTFixtures.spec(c["model"])
        let net = try Self.network("cls.pth", spec: spec)
        let input = try fx.slice(c["input_data"])
        func run(threads: Int, microBatch: Int) throws -> [Float] {
            try runTaps(
                net, taps: ["concatCLS2"], input: input, count: 2, height: 32, width: 32, threads: threads,
                microBatch: microBatch)[0]
        }
        // One image per GEMM either way: the thread split itself changes nothing.
        #expect(try run(threads: 1, microBatch: 1) == run(threads: 2, microBatch: 1))
        // Default micro-batches: one thread multiplies both images' tokens in one GEMM, two threads
        // one image each. BLAS kernels may round another row count differently (seen with
        // OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU), so only rounding may differ.
        let one = try run(threads: 1, microBatch: 8)
        let two = try run(threads: 2, microBatch: 8)
        #expect(relativeError(one, two) < 1e-6)
    }
}

@Suite("Vision transformer: configuration")
struct ViTConfigTests {
    static func model(_ yaml: String) throws -> ConfigNode {
        ConfigNode(path: "MODEL", value: try JSONValue.parse(yaml))
    }

    static func clsSpec() throws -> ViTSpec {
        try ViTSpec(imageSize: 32, patchSize: 8, hiddenDim: 32, numLayers: 3, numHeads: 2, mlpDim: 128)
    }

    @Test("reads MODEL.TRUNK.VISION_TRANSFORMERS with VISSL's defaults and refuses unknown keys")
    func parse() throws {
        let m = try Self.model(
            #"{"TRUNK": {"NAME": "vision_transformer", "VISION_TRANSFORMERS": {"PATCH_SIZE": 8, "HIDDEN_DIM": 384, "NUM_HEADS": 6, "MLP_DIM": 1536, "QKV_BIAS": true, "QK_SCALE": false}}}"#
        )
        let arch = try TrunkFamilies.architecture(model: m)
        let spec = try #require(arch as? ViTSpec)
        #expect(spec.imageSize == 224 && spec.numLayers == 12 && spec.qkvBias && spec.useClassToken)
        #expect(spec.mlpHidden == 1536 && spec.positionRows == 785)
        #expect(spec.parameters.count == 4 + 12 * 12 + 2)
        let bad = try Self.model(#"{"TRUNK": {"NAME": "vision_transformer", "VISION_TRANSFORMERS": {"DEPTH": 3}}}"#)
        #expect(throws: LinprobeError.self) { try TrunkFamilies.architecture(model: bad) }
        let heads = try Self.model(
            #"{"TRUNK": {"NAME": "vision_transformer", "VISION_TRANSFORMERS": {"HIDDEN_DIM": 100, "NUM_HEADS": 3}}}"#)
        let e = try #require(throws: LinprobeError.self) { try TrunkFamilies.architecture(model: heads) }
        #expect(e.message.contains("NUM_HEADS"))
    }

    @Test("a tap that needs a class token on a model without one, or the reverse, is a config error naming it")
    func classTokenMismatch() throws {
        let cls = try Self.clsSpec()
        let nocls = try ViTSpec(
            imageSize: 32, patchSize: 8, hiddenDim: 24, numLayers: 4, numHeads: 3, mlpDim: 48, useClassToken: false)
        for (spec, tap) in [
            (cls, "concatPOOL4"), (cls, "lastPOOL"), (cls, "stridePOOL_2"), (nocls, "lastCLS"),
            (nocls, "concatCLS4"), (nocls, "blkCLS0"), (nocls, "lastMAP"),
        ] {
            let map = PoolOpsMap(entries: [
                PoolOpsMap.Entry(tap: "lastBLK", op: .identity), PoolOpsMap.Entry(tap: tap, op: .identity),
            ])
            let e = try #require(throws: LinprobeError.self) {
                try map.outputs(architecture: spec, inputHeight: 32, inputWidth: 32)
            }
            #expect(e.code == .invalidConfig && e.message.contains(tap), "\(e.message)")
        }
    }

    @Test("tap names follow VISSL's parsing; shapes count the blocks Python's slicing selects")
    func tapShapes() throws {
        let spec = try Self.clsSpec()
        func chw(_ tap: String, _ size: Int = 32) throws -> [Int] {
            try spec.tapShape(tap, inputHeight: size, inputWidth: size).chw
        }
        #expect(try chw("lastCLS") == [32, 1, 1])
        #expect(try chw("concatCLS4") == [96, 1, 1])  // interms[-4:] of 3 blocks
        #expect(try chw("concatCLS0") == [96, 1, 1])  // interms[-0:] is every block
        #expect(try chw("blkCLS-3") == [32, 1, 1])
        #expect(try chw("lastMAP") == [4, 4, 32])
        #expect(try chw("concatBLK2") == [17, 64, 1])
        #expect(try chw("lastBLK", 64) == [65, 32, 1])
        #expect(throws: LinprobeError.self) { try chw("blkCLS3") }
        #expect(throws: LinprobeError.self) { try chw("lastMAP", 64) }
        #expect(!spec.acceptsTap("res5") && !spec.acceptsTap("concatCLS") && spec.acceptsTap("stridePOOL_4_2"))
        #expect(ViTTap(name: "stridePOOL_3") == .stridePOOL(count: 3, stride: nil))
        let nocls = try ViTSpec(
            imageSize: 32, patchSize: 8, hiddenDim: 24, numLayers: 4, numHeads: 3, mlpDim: 48, useClassToken: false)
        #expect(try nocls.tapShape("stridePOOL_3", inputHeight: 32, inputWidth: 32).chw == [48, 1, 1])
        #expect(throws: LinprobeError.self) { try nocls.tapShape("lastPOOL", inputHeight: 48, inputWidth: 48) }
        #expect(
            throws: LinprobeError.self,
            "a non-square grid cannot take VISSL's square interpolation"
        ) { try spec.tapShape("lastCLS", inputHeight: 32, inputWidth: 64) }
    }
}
