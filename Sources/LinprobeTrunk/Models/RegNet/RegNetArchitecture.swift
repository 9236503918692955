import Foundation
import LinprobeCore

/// `RegNetSpec` as a trunk architecture (VISSL's `regnet`, `regnet_fsdp`, `regnet_v2`).
extension RegNetSpec: TrunkArchitecture {
    public var tapNames: [String] { ["conv1"] + stageTaps + ["avgpool", "flatten"] }
    public var defaultTap: String { "flatten" }

    public func tapShape(_ tap: String, inputHeight: Int, inputWidth: Int) throws -> TapShape {
        guard let shapes = tapShapes(inputHeight: inputHeight, inputWidth: inputWidth) else {
            throw LinprobeError.config("input size \(inputHeight)×\(inputWidth) is too small for the \(self) trunk")
        }
        guard let shape = shapes[tap] else {
            throw LinprobeError(.unsupported, "the \(self) trunk has no tap \(tap)")
        }
        return TapShape(chw: shape, poolable: tap != "flatten")
    }

    public func looksLikeTrunkParameter(_ name: String) -> Bool {
        name.firstMatch(of: #/^(conv1|res\d+)\./#) != nil
    }

    public var checkpointHint: String {
        trunkName == "regnet"
            ? "check MODEL.TRUNK.REGNET (name or depth, w_0, w_a, w_m, group_width; a regnet_fsdp checkpoint has -part keys: set MODEL.TRUNK.NAME regnet_fsdp) and MODEL.WEIGHTS_INIT"
            : "check MODEL.TRUNK.REGNET (parameters or anynet lists, stage_checkpoints decides the -part groups) and MODEL.WEIGHTS_INIT"
    }

    public func visslModuleName(_ parameter: String) -> String { "trunk.base_model._feature_blocks." + parameter }

    public func multiplyAccumulates(inputHeight: Int, inputWidth: Int, taps: [String]) -> Int? {
        let last = taps.map { t in stageTaps.firstIndex(of: t) ?? (t == "conv1" ? -1 : stages.count - 1) }.max()
        return multiplyAccumulates(
            inputHeight: inputHeight, inputWidth: inputWidth, lastStage: last ?? stages.count - 1)
    }

    public func build(weights: TrunkWeights, options: TrunkRunOptions) throws -> any TrunkNetwork {
        try RegNetNetwork(weights: weights, algorithm: options.algorithm)
    }
}

extension RegNetNetwork: TrunkNetwork {
    public var architecture: any TrunkArchitecture { spec }

    public func extractor(
        outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int, options: TrunkRunOptions
    ) throws -> any TrunkExtractor {
        try RegNetExtractor(
            network: self, outputs: outputs, inputHeight: inputHeight, inputWidth: inputWidth, options: options)
    }
}
