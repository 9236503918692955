import Foundation

/// PyTorch's `nn.LocalResponseNorm(size, alpha, beta, k)` on NHWC maps (channels contiguous):
/// `b_c = a_c / (k + alpha/size · Σ_{c' ∈ window(c)} a_{c'}²)^beta`, the window running from
/// `c − size/2` to `c + (size−1)/2` with zero padding beyond the channels — and divided by
/// `size` even at the edges (PyTorch averages over the zero-padded window).
struct LocalResponseNorm: Sendable, Equatable {
    var size = 5
    var alpha: Double = 1e-4
    var beta: Double = 0.75
    var k: Double = 1

    /// Normalises `pixels` rows of `c` channels from `src` into `dst` (may not alias).
    /// `squares` holds `c` floats of scratch.
    func apply(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, pixels: Int, c: Int,
        squares: UnsafeMutablePointer<Float>
    ) {
        let before = size / 2, after = (size - 1) / 2
        let scale = Float(alpha / Double(size)), kk = Float(k), bb = Float(beta)
        for p in 0..<pixels {
            let x = src + p * c, y = dst + p * c
            for j in 0..<c { squares[j] = x[j] * x[j] }
            for j in 0..<c {
                var sum: Float = 0
                for i in max(0, j - before)...min(c - 1, j + after) { sum += squares[i] }
                y[j] = x[j] / powf(kk + scale * sum, bb)
            }
        }
    }
}
