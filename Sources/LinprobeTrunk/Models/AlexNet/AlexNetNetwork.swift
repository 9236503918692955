import Foundation
import LinprobeCore

/// An AlexNet ready for inference: BatchNorm folded into each convolution (with the conv's own
/// bias), DeepCluster's fixed Sobel filter as one 3→2 convolution. Immutable, shared by workers.
public final class AlexNetNetwork: TrunkNetwork, @unchecked Sendable {
    public let spec: AlexNetSpec
    public let weightsProvenance: JSONValue
    public let weightsSHA256: String?
    public let notes: [String]
    /// DeepCluster only: `Conv2d(1, 2, 3, padding=1)` after `Conv2d(3, 1, 1)` with weights 1/3,
    /// both bias 0 — one 3×3 convolution of the three channels with the Sobel kernels / 3
    /// (the gray map's zero padding is the RGB zero padding through a bias-free 1×1 conv).
    let sobel: ConvLayer?
    let convs: [ConvLayer]
    let lrn = LocalResponseNorm()

    public var architecture: any TrunkArchitecture { spec }

    /// The Sobel kernels of VISSL's `alexnet_deepcluster` (cross-correlation, as `nn.Conv2d`).
    static let sobelKernels: [[Float]] = [[1, 0, -1, 2, 0, -2, 1, 0, -1], [1, 2, 1, 0, 0, 0, -1, -2, -1]]

    public init(weights: TrunkWeights) throws {
        guard let spec = weights.architecture as? AlexNetSpec else {
            throw LinprobeError(.incompatible, "weights for \(weights.architecture) cannot build an AlexNet")
        }
        self.spec = spec
        weightsProvenance = weights.provenance
        weightsSHA256 = weights.sha256
        notes = weights.notes
        var layers: [ConvLayer] = []
        for (i, c) in spec.convs.enumerated() {
            let p = "\(AlexNetSpec.convBlockIndex[i])"
            let bn =
                c.batchNorm
                ? (
                    try weights.values(p + ".1.weight"), try weights.values(p + ".1.bias"),
                    try weights.values(p + ".1.running_mean"), try weights.values(p + ".1.running_var")
                ) : nil
            layers.append(
                try ConvLayer(
                    weight: try weights.values(p + ".0.weight"),
                    shape: [c.cout, c.cin / c.groups, c.kernel, c.kernel], bias: try weights.values(p + ".0.bias"),
                    stride: c.stride, pad: c.pad, groups: c.groups, bn: bn, name: "conv\(i + 1)"))
        }
        convs = layers
        if spec.input == .sobel {
            var w = [Float](repeating: 0, count: 2 * 3 * 9)
            for o in 0..<2 {
                for ci in 0..<3 {
                    for t in 0..<9 { w[(o * 3 + ci) * 9 + t] = Self.sobelKernels[o][t] / 3 }
                }
            }
            sobel = try ConvLayer(
                weight: w, shape: [2, 3, 3, 3], bias: [0, 0], stride: 1, pad: 1, groups: 1, bn: nil, name: "sobel")
        } else {
            sobel = nil
        }
    }

    public func extractor(
        outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int, options: TrunkRunOptions
    ) throws -> any TrunkExtractor {
        try AlexNetExtractor(
            network: self, outputs: outputs, inputHeight: inputHeight, inputWidth: inputWidth, options: options)
    }
}
