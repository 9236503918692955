import Foundation

/// PIL's resampling filters (torchvision's `InterpolationMode`s on PIL images).
public enum ResampleFilter: String, Sendable, Codable, CaseIterable {
    case nearest, bilinear, bicubic, lanczos, box, hamming

    /// torchvision accepts PIL's integer constants: 0 nearest, 1 lanczos, 2 bilinear,
    /// 3 bicubic, 4 box, 5 hamming.
    public init?(pilCode: Int) {
        switch pilCode {
        case 0: self = .nearest
        case 1: self = .lanczos
        case 2: self = .bilinear
        case 3: self = .bicubic
        case 4: self = .box
        case 5: self = .hamming
        default: return nil
        }
    }

    public var pilCode: Int {
        switch self {
        case .nearest: return 0
        case .lanczos: return 1
        case .bilinear: return 2
        case .bicubic: return 3
        case .box: return 4
        case .hamming: return 5
        }
    }

    /// Support radius at scale 1 (Pillow's `struct filter`).
    var support: Double {
        switch self {
        case .nearest, .box: return 0.5
        case .bilinear, .hamming: return 1
        case .bicubic: return 2
        case .lanczos: return 3
        }
    }

    /// The kernel, written as Pillow's `Resample.c` evaluates it (same operation order).
    @inline(__always)
    func weight(_ x0: Double) -> Double {
        switch self {
        case .nearest, .box:
            return x0 > -0.5 && x0 <= 0.5 ? 1 : 0
        case .bilinear:
            let x = x0 < 0 ? -x0 : x0
            return x < 1 ? 1 - x : 0
        case .hamming:
            var x = x0 < 0 ? -x0 : x0
            if x == 0 { return 1 }
            if x >= 1 { return 0 }
            x *= Double.pi
            return sin(x) / x * (Double(Float(0.54)) + Double(Float(0.46)) * cos(x))
        case .bicubic:
            let a = -0.5
            let x = x0 < 0 ? -x0 : x0
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            guard -3 <= x0 && x0 < 3 else { return 0 }
            return Self.sinc(x0) * Self.sinc(x0 / 3)
        }
    }

    private static func sinc(_ x0: Double) -> Double {
        if x0 == 0 { return 1 }
        let x = x0 * Double.pi
        return sin(x) / x
    }
}

/// Fixed-point resampling coefficients for one axis, exactly as Pillow's `precompute_coeffs`
/// followed by `normalize_coeffs_8bpc` (22 fractional bits), for a run of output positions.
struct AxisCoefficients {
    /// Taps per output position (Pillow's `ksize`).
    var ksize = 0
    /// First input index and tap count, per output position of the run.
    var first: [Int32] = []
    var count: [Int32] = []
    /// `ksize` weights per output position.
    var weights: [Int32] = []

    static let precisionBits: Int32 = 32 - 8 - 2

    /// Coefficients for outputs `outRange` of a resize of `inSize` samples to `outSize`.
    mutating func compute(inSize: Int, outSize: Int, outRange: Range<Int>, filter: ResampleFilter) {
        let scale = Double(Float(inSize)) / Double(outSize)
        let filterscale = max(scale, 1)
        let support = filter.support * filterscale
        ksize = Int(support.rounded(.up)) * 2 + 1
        let n = outRange.count
        first.removeAll(keepingCapacity: true)
        count.removeAll(keepingCapacity: true)
        weights.removeAll(keepingCapacity: true)
        first.reserveCapacity(n)
        count.reserveCapacity(n)
        weights.reserveCapacity(n * ksize)
        let invFilterscale = 1.0 / filterscale
        var k = [Double](repeating: 0, count: ksize)
        for xx in outRange {
            let center = 0.0 + (Double(xx) + 0.5) * scale
            var xmin = Int(center - support + 0.5)
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            var ww = 0.0
            for x in 0..<xmax {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * invFilterscale)
                k[x] = w
                ww += w
            }
            if ww != 0 {
                for x in 0..<xmax { k[x] /= ww }
            }
            for x in 0..<ksize {
                let v = x < max(xmax, 0) ? k[x] : 0
                let scaled = v * Double(1 << Self.precisionBits)
                weights.append(v < 0 ? Int32(-0.5 + scaled) : Int32(0.5 + scaled))
            }
            first.append(Int32(xmin))
            count.append(Int32(max(xmax, 0)))
        }
    }
}

