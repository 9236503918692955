import Foundation
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

/// Every tap of depth-18, depth-50, VISSL width-2 ResNet-50 and a ResNeXt (groups, LAYER4_STRIDE 1,
/// bgr) against PyTorch/torchvision on the same weights and inputs; and VISSL's canonical pooled
/// features at 224×224. Serialized: the width-2 cases hold ~1 GB of weights while they run.
@Suite("Trunk fidelity against PyTorch", .serialized)
struct FidelityTests {
    static let tapCases = ["rn18", "rn50", "rn50w2", "resnext50_32x4d_l4s1_bgr"]

    static func trunk(
        for entry: JSONValue, algorithm: ResNetTrunk.Algorithm = .winograd
    ) throws -> (ResNetSpec, ResNetTrunk) {
        let name = try #require(entry["case"]?.stringValue)
        let model: JSONValue = try #require(entry["model"])
        let spec = try ResNetSpec(model: ConfigNode(path: "MODEL", value: model))
        let trunk = try ResNetTrunk(
            weights: TrunkWeights(architecture: spec, tensors: fixtureWeights(spec, caseName: name)),
            algorithm: algorithm)
        return (spec, trunk)
    }

    @Test("spec.parameters are torchvision's state-dict names and shapes", arguments: tapCases + ["rn50_vissl224"])
    func parameterNames(caseName: String) throws {
        let entry = try ReferenceFixtures.shared.trunkCase(caseName)
        let spec = try ResNetSpec(model: ConfigNode(path: "MODEL", value: entry["model"]!))
        let expected = entry["parameters"]!.arrayValue!.map { p in
            "\(p["name"]!.stringValue!)\(p["shape"]!.arrayValue!.map { Int($0.intValue!) })"
        }
        let ours = spec.parameters.map { "\($0.name)\($0.shape)" }
        #expect(ours == expected)
    }

    /// Variants exercise every convolution algorithm, both kinds of parallelism, micro-batches
    /// of one image and tiny GEMM chunks (chunk boundaries inside rows and across images).
    static let variants: [(ResNetTrunk.Algorithm, ResNetExtractor.Options)] = [
        (.winograd, .init(threads: 2, parallelism: .batch, microBatch: 8, chunkRows: 512)),
        (.im2col, .init(threads: 2, parallelism: .blas, microBatch: 1, chunkRows: 37)),
        (.winograd, .init(threads: 1, parallelism: .batch, microBatch: 2, chunkRows: 19)),
        (.winograd4, .init(threads: 2, parallelism: .batch, microBatch: 3, chunkRows: 512)),
        (.winograd4, .init(threads: 1, parallelism: .blas, microBatch: 2, chunkRows: 5)),
    ]

