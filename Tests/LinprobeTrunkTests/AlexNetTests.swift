import Foundation
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

/// The PyTorch transcription of VISSL's AlexNets made by `scripts/make_alexnet_fixtures.py`.
struct AlexNetFixtures: @unchecked Sendable {
    let manifest: JSONValue
    let blob: [Float]

    private static let loaded = Result { () throws -> AlexNetFixtures in
        let json = try String(contentsOfFile: fixturePath("alexnet/reference.json"), encoding: .utf8)
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("alexnet/reference.bin")))
        let floats = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return AlexNetFixtures(manifest: try JSONValue.parse(json), blob: floats)
    }

    static var shared: AlexNetFixtures {
        get throws { try loaded.get() }
    }

    func slice(_ e: JSONValue) throws -> [Float] {
        let offset = Int(try #require(e["offset"]?.intValue)), count = Int(try #require(e["count"]?.intValue))
        try #require(offset >= 0 && count >= 0 && offset + count <= blob.count, "slice outside alexnet/reference.bin")
        return Array(blob[offset..<(offset + count)])
    }

    func testCase(_ name: String) throws -> JSONValue {
        try #require(manifest["cases"]?.arrayValue?.first { $0["case"]?.stringValue == name }, "no case \(name)")
    }

    /// The script's `make_input`: the stream "input:<trunk>" scaled per variant.
    static func input(trunk: String, count: Int) -> [Float] {
        let scale = trunk == "alexnet_bvlc" ? 120.0 : trunk == "alexnet_colorization" ? 50.0 : 2.0
        return uniformStream("input:\(trunk)", count).map { Float(scale * (2 * $0 - 1)) }
    }

    /// The script's weights (make_trunk_fixtures.py's scheme on VISSL's AlexNet names).
    static func weights(_ spec: AlexNetSpec) throws -> TrunkWeights {
        var tensors: [String: CheckpointTensor] = [:]
        for p in spec.parameters {
            let u = uniformStream("\(spec.variant.rawValue):\(p.name)", p.count)
            let values: [Float]
            if p.name.hasSuffix("running_mean") {
                values = u.map { Float(0.5 * (2 * $0 - 1)) }
            } else if p.name.hasSuffix("running_var") {
                values = u.map { Float(0.5 + 1.5 * $0) }
            } else if p.name.hasSuffix(".bias") {
                values = u.map { Float(0.2 * (2 * $0 - 1)) }
            } else if p.shape.count == 4 {
                let bound = (6.0 / Double(p.shape.dropFirst().reduce(1, *))).squareRoot()
                values = u.map { Float((2 * $0 - 1) * bound) }
            } else {
                values = u.map { Float(0.5 + $0) }
            }
            tensors[p.name] = CheckpointTensor(shape: p.shape, values: values)
        }
        return try TrunkWeights(architecture: spec, tensors: tensors)
    }

    /// The case's outputs as a VISSL pool-op map (parsed like a config's).
    static func map(_ taps: [JSONValue]) throws -> PoolOpsMap {
        let entries: [JSONValue] = try taps.map { [try #require($0["tap"]), try #require($0["op"])] }
        return try PoolOpsMap(
            config: ConfigNode(
                path: "MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP", value: .array(entries)))
    }
}

/// Runs a map's outputs on `count` images; one array per output.
func runOutputs(
    _ network: any TrunkNetwork, map: PoolOpsMap, input: [Float], count: Int, height: Int, width: Int, threads: Int = 2
) throws -> [[Float]] {
    let outputs = try map.outputs(architecture: network.architecture, inputHeight: height, inputWidth: width)
    let extractor = try network.extractor(
        outputs: outputs, inputHeight: height, inputWidth: width, options: TrunkRunOptions(threads: threads))
    let buffers = outputs.map { FloatBuffer(count: count * $0.dimension) }
    try input.withUnsafeBufferPointer { p in
        let base = try #require(p.baseAddress)
        try extractor.forward(input: base, count: count, destinations: buffers.map(\.pointer))
    }
    return buffers.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) }
}

