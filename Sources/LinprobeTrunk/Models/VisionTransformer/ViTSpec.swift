import Foundation
import LinprobeCore

/// The architecture of VISSL's `vision_transformer` trunk (`MODEL.TRUNK.VISION_TRANSFORMERS`):
/// timm/DeiT's ViT — patch embedding (a P×P stride-P convolution), optional class token,
/// learned position embedding, pre-norm blocks (LayerNorm eps 1e-6, fused qkv, exact GELU MLP)
/// and a final LayerNorm that every tap applies to its block outputs.
public struct ViTSpec: Sendable, Hashable, CustomStringConvertible {
    public let imageSize: Int
    public let patchSize: Int
    public let hiddenDim: Int
    public let numLayers: Int
    public let numHeads: Int
    public let mlpDim: Int
    public let qkvBias: Bool
    /// `QK_SCALE` when it is a number (VISSL: `qk_scale or head_dim ** -0.5`).
    public let qkScale: Double?
    public let useClassToken: Bool
    /// Set for VISSL's `beit` trunk (`MODEL.TRUNK.BEIT`), nil for `vision_transformer`.
    public let beit: BEiTOptions?
    /// Where the keys were read (messages).
    let configPath: String

    public static let keyPath = "MODEL.TRUNK.VISION_TRANSFORMERS"

    public init(
        imageSize: Int = 224, patchSize: Int = 16, hiddenDim: Int = 768, numLayers: Int = 12, numHeads: Int = 12,
        mlpDim: Int = 3072, qkvBias: Bool = false, qkScale: Double? = nil, useClassToken: Bool = true,
        beit: BEiTOptions? = nil, keyPath: String = ViTSpec.keyPath
    ) throws {
        func check(_ ok: Bool, _ key: String, _ why: String) throws {
            if !ok { throw LinprobeError.config("\(keyPath).\(key): \(why)") }
        }
        try check((1...4096).contains(patchSize), "PATCH_SIZE", "\(patchSize) must be between 1 and 4096")
        try check(
            imageSize >= patchSize && imageSize <= 16384, "IMAGE_SIZE",
            "\(imageSize) must be between PATCH_SIZE (\(patchSize)) and 16384")
        try check((1...65536).contains(hiddenDim), "HIDDEN_DIM", "\(hiddenDim) must be between 1 and 65536")
        try check((1...1024).contains(numLayers), "NUM_LAYERS", "\(numLayers) must be between 1 and 1024")
        try check(
            numHeads >= 1 && hiddenDim % numHeads == 0, "NUM_HEADS",
            "\(numHeads) must divide HIDDEN_DIM (\(hiddenDim))")
        try check((1...(1 << 20)).contains(mlpDim), "MLP_DIM", "\(mlpDim) must be between 1 and 1048576")
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.hiddenDim = hiddenDim
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.mlpDim = mlpDim
        self.qkvBias = qkvBias
        self.qkScale = qkScale
        self.useClassToken = useClassToken
        self.beit = beit
        self.configPath = keyPath
    }

    static let knownKeys: Set<String> = [
        "name", "IMAGE_SIZE", "PATCH_SIZE", "HIDDEN_DIM", "NUM_LAYERS", "NUM_HEADS", "MLP_DIM", "DROPOUT_RATE",
        "ATTENTION_DROPOUT_RATE", "CLASSIFIER", "DROP_PATH_RATE", "QKV_BIAS", "QK_SCALE", "CHECKPOINT_MLP",
        "CHECKPOINT_BLOCK", "MASKED_IMAGE_MODELING", "USE_CLASS_TOKEN", "HYBRID",
    ]

    /// Reads `TRUNK.VISION_TRANSFORMERS` (or `TRUNK.TRUNK_PARAMS.VISION_TRANSFORMERS`) and
    /// `INPUT_TYPE` from VISSL's `MODEL` mapping; absent keys take VISSL's defaults.
    public init(model: ConfigNode) throws {
        let trunk = model["TRUNK"]
        let params = trunk["TRUNK_PARAMS"]["VISION_TRANSFORMERS"]
        let node = params.exists ? params : trunk["VISION_TRANSFORMERS"]
        let input = try model["INPUT_TYPE"].stringIfPresent() ?? "rgb"
        guard input == "rgb" || input == "bgr" else {
            throw LinprobeError.config(
                "\(model["INPUT_TYPE"].path): '\(input)' is not supported by the vision_transformer trunk (rgb, bgr)")
        }
        if node.exists {
            for key in try node.keys() where !Self.knownKeys.contains(key) {
                throw LinprobeError.config(
                    "\(node.path).\(key): unknown key (known: \(Self.knownKeys.sorted().joined(separator: ", ")))")
            }
        }
        if node["HYBRID"].exists {
            throw LinprobeError.config("\(node.path).HYBRID: hybrid (convolutional) patch embeddings are not supported")
        }
        try self.init(
            imageSize: try node["IMAGE_SIZE"].intIfPresent() ?? 224,
            patchSize: try node["PATCH_SIZE"].intIfPresent() ?? 16,
            hiddenDim: try node["HIDDEN_DIM"].intIfPresent() ?? 768,
            numLayers: try node["NUM_LAYERS"].intIfPresent() ?? 12,
            numHeads: try node["NUM_HEADS"].intIfPresent() ?? 12,
            mlpDim: try node["MLP_DIM"].intIfPresent() ?? 3072,
            qkvBias: try node["QKV_BIAS"].boolIfPresent() ?? false,
            qkScale: try Self.qkScale(node["QK_SCALE"]),
            useClassToken: try node["USE_CLASS_TOKEN"].boolIfPresent() ?? true,
            keyPath: node.path)
    }

