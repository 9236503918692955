import Foundation
import LinprobeTestSupport
import Testing

@testable import LinprobeCore

/// Loads pipeline text with overrides.
func loadConfig(_ yaml: String, _ overrides: [String] = [], source: String = "test.yaml") throws -> PipelineConfig {
    try PipelineConfig.load(text: yaml, source: source, overrides: overrides)
}

/// The LinprobeError a body throws (nil when it succeeds or throws something else).
func configError(_ body: () throws -> Void) -> LinprobeError? {
    do {
        try body()
        return nil
    } catch let error as LinprobeError {
        return error
    } catch {
        return nil
    }
}

/// Expects a one-line configuration error (exit 64) whose message contains every fragment.
func expectConfigError(
    _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    guard let error = configError(body) else {
        Issue.record("expected a configuration error containing \(fragments)", sourceLocation: sourceLocation)
        return
    }
    #expect(error.exitCode == 64, "exit code of: \(error.message)", sourceLocation: sourceLocation)
    #expect(!error.message.contains("\n"), "one line: \(error.message)", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(error.message.contains(fragment), "'\(fragment)' in: \(error.message)", sourceLocation: sourceLocation)
    }
}

/// Path of a VISSL benchmark config fixture.
func visslFixture(_ relative: String) -> String { fixturePath("vissl-configs/\(relative)") }

let in1kFixture = "imagenet1k/eval_resnet_8gpu_transfer_in1k_linear.yaml"
let places205Fixture = "places205/eval_resnet_8gpu_transfer_places205_linear.yaml"
let inat18Fixture = "inaturalist18/eval_resnet_8gpu_transfer_inaturalist18_linear.yaml"
let voc07Fixture = "voc07/eval_resnet_8gpu_transfer_voc07_svm.yaml"
let seedSnippets = [
    "mlp_trunk_output.yaml", "eval_mlp_multiple_layers.yaml", "svm_multiple_layers.yaml", "svm_trunk_output.yaml",
]

/// Converts a JSONSerialization object to a JSONValue (bools are NSNumbers of type "c" on Linux).
func jsonValue(fromFoundation any: Any) -> JSONValue {
    switch any {
    case is NSNull: return .null
    case let s as String: return .string(s)
    case let a as [Any]: return .array(a.map(jsonValue(fromFoundation:)))
    case let o as [String: Any]: return .object(o.mapValues(jsonValue(fromFoundation:)))
    case let n as NSNumber:
        let type = String(cString: n.objCType)
        if type == "c" || type == "B" { return .bool(n.boolValue) }
        if type == "d" || type == "f" { return .double(n.doubleValue) }
        return .int(n.int64Value)
    default: return .string(String(describing: any))
    }
}