@Suite("AlexNet: VISSL's five variants against a PyTorch transcription")
struct AlexNetFidelityTests {
    @Test(
        "every tap (through VISSL pool ops) within 1e-4 of its magnitude, on 1 and 2 threads",
        arguments: AlexNetSpec.Variant.allCases)
    func taps(_ variant: AlexNetSpec.Variant) throws {
        let fx = try AlexNetFixtures.shared
        let c = try fx.testCase(variant.rawValue)
        let shape = try #require(c["input"]?.arrayValue).compactMap(\.intValue).map(Int.init)
        let taps = try #require(c["taps"]?.arrayValue)
        let spec = AlexNetSpec(variant: variant)
        let net = try spec.build(weights: try AlexNetFixtures.weights(spec), options: TrunkRunOptions(threads: 2))
        let input = AlexNetFixtures.input(trunk: variant.rawValue, count: shape.reduce(1, *))
        let map = try AlexNetFixtures.map(taps)
        for threads in [1, 2] {
            let got = try runOutputs(
                net, map: map, input: input, count: shape[0], height: shape[2], width: shape[3], threads: threads)
            for (k, t) in taps.enumerated() {
                let expected = try fx.slice(t)
                #expect(got[k].count == expected.count, "\(variant.rawValue) \(t["tap"]?.stringValue ?? "")")
                guard got[k].count == expected.count else { continue }
                let err = relativeError(got[k], expected)
                #expect(err < 1e-4, "\(variant.rawValue) output \(k) (\(t["tap"]?.stringValue ?? "")): \(err)")
            }
        }
    }

    @Test("tap shapes equal PyTorch's and VISSL's flattened head dims at 224/227 px")
    func shapes() throws {
        let fx = try AlexNetFixtures.shared
        for variant in AlexNetSpec.Variant.allCases {
            let c = try fx.testCase(variant.rawValue)
            let shape = try #require(c["input"]?.arrayValue).compactMap(\.intValue).map(Int.init)
            let spec = AlexNetSpec(variant: variant)
            for t in try #require(c["taps"]?.arrayValue) where t["op"]?.arrayValue?.first?.stringValue == "Identity" {
                let name = try #require(t["tap"]?.stringValue)
                let expected = try #require(t["shape"]?.arrayValue).compactMap(\.intValue).map(Int.init)
                let got = try spec.tapShape(name, inputHeight: shape[2], inputWidth: shape[3]).chw
                #expect(name == "flatten" ? [got[0]] == expected : got == expected, "\(variant.rawValue) \(name)")
            }
        }
        // trunks.md §C: conv1/conv2/conv3-5 spatial sizes at the benchmark crops.
        let sizes: [(AlexNetSpec.Variant, Int, [Int])] = [
            (.bvlc, 227, [55, 27, 13]), (.colorization, 227, [55, 27, 13]), (.deepcluster, 224, [55, 27, 13]),
            (.jigsaw, 227, [109, 54, 26]), (.rotnet, 224, [55, 27, 13]),
        ]
        for (variant, px, expected) in sizes {
            let spec = AlexNetSpec(variant: variant)
            let got = try ["conv1", "conv2", "conv5"].map {
                try spec.tapShape($0, inputHeight: px, inputWidth: px).chw[1]
            }
            #expect(got == expected, "\(variant.rawValue)")
        }
    }
}

@Suite("AlexNet: VISSL checkpoints, configs and pool maps")
struct AlexNetConfigTests {
    static func model(_ trunk: String, input: String? = nil, map: JSONValue? = nil) -> ConfigNode {
        var m: [String: JSONValue] = ["TRUNK": ["NAME": .string(trunk)]]
        if let input { m["INPUT_TYPE"] = .string(input) }
        if let map { m["FEATURE_EVAL_SETTINGS"] = ["LINEAR_EVAL_FEAT_POOL_OPS_MAP": map] }
        return ConfigNode(path: "MODEL", value: .object(m))
    }

