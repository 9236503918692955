import Foundation
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

/// The torchvision reference data made by `scripts/make_regnet_fixtures.py`.
struct RegNetFixtures: @unchecked Sendable {
    let manifest: JSONValue
    let blob: [Float]

    private static let loaded = Result { () throws -> RegNetFixtures in
        let json = try String(contentsOfFile: fixturePath("regnet/reference.json"), encoding: .utf8)
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("regnet/reference.bin")))
        let floats = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return RegNetFixtures(manifest: try JSONValue.parse(json), blob: floats)
    }

    static var shared: RegNetFixtures {
        get throws { try loaded.get() }
    }

    func slice(_ entry: JSONValue) throws -> [Float] {
        let offset = Int(try #require(entry["offset"]?.intValue)), count = Int(try #require(entry["count"]?.intValue))
        try #require(offset >= 0 && count >= 0 && offset + count <= blob.count, "slice outside regnet/reference.bin")
        return Array(blob[offset..<(offset + count)])
    }

    func testCase(_ name: String) throws -> JSONValue {
        try #require(manifest["cases"]?.arrayValue?.first { $0["case"]?.stringValue == name }, "no case \(name)")
    }
}

/// `MODEL` with a RegNet trunk.
func regnetModel(_ regnet: JSONValue, name: String = "regnet", input: String = "rgb") -> ConfigNode {
    ConfigNode(
        path: "MODEL",
        value: ["TRUNK": ["NAME": .string(name), "REGNET": regnet], "INPUT_TYPE": .string(input)])
}

