import Foundation
import LinprobeCore

/// What VISSL's `beit` trunk (`MODEL.TRUNK.BEIT`, `vissl/models/trunks/beit_transformer.py`) adds to
/// the ViT: q/v biases (k has none), a relative position bias per block (or one shared table),
/// layer scale (`gamma_1`, `gamma_2`), an optional absolute position embedding, and no final
/// LayerNorm with mean pooling. The input must be `IMAGE_SIZE` (no interpolation).
public struct BEiTOptions: Sendable, Hashable {
    public let mlpRatio: Double
    /// `INIT_VALUES` when it is a positive number (layer scale present).
    public let initValues: Double?
    public let useAbsolutePosition: Bool
    public let useRelativePositionBias: Bool
    public let useSharedRelativePositionBias: Bool
    public let useMeanPooling: Bool

    public init(
        mlpRatio: Double = 4, initValues: Double? = 0.1, useAbsolutePosition: Bool = true,
        useRelativePositionBias: Bool = true, useSharedRelativePositionBias: Bool = false,
        useMeanPooling: Bool = false
    ) {
        self.mlpRatio = mlpRatio
        self.initValues = initValues
        self.useAbsolutePosition = useAbsolutePosition
        self.useRelativePositionBias = useRelativePositionBias
        self.useSharedRelativePositionBias = useSharedRelativePositionBias
        self.useMeanPooling = useMeanPooling
    }

    static let knownKeys: Set<String> = [
        "IMAGE_SIZE", "PATCH_SIZE", "NUM_LAYERS", "NUM_HEADS", "HIDDEN_DIM", "MLP_RATIO", "DROPOUT_RATE",
        "ATTENTION_DROPOUT_RATE", "DROP_PATH_RATE", "QKV_BIAS", "QK_SCALE", "USE_ABS_POS_EMB", "USE_REL_POS_BIAS",
        "USE_SHARED_REL_POS_BIAS", "USE_MEAN_POOLING", "INIT_VALUES",
    ]

    /// Rows of a relative position bias table for a `grid × grid` patch window (+3 class slots).
    static func tableRows(grid: Int) -> Int { (2 * grid - 1) * (2 * grid - 1) + 3 }

    /// VISSL's `relative_position_index` for a square window: `[T, T]` indices into the table,
    /// recomputed (never loaded).
    static func relativePositionIndex(grid g: Int) -> [Int] {
        let n = g * g, t = n + 1, rows = tableRows(grid: g)
        var index = [Int](repeating: 0, count: t * t)
        for i in 0..<n {
            for j in 0..<n {
                let dy = i / g - j / g + g - 1, dx = i % g - j % g + g - 1
                index[(i + 1) * t + j + 1] = dy * (2 * g - 1) + dx
            }
        }
        for j in 0..<t { index[j] = rows - 3 }
        for i in 0..<t { index[i * t] = rows - 2 }
        index[0] = rows - 1
        return index
    }
}

