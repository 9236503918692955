import Foundation
import LinprobeCore

/// `ResNetSpec` as a trunk architecture (VISSL's `resnet`).
extension ResNetSpec: TrunkArchitecture {
    public var trunkName: String { "resnet" }
    public var tapNames: [String] { Tap.allCases.map(\.rawValue) }
    public var defaultTap: String { Tap.flatten.rawValue }

    public func tapShape(_ tap: String, inputHeight: Int, inputWidth: Int) throws -> TapShape {
        guard let shapes = tapShapes(inputHeight: inputHeight, inputWidth: inputWidth) else {
            throw LinprobeError.config("input size \(inputHeight)×\(inputWidth) is too small for the \(self) trunk")
        }
        guard let t = Tap(rawValue: tap), let shape = shapes[t] else {
            throw LinprobeError(.unsupported, "the \(self) trunk has no tap \(tap)")
        }
        return TapShape(chw: shape, poolable: t != .flatten)
    }

    public func looksLikeTrunkParameter(_ name: String) -> Bool {
        name.firstMatch(of: #/^(conv1|bn1|layer\d+)\./#) != nil
    }

    public var checkpointHint: String {
        "check MODEL.TRUNK.RESNETS (DEPTH, WIDTH_MULTIPLIER, GROUPS, WIDTH_PER_GROUP) and MODEL.WEIGHTS_INIT"
    }

    public func visslModuleName(_ parameter: String) -> String { "trunk.base_model._feature_blocks." + parameter }

    public func multiplyAccumulates(inputHeight: Int, inputWidth: Int, taps: [String]) -> Int? {
        let deepest = taps.compactMap(Tap.init(rawValue:)).max() ?? .flatten
        return multiplyAccumulates(inputHeight: inputHeight, inputWidth: inputWidth, through: deepest)
    }

    public func build(weights: TrunkWeights, options: TrunkRunOptions) throws -> any TrunkNetwork {
        try ResNetTrunk(weights: weights, algorithm: options.algorithm)
    }
}

extension ResNetTrunk: TrunkNetwork {
    public var architecture: any TrunkArchitecture { spec }

    public func extractor(
        outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int, options: TrunkRunOptions
    ) throws -> any TrunkExtractor {
        let o = ResNetExtractor.Options(
            threads: options.threads, parallelism: options.parallelism, tuneParallelism: options.tuneParallelism)
        return try ResNetExtractor(
            trunk: self, outputs: outputs, inputHeight: inputHeight, inputWidth: inputWidth, options: o)
    }
}

extension PoolOpsMap.Entry {
    /// An entry on a ResNet tap.
    public init(tap: Tap, op: PoolOp, path: String = "") {
        self.init(tap: tap.rawValue, op: op, path: path)
    }
}

extension PoolOpsMap {
    /// VISSL's canonical ResNet-50 map (ImageNet-1k linear benchmark, §1.8 of the protocol).
    public static let visslResNet50: PoolOpsMap = {
        func avg(_ k: Int, _ s: Int, _ p: Int) -> PoolOp {
            .avgPool(
                kernel: Pair(k), stride: Pair(s), padding: Pair(p), ceilMode: false, countIncludePad: true,
                divisorOverride: nil)
        }
        return PoolOpsMap(entries: [
            Entry(tap: .conv1, op: avg(10, 10, 4)), Entry(tap: .res2, op: avg(16, 8, 0)),
            Entry(tap: .res3, op: avg(13, 5, 0)), Entry(tap: .res4, op: avg(8, 3, 0)),
            Entry(tap: .res5, op: avg(6, 1, 0)), Entry(tap: .res5avg, op: .identity),
        ])
    }()

    /// The outputs for a ResNet spec (convenience over `outputs(architecture:…)`).
    public func outputs(spec: ResNetSpec, inputHeight: Int, inputWidth: Int) throws -> [FeatureOutput] {
        try outputs(architecture: spec, inputHeight: inputHeight, inputWidth: inputWidth)
    }
}
