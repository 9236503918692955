import CLinprobeTrunkKernels
import Foundation
import LinprobeBLAS
import LinprobeCore

// Winograd convolution for the 3×3, stride-1, padding-1 convolutions (Lavin & Gray, 2016), in two
// tile sizes (`WinogradTile`):
//
//   V = Bᵀ d B,  U = G g Gᵀ,  Y = Aᵀ [U ⊙ V] A
//
// F(2×2, 3×3): each 2×2 output tile costs 16 products per (input, output) channel pair instead of
// 36, as 16 GEMMs of [tiles × Cin]·[Cin × Cout]. With the points (0, ±1, ∞) the transforms only
// add and subtract (G has halves), so float32 rounding stays at the level of direct convolution.
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//   G  = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//   Aᵀ = [1 1 1 0; 0 1 -1 -1]
//
// F(4×4, 3×3): 36 products per 4×4 tile (2.25 per output instead of 4), as 36 GEMMs, with the
// points (0, ±1, ±2, ∞); the transforms multiply by 2, 4, 5, 8 (in C, `lp_winograd4_*`: exact
// products only) and G by 1/4, 1/6, 1/12, 1/24, so rounding grows by about one decimal digit.
// Both are checked against PyTorch by the fidelity tests, which run every algorithm.
//   Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G  = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]

/// The output tile of a Winograd convolution: F(m×m, 3×3) reads (m+2)×(m+2) input patches.
enum WinogradTile: Sendable {
    case f2, f4

    /// The tile of a Winograd algorithm (nil for the others).
    init?(_ algorithm: ConvAlgorithm) {
        switch algorithm {
        case .winograd: self = .f2
        case .winograd4: self = .f4
        case .im2col, .auto: return nil
        }
    }

    /// Outputs per tile side (m).
    var output: Int { self == .f2 ? 2 : 4 }
    /// Inputs per tile side (m + 2).
    var input: Int { output + 2 }
    /// Transform positions ξ, one GEMM each: (m + 2)².
    var positions: Int { input * input }
    /// G, (m + 2) × 3, row major.
    var g: [Double] {
        switch self {
        case .f2: [1, 0, 0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0, 0, 1]
        case .f4:
            [
                0.25, 0, 0, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6,
                1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 24, -1.0 / 12, 1.0 / 6, 0, 0, 1,
            ]
        }
    }
}

@inline(__always) private func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
}

@inline(__always) private func store4(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self)
}

enum Winograd {
    /// Which transforms run: the C kernels at their level (2 AVX-512, 1 AVX2) on CPUs that have
    /// one, else (−1) the Swift SIMD4 transforms; 0 is the C kernels on baseline vectors (tests).
    /// Every variant gives the same bits.
    static let transformLevel = lp_trunk_simd_level() > 0 ? Int(lp_trunk_simd_level()) : -1
    /// U[ξ = (m+2)·a + b][ci][co] = (G g Gᵀ)[a][b] for every (ci, co), from folded weights laid out
    /// [(ky, kx, ci)][co] (double precision until the final rounding), a row of `cout` at a time.
    static func transformWeights(_ tile: WinogradTile, _ w: [Double], cin: Int, cout: Int) -> FloatBuffer {
        let t = tile.input
        let u = FloatBuffer(count: tile.positions * cin * cout)
        let plane = cin * cout
        let g = tile.g
        // gk[(a·3 + kx)·cout + co] = (G k)[a][kx] for one input channel.
        let gk = UnsafeMutablePointer<Double>.allocate(capacity: t * 3 * cout)
        defer { gk.deallocate() }
        g.withUnsafeBufferPointer { g in
            w.withUnsafeBufferPointer { w in
                guard let base = w.baseAddress else { return }
                for ci in 0..<cin {
                    for a in 0..<t {
                        let (g0, g1, g2) = (g[a * 3], g[a * 3 + 1], g[a * 3 + 2])
                        for kx in 0..<3 {
                            let k0 = base + ((0 * 3 + kx) * cin + ci) * cout
                            let k1 = base + ((1 * 3 + kx) * cin + ci) * cout
                            let k2 = base + ((2 * 3 + kx) * cin + ci) * cout
                            let row = gk + (a * 3 + kx) * cout
                            for co in 0..<cout { row[co] = g0 * k0[co] + g1 * k1[co] + g2 * k2[co] }
                        }
                    }
                    for a in 0..<t {
                        let r0 = gk + (a * 3) * cout, r1 = r0 + cout, r2 = r1 + cout
                        for b in 0..<t {
                            let (g0, g1, g2) = (g[b * 3], g[b * 3 + 1], g[b * 3 + 2])
                            let out = u.pointer + (a * t + b) * plane + ci * cout
                            for co in 0..<cout { out[co] = Float(r0[co] * g0 + r1[co] * g1 + r2[co] * g2) }
                        }
                    }
                }
            }
        }
        return u
    }

