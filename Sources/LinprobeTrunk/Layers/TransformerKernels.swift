import CLinprobeTrunkKernels
import Foundation
import LinprobeBLAS
import LinprobeCore

// Row-wise kernels of the transformer trunks, on token-major activations (`rows × dim`, one
// token per row, features innermost). The compute-bound parts — linear layers and the two
// attention products — are OpenBLAS `sgemm`; these are the memory-bound steps around them.

@inline(__always) private func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
}

@inline(__always) private func store4(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self)
}

/// A linear layer `y = x·Wᵀ + b` with PyTorch's `nn.Linear` weight layout `[out, in]`.
public struct LinearLayer: @unchecked Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    /// `[out, in]`, row-major.
    let weight: FloatBuffer
    let bias: FloatBuffer?

    init(weight: [Float], bias: [Float]?, outFeatures: Int, inFeatures: Int) {
        precondition(weight.count == outFeatures * inFeatures, "linear weight size")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.weight = FloatBuffer(weight)
        self.bias = bias.map { FloatBuffer($0) }
    }

    /// `y[r, :] = x[r, :]·Wᵀ + b` for `rows` rows (`y` may not alias `x`).
    func forward(_ x: UnsafePointer<Float>, rows: Int, _ y: UnsafeMutablePointer<Float>) {
        BLAS.sgemm(
            .none, .transpose, m: rows, n: outFeatures, k: inFeatures, a: x, b: weight.pointer, c: y)
        if let bias { TransformerKernels.addRowVector(y, rows: rows, dim: outFeatures, bias.pointer) }
    }

    /// `y[r, :] += x[r, :]·Wᵀ + b` (the residual connections).
    func accumulate(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        BLAS.sgemm(
            .none, .transpose, m: rows, n: outFeatures, k: inFeatures, a: x, b: weight.pointer, beta: 1, c: y)
        if let bias { TransformerKernels.addRowVector(y, rows: rows, dim: outFeatures, bias.pointer) }
    }
}

/// PyTorch's `nn.LayerNorm(dim, eps)` with affine parameters (biased variance).
public struct LayerNormLayer: @unchecked Sendable {
    public let dim: Int
    public let eps: Float
    let weight: FloatBuffer
    let bias: FloatBuffer

    init(weight: [Float], bias: [Float], eps: Float = 1e-6) {
        precondition(weight.count == bias.count, "layer norm sizes")
        self.dim = weight.count
        self.eps = eps
        self.weight = FloatBuffer(weight)
        self.bias = FloatBuffer(bias)
    }

    /// Normalises `rows` rows of `src` into `dst` (they may be the same buffer); `srcStride` and
    /// `dstStride` are the row strides (default: `dim`).
    func forward(
        _ src: UnsafePointer<Float>, rows: Int, _ dst: UnsafeMutablePointer<Float>, srcStride: Int? = nil,
        dstStride: Int? = nil
    ) {
        let ss = srcStride ?? dim, ds = dstStride ?? dim
        for r in 0..<rows {
            TransformerKernels.layerNormRow(
                src + r * ss, dst + r * ds, dim: dim, weight: weight.pointer, bias: bias.pointer, eps: eps)
        }
    }
}

enum TransformerKernels {
    /// `c[r, :] += v` for `rows` rows of `dim`.
    static func addRowVector(_ c: UnsafeMutablePointer<Float>, rows: Int, dim: Int, _ v: UnsafePointer<Float>) {
        let vectorEnd = dim & ~3
        for r in 0..<rows {
            let row = c + r * dim
            var j = 0
            while j < vectorEnd {
                store4(load4(row + j) + load4(v + j), row + j)
                j += 4
            }
            while j < dim {
                row[j] += v[j]
                j += 1
            }
        }
    }