extension ViTSpec {
    /// Reads `MODEL.TRUNK.BEIT` (absent keys take VISSL's defaults from defaults.yaml).
    public init(beitModel model: ConfigNode) throws {
        let trunk = model["TRUNK"]
        let params = trunk["TRUNK_PARAMS"]["BEIT"]
        let node = params.exists ? params : trunk["BEIT"]
        let input = try model["INPUT_TYPE"].stringIfPresent() ?? "rgb"
        guard input == "rgb" || input == "bgr" else {
            throw LinprobeError.config(
                "\(model["INPUT_TYPE"].path): '\(input)' is not supported by the beit trunk (rgb, bgr)")
        }
        if node.exists {
            for key in try node.keys() where !BEiTOptions.knownKeys.contains(key) {
                throw LinprobeError.config(
                    "\(node.path).\(key): unknown key (known: \(BEiTOptions.knownKeys.sorted().joined(separator: ", ")))"
                )
            }
        }
        let dim = try node["HIDDEN_DIM"].intIfPresent() ?? 768
        let ratio = try node["MLP_RATIO"].doubleIfPresent() ?? 4
        var initValues: Double?
        if node["INIT_VALUES"].exists, case .bool = node["INIT_VALUES"].value {
            initValues = nil  // False > 0 is False: no layer scale
        } else if let v = try node["INIT_VALUES"].doubleIfPresent(), v > 0 {
            initValues = v
        }
        let options = BEiTOptions(
            mlpRatio: ratio, initValues: initValues,
            useAbsolutePosition: try node["USE_ABS_POS_EMB"].boolIfPresent() ?? true,
            useRelativePositionBias: try node["USE_REL_POS_BIAS"].boolIfPresent() ?? false,
            useSharedRelativePositionBias: try node["USE_SHARED_REL_POS_BIAS"].boolIfPresent() ?? false,
            useMeanPooling: try node["USE_MEAN_POOLING"].boolIfPresent() ?? true)
        try self.init(
            imageSize: try node["IMAGE_SIZE"].intIfPresent() ?? 224,
            patchSize: try node["PATCH_SIZE"].intIfPresent() ?? 16, hiddenDim: dim,
            numLayers: try node["NUM_LAYERS"].intIfPresent() ?? 12,
            numHeads: try node["NUM_HEADS"].intIfPresent() ?? 12,
            mlpDim: Int(Double(dim) * ratio), qkvBias: try node["QKV_BIAS"].boolIfPresent() ?? false,
            qkScale: try Self.qkScale(node["QK_SCALE"]), useClassToken: true, beit: options, keyPath: node.path)
    }

    /// BEiT's parameters, in its state-dict order.
    var beitParameters: [TrunkParameter] {
        guard let b = beit else { return [] }
        let d = hiddenDim, m = mlpHidden, p = patchSize, rows = BEiTOptions.tableRows(grid: grid)
        var out: [TrunkParameter] = []
        func add(_ name: String, _ shape: [Int], _ i: TrunkParameter.Initialisation) {
            out.append(TrunkParameter(name: name, shape: shape, initialisation: i))
        }
        add("cls_token", [1, 1, d], .embedding(std: 0.02))
        if b.useAbsolutePosition { add("pos_embed", [1, grid * grid + 1, d], .embedding(std: 0.02)) }
        add("patch_embed.proj.weight", [d, 3, p, p], .uniform(fanIn: 3 * p * p))
        add("patch_embed.proj.bias", [d], .zeros)
        if b.useSharedRelativePositionBias {
            add("rel_pos_bias.relative_position_bias_table", [rows, numHeads], .zeros)
        }
        for i in 0..<numLayers {
            let k = "blocks.\(i)."
            if b.initValues != nil {
                add(k + "gamma_1", [d], .ones)
                add(k + "gamma_2", [d], .ones)
            }
            add(k + "norm1.weight", [d], .ones)
            add(k + "norm1.bias", [d], .zeros)
            if qkvBias {
                add(k + "attn.q_bias", [d], .zeros)
                add(k + "attn.v_bias", [d], .zeros)
            }
            add(k + "attn.qkv.weight", [3 * d, d], .uniform(fanIn: d))
            if b.useRelativePositionBias { add(k + "attn.relative_position_bias_table", [rows, numHeads], .zeros) }
            add(k + "attn.proj.weight", [d, d], .uniform(fanIn: d))
            add(k + "attn.proj.bias", [d], .zeros)
            add(k + "norm2.weight", [d], .ones)
            add(k + "norm2.bias", [d], .zeros)
            add(k + "mlp.fc1.weight", [m, d], .uniform(fanIn: d))
            add(k + "mlp.fc1.bias", [m], .zeros)
            add(k + "mlp.fc2.weight", [d, m], .uniform(fanIn: m))
            add(k + "mlp.fc2.bias", [d], .zeros)
        }
        if !b.useMeanPooling {
            add("norm.weight", [d], .ones)
            add("norm.bias", [d], .zeros)
        }
        return out
    }
}