    /// Tiles per chunk: enough rows for efficient GEMMs, bounded by the scratch.
    static func chunkTiles(_ tile: WinogradTile, cin: Int, cout: Int, scratch: ConvScratch) -> Int {
        let perTile = tile.positions * (cin + cout)
        return max(1, min(scratch.chunkRows, scratch.capacity / perTile))
    }

    /// Scratch floats needed for `tiles` tiles per chunk.
    static func scratchFloats(_ tile: WinogradTile, cin: Int, cout: Int, tiles: Int) -> Int {
        tile.positions * (cin + cout) * tiles
    }

    static func forward(
        _ layer: ConvLayer, tile: WinogradTile, weights: FloatBuffer, input: UnsafePointer<Float>, n: Int, h: Int,
        w: Int,
        output: UnsafeMutablePointer<Float>, epilogue: Epilogue, scratch: ConvScratch
    ) {
        let cin = layer.cin, cout = layer.cout
        let u = weights.pointer
        var residual: UnsafePointer<Float>? = nil
        var relu = true
        let bias = UnsafePointer(layer.bias.pointer)
        switch epilogue {
        case .bias(let r):
            relu = r
        case .residual(let res):
            residual = res
        case let .downsample(ds, dsInput, dsH, dsW, _):
            // The shortcut first, into the output (with its own bias); the main branch then adds
            // itself in place, with its bias.
            Convolution.forward(
                ds, input: dsInput, n: n, inH: dsH, inW: dsW, output: output,
                epilogue: .bias(relu: false), scratch: scratch)
            residual = UnsafePointer(output)
        }
        let side = tile.output
        let tilesH = (h + side - 1) / side, tilesW = (w + side - 1) / side
        let perImage = tilesH * tilesW
        let total = n * perImage
        let chunk = min(chunkTiles(tile, cin: cin, cout: cout, scratch: scratch), total)
        let v = scratch.buffer
        let m = scratch.buffer + tile.positions * chunk * cin
        var t0 = 0
        while t0 < total {
            let tiles = min(chunk, total - t0)
            switch tile {
            case .f2:
                inputTransform(
                    input, h: h, w: w, c: cin, tilesW: tilesW, perImage: perImage, first: t0, count: tiles,
                    v: v, stride: chunk * cin, zeros: scratch.zeros, p: scratch.pointers)
            case .f4:
                inputTransform4(
                    input, h: h, w: w, c: cin, tilesW: tilesW, perImage: perImage, first: t0, count: tiles,
                    v: v, stride: chunk * cin, zeros: scratch.zeros)
            }
            for xi in 0..<tile.positions {
                BLAS.sgemm(
                    m: tiles, n: cout, k: cin, a: v + xi * chunk * cin, lda: cin,
                    b: u + xi * cin * cout, ldb: cout, beta: 0, c: m + xi * chunk * cout, ldc: cout)
            }
            switch tile {
            case .f2:
                outputTransform(
                    m, stride: chunk * cout, output: output, h: h, w: w, c: cout, tilesW: tilesW,
                    perImage: perImage, first: t0, count: tiles, bias: bias, residual: residual, relu: relu)
            case .f4:
                outputTransformC(
                    .f4, m, stride: chunk * cout, output: output, h: h, w: w, c: cout, tilesW: tilesW,
                    perImage: perImage, first: t0, count: tiles, bias: bias, residual: residual, relu: relu,
                    level: level4)
            }
            t0 += tiles
        }
    }