    @Test("every tap within 1e-4 of the tap's max magnitude", arguments: tapCases, [0, 1, 2, 3, 4])
    func everyTap(caseName: String, variant: Int) throws {
        let fixtures = try ReferenceFixtures.shared
        let entry = try fixtures.trunkCase(caseName)
        let (_, trunk) = try Self.trunk(for: entry, algorithm: Self.variants[variant].0)
        let n = Int(entry["batch"]!.intValue!), h = Int(entry["height"]!.intValue!), w = Int(entry["width"]!.intValue!)
        let taps = entry["taps"]!.arrayValue!
        let map = PoolOpsMap(
            entries: taps.map { PoolOpsMap.Entry(tap: Tap(rawValue: $0["tap"]!.stringValue!)!, op: .identity) })
        let extractor = try ResNetExtractor(
            trunk: trunk, map: map, inputHeight: h, inputWidth: w, options: Self.variants[variant].1)
        let features = try extractor.forward(fixtureInput(caseName, count: n * 3 * h * w), count: n)
        var worst = 0.0
        for (k, tap) in taps.enumerated() {
            let reference = try fixtures.slice(tap)
            let shape = tap["shape"]!.arrayValue!.map { Int($0.intValue!) }
            #expect(
                extractor.outputs[k].dimension * n == shape.reduce(1, *),
                "\(caseName) \(tap["tap"]!.stringValue!) shape")
            let err = relativeError(features[k], reference)
            worst = max(worst, err)
            #expect(err < 1e-4, "\(caseName) tap \(tap["tap"]!.stringValue!): relative error \(err)")
        }
        print("fidelity \(caseName) variant \(variant): worst tap relative error \(worst)")
    }

    /// An `auto` trunk holds every weight set of its 3×3 stride-1 layers; whatever the tuning
    /// picks per shape (here: the three algorithms in turn, and each one everywhere) gives the
    /// reference features, and im2col through the plan is bit-identical to the forced im2col trunk.
    @Test("auto trunk: any per-shape plan within 1e-4; im2col plan = forced im2col", arguments: ["rn50", "rn18"])
    func autoPlans(caseName: String) throws {
        let fixtures = try ReferenceFixtures.shared
        let entry = try fixtures.trunkCase(caseName)
        let (_, trunk) = try Self.trunk(for: entry, algorithm: .auto)
        let (_, forced) = try Self.trunk(for: entry, algorithm: .im2col)
        let n = Int(entry["batch"]!.intValue!), h = Int(entry["height"]!.intValue!), w = Int(entry["width"]!.intValue!)
        let taps = entry["taps"]!.arrayValue!
        let map = PoolOpsMap(
            entries: taps.map { PoolOpsMap.Entry(tap: Tap(rawValue: $0["tap"]!.stringValue!)!, op: .identity) })
        let outputs = try map.outputs(spec: trunk.spec, inputHeight: h, inputWidth: w)
        let shapes = ConvTuner.distinctShapes(
            ResNetExtractor.convSites(trunk: trunk, height: h, width: w, deepest: .flatten)
        ).filter { $0.site.layer.algorithms.count > 1 }.map(\.key)
        #expect(shapes.count >= 3, "\(caseName): \(shapes.count) shapes with a choice")
        let cycle: [ConvAlgorithm] = [.winograd, .winograd4, .im2col]
        let plans: [[ConvShapeKey: ConvAlgorithm]] = [
            Dictionary(uniqueKeysWithValues: shapes.enumerated().map { ($1, cycle[$0 % 3]) }),
            Dictionary(uniqueKeysWithValues: shapes.map { ($0, .winograd) }),
            Dictionary(uniqueKeysWithValues: shapes.map { ($0, .winograd4) }),
            Dictionary(uniqueKeysWithValues: shapes.map { ($0, .im2col) }),
        ]
        let input = fixtureInput(caseName, count: n * 3 * h * w)
        let options = ResNetExtractor.Options(threads: 2, parallelism: .batch, microBatch: 3, chunkRows: 64)
        var results: [[[Float]]] = []
        for plan in plans {
            let tuning = ConvTuning(parallelism: .batch, plan: ConvPlan(choices: plan), source: .forced, seconds: 0)
            let extractor = try ResNetExtractor(
                trunk: trunk, outputs: outputs, inputHeight: h, inputWidth: w, options: options, tuning: tuning)
            let features = try extractor.forward(input, count: n)
            for (k, tap) in taps.enumerated() {
                let err = relativeError(features[k], try fixtures.slice(tap))
                #expect(err < 1e-4, "\(caseName) tap \(tap["tap"]!.stringValue!): relative error \(err)")
            }
            results.append(features)
        }
        let plain = try ResNetExtractor(
            trunk: forced, outputs: outputs, inputHeight: h, inputWidth: w, options: options)
        #expect(try plain.forward(input, count: n) == results[3])
        #expect(results[0] != results[3], "the mixed plan ran Winograd somewhere")
        #expect(results[1] != results[2], "F(2×2, 3×3) and F(4×4, 3×3) both ran")
    }

    @Test(
        "VISSL pooled features at 224×224 (canonical RN50 map, RN50-w2 map)",
        arguments: ["rn50_vissl224", "rn50w2_vissl224"])
    func pooledFeatures(caseName: String) throws {
        let fixtures = try ReferenceFixtures.shared
        let entry = try fixtures.trunkCase(caseName)
        let (spec, trunk) = try Self.trunk(for: entry)
        let map = try PoolOpsMap(
            config: ConfigNode(
                path: "MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP",
                value: entry["pool_map"]!))
        let extractor = try ResNetExtractor(
            trunk: trunk, map: map, inputHeight: 224, inputWidth: 224,
            options: .init(threads: 2))
        let pooled = entry["pooled"]!.arrayValue!
        #expect(extractor.outputs.map(\.name) == pooled.map { $0["tap"]!.stringValue! })
        #expect(extractor.outputs.map(\.dimension) == pooled.map { Int($0["shape"]!.arrayValue![1].intValue!) })
        let features = try extractor.forward(fixtureInput(caseName, count: 3 * 224 * 224), count: 1)
        for (k, out) in pooled.enumerated() {
            let err = relativeError(features[k], try fixtures.slice(out))
            #expect(err < 1e-4, "\(caseName) \(out["tap"]!.stringValue!): relative error \(err)")
        }
        if caseName == "rn50_vissl224" {
            // The canonical map's shapes (protocol §1.2) and the forward pass stopping at res5avg.
            #expect(
                extractor.outputs.map(\.shapeCHW) == [
                    [64, 12, 12], [256, 6, 6], [512, 4, 4], [1024, 3, 3], [2048, 2, 2],
                    [2048, 1, 1], [2048, 1, 1],
                ])
            #expect(spec.featureChannels == 2048)
        }
    }

    @Test("a map that stops early computes only up to its deepest tap, with the same values")
    func stopsAtDeepestTap() throws {
        let fixtures = try ReferenceFixtures.shared
        let entry = try fixtures.trunkCase("rn50")
        let (_, trunk) = try Self.trunk(for: entry)
        let map = PoolOpsMap(entries: [.init(tap: .res2, op: .identity), .init(tap: .conv1, op: .identity)])
        let extractor = try ResNetExtractor(trunk: trunk, map: map, inputHeight: 57, inputWidth: 45)
        #expect(extractor.deepestTap == .res2)
        let full = try ResNetExtractor(
            trunk: trunk, map: PoolOpsMap(entries: [.init(tap: .res5, op: .identity)]),
            inputHeight: 57, inputWidth: 45)
        #expect(extractor.workspaceBytes < full.workspaceBytes)
        let features = try extractor.forward(fixtureInput("rn50", count: 2 * 3 * 57 * 45), count: 2)
        let taps = entry["taps"]!.arrayValue!
        let res2 = taps.first { $0["tap"]?.stringValue == "res2" }!,
            conv1 = taps.first { $0["tap"]?.stringValue == "conv1" }!
        #expect(try relativeError(features[0], fixtures.slice(res2)) < 1e-4)
        #expect(try relativeError(features[1], fixtures.slice(conv1)) < 1e-4)
    }

    @Test("large inputs get smaller micro-batches: a worker's workspace stays within its limit")
    func workspaceLimit() throws {
        let trunk = try ResNetTrunk(weights: .random(architecture: ResNetSpec(depth: 18)))
        let big = try ResNetExtractor(
            trunk: trunk, map: PoolOpsMap(entries: []), inputHeight: 512, inputWidth: 512,
            options: .init(threads: 2, microBatch: 8, workspaceLimitBytes: 96 << 20))
        #expect(big.microBatch < 8)
        #expect(big.workspaceBytes <= 2 * (96 << 20), "\(big.workspaceBytes) bytes for 2 workers")
        let small = try ResNetExtractor(
            trunk: trunk, map: PoolOpsMap(entries: []), inputHeight: 64, inputWidth: 64,
            options: .init(threads: 2, microBatch: 8, workspaceLimitBytes: 96 << 20))
        #expect(small.microBatch == 8)
    }

    @Test("an image size other than the configured one is an error, not a wrong number")
    func wrongImageSize() throws {
        let spec = try ResNetSpec(depth: 18)
        let trunk = try ResNetTrunk(weights: .random(architecture: spec))
        let extractor = try ResNetExtractor(
            trunk: trunk, map: PoolOpsMap(entries: []), inputHeight: 64, inputWidth: 64)
        let input = [Float](repeating: 0, count: 3 * 32 * 32)
        #expect(throws: LinprobeError.self) {
            try input.withUnsafeBufferPointer { p in
                try extractor.forward(
                    input: p.baseAddress!, count: 1, height: 32, width: 32,
                    destinations: [UnsafeMutablePointer<Float>.allocate(capacity: 512)])
            }
        }
    }
}
