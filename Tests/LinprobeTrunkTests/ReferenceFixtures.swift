import Foundation
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

/// The PyTorch reference data made by `scripts/make_trunk_fixtures.py` (see its docstring for the
/// weight and input generator, implemented identically here).
struct ReferenceFixtures: @unchecked Sendable {
    let manifest: JSONValue
    let blob: [Float]

    /// Read once; a missing or unreadable fixture fails every test that uses it.
    private static let loaded = Result { () throws -> ReferenceFixtures in
        let json = try String(contentsOfFile: fixturePath("trunk/reference.json"), encoding: .utf8)
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("trunk/reference.bin")))
        let floats = data.withUnsafeBytes { raw in
            Array(raw.bindMemory(to: Float.self))
        }
        return ReferenceFixtures(manifest: try JSONValue.parse(json), blob: floats)
    }

    static var shared: ReferenceFixtures {
        get throws { try loaded.get() }
    }

    func slice(_ entry: JSONValue) throws -> [Float] {
        let offset = Int(try #require(entry["offset"]?.intValue)), count = Int(try #require(entry["count"]?.intValue))
        try #require(
            offset >= 0 && count >= 0 && offset + count <= blob.count,
            "slice \(offset)+\(count) outside trunk/reference.bin")
        return Array(blob[offset..<(offset + count)])
    }

    func trunkCase(_ name: String) throws -> JSONValue {
        try #require(
            manifest["cases"]?.arrayValue?.first { $0["case"]?.stringValue == name },
            "no case '\(name)' in trunk/reference.json")
    }
}

/// The fixtures' PRNG: SplitMix64 seeded with FNV-1a-64(name); u = (z >> 40)·2⁻²⁴.
func uniformStream(_ name: String, _ n: Int) -> [Double] {
    var rng = SeededGenerator(seed: fnv1a64(name))
    return (0..<n).map { _ in Double(rng.next() >> 40) * 0x1p-24 }
}

/// Weights of fixture case `caseName`, generated as the Python script does.
func fixtureWeights(_ spec: ResNetSpec, caseName: String) -> [String: CheckpointTensor] {
    var tensors: [String: CheckpointTensor] = [:]
    for p in spec.parameters {
        let n = p.shape.reduce(1, *)
        let u = uniformStream("\(caseName):\(p.name)", n)
        let values: [Float]
        if p.name.hasSuffix("running_mean") {
            values = u.map { Float(0.5 * (2 * $0 - 1)) }
        } else if p.name.hasSuffix("running_var") {
            values = u.map { Float(0.5 + 1.5 * $0) }
        } else if p.name.hasSuffix(".bias") {
            values = u.map { Float(0.2 * (2 * $0 - 1)) }
        } else if p.shape.count == 4 {
            let fanIn = p.shape.dropFirst().reduce(1, *)
            let bound = (6.0 / Double(fanIn)).squareRoot()
            values = u.map { Float((2 * $0 - 1) * bound) }
        } else {
            values = u.map { Float(0.5 + $0) }
        }
        tensors[p.name] = CheckpointTensor(shape: p.shape, values: values)
    }
    return tensors
}

func fixtureInput(_ caseName: String, count: Int) -> [Float] {
    uniformStream("input:\(caseName)", count).map { Float(2 * (2 * $0 - 1)) }
}

/// Largest |a − b| relative to max |b| (the criterion of the issue: within 1e-4 of the tap's max magnitude).
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "lengths differ: \(a.count) vs \(b.count)")
    var maxDiff = 0.0, maxRef = 0.0
    for i in a.indices {
        maxDiff = max(maxDiff, Double(abs(a[i] - b[i])))
        maxRef = max(maxRef, Double(abs(b[i])))
    }
    return maxRef == 0 ? maxDiff : maxDiff / maxRef
}
