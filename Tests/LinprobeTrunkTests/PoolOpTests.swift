import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

@Suite("Pool ops (PyTorch semantics)")
struct PoolOpTests {
    static let testedOps = 0..<16

    @Test("the fixture holds exactly the ops the PyTorch comparison runs")
    func fixtureOpCount() throws {
        let ops = try #require(
            ReferenceFixtures.shared.manifest["pool"]?["ops"]?.arrayValue,
            "trunk/reference.json has no pool.ops")
        #expect(ops.count == Self.testedOps.count)
    }

    @Test("each op against PyTorch on a 2×5×13×11 tensor", arguments: testedOps)
    func againstPyTorch(index: Int) throws {
        let fixtures = try ReferenceFixtures.shared
        let pool = fixtures.manifest["pool"]!
        let input = try fixtures.slice(pool["input"]!)
        let (n, c, h, w) = (2, 5, 13, 11)
        let spec = pool["ops"]!.arrayValue![index]
        let op = try PoolOp(config: ConfigNode(path: "op", value: spec["op"]!))
        let expectedShape = spec["shape"]!.arrayValue!.map { Int($0.intValue!) }
        let shape = try #require(op.outputShape([c, h, w]))
        #expect([n] + shape == expectedShape, "\(op)")
        let reference = try fixtures.slice(spec)
        let dim = shape.reduce(1, *)
        var ours = [Float](repeating: .nan, count: n * dim)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: dim + c * h * w)
        defer { scratch.deallocate() }
        for i in 0..<n {
            // NCHW image → NHWC, the trunk's layout.
            var nhwc = [Float](repeating: 0, count: c * h * w)
            for ch in 0..<c { for p in 0..<(h * w) { nhwc[p * c + ch] = input[i * c * h * w + ch * h * w + p] } }
            ours.withUnsafeMutableBufferPointer { out in
                nhwc.withUnsafeBufferPointer { src in
                    Kernels.pool(
                        op, src.baseAddress!, h: h, w: w, c: c, oh: shape[1], ow: shape[2],
                        dst: out.baseAddress! + i * dim, scratch: scratch)
                }
            }
        }
        let err = relativeError(ours, reference)
        #expect(err < 1e-6, "\(op): relative error \(err)")
    }

    @Test("parameters PyTorch rejects are configuration errors")
    func rejected() throws {
        let rejected = try ReferenceFixtures.shared.manifest["pool"]!["rejected"]!.arrayValue!
        #expect(rejected.count == 3)
        for r in rejected {
            let node = ConfigNode(path: "MAP[0][1]", value: r["op"]!)
            do {
                let op = try PoolOp(config: node)
                // Valid parameters, but the output would be empty for a 13×11 map.
                #expect(op.outputShape([5, 13, 11]) == nil, "\(op) should not fit: \(r["error"]!.stringValue!)")
            } catch let e as LinprobeError {
                #expect(e.exitCode == 64)
                #expect(e.message.contains("MAP[0][1]"))
            }
        }
    }

    static func mapNode(_ json: String) throws -> ConfigNode {
        ConfigNode(path: "MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP", value: try JSONValue.parse(json))
    }

    @Test("the canonical VISSL map parses to the documented shapes, repeated taps included")
    func canonicalMap() throws {
        let map = try PoolOpsMap(
            config: Self.mapNode(
                """
                [["conv1", ["AvgPool2d", [[10, 10], 10, 4]]], ["res2", ["AvgPool2d", [[16, 16], 8, 0]]],
                 ["res3", ["AvgPool2d", [[13, 13], 5, 0]]], ["res4", ["AvgPool2d", [[8, 8], 3, 0]]],
                 ["res5", ["AvgPool2d", [[6, 6], 1, 0]]], ["res5avg", ["Identity", []]], ["res5avg", ["Identity", []]]]
                """))
        #expect(map.entries.prefix(6).map(\.op) == PoolOpsMap.visslResNet50.entries.map(\.op))
        #expect(map.entries.prefix(6).map(\.tap) == PoolOpsMap.visslResNet50.entries.map(\.tap))
        let outputs = try map.outputs(spec: ResNetSpec(depth: 50), inputHeight: 224, inputWidth: 224)
        #expect(outputs.map(\.dimension) == [9216, 9216, 8192, 9216, 8192, 2048, 2048])
        #expect(outputs.map(\.name) == ["conv1", "res2", "res3", "res4", "res5", "res5avg", "res5avg"])
    }

    @Test("an empty map means the trunk output (flatten, N×C)")
    func emptyMap() throws {
        let map = try PoolOpsMap(config: Self.mapNode("[]"))
        let outputs = try map.outputs(
            spec: ResNetSpec(depth: 50, widthMultiplier: 2), inputHeight: 224, inputWidth: 224)
        #expect(outputs.count == 1)
        #expect(outputs[0].tap == "flatten" && outputs[0].shapeCHW == [4096, 1, 1])
        let absent = try PoolOpsMap(config: ConfigNode(path: "X", value: nil))
        #expect(absent.entries.isEmpty)
    }

    @Test("a kernel larger than its map is a config error naming the tap")
    func kernelTooLarge() throws {
        let map = try PoolOpsMap(
            config: Self.mapNode(
                #"[["res2", ["AvgPool2d", [[16, 16], 8, 0]]], ["res5", ["AvgPool2d", [[6, 6], 1, 0]]]]"#))
        // At 128×128 the res5 map is 4×4.
        let error = #expect(throws: LinprobeError.self) {
            try map.outputs(spec: ResNetSpec(depth: 50), inputHeight: 128, inputWidth: 128)
        }
        #expect(error?.exitCode == 64)
        #expect(error?.message.contains("LINEAR_EVAL_FEAT_POOL_OPS_MAP[1]") == true)
        #expect(error?.message.contains("res5") == true)
        #expect(error?.message.contains("4×4") == true)
    }

    @Test(
        "malformed maps name the key",
        arguments: [
            (#"[["res6", ["Identity", []]]]"#, "not a tap"),
            (#"[["res5", ["GeM", [3]]]]"#, "not supported"),
            (#"[["res5"]]"#, "expected [tap"),
            (#"[["res5", ["AvgPool2d", []]]]"#, "needs a kernel"),
            (#"[["res5", ["AvgPool2d", [3, 0]]]]"#, "must be positive"),
            (#"[["res5", ["AdaptiveAvgPool2d", [[0, 2]]]]]"#, "at least 1"),
            (#"[["res5", ["MaxPool2d", [3, 1, 1, 1, true]]]]"#, "return_indices"),
            (#"[["flatten", ["AvgPool2d", [1]]]]"#, "only Identity"),
            (#"[["res5", ["AvgPool2d", [[2, 2, 2]]]]]"#, "pair"),
        ])
    func malformed(json: String, fragment: String) throws {
        let error = #expect(throws: LinprobeError.self) {
            let map = try PoolOpsMap(config: Self.mapNode(json))
            _ = try map.outputs(spec: ResNetSpec(depth: 50), inputHeight: 224, inputWidth: 224)
        }
        #expect(error?.exitCode == 64)
        #expect(error?.message.contains("LINEAR_EVAL_FEAT_POOL_OPS_MAP") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "") lacks '\(fragment)'")
    }

    @Test("provenance spells every argument out, so equal ops fingerprint equally")
    func provenance() throws {
        let a = try PoolOp(config: ConfigNode(path: "a", value: try JSONValue.parse(#"["AvgPool2d", [[6, 6], 1, 0]]"#)))
        let b = try PoolOp(config: ConfigNode(path: "b", value: try JSONValue.parse(#"["AvgPool2d", [6, 1]]"#)))
        #expect(a == b)
        #expect(a.provenance.canonicalText == b.provenance.canonicalText)
        #expect(a.provenance.canonicalText == #"["AvgPool2d",[[6,6],[1,1],[0,0],false,true,null]]"#)
    }
}