    /// Bᵀ x for one column of 4 values (also x B for one row).
    @inline(__always) static func bt(
        _ x0: SIMD4<Float>, _ x1: SIMD4<Float>, _ x2: SIMD4<Float>, _ x3: SIMD4<Float>
    )
        -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>)
    {
        (x0 - x2, x1 + x2, x2 - x1, x1 - x3)
    }

    /// V[ξ][t][c] = (Bᵀ d B)[ξ] for the 4×4 input patch of tile t (zero outside the image).
    static func inputTransform(
        _ input: UnsafePointer<Float>, h: Int, w: Int, c: Int, tilesW: Int, perImage: Int,
        first: Int, count: Int, v: UnsafeMutablePointer<Float>, stride: Int,
        zeros: UnsafePointer<Float>, p: UnsafeMutablePointer<UnsafePointer<Float>>, level: Int = transformLevel
    ) {
        for t in 0..<count {
            patch(.f2, first + t, input, h: h, w: w, c: c, tilesW: tilesW, perImage: perImage, zeros: zeros, into: p)
            let out = v + t * c
            if level >= 0 {
                UnsafeRawPointer(p).withMemoryRebound(to: UnsafePointer<Float>?.self, capacity: 16) { tile in
                    lp_winograd_input_f32(tile, out, c, stride, Int32(level))
                }
                continue
            }
            var ch = 0
            while ch < c {
                // Columns first: Bᵀ d, one column j at a time.
                let (a00, a10, a20, a30) = bt(load4(p[0] + ch), load4(p[4] + ch), load4(p[8] + ch), load4(p[12] + ch))
                let (a01, a11, a21, a31) = bt(load4(p[1] + ch), load4(p[5] + ch), load4(p[9] + ch), load4(p[13] + ch))
                let (a02, a12, a22, a32) = bt(load4(p[2] + ch), load4(p[6] + ch), load4(p[10] + ch), load4(p[14] + ch))
                let (a03, a13, a23, a33) = bt(load4(p[3] + ch), load4(p[7] + ch), load4(p[11] + ch), load4(p[15] + ch))
                // Then rows: (Bᵀ d) B.
                let (v00, v01, v02, v03) = bt(a00, a01, a02, a03)
                let (v10, v11, v12, v13) = bt(a10, a11, a12, a13)
                let (v20, v21, v22, v23) = bt(a20, a21, a22, a23)
                let (v30, v31, v32, v33) = bt(a30, a31, a32, a33)
                let o = out + ch
                store4(v00, o); store4(v01, o + stride); store4(v02, o + 2 * stride); store4(v03, o + 3 * stride)
                store4(v10, o + 4 * stride); store4(v11, o + 5 * stride); store4(v12, o + 6 * stride);
                store4(v13, o + 7 * stride)
                store4(v20, o + 8 * stride); store4(v21, o + 9 * stride); store4(v22, o + 10 * stride);
                store4(v23, o + 11 * stride)
                store4(v30, o + 12 * stride); store4(v31, o + 13 * stride); store4(v32, o + 14 * stride);
                store4(v33, o + 15 * stride)
                ch += 4
            }
        }
    }

    /// Aᵀ x for 4 values.
    @inline(__always) static func at(
        _ x0: SIMD4<Float>, _ x1: SIMD4<Float>, _ x2: SIMD4<Float>, _ x3: SIMD4<Float>
    )
        -> (SIMD4<Float>, SIMD4<Float>)
    {
        (x0 + x1 + x2, x1 - x2 - x3)
    }

    /// Y = Aᵀ M A per tile and channel, plus bias (+ residual), ReLU, into the NHWC output.
    static func outputTransform(
        _ m: UnsafePointer<Float>, stride: Int, output: UnsafeMutablePointer<Float>, h: Int, w: Int,
        c: Int, tilesW: Int, perImage: Int, first: Int, count: Int, bias: UnsafePointer<Float>,
        residual: UnsafePointer<Float>?, relu: Bool, level: Int = transformLevel
    ) {
        if level >= 0 {
            outputTransformC(
                .f2, m, stride: stride, output: output, h: h, w: w, c: c, tilesW: tilesW, perImage: perImage,
                first: first, count: count, bias: bias, residual: residual, relu: relu, level: Int32(level))
            return
        }
        for t in 0..<count {
            let tile = first + t
            let img = tile / perImage, r = tile % perImage
            let y0 = (r / tilesW) * 2, x0 = (r % tilesW) * 2
            let src = m + t * c
            let hasRow1 = y0 + 1 < h, hasCol1 = x0 + 1 < w
            let o00 = img * h * w * c + (y0 * w + x0) * c
            let o01 = o00 + c, o10 = o00 + w * c, o11 = o10 + c
            var ch = 0
            while ch < c {
                let q = src + ch
                // Rows: Aᵀ M, per column j.
                let (s00, s10) = at(load4(q), load4(q + 4 * stride), load4(q + 8 * stride), load4(q + 12 * stride))
                let (s01, s11) = at(
                    load4(q + stride), load4(q + 5 * stride), load4(q + 9 * stride), load4(q + 13 * stride))
                let (s02, s12) = at(
                    load4(q + 2 * stride), load4(q + 6 * stride), load4(q + 10 * stride), load4(q + 14 * stride))
                let (s03, s13) = at(
                    load4(q + 3 * stride), load4(q + 7 * stride), load4(q + 11 * stride), load4(q + 15 * stride))
                // Columns: (Aᵀ M) A.
                let bv = load4(bias + ch)
                var (y00, y01) = at(s00, s01, s02, s03)
                var (y10, y11) = at(s10, s11, s12, s13)
                y00 += bv; y01 += bv; y10 += bv; y11 += bv
                if let residual {
                    y00 += load4(residual + o00 + ch)
                    if hasCol1 { y01 += load4(residual + o01 + ch) }
                    if hasRow1 { y10 += load4(residual + o10 + ch) }
                    if hasRow1 && hasCol1 { y11 += load4(residual + o11 + ch) }
                }
                if relu {
                    y00 = y00.replacing(with: 0, where: y00 .< 0)
                    y01 = y01.replacing(with: 0, where: y01 .< 0)
                    y10 = y10.replacing(with: 0, where: y10 .< 0)
                    y11 = y11.replacing(with: 0, where: y11 .< 0)
                }
                store4(y00, output + o00 + ch)
                if hasCol1 { store4(y01, output + o01 + ch) }
                if hasRow1 { store4(y10, output + o10 + ch) }
                if hasRow1 && hasCol1 { store4(y11, output + o11 + ch) }
                ch += 4
            }
        }
    }

    /// The (m+2)² input pixels of tile `index` (row major), `zeros` where they fall outside the image.
    @inline(__always) static func patch(
        _ tile: WinogradTile, _ index: Int, _ input: UnsafePointer<Float>, h: Int, w: Int, c: Int, tilesW: Int,
        perImage: Int, zeros: UnsafePointer<Float>, into p: UnsafeMutablePointer<UnsafePointer<Float>>
    ) {
        let side = tile.input
        let img = index / perImage, r = index % perImage
        let y0 = (r / tilesW) * tile.output - 1, x0 = (r % tilesW) * tile.output - 1
        let base = input + img * h * w * c
        for i in 0..<side {
            let y = y0 + i
            for j in 0..<side {
                let x = x0 + j
                p[i * side + j] = (y >= 0 && y < h && x >= 0 && x < w) ? base + (y * w + x) * c : zeros
            }
        }
    }

    /// The m² outputs of tile `index` (row major) and their residuals: nil past the image edge.
    @inline(__always) static func outputs(
        _ tile: WinogradTile, _ index: Int, output: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?,
        h: Int, w: Int, c: Int, tilesW: Int, perImage: Int,
        y: UnsafeMutablePointer<UnsafeMutablePointer<Float>?>, r: UnsafeMutablePointer<UnsafePointer<Float>?>
    ) {
        let side = tile.output
        let img = index / perImage, rem = index % perImage
        let y0 = (rem / tilesW) * side, x0 = (rem % tilesW) * side
        for i in 0..<side {
            for j in 0..<side {
                let inside = y0 + i < h && x0 + j < w
                let o = img * h * w * c + ((y0 + i) * w + x0 + j) * c
                y[i * side + j] = inside ? output + o : nil
                r[i * side + j] = inside ? residual.map { $0 + o } : nil
            }
        }
    }

    /// The C kernels' level for F(4×4, 3×3): they have a baseline-vector variant, so no Swift one.
    static var level4: Int32 { Int32(max(0, transformLevel)) }

    /// F(4×4, 3×3): V[ξ][t][c] = (Bᵀ d B)[ξ] for the 6×6 input patch of tile t (zero outside).
    static func inputTransform4(
        _ input: UnsafePointer<Float>, h: Int, w: Int, c: Int, tilesW: Int, perImage: Int,
        first: Int, count: Int, v: UnsafeMutablePointer<Float>, stride: Int, zeros: UnsafePointer<Float>,
        level: Int32 = level4
    ) {
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 36) { buffer in
            guard let p = buffer.baseAddress else { return }
            for t in 0..<count {
                patch(
                    .f4, first + t, input, h: h, w: w, c: c, tilesW: tilesW, perImage: perImage, zeros: zeros,
                    into: p)
                UnsafeRawPointer(p).withMemoryRebound(to: UnsafePointer<Float>?.self, capacity: 36) { tile in
                    lp_winograd4_input_f32(tile, v + t * c, c, stride, level)
                }
            }
        }
    }

    /// Y = Aᵀ M A per tile and channel, plus bias (+ residual), ReLU, into the NHWC output, through
    /// the C kernels of `tile` (one call per tile; the outputs past the image edge are not written).
    static func outputTransformC(
        _ tile: WinogradTile, _ m: UnsafePointer<Float>, stride: Int, output: UnsafeMutablePointer<Float>, h: Int,
        w: Int, c: Int, tilesW: Int, perImage: Int, first: Int, count: Int, bias: UnsafePointer<Float>,
        residual: UnsafePointer<Float>?, relu: Bool, level: Int32
    ) {
        let n = tile.output * tile.output
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>?.self, capacity: n) { y in
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: n) { r in
                guard let yp = y.baseAddress, let rp = r.baseAddress else { return }
                for t in 0..<count {
                    outputs(
                        tile, first + t, output: output, residual: residual, h: h, w: w, c: c, tilesW: tilesW,
                        perImage: perImage, y: yp, r: rp)
                    switch tile {
                    case .f2: lp_winograd_output_f32(m + t * c, stride, c, bias, yp, rp, relu ? 1 : 0, level)
                    case .f4: lp_winograd4_output_f32(m + t * c, stride, c, bias, yp, rp, relu ? 1 : 0, level)
                    }
                }
            }
        }
    }
}
