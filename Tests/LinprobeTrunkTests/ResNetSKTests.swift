import Foundation
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

/// VISSL's `resnet_sk` (SimCLRv2) against the PyTorch transcription of
/// `scripts/make_resnet_sk_fixtures.py` (small stage depths; VISSL's configs build depth 152).
@Suite("resnet_sk: SimCLRv2 selective-kernel ResNets against a PyTorch transcription")
struct ResNetSKTests {
    static let fixture = Result { () throws -> (JSONValue, [Float]) in
        let json = try String(contentsOfFile: fixturePath("resnet_sk/reference.json"), encoding: .utf8)
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("resnet_sk/reference.bin")))
        return (try JSONValue.parse(json), data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
    }

    static func testCase(_ name: String) throws -> (JSONValue, [Float]) {
        let (manifest, blob) = try fixture.get()
        let c = try #require(manifest["cases"]?.arrayValue?.first { $0["case"]?.stringValue == name })
        return (c, blob)
    }

    static func spec(_ c: JSONValue) throws -> ResNetSKSpec {
        let blocks = try #require(c["blocks"]?.arrayValue).compactMap(\.intValue).map(Int.init)
        return ResNetSKSpec(
            blockCounts: blocks, widthMultiplier: Int(try #require(c["WIDTH_MULTIPLIER"]?.intValue)),
            skRatio: try #require(c["SK_RATIO"]?.doubleValue))
    }

    /// The script's weights (make_trunk_fixtures.py's scheme on VISSL's names).
    static func weights(_ spec: ResNetSKSpec, case name: String) throws -> TrunkWeights {
        var tensors: [String: CheckpointTensor] = [:]
        for p in spec.parameters {
            let u = uniformStream("resnet_sk_\(name):\(p.name)", p.count)
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

    @Test("parameter names and shapes are VISSL's state-dict keys", arguments: ["sk1", "sk1_w2", "nosk"])
    func keys(_ name: String) throws {
        let (c, _) = try Self.testCase(name)
        let expected = try #require(c["keys"]?.arrayValue).map { e -> String in
            let shape = try #require(e.arrayValue?[1].arrayValue).compactMap(\.intValue).map(String.init)
            return "\(try #require(e.arrayValue?[0].stringValue)) \(shape.joined(separator: "x"))"
        }
        let got = try Self.spec(c).parameters.map { "\($0.name) \($0.shape.map(String.init).joined(separator: "x"))" }
        #expect(got == expected)
    }

    @Test("the output (pooled last stage) within 1e-4 of its magnitude", arguments: ["sk1", "sk1_w2", "nosk"])
    func output(_ name: String) throws {
        let (c, blob) = try Self.testCase(name)
        let spec = try Self.spec(c)
        let shape = try #require(c["input"]?.arrayValue).compactMap(\.intValue).map(Int.init)
        let input = uniformStream("input:resnet_sk_\(name)", shape.reduce(1, *)).map { Float(2 * (2 * $0 - 1)) }
        let net = try spec.build(weights: try Self.weights(spec, case: name), options: TrunkRunOptions(threads: 2))
        let o = try #require(c["output"])
        let offset = Int(try #require(o["offset"]?.intValue)), count = Int(try #require(o["count"]?.intValue))
        let expected = Array(blob[offset..<(offset + count)])
        for threads in [1, 2] {
            let got = try runTaps(
                net, taps: ["flatten"], input: input, count: shape[0], height: shape[2], width: shape[3],
                threads: threads)
            let err = relativeError(got[0], expected)
            #expect(err < 1e-4, "\(name), \(threads) thread(s): \(err)")
        }
    }

    @Test("VISSL's simclrv2_rn152_3x_sk1 overlay: an empty map gives the 6144-d trunk output; other taps are errors")
    func overlay() throws {
        let model = ConfigNode(
            path: "MODEL",
            value: [
                "TRUNK": [
                    "NAME": "resnet_sk", "RESNETS_SK": ["DEPTH": 152, "WIDTH_MULTIPLIER": 3, "SK_RATIO": 0.0625],
                ],
                "FEATURE_EVAL_SETTINGS": ["LINEAR_EVAL_FEAT_POOL_OPS_MAP": []],
            ])
        let cfg = try TrunkConfiguration(model: model)
        #expect(try cfg.outputs(inputHeight: 224, inputWidth: 224).map(\.dimension) == [6144])
        let spec = try #require(cfg.architecture as? ResNetSKSpec)
        #expect(spec.blockCounts == [3, 8, 36, 3])
        #expect(spec.mixingWidth(spec.width(stage: 3)) == 96)
        let bad = ConfigNode(path: "MODEL", value: ["TRUNK": ["NAME": "resnet_sk", "RESNETS_SK": ["DEPTH": 50]]])
        let e = #expect(throws: LinprobeError.self) { _ = try TrunkConfiguration(model: bad) }
        #expect(e?.message.hasPrefix("MODEL.TRUNK.RESNETS_SK.DEPTH: 50 is not supported") == true)
        #expect(throws: LinprobeError.self) { _ = try spec.tapShape("res5", inputHeight: 224, inputWidth: 224) }
    }
}
