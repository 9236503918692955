import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

/// Issue 19, case 5 (trunk side): pool-op outputs and input sizes whose buffers exceed half the
/// machine's memory are one configuration line giving the figure, computed before anything is
/// allocated; pool-op arguments are range-checked so their arithmetic cannot overflow.
@Suite struct HostileConfigTests {
    static func map(_ op: JSONValue, tap: String = "res5") throws -> PoolOpsMap {
        try PoolOpsMap(
            config: ConfigNode(
                path: "MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP",
                value: [[.string(tap), op]]))
    }

    @Test func hugeAdaptivePoolOutputIsAConfigErrorWithTheFigure() throws {
        let map = try Self.map(["AdaptiveAvgPool2d", [[100_000, 100_000]]])
        let error = #expect(throws: LinprobeError.self) {
            _ = try map.outputs(spec: ResNetSpec(depth: 50), inputHeight: 224, inputWidth: 224)
        }
        let message = error?.message ?? ""
        #expect(
            message.hasPrefix(
                "MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP[0] (res5): AdaptiveAvgPool2d"))
        #expect(
            message.contains(
                "[2048, 100000, 100000] float32 feature per image, which needs 81.9 TB, more than the"))
        #expect(error?.exitCode == 64)
    }

    @Test(arguments: [
        ["MaxPool2d", [[1_099_511_627_776, 1], 1, 0, [1_099_511_627_776, 1]]] as JSONValue,
        ["AvgPool2d", [4_611_686_018_427_387_904, 1, 1]] as JSONValue,
        ["AdaptiveMaxPool2d", [[4_611_686_018_427_387_904, 1]]] as JSONValue,
    ])
    func oversizedPoolArgumentsAreConfigErrors(_ op: JSONValue) throws {
        let error = #expect(throws: LinprobeError.self) { _ = try Self.map(op) }
        #expect(error?.message.contains("exceeds \(PoolOp.maxParameter)") == true, "\(error?.message ?? "")")
        #expect(error?.exitCode == 64)
    }

    @Test func hugeInputIsRefusedBeforeAllocating() throws {
        let trunk = try ResNetTrunk(weights: .random(architecture: ResNetSpec(depth: 18)))
        let error = #expect(throws: LinprobeError.self) {
            _ = try ResNetExtractor(
                trunk: trunk, map: PoolOpsMap(entries: []), inputHeight: 1_000_000,
                inputWidth: 1_000_000)
        }
        let expected = "input size 1000000×1000000 (from the transforms): one image tensor needs 12.0 TB"
        #expect(error?.message.hasPrefix(expected) == true)
        #expect(error?.exitCode == 64)
    }

    /// An input whose tensor fits the budget but whose trunk workspace (the stem alone holds
    /// 64 channels at half the resolution: 5⅓ times the tensor) does not.
    @Test func workspaceBeyondTheBudgetIsRefusedBeforeAllocating() throws {
        let limit = Double(ProcessInfo.processInfo.physicalMemory / 2)
        let side = Int((limit / 20).squareRoot())
        let trunk = try ResNetTrunk(weights: .random(architecture: ResNetSpec(depth: 18)))
        let error = #expect(throws: LinprobeError.self) {
            _ = try ResNetExtractor(
                trunk: trunk, map: PoolOpsMap(entries: []), inputHeight: side, inputWidth: side,
                options: .init(threads: 1))
        }
        let expected = "input size \(side)×\(side) with 1 worker thread: the trunk's workspace memory needs"
        #expect(
            error?.message.hasPrefix(expected) == true,
            "\(error?.message ?? "")")
    }
}
