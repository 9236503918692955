import Foundation
import LinprobeCore

extension ConvLayer {
    /// A convolution with its own bias (`nn.Conv2d(..., bias=True)`), optionally followed by a
    /// BatchNorm that is folded in: `bn(conv(x) + b) = scale·conv(x) + (beta + (b − mean)·scale)`.
    /// Without BatchNorm the weights are used as they are (scale exactly 1, bias `b`).
    convenience init(
        weight: [Float], shape: [Int], bias: [Float], stride: Int, pad: Int, groups: Int,
        bn: (gamma: [Float], beta: [Float], mean: [Float], variance: [Float])?, name: String
    ) throws {
        let cout = shape.first ?? 0
        guard bias.count == cout else {
            throw LinprobeError(.incompatible, "conv \(name): bias holds \(bias.count) values for \(cout) channels")
        }
        if let bn {
            // The conv bias enters as a shift of the running mean (one float32 rounding of mean − b).
            let shiftedMean = zip(bn.mean, bias).map { Float(Double($0) - Double($1)) }
            try self.init(
                weight: weight, shape: shape, stride: stride, pad: pad, groups: groups,
                bn: (bn.gamma, bn.beta, shiftedMean, bn.variance), name: name)
        } else {
            let ones = [Float](repeating: 1, count: cout), zeros = [Float](repeating: 0, count: cout)
            try self.init(
                weight: weight, shape: shape, stride: stride, pad: pad, groups: groups,
                bn: (ones, bias, zeros, ones), eps: 0, name: name)
        }
    }
}