    /// `QK_SCALE`: false, null or 0 mean the default `head_dim ** -0.5` (Python's `or`).
    static func qkScale(_ node: ConfigNode) throws -> Double? {
        guard node.exists else { return nil }
        if case .bool(let b)? = node.value {
            guard !b else { throw LinprobeError.config("\(node.path): true is not a scale (use a number or false)") }
            return nil
        }
        let v = try node.double()
        return v == 0 ? nil : v
    }

    public var description: String {
        (beit == nil ? "vision_transformer" : "beit")
            + " (P\(patchSize), D\(hiddenDim), \(numLayers) blocks, \(numHeads) heads, MLP \(mlpDim)"
            + (useClassToken ? "" : ", no class token") + ")"
    }

    /// Patches per side of the configured image (`IMAGE_SIZE // PATCH_SIZE`).
    public var grid: Int { imageSize / patchSize }
    /// `int(D · (MLP_DIM / D))`, as VISSL computes the MLP width.
    public var mlpHidden: Int { Int(Double(hiddenDim) * (Double(mlpDim) / Double(hiddenDim))) }
    public var headDim: Int { hiddenDim / numHeads }
    /// The attention logit scale.
    public var scale: Float { Float(qkScale ?? 1 / Double(headDim).squareRoot()) }
    /// Rows of `pos_embed`.
    public var positionRows: Int { grid * grid + (useClassToken ? 1 : 0) }

    /// The parameters in timm's state-dict order, with PyTorch's default initialisation.
    public var parameters: [TrunkParameter] {
        if beit != nil { return beitParameters }
        let d = hiddenDim, m = mlpHidden, p = patchSize
        var out: [TrunkParameter] = []
        func add(_ name: String, _ shape: [Int], _ i: TrunkParameter.Initialisation) {
            out.append(TrunkParameter(name: name, shape: shape, initialisation: i))
        }
        if useClassToken { add("cls_token", [1, 1, d], .embedding(std: 0.02)) }
        add("pos_embed", [1, positionRows, d], .embedding(std: 0.02))
        add("patch_embed.proj.weight", [d, 3, p, p], .uniform(fanIn: 3 * p * p))
        add("patch_embed.proj.bias", [d], .zeros)
        for i in 0..<numLayers {
            let b = "blocks.\(i)."
            add(b + "norm1.weight", [d], .ones)
            add(b + "norm1.bias", [d], .zeros)
            add(b + "attn.qkv.weight", [3 * d, d], .uniform(fanIn: d))
            if qkvBias { add(b + "attn.qkv.bias", [3 * d], .zeros) }
            add(b + "attn.proj.weight", [d, d], .uniform(fanIn: d))
            add(b + "attn.proj.bias", [d], .zeros)
            add(b + "norm2.weight", [d], .ones)
            add(b + "norm2.bias", [d], .zeros)
            add(b + "mlp.fc1.weight", [m, d], .uniform(fanIn: d))
            add(b + "mlp.fc1.bias", [m], .zeros)
            add(b + "mlp.fc2.weight", [d, m], .uniform(fanIn: m))
            add(b + "mlp.fc2.bias", [d], .zeros)
        }
        add("norm.weight", [d], .ones)
        add("norm.bias", [d], .zeros)
        return out
    }

    /// Token layout for an input size: the patch grid, the token count and whether the position
    /// embedding is interpolated (VISSL's `interpolate_pos_encoding`, class-token models only).
    public struct Geometry: Sendable, Hashable {
        public let gridH: Int
        public let gridW: Int
        public let tokens: Int
        /// Bicubic scale factor applied to the configured position grid (nil: used as stored).
        public let interpolationScale: Double?
    }

    /// The geometry at this input size, or a configuration error saying why VISSL cannot run it.
    public func geometry(inputHeight: Int, inputWidth: Int) throws -> Geometry {
        let gh = inputHeight / patchSize, gw = inputWidth / patchSize
        guard gh >= 1, gw >= 1 else {
            throw LinprobeError.config(
                "input size \(inputHeight)×\(inputWidth) is smaller than one \(patchSize)×\(patchSize) patch of the \(self) trunk"
            )
        }
        let npatch = gh * gw, nembed = grid * grid
        if beit != nil, inputHeight != imageSize || inputWidth != imageSize {
            throw LinprobeError.config(
                "input size \(inputHeight)×\(inputWidth): the beit trunk takes exactly \(configPath).IMAGE_SIZE \(imageSize) (VISSL asserts; no interpolation)"
            )
        }
        let tokens = npatch + (useClassToken ? 1 : 0)
        guard npatch != nembed else { return Geometry(gridH: gh, gridW: gw, tokens: tokens, interpolationScale: nil) }
        guard useClassToken else {
            throw LinprobeError.config(
                "input size \(inputHeight)×\(inputWidth) gives \(gh)×\(gw) patches but \(configPath).IMAGE_SIZE \(imageSize) has \(grid)×\(grid); VISSL interpolates the position embedding only with a class token (USE_CLASS_TOKEN)"
            )
        }
        let scale = (Double(npatch) / Double(nembed)).squareRoot()
        let side = Bicubic.outputSize(grid, scale: scale)
        guard side * side == npatch else {
            throw LinprobeError.config(
                "input size \(inputHeight)×\(inputWidth) gives \(gh)×\(gw) patches, but VISSL's bicubic interpolation of the \(grid)×\(grid) position grid by \(scale) gives \(side)×\(side); use a square input that is a multiple of \(patchSize)"
            )
        }
        return Geometry(gridH: gh, gridW: gw, tokens: tokens, interpolationScale: scale)
    }
}