    @Test(
        "model_state_dict files with _feature_blocks keys load (APPEND_PREFIX trunk. or the model zoo's trunk.base_model.)",
        arguments: [("bvlc", "trunk."), ("deepcluster", "trunk.base_model.")])
    func visslCheckpoint(_ variant: String, _ prefix: String) throws {
        let fx = try AlexNetFixtures.shared
        let c = try fx.testCase("\(variant)_vissl.torch")
        let spec = AlexNetSpec(variant: try #require(AlexNetSpec.Variant(rawValue: "alexnet_\(variant)")))
        let settings = WeightsInit(
            paramsFile: fixturePath("alexnet/\(variant)_vissl.torch"), stateDictKeyName: ["model_state_dict"],
            appendPrefix: prefix)
        let weights = try TrunkWeights.load(settings, architecture: spec)
        if variant == "deepcluster" {
            #expect(weights.notes.contains { $0.contains("sobel.0.weight") }, "\(weights.notes)")
        }
        let net = try spec.build(weights: weights, options: TrunkRunOptions(threads: 1))
        let taps = try #require(c["taps"]?.arrayValue)
        let input = AlexNetFixtures.input(trunk: spec.trunkName, count: 3 * 67 * 67)
        let got = try runOutputs(net, map: try AlexNetFixtures.map(taps), input: input, count: 1, height: 67, width: 67)
        for (k, t) in taps.enumerated() {
            let err = relativeError(got[k], try fx.slice(t))
            #expect(err < 1e-4, "\(variant) \(t["tap"]?.stringValue ?? ""): \(err)")
        }
    }

    @Test("a checkpoint of another variant is one line naming shapes")
    func wrongVariant() throws {
        let settings = WeightsInit(
            paramsFile: fixturePath("alexnet/bvlc_vissl.torch"), stateDictKeyName: ["model_state_dict"],
            appendPrefix: "trunk.")
        let error = #expect(throws: LinprobeError.self) {
            _ = try TrunkWeights.load(settings, architecture: AlexNetSpec(variant: .rotnet))
        }
        #expect(
            error?.message.contains(
                "wrong shape: trunk._feature_blocks.0.0.weight: checkpoint [96, 3, 11, 11] vs model [64, 3, 11, 11]")
                == true, "\(error?.message ?? "")")
    }

    @Test("VISSL's overlay maps give the head dims of trunks.md §C")
    func overlayMaps() throws {
        let bvlcMap: JSONValue = [
            ["conv1", ["AvgPool2d", [[19, 19], 4, 0]]], ["conv2", ["AvgPool2d", [[12, 12], 3, 0]]],
            ["conv3", ["AvgPool2d", [[9, 9], 1, 0]]], ["conv4", ["AvgPool2d", [[9, 9], 1, 0]]],
            ["conv5", ["AvgPool2d", [[8, 8], 1, 0]]],
        ]
        let jigsawMap: JSONValue = [
            ["conv1", ["AvgPool2d", [[28, 28], 9, 0]]], ["conv2", ["AvgPool2d", [[24, 24], 6, 0]]],
            ["conv3", ["AvgPool2d", [[14, 14], 3, 0]]], ["conv4", ["AvgPool2d", [[14, 14], 3, 0]]],
            ["conv5", ["AvgPool2d", [[16, 16], 2, 0]]],
        ]
        let rotnetMap: JSONValue = [
            ["conv1", ["AdaptiveMaxPool2d", [12]]], ["conv2", ["AdaptiveMaxPool2d", [7]]],
            ["conv3", ["AdaptiveMaxPool2d", [5]]], ["conv4", ["AdaptiveMaxPool2d", [6]]],
            ["conv5", ["AdaptiveMaxPool2d", [6]]],
        ]
        let cases: [(String, String?, JSONValue, Int, [Int])] = [
            ("alexnet_bvlc", nil, bvlcMap, 227, [9600, 9216, 9600, 9600, 9216]),
            ("alexnet_colorization", "lab", bvlcMap, 227, [9600, 9216, 9600, 9600, 9216]),
            ("alexnet_deepcluster", nil, bvlcMap, 224, [9600, 9216, 9600, 9600, 9216]),
            ("alexnet_jigsaw", nil, jigsawMap, 227, [9600, 9216, 9600, 9600, 9216]),
            ("alexnet_rotnet", nil, rotnetMap, 224, [9216, 9408, 9600, 9216, 9216]),
        ]
        for (trunk, input, map, px, dims) in cases {
            let cfg = try TrunkConfiguration(model: Self.model(trunk, input: input, map: map))
            #expect(try cfg.outputs(inputHeight: px, inputWidth: px).map(\.dimension) == dims, "\(trunk)")
        }
    }

    @Test("colorization needs INPUT_TYPE lab and only it takes lab (VISSL asserts)")
    func labInput() throws {
        let e1 = #expect(throws: LinprobeError.self) {
            _ = try TrunkConfiguration(model: Self.model("alexnet_colorization"))
        }
        #expect(e1?.exitCode == 64)
        #expect(e1?.message.hasPrefix("MODEL.INPUT_TYPE: alexnet_colorization takes Lab input") == true)
        let e2 = #expect(throws: LinprobeError.self) {
            _ = try TrunkConfiguration(model: Self.model("alexnet_jigsaw", input: "lab"))
        }
        #expect(e2?.exitCode == 64)
        let cfg = try TrunkConfiguration(model: Self.model("alexnet_rotnet"))
        #expect(cfg.architecture.defaultTap == "flatten")
    }
}
