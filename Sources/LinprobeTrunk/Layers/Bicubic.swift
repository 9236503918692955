import Foundation

/// PyTorch's `F.interpolate(mode="bicubic", align_corners=False, scale_factor=s)` on a
/// channels-last grid: cubic convolution with A = −0.75, source coordinate
/// `(dst + 0.5)/s − 0.5` (the given scale, not the size ratio), neighbours clamped to the border.
enum Bicubic {
    /// The output side PyTorch computes for `scale` (`floor(input · scale)`).
    static func outputSize(_ input: Int, scale: Double) -> Int { Int((Double(input) * scale).rounded(.down)) }

    /// The four weights of cubic convolution at fractional offset `t`.
    static func weights(_ t: Double) -> [Double] {
        let a = -0.75
        func near(_ x: Double) -> Double { ((a + 2) * x - (a + 3)) * x * x + 1 }
        func far(_ x: Double) -> Double { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
        return [far(t + 1), near(t), near(1 - t), far(2 - t)]
    }

    /// For each output index: the four clamped source indices and their weights.
    static func taps(input: Int, output: Int, scale: Double) -> [(index: [Int], weight: [Double])] {
        (0..<output).map { o in
            let real = (Double(o) + 0.5) / scale - 0.5
            let base = Int(real.rounded(.down))
            let w = weights(real - Double(base))
            let idx = (-1...2).map { min(max(base + $0, 0), input - 1) }
            return (idx, w)
        }
    }

    /// Resizes a `h × w × c` grid (row-major, channels innermost) by `scale` on both axes.
    static func resize(_ src: [Float], h: Int, w: Int, c: Int, scale: Double) -> (values: [Float], h: Int, w: Int) {
        let oh = outputSize(h, scale: scale), ow = outputSize(w, scale: scale)
        let rows = taps(input: h, output: oh, scale: scale)
        let cols = taps(input: w, output: ow, scale: scale)
        var out = [Float](repeating: 0, count: oh * ow * c)
        var acc = [Double](repeating: 0, count: c)
        for y in 0..<oh {
            for x in 0..<ow {
                for ch in 0..<c { acc[ch] = 0 }
                for (i, sy) in rows[y].index.enumerated() {
                    for (j, sx) in cols[x].index.enumerated() {
                        let wgt = rows[y].weight[i] * cols[x].weight[j]
                        let base = (sy * w + sx) * c
                        for ch in 0..<c { acc[ch] += wgt * Double(src[base + ch]) }
                    }
                }
                let o = (y * ow + x) * c
                for ch in 0..<c { out[o + ch] = Float(acc[ch]) }
            }
        }
        return (out, oh, ow)
    }
}
