/// Vectorised element-wise kernels of the heads (SIMD16 over contiguous floats, scalar tails).
/// Everything here is memory-bound; the GEMMs go through OpenBLAS.
enum Kernels {
    typealias V = SIMD16<Float>
    static let width = 16

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ i: Int) -> V {
        UnsafeRawPointer(p + i).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V.self)
    }

    /// Column sums of an `n × d` row-major block over columns `cols`: `out[j] = Σ_i x[i, j]`.
    static func columnSums(
        _ x: UnsafePointer<Float>, n: Int, d: Int, cols: Range<Int>, into out: UnsafeMutablePointer<Float>
    ) {
        var j = cols.lowerBound
        while j + width <= cols.upperBound {
            var acc = V(repeating: 0)
            for i in 0..<n { acc += load(x, i * d + j) }
            store(acc, out, j)
            j += width
        }
        while j < cols.upperBound {
            var acc: Float = 0
            for i in 0..<n { acc += x[i * d + j] }
            out[j] = acc
            j += 1
        }
    }

    /// `out[j] = Σ_i (x[i, j] − mean[j])²` over columns `cols`.
    static func columnSquaredDeviations(
        _ x: UnsafePointer<Float>, n: Int, d: Int, mean: UnsafePointer<Float>, cols: Range<Int>,
        into out: UnsafeMutablePointer<Float>
    ) {
        var j = cols.lowerBound
        while j + width <= cols.upperBound {
            var acc = V(repeating: 0)
            let m = load(mean, j)
            for i in 0..<n {
                let t = load(x, i * d + j) - m
                acc += t * t
            }
            store(acc, out, j)
            j += width
        }
        while j < cols.upperBound {
            var acc: Float = 0
            for i in 0..<n {
                let t = x[i * d + j] - mean[j]
                acc += t * t
            }
            out[j] = acc
            j += 1
        }
    }

    /// Per column affine map of rows `rows`: `xhat = (x − shift) · scale`, `y = xhat · gamma + beta`
    /// (xhat may be nil when only `y` is needed).
    static func normalize(
        _ x: UnsafePointer<Float>, d: Int, rows: Range<Int>, shift: UnsafePointer<Float>, scale: UnsafePointer<Float>,
        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
        xhat: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>
    ) {
        for i in rows {
            let base = i * d
            var j = 0
            while j + width <= d {
                let h = (load(x, base + j) - load(shift, j)) * load(scale, j)
                if let xhat { store(h, xhat, base + j) }
                store(h * load(gamma, j) + load(beta, j), y, base + j)
                j += width
            }
            while j < d {
                let h = (x[base + j] - shift[j]) * scale[j]
                xhat?[base + j] = h
                y[base + j] = h * gamma[j] + beta[j]
                j += 1
            }
        }
    }

    /// Eval-mode BatchNorm as PyTorch computes it: `y = x · alpha + offset`.
    static func affine(
        _ x: UnsafePointer<Float>, d: Int, rows: Range<Int>, alpha: UnsafePointer<Float>, offset: UnsafePointer<Float>,
        y: UnsafeMutablePointer<Float>
    ) {
        for i in rows {
            let base = i * d
            var j = 0
            while j + width <= d {
                store(load(x, base + j) * load(alpha, j) + load(offset, j), y, base + j)
                j += width
            }
            while j < d {
                y[base + j] = x[base + j] * alpha[j] + offset[j]
                j += 1
            }
        }
    }

    /// SGD step over a contiguous block (torch.optim.SGD, dampening 0):
    /// `g += wd·w; m = μ·m + g; w −= lr·(nesterov ? g + μ·m : m)`.
    static func sgd(
        w: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>, count: Int,
        lr: Float, wd: Float, mu: Float, nesterov: Bool
    ) {
        var j = 0
        let vlr = V(repeating: lr), vwd = V(repeating: wd), vmu = V(repeating: mu)
        while j + width <= count {
            let wv = load(w, j)
            let gv = load(g, j) + vwd * wv
            let mv = vmu * load(m, j) + gv
            store(mv, m, j)
            let step = nesterov ? gv + vmu * mv : mv
            store(wv - vlr * step, w, j)
            j += width
        }
        while j < count {
            let wv = w[j]
            let gv = g[j] + wd * wv
            let mv = mu * m[j] + gv
            m[j] = mv
            w[j] = wv - lr * (nesterov ? gv + mu * mv : mv)
            j += 1
        }
    }

    /// The first Linear layer's update, fused with its gradient and with the gradients of the
    /// BatchNorm that feeds it.
    ///
    /// With `y = γ·x̂ + β` (per input column) the weight gradient is `dZᵀ·y = γ ∘ G + β ⊗ s`
    /// where `G = dZᵀ·x̂` (one GEMM) and `s = Σ_rows dZ` (the bias gradient). The BN parameter
    /// gradients need `dY = dZ·W`, a second GEMM, but only through
    /// `dγ_c = Σ_{k, j∈c} W[k, j]·G[k, j]` and `dβ_c = Σ_{k, j∈c} W[k, j]·s[k]`, which this pass
    /// accumulates per column (`accG`, `accW`) from the weights before they change.
    /// Rows `rows` of the `out × d` weight matrix are processed.
    static func firstLayerUpdate(
        w: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>, d: Int,
        rows: Range<Int>,
        s: UnsafePointer<Float>, gammaCol: UnsafePointer<Float>?, betaCol: UnsafePointer<Float>?,
        accG: UnsafeMutablePointer<Float>?, accW: UnsafeMutablePointer<Float>?,
        lr: Float, wd: Float, mu: Float, nesterov: Bool
    ) {
        let vlr = V(repeating: lr), vwd = V(repeating: wd), vmu = V(repeating: mu)
        for k in rows {
            let base = k * d
            let sk = s[k]
            let vs = V(repeating: sk)
            var j = 0
            if let gammaCol, let betaCol, let accG, let accW {
                while j + width <= d {
                    let wv = load(w, base + j)
                    let gp = load(gradient, base + j)
                    store(load(accG, j) + wv * gp, accG, j)
                    store(load(accW, j) + wv * vs, accW, j)
                    let gv = load(gammaCol, j) * gp + load(betaCol, j) * vs + vwd * wv
                    let mv = vmu * load(m, base + j) + gv
                    store(mv, m, base + j)
                    store(wv - vlr * (nesterov ? gv + vmu * mv : mv), w, base + j)
                    j += width
                }
                while j < d {
                    let wv = w[base + j]
                    let gp = gradient[base + j]
                    accG[j] += wv * gp
                    accW[j] += wv * sk
                    let gv = gammaCol[j] * gp + betaCol[j] * sk + wd * wv
                    let mv = mu * m[base + j] + gv
                    m[base + j] = mv
                    w[base + j] = wv - lr * (nesterov ? gv + mu * mv : mv)
                    j += 1
                }
            } else {
                sgd(w: w + base, g: gradient + base, m: m + base, count: d, lr: lr, wd: wd, mu: mu, nesterov: nesterov)
            }
        }
    }
}
