import CLinprobeTrunkKernels
import Foundation

// Memory-bound kernels around the GEMMs, on NHWC float32 activations (channels innermost,
// so every inner loop runs over contiguous channels). The compute-bound part — every
// convolution — is OpenBLAS `sgemm` (see `Convolution.swift`).

// Vector code uses SIMD4<Float>, which maps one-to-one onto the baseline x86-64 SSE registers
// (wider Swift SIMD types are split and, for some operations, scalarised without AVX).
@inline(__always) private func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
}

@inline(__always) private func store4(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self)
}

enum Kernels {
    /// `c[r, :] = relu?(c[r, :] + bias [+ residual[r, :]])` for `rows` rows of `channels` (the C
    /// kernel at this CPU's vector width; ReLU maps x < 0 to 0 and keeps −0 and NaN).
    static func biasActivation(
        _ c: UnsafeMutablePointer<Float>, rows: Int, channels: Int, bias: UnsafePointer<Float>,
        residual: UnsafePointer<Float>?, relu: Bool
    ) {
        lp_bias_activation_f32(c, rows, channels, bias, residual, relu ? 1 : 0)
    }

    /// Image batch NCHW → NHWC (`n` images of `c`×`h`×`w`).
    static func nchwToNHWC(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int, c: Int, h: Int, w: Int
    ) {
        let hw = h * w
        for i in 0..<n {
            let s = src + i * c * hw
            let d = dst + i * c * hw
            for p in 0..<hw {
                for ch in 0..<c { d[p * c + ch] = s[ch * hw + p] }
            }
        }
    }

