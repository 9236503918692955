import CLinprobeTrunkKernels
import Foundation
import Testing

@testable import LinprobeTrunk

/// The C element-wise kernels (window sums of the pool ops, the convolution epilogue) at every
/// vector level this CPU runs, bit for bit against the scalar definition written out here.
@Suite("Element-wise kernels: every vector level bit-identical to the scalar definition")
struct ElementwiseKernelTests {
    static var levels: [Int32] { Array(0...lp_trunk_simd_level()) }

    static func values(_ count: Int, seed: UInt32) -> [Float] {
        var state = seed
        return (0..<count).map { i in
            state = state &* 1_664_525 &+ 1_013_904_223
            if i % 41 == 3 { return -0.0 }
            if i % 97 == 7 { return .nan }
            return (Float(state >> 8) / Float(1 << 24) - 0.5) * 8
        }
    }

    @Test("window sum: 0 + x in row-major window order", arguments: [(9, 7, 70), (4, 5, 64), (3, 3, 5)])
    func windowSum(h: Int, w: Int, c: Int) {
        let image = Self.values(h * w * c, seed: 31).map { $0.isNaN ? 1 : $0 }
        for (y0, y1, x0, x1) in [(0, h, 0, w), (1, h - 1, 2, w), (h - 1, h, 0, 1), (2, 2, 0, w)] {
            var expected = [Float](repeating: 0, count: c)
            for ch in 0..<c {
                var a: Float = 0
                for iy in y0..<y1 { for ix in x0..<x1 { a += image[(iy * w + ix) * c + ch] } }
                expected[ch] = a
            }
            for level in Self.levels {
                var out = [Float](repeating: .nan, count: c)
                lp_window_sum_f32_at(image, w, c, y0, y1, x0, x1, &out, level)
                #expect(out.map(\.bitPattern) == expected.map(\.bitPattern), "level \(level) window \(y0)..<\(y1)")
            }
        }
    }

    @Test("bias, residual, ReLU: (x + b) + r; x < 0 → 0, −0 and NaN kept", arguments: [(3, 70), (5, 64), (2, 3)])
    func biasActivation(rows: Int, channels: Int) {
        let x = Self.values(rows * channels, seed: 37)
        let bias = Self.values(channels, seed: 41).map { $0.isNaN ? 0.5 : $0 }
        let res = Self.values(rows * channels, seed: 43)
        for withResidual in [false, true] {
            for relu in [false, true] {
                let expected = (0..<(rows * channels)).map { i -> Float in
                    var v = x[i] + bias[i % channels]
                    if withResidual { v += res[i] }
                    return relu && v < 0 ? 0 : v
                }
                for level in Self.levels {
                    var c = x
                    res.withUnsafeBufferPointer { r in
                        lp_bias_activation_f32_at(
                            &c, rows, channels, bias, withResidual ? r.baseAddress : nil, relu ? 1 : 0, level)
                    }
                    #expect(
                        c.map(\.bitPattern) == expected.map(\.bitPattern),
                        "level \(level) residual \(withResidual) relu \(relu)")
                }
            }
        }
    }
}
