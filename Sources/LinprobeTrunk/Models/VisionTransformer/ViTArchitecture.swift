import Foundation
import LinprobeCore

/// `ViTSpec` as a trunk architecture (VISSL's `vision_transformer`).
extension ViTSpec: TrunkArchitecture {
    public var trunkName: String { beit == nil ? "vision_transformer" : "beit" }
    public var tapNames: [String] { beit == nil ? ViTTap.names : ["lastCLS", "concatCLS{n}", "blkCLS{i}"] }
    public func acceptsTap(_ name: String) -> Bool {
        guard let tap = ViTTap(name: name) else { return false }
        return beit == nil || tap.isClassTokenRow
    }
    /// VISSL's `forward` without keys: `norm(x)[:, 0]`, or the token mean without class token.
    public var defaultTap: String { useClassToken ? "lastCLS" : "lastPOOL" }

    public var provenance: JSONValue {
        if let b = beit {
            var o: [String: JSONValue] = [
                "name": "beit", "IMAGE_SIZE": .int(Int64(imageSize)), "PATCH_SIZE": .int(Int64(patchSize)),
                "HIDDEN_DIM": .int(Int64(hiddenDim)), "NUM_LAYERS": .int(Int64(numLayers)),
                "NUM_HEADS": .int(Int64(numHeads)), "MLP_RATIO": .double(b.mlpRatio), "QKV_BIAS": .bool(qkvBias),
                "USE_ABS_POS_EMB": .bool(b.useAbsolutePosition), "USE_REL_POS_BIAS": .bool(b.useRelativePositionBias),
                "USE_SHARED_REL_POS_BIAS": .bool(b.useSharedRelativePositionBias),
                "USE_MEAN_POOLING": .bool(b.useMeanPooling),
                "INIT_VALUES": b.initValues.map { .double($0) } ?? .bool(false),
            ]
            if let qkScale { o["QK_SCALE"] = .double(qkScale) }
            return .object(o)
        }
        var o: [String: JSONValue] = [
            "name": "vision_transformer",
            "IMAGE_SIZE": .int(Int64(imageSize)), "PATCH_SIZE": .int(Int64(patchSize)),
            "HIDDEN_DIM": .int(Int64(hiddenDim)), "NUM_LAYERS": .int(Int64(numLayers)),
            "NUM_HEADS": .int(Int64(numHeads)), "MLP_DIM": .int(Int64(mlpDim)), "QKV_BIAS": .bool(qkvBias),
            "USE_CLASS_TOKEN": .bool(useClassToken),
        ]
        if let qkScale { o["QK_SCALE"] = .double(qkScale) }
        return .object(o)
    }

    /// The tap and the blocks it reads, or a configuration error naming it.
    func resolve(_ name: String) throws -> (tap: ViTTap, blocks: [Int]) {
        guard let tap = ViTTap(name: name) else {
            throw LinprobeError.config(
                "'\(name)' is not a tap of the vision_transformer trunk (taps: \(ViTTap.names.joined(separator: ", ")))"
            )
        }
        if let needs = tap.classToken, needs != useClassToken {
            throw LinprobeError.config(
                needs
                    ? "tap \(name) reads the class token, but the model has none (\(configPath).USE_CLASS_TOKEN false)"
                    : "tap \(name) averages all tokens, which VISSL allows only without a class token (\(configPath).USE_CLASS_TOKEN true; VISSL asserts 'FIXIT')"
            )
        }
        switch tap.blocks(layers: numLayers) {
        case .success(let blocks): return (tap, blocks)
        case .failure(let e):
            throw LinprobeError.config("tap \(name): \(e.message) (\(configPath).NUM_LAYERS \(numLayers))")
        }
    }

    public func tapShape(_ tap: String, inputHeight: Int, inputWidth: Int) throws -> TapShape {
        let (t, blocks) = try resolve(tap)
        let g = try geometry(inputHeight: inputHeight, inputWidth: inputWidth)
        let d = hiddenDim
        switch t {
        case .lastMAP:
            guard g.tokens - 1 == grid * grid else {
                throw LinprobeError.config(
                    "tap lastMAP: VISSL reshapes the patch tokens to the configured \(grid)×\(grid) grid (IMAGE_SIZE \(imageSize)), but input \(inputHeight)×\(inputWidth) gives \(g.gridH)×\(g.gridW)"
                )
            }
            return TapShape(chw: [grid, grid, d], poolable: false)
        case .lastBLK, .concatBLK:
            return TapShape(chw: [g.tokens, blocks.count * d, 1], poolable: false)
        default:
            return TapShape(chw: [blocks.count * d, 1, 1], poolable: false)
        }
    }

    /// Trunk names of timm/VISSL; BEiT's `relative_position_index` buffers are recomputed, so a
    /// checkpoint's copies are ignored.
    public func looksLikeTrunkParameter(_ name: String) -> Bool {
        !name.hasSuffix("relative_position_index")
            && name.firstMatch(of: #/^(cls_token|pos_embed|patch_embed\.|blocks\.\d+\.|norm\.|rel_pos_bias\.)/#) != nil
    }

    public var checkpointHint: String {
        "check \(configPath) (PATCH_SIZE, HIDDEN_DIM, NUM_LAYERS, MLP_DIM, QKV_BIAS, USE_CLASS_TOKEN, IMAGE_SIZE) and MODEL.WEIGHTS_INIT"
    }

    public func visslModuleName(_ parameter: String) -> String { "trunk.base_model." + parameter }

    public func multiplyAccumulates(inputHeight: Int, inputWidth: Int, taps: [String]) -> Int? {
        guard let g = try? geometry(inputHeight: inputHeight, inputWidth: inputWidth) else { return nil }
        let t = g.tokens, d = hiddenDim
        let perBlock = t * d * 3 * d + 2 * t * t * d + t * d * d + 2 * t * d * mlpHidden
        return (g.gridH * g.gridW) * 3 * patchSize * patchSize * d + numLayers * perBlock
    }

    public func build(weights: TrunkWeights, options: TrunkRunOptions) throws -> any TrunkNetwork {
        try ViTNetwork(weights: weights)
    }
}
