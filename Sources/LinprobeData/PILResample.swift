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
    /// Unnormalised weights of one position (scratch).
    private var k: [Double] = []

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
        if k.count < ksize { k = [Double](repeating: 0, count: ksize) }
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
    /// 32-bit row sums of the vertical pass (bytes reinterpreted).
    private let sums = ScratchBuffer()

    /// Writes the part `window` (in output coordinates, inside `0..<outW × 0..<outH`) of
    /// `Image.resize((outW, outH), filter)` of the image `src` to `dst` (rows `dstRowBytes` apart).
    ///
    /// Pillow 13 resamples in two separable passes with an 8-bit intermediate image: horizontal
    /// first (over the source rows the vertical pass needs), unless the height shrinks by more
    /// than twice what the width shrinks by, then vertical first; a pass is skipped when its
    /// dimension keeps its size. Computing only the window gives the same pixels as computing
    /// everything and cropping.
    mutating func resize(
        _ src: PixelRegion, outW: Int, outH: Int, filter: ResampleFilter,
        window: (x: Int, y: Int, w: Int, h: Int),
        into dst: UnsafeMutablePointer<UInt8>, dstRowBytes: Int
    ) {
        guard window.w > 0, window.h > 0 else { return }
        if src.width == outW && src.height == outH {
            // Image.resize returns a copy when the size does not change.
            for y in 0..<window.h {
                (dst + y * dstRowBytes).update(
                    from: src.base + (window.y + y) * src.rowBytes + window.x * 3, count: window.w * 3)
            }
            return
        }
        if filter == .nearest {
            nearest(src, outW: outW, outH: outH, window: window, into: dst, dstRowBytes: dstRowBytes)
            return
        }
        let needH = outW != src.width
        let needV = outH != src.height
        let dy = src.height - outH, dx = src.width - outW
        let verticalFirst = dy > 0 && dy > dx * 2
        if needV {
            vertical.compute(
                inSize: src.height, outSize: outH, outRange: window.y..<(window.y + window.h), filter: filter)
        }
        if needH {
            horizontal.compute(
                inSize: src.width, outSize: outW, outRange: window.x..<(window.x + window.w), filter: filter)
        }
        if !verticalFirst {
            // Source rows the vertical pass reads.
            var rowLo = window.y, rowHi = window.y + window.h
            if needV { (rowLo, rowHi) = Self.span(vertical) }
            guard needH else {
                let view = PixelRegion(
                    base: src.base + rowLo * src.rowBytes + window.x * 3, width: window.w,
                    height: rowHi - rowLo, rowBytes: src.rowBytes)
                Self.verticalPass(
                    view, rowOffset: rowLo, width: window.w, vertical, sums: sums, into: dst, outRowBytes: dstRowBytes)
                return
            }
            let rows = rowHi - rowLo
            let t = temp.reserve(rows * window.w * 3)
            let view = PixelRegion(
                base: src.base + rowLo * src.rowBytes, width: src.width, height: rows, rowBytes: src.rowBytes)
            if needV {
                Self.horizontalPass(view, colOffset: 0, rows: rows, horizontal, into: t, outRowBytes: window.w * 3)
                let mid = PixelRegion(base: UnsafePointer(t), width: window.w, height: rows, rowBytes: window.w * 3)
                Self.verticalPass(
                    mid, rowOffset: rowLo, width: window.w, vertical, sums: sums, into: dst, outRowBytes: dstRowBytes)
            } else {
                let rowsView = PixelRegion(
                    base: src.base + window.y * src.rowBytes, width: src.width, height: window.h,
                    rowBytes: src.rowBytes)
                Self.horizontalPass(
                    rowsView, colOffset: 0, rows: window.h, horizontal, into: dst, outRowBytes: dstRowBytes)
            }
        } else {
            // Source columns the horizontal pass reads.
            var colLo = window.x, colHi = window.x + window.w
            if needH { (colLo, colHi) = Self.span(horizontal) }
            let view = PixelRegion(
                base: src.base + colLo * 3, width: colHi - colLo, height: src.height, rowBytes: src.rowBytes)
            guard needH else {
                Self.verticalPass(
                    view, rowOffset: 0, width: window.w, vertical, sums: sums, into: dst, outRowBytes: dstRowBytes)
                return
            }
            let cols = colHi - colLo
            let t = temp.reserve(window.h * cols * 3)
            Self.verticalPass(view, rowOffset: 0, width: cols, vertical, sums: sums, into: t, outRowBytes: cols * 3)
            let mid = PixelRegion(base: UnsafePointer(t), width: cols, height: window.h, rowBytes: cols * 3)
            Self.horizontalPass(mid, colOffset: colLo, rows: window.h, horizontal, into: dst, outRowBytes: dstRowBytes)
        }
    }

    /// The input range `[lo, hi)` the coefficients of a run read.
    private static func span(_ c: AxisCoefficients) -> (Int, Int) {
        var lo = Int.max, hi = Int.min
        for i in c.first.indices {
            lo = min(lo, Int(c.first[i]))
            hi = max(hi, Int(c.first[i] + c.count[i]))
        }
        return (lo, hi)
    }

    /// `out[r][xx] = Σ in[r][first[xx] − colOffset + k] · w[xx][k]` for `rows` rows; `input.base`
    /// is input column `colOffset`.
    private static func horizontalPass(
        _ input: PixelRegion, colOffset: Int, rows: Int, _ c: AxisCoefficients,
        into out: UnsafeMutablePointer<UInt8>, outRowBytes: Int
    ) {
        let w = c.first.count, ksize = c.ksize
        c.weights.withUnsafeBufferPointer { kk in
            guard let weights = kk.baseAddress else { return }  // no output columns
            c.first.withUnsafeBufferPointer { firsts in
                c.count.withUnsafeBufferPointer { counts in
                    for r in 0..<rows {
                        let line = input.base + r * input.rowBytes
                        let o = out + r * outRowBytes
                        for xx in 0..<w {
                            let k = weights + xx * ksize
                            let p = line + (Int(firsts[xx]) - colOffset) * 3
                            var s0: Int32 = 1 << (AxisCoefficients.precisionBits - 1)
                            var s1 = s0, s2 = s0
                            for x in 0..<Int(counts[xx]) {
                                let cw = k[x]
                                s0 &+= Int32(p[3 * x]) &* cw
                                s1 &+= Int32(p[3 * x + 1]) &* cw
                                s2 &+= Int32(p[3 * x + 2]) &* cw
                            }
                            o[3 * xx] = clipFixed(s0)
                            o[3 * xx + 1] = clipFixed(s1)
                            o[3 * xx + 2] = clipFixed(s2)
                        }
                    }
                }
            }
        }
    }

    /// `out[yy][i] = Σ in[first[yy] − rowOffset + k][i] · w[yy][k]` over `width` pixels;
    /// `input.base` is input row `rowOffset`. Accumulates row by row into 32-bit sums (the same
    /// integer arithmetic as Pillow, in an order the compiler vectorises).
    private static func verticalPass(
        _ input: PixelRegion, rowOffset: Int, width: Int, _ c: AxisCoefficients,
        sums: ScratchBuffer, into out: UnsafeMutablePointer<UInt8>, outRowBytes: Int
    ) {
        let rowBytes = width * 3, ksize = c.ksize
        let acc = UnsafeMutableRawPointer(sums.reserve(max(rowBytes, 1) * 4)).bindMemory(
            to: Int32.self, capacity: max(rowBytes, 1))
        c.weights.withUnsafeBufferPointer { kk in
            guard let weights = kk.baseAddress else { return }  // no output rows
            for yy in 0..<c.first.count {
                let k = weights + yy * ksize
                let top = input.base + (Int(c.first[yy]) - rowOffset) * input.rowBytes
                let taps = Int(c.count[yy])
                acc.update(repeating: 1 << (AxisCoefficients.precisionBits - 1), count: rowBytes)
                for y in 0..<taps {
                    let w = k[y]
                    let line = top + y * input.rowBytes
                    for i in 0..<rowBytes { acc[i] &+= Int32(line[i]) &* w }
                }
                let o = out + yy * outRowBytes
                for i in 0..<rowBytes { o[i] = clipFixed(acc[i]) }
            }
        }
    }

    /// PIL's NEAREST resize: `ImagingScaleAffine` with `a = [w/outW, 0, 0, 0, h/outH, 0]`,
    /// positions accumulated by repeated addition from the pixel centre, truncated.
    private func nearest(
        _ src: PixelRegion, outW: Int, outH: Int, window: (x: Int, y: Int, w: Int, h: Int),
        into dst: UnsafeMutablePointer<UInt8>, dstRowBytes: Int
    ) {
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
