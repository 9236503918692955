import Foundation
import LinprobeCore

/// `AlexNetSpec` as a trunk architecture (VISSL's `alexnet_*`).
extension AlexNetSpec: TrunkArchitecture {
    /// `TrunkFamilies`' parser for every `alexnet_*` name.
    static let parse: TrunkFamilies.Parser = { try AlexNetSpec(model: $0) }

    public var trunkName: String { variant.rawValue }
    public var tapNames: [String] { Self.tapNames }
    /// VISSL's forward without keys returns the last block (`flatten`).
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

    /// `{0,2,4,5,6}.{0,1}.*` (the conv and BatchNorm of each block). DeepCluster's `sobel.*`
    /// constants are not counted: a checkpoint holding them has them ignored (with a note).
    public func looksLikeTrunkParameter(_ name: String) -> Bool {
        name.firstMatch(of: #/^[0-8]\.\d+\./#) != nil
    }

    public var checkpointHint: String {
        "check MODEL.TRUNK.NAME (the AlexNet variants differ in channels, groups and BatchNorm) and MODEL.WEIGHTS_INIT (VISSL's AlexNet files: STATE_DICT_KEY_NAME model_state_dict, APPEND_PREFIX trunk.)"
    }

    public func visslModuleName(_ parameter: String) -> String { "trunk.base_model._feature_blocks." + parameter }

    public func multiplyAccumulates(inputHeight: Int, inputWidth: Int, taps: [String]) -> Int? {
        guard let shapes = tapShapes(inputHeight: inputHeight, inputWidth: inputWidth) else { return nil }
        let deepest = taps.compactMap { Self.tapNames.firstIndex(of: $0) }.max() ?? Self.tapNames.count - 1
        var total = input == .sobel ? inputHeight * inputWidth * 2 * 3 * 9 : 0
        for (i, c) in convs.enumerated() where Self.tapNames.firstIndex(of: "conv\(i + 1)") ?? 0 <= deepest {
            guard let s = shapes["conv\(i + 1)"] else { return nil }
            total += s[1] * s[2] * c.cout * (c.cin / c.groups) * c.kernel * c.kernel
        }
        return total
    }

    public func build(weights: TrunkWeights, options: TrunkRunOptions) throws -> any TrunkNetwork {
        try AlexNetNetwork(weights: weights)
    }
}