    /// One LayerNorm row: mean and biased variance in two passes (float accumulation per lane,
    /// summed in double), then `(x − μ)/√(σ² + ε)·γ + β`.
    @inline(__always)
    static func layerNormRow(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, dim: Int, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>, eps: Float
    ) {
        let vectorEnd = dim & ~3
        var acc = SIMD4<Float>(repeating: 0)
        var j = 0
        while j < vectorEnd {
            acc += load4(x + j)
            j += 4
        }
        var sum = Double(acc[0]) + Double(acc[1]) + Double(acc[2]) + Double(acc[3])
        while j < dim {
            sum += Double(x[j])
            j += 1
        }
        let mean = Float(sum / Double(dim))
        let m4 = SIMD4<Float>(repeating: mean)
        acc = SIMD4<Float>(repeating: 0)
        j = 0
        while j < vectorEnd {
            let d = load4(x + j) - m4
            acc += d * d
            j += 4
        }
        var sq = Double(acc[0]) + Double(acc[1]) + Double(acc[2]) + Double(acc[3])
        while j < dim {
            let d = x[j] - mean
            sq += Double(d * d)
            j += 1
        }
        let inv = Float(1 / (sq / Double(dim) + Double(eps)).squareRoot())
        let i4 = SIMD4<Float>(repeating: inv)
        j = 0
        while j < vectorEnd {
            store4((load4(x + j) - m4) * i4 * load4(weight + j) + load4(bias + j), y + j)
            j += 4
        }
        while j < dim {
            y[j] = (x[j] - mean) * inv * weight[j] + bias[j]
            j += 1
        }
    }

    /// The AVX-512 (2) or AVX2+FMA (1) C kernels' level on this CPU; 0 runs the Swift SIMD4 ones.
    static let simdLevel = Int(lp_trunk_simd_level())

