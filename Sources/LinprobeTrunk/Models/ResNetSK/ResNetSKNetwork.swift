import Foundation
import LinprobeCore

/// A SimCLRv2 ResNet ready for inference: every convolution with its BatchNorm folded in; the
/// selective kernels' squeeze (1×1 conv + BatchNorm + ReLU) folded likewise and their excitation
/// kept as a plain matrix. Immutable, shared by workers.
public final class ResNetSKNetwork: TrunkNetwork, @unchecked Sendable {
    /// The mixing part of a selective kernel on C channels: `m = W2 · relu(W1 · g + b1)`, with W1
    /// mid×C (BatchNorm folded) and W2 2C×mid.
    struct Mixing {
        let channels: Int, mid: Int
        let w1: [Float], b1: [Float], w2: [Float]
    }

    struct Block {
        let stride: Int
        /// The projection's 1×1 conv + BatchNorm (after the 2×2 average pool when selective).
        let projection: ConvLayer?
        let reduce: ConvLayer
        /// The 3×3 conv (to 2C channels with a selective kernel).
        let spatial: ConvLayer
        let mixing: Mixing?
        let expand: ConvLayer
    }

    public let spec: ResNetSKSpec
    public let weightsProvenance: JSONValue
    public let weightsSHA256: String?
    public let notes: [String]
    let stem: [ConvLayer]
    let blocks: [Block]

    public var architecture: any TrunkArchitecture { spec }

    public init(weights: TrunkWeights) throws {
        guard let spec = weights.architecture as? ResNetSKSpec else {
            throw LinprobeError(.incompatible, "weights for \(weights.architecture) cannot build a ResNet-SK")
        }
        self.spec = spec
        weightsProvenance = weights.provenance
        weightsSHA256 = weights.sha256
        notes = weights.notes
        func conv(_ name: String, bn: String, stride: Int = 1) throws -> ConvLayer {
            let shape = weights.tensors[name + ".weight"]?.shape ?? []
            guard shape.count == 4 else {
                throw LinprobeError(.incompatible, "weights for \(spec) lack \(name).weight")
            }
            return try ConvLayer(
                weight: try weights.values(name + ".weight"), shape: shape, stride: stride, pad: (shape[2] - 1) / 2,
                groups: 1,
                bn: (
                    try weights.values(bn + ".weight"), try weights.values(bn + ".bias"),
                    try weights.values(bn + ".running_mean"), try weights.values(bn + ".running_var")
                ), name: name)
        }
        if spec.selectiveKernel {
            stem = [
                try conv("net.0.0", bn: "net.0.1.0", stride: 2), try conv("net.0.2", bn: "net.0.3.0"),
                try conv("net.0.4", bn: "net.0.5.0"),
            ]
        } else {
            stem = [try conv("net.0.0", bn: "net.0.1.0", stride: 2)]
        }
        var blocks: [Block] = []
        for s in 0..<4 {
            for b in 0..<spec.blockCounts[s] {
                let p = "net.\(s + 1).blocks.\(b)"
                let stride = b == 0 ? spec.stride(stage: s) : 1
                var projection: ConvLayer?
                if b == 0 {
                    projection =
                        spec.selectiveKernel
                        ? try conv(p + ".projection.shortcut.2", bn: p + ".projection.bn.0")
                        : try conv(p + ".projection.shortcut", bn: p + ".projection.bn.0", stride: stride)
                }
                let reduce = try conv(p + ".net.0", bn: p + ".net.1.0")
                if spec.selectiveKernel {
                    blocks.append(
                        Block(
                            stride: stride, projection: projection, reduce: reduce,
                            spatial: try conv(p + ".net.2.main_conv.0", bn: p + ".net.2.main_conv.1.0", stride: stride),
                            mixing: try Self.mixing(weights, p + ".net.2.mixing_conv", channels: reduce.cout),
                            expand: try conv(p + ".net.3", bn: p + ".net.4.0")))
                } else {
                    blocks.append(
                        Block(
                            stride: stride, projection: projection, reduce: reduce,
                            spatial: try conv(p + ".net.2", bn: p + ".net.3.0", stride: stride), mixing: nil,
                            expand: try conv(p + ".net.4", bn: p + ".net.5.0")))
                }
            }
        }
        self.blocks = blocks
    }

    /// `mixing_conv`: 1×1 conv (C → mid) + BatchNorm (folded, double precision) + ReLU, 1×1 conv (mid → 2C).
    static func mixing(_ weights: TrunkWeights, _ p: String, channels c: Int) throws -> Mixing {
        let w1 = try weights.values(p + ".0.weight"), w2 = try weights.values(p + ".2.weight")
        let gamma = try weights.values(p + ".1.0.weight"), beta = try weights.values(p + ".1.0.bias")
        let mean = try weights.values(p + ".1.0.running_mean"), variance = try weights.values(p + ".1.0.running_var")
        let mid = gamma.count
        var folded = [Float](repeating: 0, count: mid * c), bias = [Float](repeating: 0, count: mid)
        for o in 0..<mid {
            guard variance[o] + 1e-5 > 0 else {
                throw LinprobeError(.numerical, "\(p).1.0.running_var[\(o)] = \(variance[o]) is not a variance")
            }
            let scale = Double(gamma[o]) / (Double(variance[o]) + 1e-5).squareRoot()
            bias[o] = Float(Double(beta[o]) - Double(mean[o]) * scale)
            for i in 0..<c { folded[o * c + i] = Float(Double(w1[o * c + i]) * scale) }
        }
        return Mixing(channels: c, mid: mid, w1: folded, b1: bias, w2: w2)
    }

    public func extractor(
        outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int, options: TrunkRunOptions
    ) throws -> any TrunkExtractor {
        try ResNetSKExtractor(
            network: self, outputs: outputs, inputHeight: inputHeight, inputWidth: inputWidth, options: options)
    }
}