@inline(__always) private func clipFixed(_ ss: Int32) -> UInt8 {
    let v = ss >> AxisCoefficients.precisionBits
    return UInt8(truncatingIfNeeded: v < 0 ? 0 : (v > 255 ? 255 : v))
}

/// A view of 8-bit RGB pixels: `width`×`height` starting at `base`, rows `rowBytes` apart.
struct PixelRegion {
    var base: UnsafePointer<UInt8>
    var width: Int
    var height: Int
    var rowBytes: Int
}

/// Reusable buffers of one resampler (one per worker).
struct Resampler {
    private var horizontal = AxisCoefficients()
    private var vertical = AxisCoefficients()
    private let temp = ScratchBuffer()

    /// Writes the part `window` (in output coordinates, inside `0..<outW × 0..<outH`) of
    /// `Image.resize((outW, outH), filter)` of the image `src` to `dst` (rows `dstRowBytes` apart).
    ///
    /// Pillow resizes horizontally first into an 8-bit intermediate image of the source rows the
    /// vertical pass needs, then vertically; each pass is skipped when that dimension keeps its
    /// size. Computing only the window gives the same pixels as computing everything and cropping.
    mutating func resize(_ src: PixelRegion, outW: Int, outH: Int, filter: ResampleFilter,
                         window: (x: Int, y: Int, w: Int, h: Int),
                         into dst: UnsafeMutablePointer<UInt8>, dstRowBytes: Int) {
        guard window.w > 0, window.h > 0 else { return }
        if src.width == outW && src.height == outH {
            // Image.resize returns a copy when the size does not change.
            for y in 0..<window.h {
                (dst + y * dstRowBytes).update(from: src.base + (window.y + y) * src.rowBytes + window.x * 3, count: window.w * 3)
            }
            return
        }
        if filter == .nearest {
            nearest(src, outW: outW, outH: outH, window: window, into: dst, dstRowBytes: dstRowBytes)
            return
        }
        let needH = outW != src.width
        let needV = outH != src.height
        // Source rows the vertical pass reads.
        var rowLo = window.y, rowHi = window.y + window.h
        if needV {
            vertical.compute(inSize: src.height, outSize: outH, outRange: window.y..<(window.y + window.h), filter: filter)
            rowLo = Int(vertical.first[0])
            rowHi = Int(vertical.first[window.h - 1] + vertical.count[window.h - 1])
            for i in 0..<window.h {
                rowLo = min(rowLo, Int(vertical.first[i]))
                rowHi = max(rowHi, Int(vertical.first[i] + vertical.count[i]))
            }
        }
        // Horizontal pass (or a view of the source columns) → intermediate rows rowLo..<rowHi,
        // then the vertical pass (or a copy) into `dst`.
        if needH {
            horizontal.compute(inSize: src.width, outSize: outW, outRange: window.x..<(window.x + window.w), filter: filter)
            let rows = rowHi - rowLo
            let need = rows * window.w * 3
            let t = temp.reserve(need)
            let w = window.w, ksize = horizontal.ksize
            let coefficients = horizontal
            do {
                coefficients.weights.withUnsafeBufferPointer { kk in
                    coefficients.first.withUnsafeBufferPointer { firsts in
                        coefficients.count.withUnsafeBufferPointer { counts in
                            for r in 0..<rows {
                                let line = src.base + (rowLo + r) * src.rowBytes
                                let out = t + r * w * 3
                                for xx in 0..<w {
                                    let k = kk.baseAddress! + xx * ksize
                                    let p = line + Int(firsts[xx]) * 3
                                    var s0: Int32 = 1 << (AxisCoefficients.precisionBits - 1)
                                    var s1 = s0, s2 = s0
                                    for x in 0..<Int(counts[xx]) {
                                        let c = k[x]
                                        s0 &+= Int32(p[3 * x]) &* c
                                        s1 &+= Int32(p[3 * x + 1]) &* c
                                        s2 &+= Int32(p[3 * x + 2]) &* c
                                    }
                                    out[3 * xx] = clipFixed(s0)
                                    out[3 * xx + 1] = clipFixed(s1)
                                    out[3 * xx + 2] = clipFixed(s2)
                                }
                            }
                        }
                    }
                }
                let mid = PixelRegion(base: UnsafePointer(t), width: w, height: rows, rowBytes: w * 3)
                verticalPass(mid, rowLo: rowLo, needV: needV, window: window, into: dst, dstRowBytes: dstRowBytes)
            }
        } else {
            let mid = PixelRegion(base: src.base + rowLo * src.rowBytes + window.x * 3, width: window.w,
                                  height: rowHi - rowLo, rowBytes: src.rowBytes)
            verticalPass(mid, rowLo: rowLo, needV: needV, window: window, into: dst, dstRowBytes: dstRowBytes)
        }
    }

