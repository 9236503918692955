import Foundation
import LinprobeCheckpoint
import LinprobeCore

/// The trunk families, by VISSL's `MODEL.TRUNK.NAME`. A new family adds one line here and a
/// folder of its own under `Models/`.
public enum TrunkFamilies {
    public typealias Parser = @Sendable (_ model: ConfigNode) throws -> any TrunkArchitecture

    static let parsers: [(name: String, parse: Parser)] = [
        ("resnet", { try ResNetSpec(model: $0) }),
        ("vision_transformer", { try ViTSpec(model: $0) }),
        ("beit", { try ViTSpec(beitModel: $0) }),
        ("regnet", { try RegNetSpec(model: $0, trunkName: "regnet") }),
        ("regnet_fsdp", { try RegNetSpec(model: $0, trunkName: "regnet_fsdp") }),
        ("regnet_v2", { try RegNetSpec(model: $0, trunkName: "regnet_v2") }),
        ("alexnet_bvlc", AlexNetSpec.parse), ("alexnet_colorization", AlexNetSpec.parse),
        ("alexnet_deepcluster", AlexNetSpec.parse), ("alexnet_jigsaw", AlexNetSpec.parse),
        ("alexnet_rotnet", AlexNetSpec.parse),
        ("resnet_sk", { try ResNetSKSpec(model: $0) }),
    ]

    /// The trunk names Linprobe implements.
    public static var names: [String] { parsers.map(\.name) }

    /// Reads the architecture `MODEL.TRUNK.NAME` names (default `resnet`).
    public static func architecture(model: ConfigNode) throws -> any TrunkArchitecture {
        let node = model["TRUNK"]["NAME"]
        let name = try node.stringIfPresent() ?? "resnet"
        guard let family = parsers.first(where: { $0.name == name }) else {
            throw LinprobeError.config(
                "\(node.path): trunk '\(name)' is not supported (supported: \(names.joined(separator: ", ")))")
        }
        return try family.parse(model)
    }
}

/// Everything the `extract` stage reads from VISSL's `MODEL` mapping to build the trunk, in one
/// value: the architecture, the pool-op map and the weights settings. Parsing it validates the
/// keys and the map's tap names (errors name the key path, exit 64); `outputs(...)` validates
/// the pooled shapes for an input size.
///
/// Typical use:
/// ```swift
/// let cfg = try TrunkConfiguration(model: config["MODEL"])
/// let outputs = try cfg.outputs(inputHeight: 224, inputWidth: 224)        // shape_chw per layer
/// let weights = try TrunkWeights.load(cfg.weights, architecture: cfg.architecture, randomSeed: seed)
/// let network = try cfg.architecture.build(weights: weights, options: TrunkRunOptions(threads: 2))
/// let extractor = try network.extractor(outputs: outputs, inputHeight: 224, inputWidth: 224,
///                                       options: TrunkRunOptions(threads: 2))
/// try extractor.forward(input: batch, count: n, destinations: rows)
/// ```
public struct TrunkConfiguration: Sendable {
    public let architecture: any TrunkArchitecture
    public let map: PoolOpsMap
    public let weights: WeightsInit

    public init(architecture: any TrunkArchitecture, map: PoolOpsMap, weights: WeightsInit) {
        self.architecture = architecture
        self.map = map
        self.weights = weights
    }

    /// Reads `TRUNK`, `INPUT_TYPE`, `FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP` and
    /// `WEIGHTS_INIT` from the `MODEL` node.
    public init(model: ConfigNode) throws {
        architecture = try TrunkFamilies.architecture(model: model)
        map = try PoolOpsMap(config: model["FEATURE_EVAL_SETTINGS"]["LINEAR_EVAL_FEAT_POOL_OPS_MAP"])
        try map.validate(for: architecture)
        weights = try WeightsInit(config: model["WEIGHTS_INIT"])
    }

    /// The features the configuration produces at this input size (configuration errors if a
    /// pool op does not fit its tap).
    public func outputs(inputHeight: Int, inputWidth: Int) throws -> [FeatureOutput] {
        try map.outputs(architecture: architecture, inputHeight: inputHeight, inputWidth: inputWidth)
    }

    /// What determines the features, for provenance and fingerprints: the trunk, the pool-op
    /// map with every argument explicit, and the weights settings (the weights file's SHA-256 is
    /// in `TrunkWeights.provenance`).
    public var provenance: JSONValue {
        ["trunk": architecture.provenance, "pool_ops": map.provenance, "weights_init": weights.provenance]
    }
}
