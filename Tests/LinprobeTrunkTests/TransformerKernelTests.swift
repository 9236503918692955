import CLinprobeTrunkKernels
import Foundation
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

/// The element-wise kernels of the transformer families against libm, which the ViT/BEiT
/// fidelity tests only reach through whole blocks.
@Suite("Transformer kernels: exp, erf, GELU and softmax against libm")
struct TransformerKernelTests {
    @Test("exp4 within 3e-7 relative of exp on [-87, 88], across every power-of-two step, and 0 below -87.3")
    func exponential() {
        var worst = 0.0
        var x = -87.0 as Float
        while x <= 88 {
            // Integer arguments sit on the range reduction's boundaries (the exponent bits).
            for v in [x, x.rounded(.down), x + 0.5] where v <= 88 {
                let got = Double(TransformerKernels.exp4(SIMD4(repeating: v))[0])
                let want = Foundation.exp(Double(v))
                worst = max(worst, abs(got - want) / want)
            }
            x += 0.0137
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        #expect(TransformerKernels.exp4(SIMD4(repeating: -90))[0] == 0)
        #expect(TransformerKernels.exp4(SIMD4(repeating: 0))[0] == 1)
    }

    /// Every variant this CPU can run: 0 the portable Swift SIMD4 kernels, 1 AVX2+FMA, 2 AVX-512.
    static let levels = Array(0...TransformerKernels.simdLevel)

    @Test("GELU within 1e-6 of x·Φ(x) from libm's erf, with odd lengths", arguments: levels)
    func gelu(_ level: Int) {
        let xs = stride(from: -10 as Float, through: 10, by: 0.001).map { $0 } + [0.3, -0.7, 5]
        var y = xs
        y.withUnsafeMutableBufferPointer {
            if level == 0 {
                TransformerKernels.portableGelu($0.baseAddress!, count: $0.count)
            } else {
                lp_gelu_f32_at($0.baseAddress!, $0.count, Int32(level))
            }
        }
        var worst = 0.0
        for (x, got) in zip(xs, y) {
            let want = 0.5 * Double(x) * (1 + Foundation.erf(Double(x) / 2.0.squareRoot()))
            worst = max(worst, abs(Double(got) - want) / max(1, abs(want)))
        }
        #expect(worst < 1e-6, "worst error \(worst)")
    }

    @Test("softmax rows match the libm formula, with a scale and odd widths", arguments: levels)
    func softmax(_ level: Int) {
        for cols in [1, 3, 4, 9, 17, 197] {
            var generator = SeededGenerator(seed: UInt64(cols))
            var a = (0..<(2 * cols)).map { _ in Float.random(in: -20...20, using: &generator) }
            let original = a
            a.withUnsafeMutableBufferPointer {
                if level == 0 {
                    TransformerKernels.portableSoftmaxRows($0.baseAddress!, rows: 2, cols: cols, scale: 0.125)
                } else {
                    lp_softmax_rows_f32_at($0.baseAddress!, 2, cols, 0.125, Int32(level))
                }
            }
            for r in 0..<2 {
                let row = original[(r * cols)..<((r + 1) * cols)].map { Double($0) * 0.125 }
                let m = row.max() ?? 0
                let e = row.map { Foundation.exp($0 - m) }
                let sum = e.reduce(0, +)
                for j in 0..<cols {
                    #expect(abs(Double(a[r * cols + j]) - e[j] / sum) < 1e-6)
                }
            }
        }
    }
}
