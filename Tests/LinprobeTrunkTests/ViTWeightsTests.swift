import Foundation
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

@Suite("Vision transformer: the checkpoint layouts of DINO, iBOT, DeiT/MAE and VISSL")
struct ViTWeightsTests {
    static func spec() throws -> ViTSpec {
        try ViTFixtures.spec(try ViTFixtures.shared.testCase("tiny")["model"])
    }

    static func load(_ file: String, _ settings: (String) -> WeightsInit) throws -> TrunkWeights {
        try TrunkWeights.load(settings(fixturePath("vit/\(file)")), architecture: try spec())
    }

    static func reference() throws -> TrunkWeights {
        try load("tiny_dino_official.pth") { WeightsInit(paramsFile: $0, stateDictKeyName: []) }
    }

    @Test(
        "each layout loads the same tensors with the options VISSL's overlays use",
        arguments: [
            ("tiny_dino_official.pth", [], "", "trunk."),
            ("tiny_dino_official.pth", [], "", "trunk.base_model."),
            ("tiny_dino_official.pth", [""], "", ""),
            ("tiny_dino_vissl.torch", ["loss"], "momentum_teacher.module.", ""),
            ("tiny_ibot.torch", ["loss", "teacher"], "module.", ""),
            ("tiny_deit.pth", ["model"], "", "trunk."),
            ("tiny_classy.torch", ["classy_state_dict"], "", ""),
        ] as [(String, [String], String, String)])
    func layouts(_ file: String, _ key: [String], _ remove: String, _ append: String) throws {
        let want = try Self.reference()
        let got = try Self.load(file) {
            WeightsInit(
                paramsFile: $0, stateDictKeyName: key.filter { !$0.isEmpty }, removePrefix: remove,
                appendPrefix: append)
        }
        #expect(Set(got.tensors.keys) == Set(want.tensors.keys))
        for (name, t) in want.tensors {
            #expect(got.tensors[name]?.floats() == t.floats(), "\(file): \(name)")
        }
        // The checkpoint's other tensors (heads, DINO's center) are listed once and ignored.
        if file != "tiny_dino_official.pth" && file != "tiny_classy.torch" {
            let notes = got.notes.filter { $0.contains("ignored") }
            #expect(notes.count == 1, "\(file): \(got.notes)")
        }
    }

    @Test("a trunk parameter missing from the checkpoint is an error listing the missing keys")
    func missing() throws {
        let e = try #require(throws: LinprobeError.self) {
            try Self.load("tiny_missing.pth") { WeightsInit(paramsFile: $0, stateDictKeyName: []) }
        }
        #expect(e.message.contains("missing: blocks.0.norm1.weight, norm.bias"), "\(e.message)")
    }

    @Test("the loaded tiny model reproduces timm's lastCLS")
    func features() throws {
        let fx = try ViTFixtures.shared
        let c = try fx.testCase("tiny")
        let w = try Self.load("tiny_ibot.torch") {
            WeightsInit(paramsFile: $0, stateDictKeyName: ["loss", "teacher"], removePrefix: "module.")
        }
        let net = try Self.spec().build(weights: w, options: TrunkRunOptions(threads: 1))
        let got = try runTaps(
            net, taps: ["lastCLS"], input: try fx.slice(c["input_data"]), count: 1, height: 16, width: 16)
        let want = try fx.slice(try #require(c["taps"]?.arrayValue?.first))
        #expect(relativeError(got[0], want) < 1e-4)
    }

    @Test("random initialisation covers every parameter and runs")
    func random() throws {
        let spec = try Self.spec()
        let w = TrunkWeights.random(architecture: spec, seed: 3)
        #expect(w.tensors.count == spec.parameters.count)
        let net = try spec.build(weights: w, options: TrunkRunOptions(threads: 1))
        let out = try runTaps(
            net, taps: ["lastCLS", "lastBLK"], input: [Float](repeating: 0.3, count: 3 * 16 * 16), count: 1,
            height: 16, width: 16)
        #expect(out[0].count == 16 && out[1].count == 5 * 16 && out.joined().allSatisfy(\.isFinite))
    }
}
