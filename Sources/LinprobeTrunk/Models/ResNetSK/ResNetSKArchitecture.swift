import Foundation
import LinprobeCore

/// `ResNetSKSpec` as a trunk architecture (VISSL's `resnet_sk`).
extension ResNetSKSpec: TrunkArchitecture {
    public var trunkName: String { "resnet_sk" }
    /// VISSL's forward returns only the global average of the last stage, whatever is asked.
    public var tapNames: [String] { ["flatten"] }
    public var defaultTap: String { "flatten" }

    public func tapShape(_ tap: String, inputHeight: Int, inputWidth: Int) throws -> TapShape {
        guard stemSize(inputHeight) >= 1, stemSize(inputWidth) >= 1 else {
            throw LinprobeError.config("input size \(inputHeight)×\(inputWidth) is too small for the \(self) trunk")
        }
        guard tap == "flatten" else {
            throw LinprobeError(
                .unsupported,
                "the resnet_sk trunk has no tap \(tap): VISSL's forward returns only the pooled last stage (flatten; use an empty pool-op map)"
            )
        }
        return TapShape(chw: [featureChannels, 1, 1], poolable: false)
    }

    public func looksLikeTrunkParameter(_ name: String) -> Bool { name.hasPrefix("net.") }

    public var checkpointHint: String {
        "check MODEL.TRUNK.RESNETS_SK (DEPTH, WIDTH_MULTIPLIER, SK_RATIO) and MODEL.WEIGHTS_INIT"
    }

    public func visslModuleName(_ parameter: String) -> String { "trunk.base_model." + parameter }

    public func build(weights: TrunkWeights, options: TrunkRunOptions) throws -> any TrunkNetwork {
        try ResNetSKNetwork(weights: weights)
    }
}