    /// Exact GELU, `x·Φ(x) = x/2·(1 + erf(x/√2))` (PyTorch's `nn.GELU()` default), in place.
    static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        if simdLevel > 0 { return lp_gelu_f32(x, count) }
        portableGelu(x, count: count)
    }

    /// `gelu` on 4-wide SIMD, for CPUs without AVX2.
    static func portableGelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let vectorEnd = count & ~3
        var j = 0
        while j < vectorEnd {
            let v = load4(x + j)
            store4(0.5 * v * (1 + Self.erf4(v * 0.707_106_781_186_547_5)), x + j)
            j += 4
        }
        while j < count {
            let v = x[j]
            x[j] = 0.5 * v * (1 + Self.erf4(SIMD4(repeating: v * 0.707_106_781_186_547_5))[0])
            j += 1
        }
    }

    /// erf through the complementary error function's Chebyshev-fitted form
    /// `erfc(z) ≈ t·exp(−z² + P(t))`, `t = 1/(1 + z/2)` (fractional error below 1.2e-7 for all z).
    @inline(__always)
    static func erf4(_ x: SIMD4<Float>) -> SIMD4<Float> {
        // Numerical Recipes' erfc approximation (fractional error < 1.2e-7 everywhere).
        let z = x.replacing(with: -x, where: x .< 0)
        let t = 1 / (1 + 0.5 * z)
        var p = SIMD4<Float>(repeating: 0.170_872_77)
        p = p * t + -0.822_152_23
        p = p * t + 1.488_515_87
        p = p * t + -1.135_203_98
        p = p * t + 0.278_868_07
        p = p * t + -0.186_288_06
        p = p * t + 0.096_784_18
        p = p * t + 0.374_091_96
        p = p * t + 1.000_023_68
        p = p * t + -1.265_512_23
        let erfc = t * exp4(p - z * z)
        let r = 1 - erfc
        return r.replacing(with: -r, where: x .< 0)
    }

    /// e^x for float lanes (Cephes-style range reduction, degree-6 polynomial; relative error
    /// ~2e-7 over the float range; underflows to 0 below −87.3).
    @inline(__always)
    static func exp4(_ x: SIMD4<Float>) -> SIMD4<Float> {
        // Two selects rather than `clamped`, whose pointwise min/max are calls, not instructions.
        let low = SIMD4<Float>(repeating: -87.3), high = SIMD4<Float>(repeating: 88.3)
        let clamped = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
        let n = (clamped * 1.442_695_04 + 0.5).rounded(.down)
        // x − n·ln2 in two steps for accuracy.
        var r = clamped - n * 0.693_359_375
        r = r - n * -2.121_944_4e-4
        var p = SIMD4<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_6e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_1e-1
        p = p * r * r + r + 1
        // n is integral and within [−126, 128]: adding 1.5·2²³ puts it in the low mantissa bits, so
        // the bit pattern minus 0x4B40_0000 is n as an integer (the generic SIMD Float→Int32
        // initialiser is not vectorised and cost a fifth of a ViT forward pass).
        let integral = unsafeBitCast(n + 12_582_912, to: SIMD4<Int32>.self) &- 0x4B40_0000
        let bits = (integral &+ 127) &<< 23
        let scale = unsafeBitCast(bits, to: SIMD4<Float>.self)
        let out = p * scale
        return out.replacing(with: 0, where: x .< -87.3)
    }

    /// Row softmax of `rows × cols` logits (row stride `stride`), each scaled by `scale` first:
    /// `softmax(scale · row)` with the row maximum subtracted, in place.
    static func softmaxRows(_ a: UnsafeMutablePointer<Float>, rows: Int, cols: Int, scale: Float) {
        if simdLevel > 0 { return lp_softmax_rows_f32(a, rows, cols, scale) }
        portableSoftmaxRows(a, rows: rows, cols: cols, scale: scale)
    }

    /// `softmaxRows` on 4-wide SIMD, for CPUs without AVX2.
    static func portableSoftmaxRows(_ a: UnsafeMutablePointer<Float>, rows: Int, cols: Int, scale: Float) {
        let vectorEnd = cols & ~3
        let s4 = SIMD4<Float>(repeating: scale)
        for r in 0..<rows {
            let row = a + r * cols
            var m4 = SIMD4<Float>(repeating: -.infinity)
            var j = 0
            while j < vectorEnd {
                let v = load4(row + j)
                m4 = m4.replacing(with: v, where: v .> m4)
                j += 4
            }
            var m = m4.max()
            while j < cols {
                m = max(m, row[j])
                j += 1
            }
            let shift = SIMD4<Float>(repeating: m * scale)
            var acc = SIMD4<Float>(repeating: 0)
            j = 0
            while j < vectorEnd {
                let e = exp4(load4(row + j) * s4 - shift)
                store4(e, row + j)
                acc += e
                j += 4
            }
            var sum = acc.sum()
            while j < cols {
                let e = exp4(SIMD4(repeating: row[j] * scale - m * scale))[0]
                row[j] = e
                sum += e
                j += 1
            }
            let inv = SIMD4<Float>(repeating: 1 / sum)
            j = 0
            while j < vectorEnd {
                store4(load4(row + j) * inv, row + j)
                j += 4
            }
            while j < cols {
                row[j] *= inv[0]
                j += 1
            }
        }
    }

    /// Multi-head self-attention of one image's `tokens` rows from the fused `qkv` rows
    /// (`[q(all heads) ; k ; v]`, head-major inside each, as timm/VISSL lay them out), written to
    /// `out` (`tokens × dim`, heads concatenated). Per head: logits = scale·Q·Kᵀ (sgemm on the
    /// strided qkv rows), + `bias` (BEiT's relative position bias), softmax, out_h = A·V. `logits` holds `tokens²` floats.
    static func attention(
        qkv: UnsafePointer<Float>, tokens: Int, dim: Int, heads: Int, scale: Float,
        logits: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
        bias: ((_ head: Int, _ logits: UnsafeMutablePointer<Float>) -> Void)? = nil
    ) {
        let hd = dim / heads
        let stride = 3 * dim
        for h in 0..<heads {
            let q = qkv + h * hd
            let k = qkv + dim + h * hd
            let v = qkv + 2 * dim + h * hd
            BLAS.sgemm(
                .none, .transpose, m: tokens, n: tokens, k: hd, alpha: scale, a: q, lda: stride, b: k, ldb: stride,
                c: logits)
            bias?(h, logits)
            softmaxRows(logits, rows: tokens, cols: tokens, scale: 1)
            BLAS.sgemm(
                .none, .none, m: tokens, n: hd, k: tokens, a: logits, b: v, ldb: stride, c: out + h * hd, ldc: dim)
        }
    }
}
