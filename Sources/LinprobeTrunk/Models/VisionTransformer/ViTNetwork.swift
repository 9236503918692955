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
    let norm: LayerNormLayer

    public var architecture: any TrunkArchitecture { spec }

    public init(weights: TrunkWeights) throws {
        guard let spec = weights.architecture as? ViTSpec else {
            throw LinprobeError(.incompatible, "weights for \(weights.architecture) cannot build a vision transformer")
        }
        self.spec = spec
        weightsProvenance = weights.provenance
        weightsSHA256 = weights.sha256
        notes = weights.notes
        let read = ParameterReader(weights: weights)
        let d = spec.hiddenDim, m = spec.mlpHidden, p = spec.patchSize
        classToken = spec.useClassToken ? FloatBuffer(try read("cls_token")) : nil
        positionEmbedding = try read("pos_embed")
        patchEmbed = LinearLayer(
            weight: try read("patch_embed.proj.weight"), bias: try read("patch_embed.proj.bias"), outFeatures: d,
            inFeatures: 3 * p * p)
        blocks = try (0..<spec.numLayers).map { i in
            let b = "blocks.\(i)."
            return Block(
                norm1: LayerNormLayer(weight: try read(b + "norm1.weight"), bias: try read(b + "norm1.bias")),
                qkv: LinearLayer(
                    weight: try read(b + "attn.qkv.weight"), bias: spec.qkvBias ? try read(b + "attn.qkv.bias") : nil,
                    outFeatures: 3 * d, inFeatures: d),
                proj: LinearLayer(
                    weight: try read(b + "attn.proj.weight"), bias: try read(b + "attn.proj.bias"), outFeatures: d,
                    inFeatures: d),
                norm2: LayerNormLayer(weight: try read(b + "norm2.weight"), bias: try read(b + "norm2.bias")),
                fc1: LinearLayer(
                    weight: try read(b + "mlp.fc1.weight"), bias: try read(b + "mlp.fc1.bias"), outFeatures: m,
                    inFeatures: d),
                fc2: LinearLayer(
                    weight: try read(b + "mlp.fc2.weight"), bias: try read(b + "mlp.fc2.bias"), outFeatures: d,
                    inFeatures: m))
        }
        norm = LayerNormLayer(weight: try read("norm.weight"), bias: try read("norm.bias"))
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

/// Reads a checked parameter as float32, refusing NaN and infinities (a corrupt checkpoint).
struct ParameterReader {
    let weights: TrunkWeights

    func callAsFunction(_ name: String) throws -> [Float] {
        guard let t = weights.tensors[name] else {
            throw LinprobeError(.incompatible, "weights for \(weights.architecture) lack \(name)")
        }
        let v = t.floats()
        if v.contains(where: { !$0.isFinite }) {
            throw LinprobeError(
                .numerical,
                "\(weights.originalKeys[name] ?? name) contains NaN or infinite values; the checkpoint is corrupt")
        }
        return v
    }
}
