import Foundation
import LinprobeCheckpoint
import LinprobeCore

/// Everything the `extract` stage reads from VISSL's `MODEL` mapping to build the trunk, in one
/// value: the architecture, the pool-op map and the weights settings. Parsing it validates the
/// keys (errors name the key path, exit 64); `outputs(...)` validates the pooled shapes for an
/// input size.
///
/// Typical use:
/// ```swift
/// let cfg = try TrunkConfiguration(model: config["MODEL"])
/// let outputs = try cfg.outputs(inputHeight: 224, inputWidth: 224)        // shape_chw per layer
/// let weights = try TrunkWeights.load(cfg.weights, spec: cfg.spec, randomSeed: seed)
/// let extractor = try FeatureExtractor(trunk: ResNetTrunk(weights: weights), map: cfg.map,
///                                      inputHeight: 224, inputWidth: 224,
///                                      options: .init(threads: threads))
/// try extractor.forward(input: batch, count: n, height: 224, width: 224, destinations: rows)
/// ```
public struct TrunkConfiguration: Sendable, Hashable {
    public let spec: ResNetSpec
    public let map: PoolOpsMap
    public let weights: WeightsInit

    public init(spec: ResNetSpec, map: PoolOpsMap, weights: WeightsInit) {
        self.spec = spec
        self.map = map
        self.weights = weights
    }

    /// Reads `TRUNK`, `INPUT_TYPE`, `FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP` and
    /// `WEIGHTS_INIT` from the `MODEL` node.
    public init(model: ConfigNode) throws {
        spec = try ResNetSpec(model: model)
        map = try PoolOpsMap(config: model["FEATURE_EVAL_SETTINGS"]["LINEAR_EVAL_FEAT_POOL_OPS_MAP"])
        weights = try WeightsInit(config: model["WEIGHTS_INIT"])
    }

    /// The features the configuration produces at this input size (configuration errors if a
    /// pool op does not fit its tap).
    public func outputs(inputHeight: Int, inputWidth: Int) throws -> [FeatureOutput] {
        try map.outputs(spec: spec, inputHeight: inputHeight, inputWidth: inputWidth)
    }

    /// What determines the features, for provenance and fingerprints: the trunk spec, the pool-op
    /// map with every argument explicit, and the weights settings (the weights file's SHA-256 is
    /// in `TrunkWeights.provenance`).
    public var provenance: JSONValue {
        ["trunk": spec.provenance, "pool_ops": map.provenance, "weights_init": weights.provenance]
    }
}