    /// Max pool on NHWC maps (`n` images of `h`×`w`×`c`) into NHWC output of `oh`×`ow`, with
    /// padding treated as −∞ (PyTorch `MaxPool2d`).
    static func maxPoolNHWC(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int, h: Int, w: Int, c: Int,
        kernel: Int, stride: Int, pad: Int, oh: Int, ow: Int
    ) {
        for i in 0..<n {
            let s = src + i * h * w * c
            let d = dst + i * oh * ow * c
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let out = d + (oy * ow + ox) * c
                    out.update(repeating: -.infinity, count: c)
                    for ky in 0..<kernel {
                        let iy = oy * stride - pad + ky
                        if iy < 0 || iy >= h { continue }
                        for kx in 0..<kernel {
                            let ix = ox * stride - pad + kx
                            if ix < 0 || ix >= w { continue }
                            maxInto(out, s + (iy * w + ix) * c, c)
                        }
                    }
                }
            }
        }
    }

    /// `out = max(out, x)` elementwise, NaN propagating (as PyTorch's max pool).
    @inline(__always) static func maxInto(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ c: Int) {
        let vectorEnd = c & ~3
        var j = 0
        while j < vectorEnd {
            let a = load4(out + j), b = load4(x + j)
            // Take b where b > a or b is NaN.
            store4(a.replacing(with: b, where: (b .> a) .| (b .!= b)), out + j)
            j += 4
        }
        while j < c {
            let b = x[j]
            if b > out[j] || b.isNaN { out[j] = b }
            j += 1
        }
    }

    /// `out += x` elementwise.
    @inline(__always) static func addInto(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ c: Int) {
        let vectorEnd = c & ~3
        var j = 0
        while j < vectorEnd {
            store4(load4(out + j) + load4(x + j), out + j)
            j += 4
        }
        while j < c {
            out[j] += x[j]
            j += 1
        }
    }

    /// Applies a pool op to one NHWC image (`h`×`w`×`c`) and writes the result flattened in
    /// NCHW order (c·OH·OW + y·OW + x) to `dst`. `scratch` holds `oh·ow·c` floats.
    static func pool(
        _ op: PoolOp, _ src: UnsafePointer<Float>, h: Int, w: Int, c: Int, oh: Int, ow: Int,
        dst: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        switch op {
        case .identity:
            transposeToCHW(src, dst, hw: h * w, c: c)
            return
        case let .avgPool(k, s, p, _, countIncludePad, divisorOverride):
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let out = scratch + (oy * ow + ox) * c
                    var y0 = oy * s.h - p.h, x0 = ox * s.w - p.w
                    var y1 = min(y0 + k.h, h + p.h), x1 = min(x0 + k.w, w + p.w)
                    let poolSize = (y1 - y0) * (x1 - x0)
                    y0 = max(y0, 0); x0 = max(x0, 0); y1 = min(y1, h); x1 = min(x1, w)
                    if y0 >= y1 || x0 >= x1 {
                        out.update(repeating: 0, count: c)
                        continue
                    }
                    lp_window_sum_f32(src, w, c, y0, y1, x0, x1, out)
                    let divisor = divisorOverride ?? (countIncludePad ? poolSize : (y1 - y0) * (x1 - x0))
                    divide(out, c, Float(divisor))
                }
            }
        case let .maxPool(k, s, p, d, _):
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let out = scratch + (oy * ow + ox) * c
                    out.update(repeating: -.infinity, count: c)
                    for ky in 0..<k.h {
                        let iy = oy * s.h - p.h + ky * d.h
                        if iy < 0 || iy >= h { continue }
                        for kx in 0..<k.w {
                            let ix = ox * s.w - p.w + kx * d.w
                            if ix < 0 || ix >= w { continue }
                            maxInto(out, src + (iy * w + ix) * c, c)
                        }
                    }
                }
            }
        case .adaptiveAvgPool, .adaptiveMaxPool:
            let isMax: Bool
            if case .adaptiveMaxPool = op { isMax = true } else { isMax = false }
            for oy in 0..<oh {
                let y0 = (oy * h) / oh, y1 = ((oy + 1) * h + oh - 1) / oh
                for ox in 0..<ow {
                    let x0 = (ox * w) / ow, x1 = ((ox + 1) * w + ow - 1) / ow
                    let out = scratch + (oy * ow + ox) * c
                    if isMax {
                        out.update(repeating: -.infinity, count: c)
                        for iy in y0..<y1 {
                            for ix in x0..<x1 { maxInto(out, src + (iy * w + ix) * c, c) }
                        }
                    } else {
                        lp_window_sum_f32(src, w, c, y0, y1, x0, x1, out)
                        divide(out, c, Float((y1 - y0) * (x1 - x0)))
                    }
                }
            }
        }
        transposeToCHW(scratch, dst, hw: oh * ow, c: c)
    }

    /// `p[j] /= divisor` (PyTorch computes averages as sum / count).
    @inline(__always) static func divide(_ p: UnsafeMutablePointer<Float>, _ c: Int, _ divisor: Float) {
        for j in 0..<c { p[j] /= divisor }
    }

    /// `hw`×`c` (pixel-major) → `c`×`hw` (channel-major).
    static func transposeToCHW(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, hw: Int, c: Int) {
        if hw == 1 {
            dst.update(from: src, count: c)
            return
        }
        // Blocked to keep both sides in cache for large maps.
        let block = 32
        var p0 = 0
        while p0 < hw {
            let p1 = min(p0 + block, hw)
            var c0 = 0
            while c0 < c {
                let c1 = min(c0 + block, c)
                for ch in c0..<c1 {
                    let d = dst + ch * hw
                    for p in p0..<p1 { d[p] = src[p * c + ch] }
                }
                c0 = c1
            }
            p0 = p1
        }
    }

    /// Global average over `hw` pixels of an NHWC image into `c` values.
    static func globalAverage(_ src: UnsafePointer<Float>, hw: Int, c: Int, dst: UnsafeMutablePointer<Float>) {
        dst.update(repeating: 0, count: c)
        for p in 0..<hw { addInto(dst, src + p * c, c) }
        let divisor = Float(hw)
        for j in 0..<c { dst[j] /= divisor }
    }
}
