import Foundation
import LinprobeCheckpoint
import LinprobeCore

/// The inference network: BatchNorm folded into every convolution (double precision, the
/// spec's `bn_epsilon`), squeeze-and-excitation weights transposed for row-vector products.
/// Immutable after construction and shared by all worker threads.
public final class RegNetNetwork: @unchecked Sendable {
    /// Squeeze-and-excitation: mean over H×W → 1×1 conv + bias → ReLU → 1×1 conv + bias → sigmoid.
    struct SqueezeExcitation {
        let channels: Int
        let squeeze: Int
        /// `channels × squeeze` (row-major, ready for x·W1).
        let w1: FloatBuffer
        let b1: FloatBuffer
        /// `squeeze × channels`.
        let w2: FloatBuffer
        let b2: FloatBuffer
    }

    struct Block {
        let spec: RegNetSpec.Block
        let a: ConvLayer
        let b: ConvLayer
        let se: SqueezeExcitation?
        let c: ConvLayer
        let projection: ConvLayer?
        /// c's bias + the projection's bias (projection blocks).
        let combinedBias: FloatBuffer?
    }

    public let spec: RegNetSpec
    public let weightsProvenance: JSONValue
    public let weightsSHA256: String?
    public let notes: [String]
    let stem: ConvLayer
    let stages: [[Block]]
    /// How the ungrouped 3×3 stride-1 convolutions run (`auto`: both kept, the extractor measures).
    public let algorithm: ConvAlgorithm

    /// For `bgr` input the stem's input channels are reversed, which equals VISSL's `x[:, [2, 1, 0]]`.
    public init(weights: TrunkWeights, algorithm: ConvAlgorithm = .winograd) throws {
        guard let spec = weights.architecture as? RegNetSpec else {
            throw LinprobeError(.incompatible, "weights for \(weights.architecture) cannot build a RegNet")
        }
        self.spec = spec
        weightsProvenance = weights.provenance
        weightsSHA256 = weights.sha256
        notes = weights.notes
        self.algorithm = algorithm
        let g = spec.stemGeometry
        stem = try RegNetNetwork.conv(
            weights, "conv1.stem.0", bn: "conv1.stem.1", stride: g.stride, pad: g.pad, eps: spec.bnEpsilon,
            swap: spec.inputType == .bgr, algorithm: algorithm)
        stages = try spec.stages.indices.map { s in
            try spec.blocks(stage: s).map {
                try RegNetNetwork.block($0, weights: weights, eps: spec.bnEpsilon, algorithm: algorithm)
            }
        }
    }

    static func conv(
        _ weights: TrunkWeights, _ name: String, bn: String, stride: Int, pad: Int, groups: Int = 1, eps: Double,
        swap: Bool = false, algorithm: ConvAlgorithm
    ) throws -> ConvLayer {
        let shape = weights.tensors[name + ".weight"]?.shape ?? []
        guard shape.count == 4 else { throw LinprobeError(.incompatible, "weights lack \(name).weight") }
        let v = weights.values
        return try ConvLayer(
            weight: try v(name + ".weight"), shape: shape, stride: stride, pad: pad, groups: groups,
            bn: (try v(bn + ".weight"), try v(bn + ".bias"), try v(bn + ".running_mean"), try v(bn + ".running_var")),
            eps: eps, swapInputRB: swap, algorithm: algorithm, name: name)
    }

    static func block(
        _ b: RegNetSpec.Block, weights: TrunkWeights, eps: Double, algorithm: ConvAlgorithm
    ) throws -> Block {
        let p = b.prefix
        let a = try conv(weights, p + ".f.a.0", bn: p + ".f.a.1", stride: 1, pad: 0, eps: eps, algorithm: algorithm)
        let conv3 = try conv(
            weights, p + ".f.b.0", bn: p + ".f.b.1", stride: b.stride, pad: 1, groups: b.groups, eps: eps,
            algorithm: algorithm)
        let c = try conv(weights, p + ".f.c", bn: p + ".f.final_bn", stride: 1, pad: 0, eps: eps, algorithm: algorithm)
        var se: SqueezeExcitation?
        if let width = b.seWidth {
            let e = p + ".f.se.excitation"
            let w1 = try weights.values(e + ".0.weight"), w2 = try weights.values(e + ".2.weight")
            let channels = b.bottleneckWidth
            // PyTorch [out, in, 1, 1] → [in][out] for a row vector times the matrix.
            let t1 = FloatBuffer(count: channels * width), t2 = FloatBuffer(count: width * channels)
            for o in 0..<width {
                for i in 0..<channels { t1.pointer[i * width + o] = w1[o * channels + i] }
            }
            for o in 0..<channels {
                for i in 0..<width { t2.pointer[i * channels + o] = w2[o * width + i] }
            }
            se = SqueezeExcitation(
                channels: channels, squeeze: width, w1: t1, b1: FloatBuffer(try weights.values(e + ".0.bias")), w2: t2,
                b2: FloatBuffer(try weights.values(e + ".2.bias")))
        }
        var projection: ConvLayer?
        var combined: FloatBuffer?
        if b.hasProjection {
            let pr = try conv(
                weights, p + ".proj", bn: p + ".bn", stride: b.stride, pad: 0, eps: eps, algorithm: algorithm)
            let sum = FloatBuffer(count: b.widthOut)
            for j in 0..<b.widthOut { sum.pointer[j] = c.bias.pointer[j] + pr.bias.pointer[j] }
            projection = pr
            combined = sum
        }
        return Block(spec: b, a: a, b: conv3, se: se, c: c, projection: projection, combinedBias: combined)
    }
}