/// The fixture PRNG's weights for every parameter of `spec` (as `make_trunk_fixtures.py` draws them).
func regnetFixtureWeights(_ spec: RegNetSpec, caseName: String) -> [String: CheckpointTensor] {
    var tensors: [String: CheckpointTensor] = [:]
    for p in spec.parameters {
        let u = uniformStream("\(caseName):\(p.name)", p.count)
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
    return tensors
}

@Suite("RegNet: ClassyVision widths, fidelity against torchvision, VISSL key layouts")
struct RegNetTests {
    @Test("every named config and the SEER overlays get ClassyVision's widths (ties to even)")
    func widths() throws {
        let fx = try RegNetFixtures.shared
        let all = try #require(fx.manifest["widths"]?.objectValue)
        #expect(all.count >= 20)
        for (name, expected) in all {
            let spec: RegNetSpec
            if let params = expected["regnet"] {
                spec = try RegNetSpec(model: regnetModel(params), trunkName: "regnet")
            } else {
                spec = try RegNetSpec(model: regnetModel(["name": .string(name)]), trunkName: "regnet")
            }
            let ints = { (key: String) in expected[key]?.arrayValue?.compactMap { $0.intValue }.map(Int.init) ?? [] }
            #expect(spec.stages.map(\.width) == ints("widths"), "\(name) widths")
            #expect(spec.stages.map(\.depth) == ints("depths"), "\(name) depths")
            #expect(spec.stages.map(\.groupWidth) == ints("group_widths"), "\(name) group widths")
            let se = expected["se"]?.arrayValue?.map { $0.arrayValue?.compactMap(\.intValue).map(Int.init) ?? [] }
            let ours = spec.stages.indices.map { s in Array(spec.blocks(stage: s).compactMap(\.seWidth).prefix(2)) }
            #expect((se ?? spec.stages.map { _ in [] }) == ours, "\(name) SE widths")
        }
        // The two cases ties-away rounding gets wrong (trunks.md §B.2).
        let y800 = try RegNetSpec(model: regnetModel(["name": "regnet_y_800mf"]), trunkName: "regnet")
        #expect(y800.stages.map(\.width) == [64, 128, 320, 768])
        let seer = try RegNetSpec(
            model: regnetModel(["depth": 27, "w_0": 640, "w_a": 230.83, "w_m": 2.53, "group_width": 373]),
            trunkName: "regnet")
        #expect(seer.blocks(stage: 1).first?.seWidth == 186)
    }

    static func check(_ c: JSONValue, network: any TrunkNetwork, fx: RegNetFixtures) throws {
        let input = try #require(c["input"]?.arrayValue?.compactMap(\.intValue).map(Int.init))
        let name = try #require(c["case"]?.stringValue)
        let data = fixtureInput(name, count: input.reduce(1, *))
        let taps = try #require(c["taps"]?.arrayValue)
        let names = taps.compactMap { $0["tap"]?.stringValue }
        let got = try runTaps(
            network, taps: names, input: data, count: input[0], height: input[2], width: input[3])
        for (k, tap) in taps.enumerated() {
            let expected = try fx.slice(tap)
            let err = relativeError(got[k], expected)
            #expect(err < 1e-4, "\(name) \(names[k]): relative error \(err)")
        }
    }

    /// Every forced algorithm (this RegNet's 3×3 convolutions are grouped or strided, so all run
    /// im2col: the setting must not matter).
    @Test("named regnet_y_400mf matches torchvision at every tap", arguments: [ConvAlgorithm.winograd, .im2col])
    func named(algorithm: ConvAlgorithm) throws {
        let fx = try RegNetFixtures.shared
        let c = try fx.testCase("named")
        let spec = try RegNetSpec(model: regnetModel(try #require(c["regnet"])), trunkName: "regnet")
        let weights = try TrunkWeights(architecture: spec, tensors: regnetFixtureWeights(spec, caseName: "named"))
        let options = TrunkRunOptions(threads: 2, algorithm: algorithm)
        try Self.check(c, network: try spec.build(weights: weights, options: options), fx: fx)
    }

    static func loaded(_ file: String, model: ConfigNode) throws -> any TrunkNetwork {
        let spec = try TrunkFamilies.architecture(model: model)
        let weights = try TrunkWeights.load(WeightsInit(paramsFile: fixturePath("regnet/\(file)")), architecture: spec)
        return try spec.build(weights: weights, options: TrunkRunOptions(threads: 2))
    }

    @Test("parametric RegNet (bgr input, stem width 24) loaded from a VISSL checkpoint matches torchvision")
    func parametric() throws {
        let fx = try RegNetFixtures.shared
        let c = try fx.testCase("parametric")
        let net = try Self.loaded("parametric.torch", model: regnetModel(try #require(c["regnet"]), input: "bgr"))
        try Self.check(c, network: net, fx: fx)
    }

    @Test("regnet_fsdp anynet with stage_checkpoints loads -part{g} keys and matches torchvision")
    func fsdp() throws {
        let fx = try RegNetFixtures.shared
        let c = try fx.testCase("fsdp")
        let net = try Self.loaded("fsdp.torch", model: regnetModel(try #require(c["regnet"]), name: "regnet_fsdp"))
        try Self.check(c, network: net, fx: fx)
    }

    @Test("weights too large for half the memory are one config line before the file is opened or hashed")
    func tooLargeIsRefusedBeforeLoading() throws {
        // SEER-10B (regnet10B overlay) where the machine has under 80 GB; else a larger anynet.
        let seer10B: JSONValue = [
            "depth": 27, "w_0": 1744, "w_a": 620.83, "w_m": 2.52, "group_width": 1010,
            "stage_checkpoints": [[2], [7], [9, 17], []],
        ]
        let huge: JSONValue = [
            "name": "anynet", "depths": [1, 1, 1, 1], "widths": [64, 128, 256, 4_000_000],
            "group_widths": [8, 8, 8, 8], "bottleneck_multipliers": [1.0, 1.0, 1.0, 1.0], "strides": [2, 2, 2, 2],
        ]
        let regnet = MemoryBudget.physicalBytes < 80_000_000_000 ? seer10B : huge
        let spec = try TrunkFamilies.architecture(model: regnetModel(regnet, name: "regnet_fsdp"))
        // The file does not exist: an error about it would mean it was opened first.
        #expect {
            _ = try TrunkWeights.load(WeightsInit(paramsFile: "/nonexistent/seer.torch"), architecture: spec)
        } throws: { error in
            let text = oneLine(error)
            return text.contains("parameters in float32 needs") && text.contains("half of this machine's")
                && !text.contains("nonexistent")
        }
    }

    @Test("an fsdp checkpoint under the regnet layout is an error naming the missing keys")
    func layoutMismatch() throws {
        let fx = try RegNetFixtures.shared
        guard case .object(var cfg) = try #require(fx.testCase("fsdp")["regnet"]) else {
            Issue.record("fsdp case has no regnet mapping")
            return
        }
        cfg["stage_checkpoints"] = nil
        #expect {
            _ = try Self.loaded("fsdp.torch", model: regnetModel(.object(cfg)))
        } throws: { error in
            let text = oneLine(error)
            return text.contains("missing: res2.block1-0") && text.contains("regnet_fsdp")
        }
        // A missing stage_checkpoints entry changes the groups: the keys do not fit either.
        cfg["stage_checkpoints"] = [[1], [1], [], []]
        #expect(throws: LinprobeError.self) {
            _ = try Self.loaded("fsdp.torch", model: regnetModel(.object(cfg), name: "regnet_fsdp"))
        }
    }

    static let badConfigs: [(JSONValue, String, String)] = [
        (["name": "regnet_y_16gf", "depth": 3], "regnet", "ignores every key but name"),
        (["name": "regnet_y_16gf"], "regnet_fsdp", "not a named model"),
        (["name": "regnet_y_17gf"], "regnet", "not a ClassyVision RegNet"),
        (["name": "regnet_z_500mf"], "regnet", "not implemented"),
        (["depth": 5, "w_0": 12, "w_a": 3, "w_m": 2, "group_width": 4], "regnet", "divisible by 8"),
        (["depth": 5, "w_0": 16, "w_a": 3, "w_m": 2], "regnet", "group_width: missing"),
        (["depth": 5, "w_0": 16, "w_a": 3, "w_m": 2, "group_width": 4, "wa": 1], "regnet", "REGNET.wa"),
        (
            ["depth": 5, "w_0": 16, "w_a": 3, "w_m": 2, "group_width": 4, "stage_checkpoints": [[1]]], "regnet",
            "only regnet_fsdp"
        ),
        (
            ["depth": 5, "w_0": 16, "w_a": 3, "w_m": 2, "group_width": 4, "block_type": "vanilla_block"], "regnet",
            "block_type"
        ),
        (
            [
                "name": "anynet", "depths": [1], "widths": [16, 32], "group_widths": [8], "strides": [2],
                "bottleneck_multipliers": [1.0],
            ], "regnet", "same length"
        ),
    ]

    @Test("configuration errors name the key", arguments: badConfigs)
    func configErrors(_ regnet: JSONValue, _ trunk: String, _ message: String) {
        #expect {
            _ = try TrunkFamilies.architecture(model: regnetModel(regnet, name: trunk))
        } throws: { error in
            oneLine(error).contains(message)
        }
    }

    @Test("lab input is refused; taps and shapes follow the stages")
    func tapsAndInput() throws {
        #expect(throws: LinprobeError.self) {
            _ = try RegNetSpec(model: regnetModel(["name": "regnet_y_400mf"], input: "lab"), trunkName: "regnet")
        }
        let spec = try RegNetSpec(model: regnetModel(["name": "regnet_y_8gf"]), trunkName: "regnet")
        #expect(spec.tapNames == ["conv1", "res2", "res3", "res4", "res5", "avgpool", "flatten"])
        #expect(try spec.tapShape("res4", inputHeight: 224, inputWidth: 224).chw == [896, 14, 14])
        #expect(try spec.tapShape("avgpool", inputHeight: 224, inputWidth: 224).chw == [2016, 1, 1])
        #expect(spec.parameters.contains { $0.name == "res5.block4-0.f.se.excitation.2.bias" })
    }

    @Test(
        "the shipped RegNet pipelines compose, validate and give the feature sizes of VISSL's heads",
        arguments: [
            ("imagenet1k_regnet_linear", [8206, 20888, 10444]), ("voc07_regnet_svm", [8064, 12096, 2016]),
        ])
    func pipelines(_ name: String, _ dimensions: [Int]) throws {
        let path = repositoryRoot.appendingPathComponent("pipelines/\(name).yaml").path
        let config = try PipelineConfig.load(pipeline: path, environment: [:], searchPaths: [])
        let trunk = try TrunkConfiguration(model: config.node("MODEL"))
        #expect(try trunk.outputs(inputHeight: 224, inputWidth: 224).map(\.dimension) == dimensions)
    }
}
