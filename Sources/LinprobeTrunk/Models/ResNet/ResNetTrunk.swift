import Foundation
import LinprobeCheckpoint
import LinprobeCore

/// The inference network: every convolution with its BatchNorm folded in, ready for NHWC GEMMs.
/// Immutable after construction and shared by all worker threads.
public final class ResNetTrunk: @unchecked Sendable {
    struct Block {
        let conv1: ConvLayer
        let conv2: ConvLayer
        /// Bottleneck only.
        let conv3: ConvLayer?
        let downsample: ConvLayer?
        /// Last conv's bias + the downsample's bias (when there is a downsample).
        let combinedBias: FloatBuffer?
        var last: ConvLayer { conv3 ?? conv2 }
    }

    /// How the 3×3 stride-1 convolutions run: Winograd F(2×2, 3×3) (the static default),
    /// im2col + GEMM, or `auto` (both kept; the extractor measures which is faster per shape).
    public typealias Algorithm = ConvAlgorithm

    public let spec: ResNetSpec
    public let algorithm: Algorithm
    public let weightsProvenance: JSONValue
    public let weightsSHA256: String?
    public let notes: [String]
    let stem: ConvLayer
    let stages: [[Block]]

    /// Folds BatchNorm (eps 1e-5, PyTorch's default) into every convolution. For `bgr` input the
    /// stem's input channels are reversed, which equals VISSL's `x[:, [2, 1, 0]]`.
    public init(weights: TrunkWeights, algorithm: Algorithm = .winograd) throws {
        guard let spec = weights.architecture as? ResNetSpec else {
            throw LinprobeError(.incompatible, "weights for \(weights.architecture) cannot build a ResNet")
        }
        self.spec = spec
        self.algorithm = algorithm
        self.weightsProvenance = weights.provenance
        self.weightsSHA256 = weights.sha256
        self.notes = weights.notes

        let values = weights.values
        func conv(
            _ name: String, bn: String, stride: Int, pad: Int, groups: Int = 1, swap: Bool = false
        ) throws -> ConvLayer {
            let shape = weights.tensors[name + ".weight"]?.shape ?? []
            guard shape.count == 4 else {
                throw LinprobeError(.incompatible, "weights for \(spec) lack \(name).weight")
            }
            return try ConvLayer(
                weight: try values(name + ".weight"), shape: shape, stride: stride, pad: pad, groups: groups,
                bn: (
                    try values(bn + ".weight"), try values(bn + ".bias"), try values(bn + ".running_mean"),
                    try values(bn + ".running_var")
                ),
                swapInputRB: swap, algorithm: algorithm, name: name)
        }

        stem = try conv("conv1", bn: "bn1", stride: 2, pad: 3, swap: spec.inputType == .bgr)
        var stages: [[Block]] = []
        var inplanes = spec.stemChannels
        for i in 0..<4 {
            var blocks: [Block] = []
            let out = spec.outputChannels(stage: i)
            for b in 0..<spec.blockCounts[i] {
                let p = "layer\(i + 1).\(b)"
                let s = b == 0 ? spec.stride(stage: i) : 1
                let c1: ConvLayer, c2: ConvLayer, c3: ConvLayer?
                if spec.isBottleneck {
                    c1 = try conv(p + ".conv1", bn: p + ".bn1", stride: 1, pad: 0)
                    c2 = try conv(p + ".conv2", bn: p + ".bn2", stride: s, pad: 1, groups: spec.groups)
                    c3 = try conv(p + ".conv3", bn: p + ".bn3", stride: 1, pad: 0)
                } else {
                    c1 = try conv(p + ".conv1", bn: p + ".bn1", stride: s, pad: 1)
                    c2 = try conv(p + ".conv2", bn: p + ".bn2", stride: 1, pad: 1)
                    c3 = nil
                }
                var ds: ConvLayer?
                var combined: FloatBuffer?
                if b == 0 && (s != 1 || inplanes != out) {
                    let d = try conv(p + ".downsample.0", bn: p + ".downsample.1", stride: s, pad: 0)
                    let last = c3 ?? c2
                    let sum = FloatBuffer(count: out)
                    for j in 0..<out { sum.pointer[j] = last.bias.pointer[j] + d.bias.pointer[j] }
                    ds = d
                    combined = sum
                }
                blocks.append(Block(conv1: c1, conv2: c2, conv3: c3, downsample: ds, combinedBias: combined))
                inplanes = out
            }
            stages.append(blocks)
        }
        self.stages = stages
    }
}
