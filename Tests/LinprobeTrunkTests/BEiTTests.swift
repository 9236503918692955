import Foundation
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

@Suite("BEiT: fidelity against timm's Beit, configuration, the recomputed index")
struct BEiTTests {
    static func spec() throws -> ViTSpec {
        try ViTSpec(
            imageSize: 32, patchSize: 8, hiddenDim: 32, numLayers: 3, numHeads: 2, mlpDim: 128, qkvBias: true,
            beit: BEiTOptions(
                mlpRatio: 4, initValues: 0.1, useAbsolutePosition: true, useRelativePositionBias: true,
                useSharedRelativePositionBias: false, useMeanPooling: false))
    }

    @Test("every BEiT tap matches timm within 1e-4; the checkpoint's relative_position_index is not loaded")
    func taps() throws {
        let fx = try ViTFixtures.shared
        let c = try fx.testCase("beit")
        let spec = try Self.spec()
        let weights = try TrunkWeights.load(
            WeightsInit(paramsFile: fixturePath("vit/beit.pth"), stateDictKeyName: ["model"]), architecture: spec)
        #expect(weights.notes.contains { $0.contains("relative_position_index") })
        let net = try spec.build(weights: weights, options: TrunkRunOptions(threads: 2))
        let entries = try #require(c["taps"]?.arrayValue)
        let taps = entries.compactMap { $0["tap"]?.stringValue }
        let got = try runTaps(net, taps: taps, input: try fx.slice(c["input_data"]), count: 2, height: 32, width: 32)
        for (i, entry) in entries.enumerated() {
            let want = try fx.slice(entry)
            try #require(got[i].count == want.count, "\(taps[i])")
            #expect(relativeError(got[i], want) < 1e-4, "\(taps[i]): \(relativeError(got[i], want))")
        }
    }

    @Test("VISSL's relative_position_index: class slots and a symmetric offset table")
    func index() {
        let g = 2, t = 5, rows = BEiTOptions.tableRows(grid: g)
        let index = BEiTOptions.relativePositionIndex(grid: g)
        #expect(rows == 12 && index.count == t * t)
        #expect(index[0] == rows - 1 && index[1] == rows - 3 && index[t] == rows - 2)
        // Patch i to itself is offset (0, 0): (g-1)·(2g-1) + (g-1) = 4.
        #expect((1..<t).allSatisfy { index[$0 * t + $0] == 4 })
        // Patch (0,0) to (1,1): dy = dx = -1 → (0)·3 + 0 = 0; the reverse → 2·3 + 2 = 8.
        #expect(index[1 * t + 4] == 0 && index[4 * t + 1] == 8)
    }

    @Test("config: MODEL.TRUNK.BEIT with the overlay's keys; only class-token taps; input must be IMAGE_SIZE")
    func config() throws {
        let m = ConfigNode(
            path: "MODEL",
            value: try JSONValue.parse(
                #"{"TRUNK": {"NAME": "beit", "BEIT": {"IMAGE_SIZE": 224, "PATCH_SIZE": 16, "NUM_LAYERS": 12, "NUM_HEADS": 12, "HIDDEN_DIM": 768, "MLP_RATIO": 4.0, "QKV_BIAS": true, "USE_ABS_POS_EMB": true, "USE_REL_POS_BIAS": true, "USE_SHARED_REL_POS_BIAS": false, "USE_MEAN_POOLING": false, "INIT_VALUES": 0.1}}}"#
            ))
        let spec = try #require(try TrunkFamilies.architecture(model: m) as? ViTSpec)
        #expect(spec.trunkName == "beit" && spec.beit?.initValues == 0.1 && spec.mlpHidden == 3072)
        #expect(
            spec.parameters.contains {
                $0.name == "blocks.11.attn.relative_position_bias_table" && $0.shape == [732, 12]
            })
        #expect(spec.acceptsTap("concatCLS4") && !spec.acceptsTap("lastPOOL") && !spec.acceptsTap("lastBLK"))
        #expect(throws: LinprobeError.self) { try spec.tapShape("lastCLS", inputHeight: 448, inputWidth: 448) }
        #expect(try spec.tapShape("concatCLS4", inputHeight: 224, inputWidth: 224).chw == [3072, 1, 1])
    }
}
