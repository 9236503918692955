import Foundation

/// The names under which a store holds the taps of a pool-op map, and the taps a pipeline's
/// training stages use. Head *i* (and the SVMs of layer *i*) read the layer named by entry *i* of
/// `MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP`, whatever the store's own order.
public enum FeatureLayers {
    /// The config path of the pool-op map.
    public static let poolMapKey = "MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP"

    /// Stored layer names of taps listed in map order: the tap's name, and `<tap>_<k>` for its
    /// k-th repeat (VISSL's ImageNet ViT overlays list `lastCLS` twice).
    public static func names(forTaps taps: [String]) -> [String] {
        var seen: [String: Int] = [:]
        return taps.map { tap in
            let k = seen[tap, default: 0]
            seen[tap] = k + 1
            return k == 0 ? tap : "\(tap)_\(k)"
        }
    }

    /// The stored layer names of the pipeline's pool-op map, in map order; empty when the map is
    /// absent or empty (the stages then use every layer of the store, in the store's order).
    public static func names(config: PipelineConfig) throws -> [String] {
        let node = config.node(poolMapKey)
        guard node.exists else { return [] }
        let taps = try node.list().map { entry -> String in
            let parts = try entry.list()
            guard let first = parts.first else {
                throw LinprobeError.config("\(entry.path): expected [tap, [OpName, [args]]], got an empty entry")
            }
            return try first.string()
        }
        return names(forTaps: taps)
    }
}
