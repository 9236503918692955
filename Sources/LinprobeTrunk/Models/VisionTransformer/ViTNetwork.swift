import Foundation
import LinprobeCheckpoint
import LinprobeCore

/// A vision transformer's weights prepared for inference: float32 copies in PyTorch's layouts
/// (linear weights `[out, in]`, used transposed by sgemm). Immutable, shared by all workers.
public final class ViTNetwork: TrunkNetwork, @unchecked Sendable {
    struct Block {
        let norm1: LayerNormLayer
        let qkv: LinearLayer
        let proj: LinearLayer
        let norm2: LayerNormLayer
        let fc1: LinearLayer
        let fc2: LinearLayer
        /// BEiT: `[heads, tokens, tokens]` added to the scaled attention logits.
        let relativeBias: FloatBuffer?
    }

    public let spec: ViTSpec
    public let weightsProvenance: JSONValue
    public let weightsSHA256: String?
    public let notes: [String]
    /// `[1, D]` (nil without class token).
    let classToken: FloatBuffer?
    /// `[positionRows, D]` as stored (the configured grid).
    let positionEmbedding: [Float]
    /// The patch convolution as a linear layer over `(c, ky, kx)`-ordered patches.
    let patchEmbed: LinearLayer
    let blocks: [Block]
    /// nil for BEiT with mean pooling (VISSL's `nn.Identity()`).
    let norm: LayerNormLayer?

    public var architecture: any TrunkArchitecture { spec }

    public init(weights: TrunkWeights) throws {
        guard let spec = weights.architecture as? ViTSpec else {
            throw LinprobeError(.incompatible, "weights for \(weights.architecture) cannot build a vision transformer")
        }
        self.spec = spec
        weightsProvenance = weights.provenance
        weightsSHA256 = weights.sha256
        notes = weights.notes
        let read = weights.values
        let d = spec.hiddenDim, p = spec.patchSize
        classToken = spec.useClassToken ? FloatBuffer(try read("cls_token")) : nil
        positionEmbedding =
            spec.beit?.useAbsolutePosition == false
            ? [Float](repeating: 0, count: spec.positionRows * d) : try read("pos_embed")
        patchEmbed = LinearLayer(
            weight: try read("patch_embed.proj.weight"), bias: try read("patch_embed.proj.bias"), outFeatures: d,
            inFeatures: 3 * p * p)
        blocks = try (0..<spec.numLayers).map { try Self.block($0, spec: spec, read: read) }
        norm =
            spec.beit?.useMeanPooling == true
            ? nil : LayerNormLayer(weight: try read("norm.weight"), bias: try read("norm.bias"))
    }

    /// Block `i`: for BEiT the qkv bias is `q_bias ; 0 ; v_bias`, layer scale is folded into
    /// `proj` and `fc2` (γ·(Wx + b) = (γW)x + γb), and the relative position bias is expanded to
    /// one `tokens × tokens` matrix per head through the recomputed index.
    static func block(_ i: Int, spec: ViTSpec, read: (String) throws -> [Float]) throws -> Block {
        let b = "blocks.\(i).", d = spec.hiddenDim, m = spec.mlpHidden
        var qkvBias: [Float]? = nil
        var gamma1: [Float]? = nil, gamma2: [Float]? = nil
        var relative: FloatBuffer? = nil
        if let beit = spec.beit {
            if spec.qkvBias {
                qkvBias = try read(b + "attn.q_bias") + [Float](repeating: 0, count: d) + read(b + "attn.v_bias")
            }
            if beit.initValues != nil {
                gamma1 = try read(b + "gamma_1")
                gamma2 = try read(b + "gamma_2")
            }
            let table =
                beit.useSharedRelativePositionBias
                ? try read("rel_pos_bias.relative_position_bias_table")
                : beit.useRelativePositionBias ? try read(b + "attn.relative_position_bias_table") : nil
            relative = table.map { relativeBias(table: $0, grid: spec.grid, heads: spec.numHeads) }
        } else if spec.qkvBias {
            qkvBias = try read(b + "attn.qkv.bias")
        }
        func scaled(_ w: [Float], _ b: [Float], _ gamma: [Float]?, inFeatures: Int) -> ([Float], [Float]) {
            guard let gamma else { return (w, b) }
            var w = w, b = b
            for o in 0..<gamma.count {
                for k in 0..<inFeatures { w[o * inFeatures + k] *= gamma[o] }
                b[o] *= gamma[o]
            }
            return (w, b)
        }
        let proj = scaled(try read(b + "attn.proj.weight"), try read(b + "attn.proj.bias"), gamma1, inFeatures: d)
        let fc2 = scaled(try read(b + "mlp.fc2.weight"), try read(b + "mlp.fc2.bias"), gamma2, inFeatures: m)
        return Block(
            norm1: LayerNormLayer(weight: try read(b + "norm1.weight"), bias: try read(b + "norm1.bias")),
            qkv: LinearLayer(weight: try read(b + "attn.qkv.weight"), bias: qkvBias, outFeatures: 3 * d, inFeatures: d),
            proj: LinearLayer(weight: proj.0, bias: proj.1, outFeatures: d, inFeatures: d),
            norm2: LayerNormLayer(weight: try read(b + "norm2.weight"), bias: try read(b + "norm2.bias")),
            fc1: LinearLayer(
                weight: try read(b + "mlp.fc1.weight"), bias: try read(b + "mlp.fc1.bias"), outFeatures: m,
                inFeatures: d),
            fc2: LinearLayer(weight: fc2.0, bias: fc2.1, outFeatures: d, inFeatures: m),
            relativeBias: relative)
    }

    /// `table[index[i, j], h]` laid out as `[heads, T, T]`.
    static func relativeBias(table: [Float], grid: Int, heads: Int) -> FloatBuffer {
        let index = BEiTOptions.relativePositionIndex(grid: grid)
        let t = grid * grid + 1
        let out = FloatBuffer(count: heads * t * t)
        for h in 0..<heads {
            for ij in 0..<(t * t) { out.pointer[h * t * t + ij] = table[index[ij] * heads + h] }
        }
        return out
    }

    /// The position embedding for `geometry`: as stored, or VISSL's bicubic interpolation of the
    /// patch rows (the class row kept), `tokens × D`.
    func positions(for geometry: ViTSpec.Geometry) -> [Float] {
        guard let scale = geometry.interpolationScale else { return positionEmbedding }
        let d = spec.hiddenDim, g = spec.grid
        let patches = Array(positionEmbedding[d...])
        let resized = Bicubic.resize(patches, h: g, w: g, c: d, scale: scale)
        return Array(positionEmbedding[0..<d]) + resized.values
    }

    public func extractor(
        outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int, options: TrunkRunOptions
    ) throws -> any TrunkExtractor {
        try ViTExtractor(
            network: self, outputs: outputs, inputHeight: inputHeight, inputWidth: inputWidth, options: options)
    }
}