    private func verticalPass(_ mid: PixelRegion, rowLo: Int, needV: Bool, window: (x: Int, y: Int, w: Int, h: Int),
                              into dst: UnsafeMutablePointer<UInt8>, dstRowBytes: Int) {
        let rowBytesOut = window.w * 3
        guard needV else {
            for yy in 0..<window.h {
                (dst + yy * dstRowBytes).update(from: mid.base + (window.y + yy - rowLo) * mid.rowBytes, count: rowBytesOut)
            }
            return
        }
        let ksize = vertical.ksize
        vertical.weights.withUnsafeBufferPointer { kk in
            for yy in 0..<window.h {
                let k = kk.baseAddress! + yy * ksize
                let y0 = Int(vertical.first[yy]) - rowLo
                let taps = Int(vertical.count[yy])
                let out = dst + yy * dstRowBytes
                let top = mid.base + y0 * mid.rowBytes
                for i in 0..<rowBytesOut {
                    var s: Int32 = 1 << (AxisCoefficients.precisionBits - 1)
                    var p = top + i
                    for y in 0..<taps {
                        s &+= Int32(p.pointee) &* k[y]
                        p += mid.rowBytes
                    }
                    out[i] = clipFixed(s)
                }
            }
        }
    }

    /// PIL's NEAREST resize: `ImagingScaleAffine` with `a = [w/outW, 0, 0, 0, h/outH, 0]`,
    /// positions accumulated by repeated addition from the pixel centre, truncated.
    private func nearest(_ src: PixelRegion, outW: Int, outH: Int, window: (x: Int, y: Int, w: Int, h: Int),
                         into dst: UnsafeMutablePointer<UInt8>, dstRowBytes: Int) {
        let a0 = Double(Float(src.width)) / Double(outW)
        let a4 = Double(Float(src.height)) / Double(outH)
        var xs = [Int](repeating: -1, count: outW)
        var xo = a0 * 0.5
        for x in 0..<outW {
            let xin = xo < 0 ? -1 : Int(xo)
            if xin >= 0 && xin < src.width { xs[x] = xin }
            xo += a0
        }
        var yo = a4 * 0.5
        for y in 0..<outH {
            defer { yo += a4 }
            guard y >= window.y && y < window.y + window.h else { continue }
            let yi = yo < 0 ? -1 : Int(yo)
            let out = dst + (y - window.y) * dstRowBytes
            for x in 0..<window.w {
                let xin = xs[window.x + x]
                if yi >= 0 && yi < src.height && xin >= 0 {
                    let p = src.base + yi * src.rowBytes + xin * 3
                    out[3 * x] = p[0]
                    out[3 * x + 1] = p[1]
                    out[3 * x + 2] = p[2]
                } else {
                    out[3 * x] = 0
                    out[3 * x + 1] = 0
                    out[3 * x + 2] = 0
                }
            }
        }
    }
}
