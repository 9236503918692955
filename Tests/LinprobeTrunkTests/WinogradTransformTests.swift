import CLinprobeTrunkKernels
import Foundation
import Testing

@testable import LinprobeTrunk

/// The C Winograd transforms (AVX-512, AVX2, baseline vectors) give the bits of the Swift SIMD4
/// ones, at every level this CPU runs: edge tiles (odd sizes), channel tails, residual and ReLU.
@Suite("Winograd transforms: every vector level bit-identical to Swift's")
struct WinogradTransformTests {
    static var levels: [Int] { Array(0...Int(lp_trunk_simd_level())) }

    static func values(_ count: Int, seed: UInt32) -> [Float] {
        var state = seed
        return (0..<count).map { i in
            state = state &* 1_664_525 &+ 1_013_904_223
            if i % 37 == 5 { return -0.0 }
            return (Float(state >> 8) / Float(1 << 24) - 0.5) * 8
        }
    }

    @Test("input transform", arguments: [(5, 7, 20), (4, 4, 64), (3, 2, 4)])
    func input(h: Int, w: Int, c: Int) {
        let n = 2
        let image = Self.values(n * h * w * c, seed: 3)
        let tilesH = (h + 1) / 2, tilesW = (w + 1) / 2, perImage = tilesH * tilesW, total = n * perImage
        let zeros = [Float](repeating: 0, count: c)
        let pointers = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 16)
        defer { pointers.deallocate() }
        func run(_ level: Int) -> [Float] {
            var out = [Float](repeating: .nan, count: 16 * total * c)
            image.withUnsafeBufferPointer { x in
                zeros.withUnsafeBufferPointer { z in
                    out.withUnsafeMutableBufferPointer { o in
                        Winograd.inputTransform(
                            x.baseAddress!, h: h, w: w, c: c, tilesW: tilesW, perImage: perImage, first: 0,
                            count: total, v: o.baseAddress!, stride: total * c, zeros: z.baseAddress!, p: pointers,
                            level: -1)
                    }
                }
            }
            return out
        }
        let swift = run(-1)
        for level in Self.levels {
            var out = [Float](repeating: .nan, count: 16 * total * c)
            image.withUnsafeBufferPointer { x in
                zeros.withUnsafeBufferPointer { z in
                    out.withUnsafeMutableBufferPointer { o in
                        Winograd.inputTransform(
                            x.baseAddress!, h: h, w: w, c: c, tilesW: tilesW, perImage: perImage, first: 0,
                            count: total, v: o.baseAddress!, stride: total * c, zeros: z.baseAddress!, p: pointers,
                            level: level)
                    }
                }
            }
            #expect(out.map(\.bitPattern) == swift.map(\.bitPattern), "level \(level), \(h)x\(w)x\(c)")
        }
    }

    /// One output transform of every tile into a fresh output (filled with 1234, so unwritten
    /// elements show): F(2×2) through `Winograd.outputTransform` (level −1: the Swift code), F(4×4)
    /// through the C transform.
    static func runOutput(
        _ tile: WinogradTile, m: [Float], bias: [Float], residual: [Float]?, n: Int, h: Int, w: Int, c: Int,
        tilesW: Int, perImage: Int, level: Int, relu: Bool
    ) -> [Float] {
        let total = n * perImage
        var out = [Float](repeating: 1234, count: n * h * w * c)
        let res = residual ?? [0]
        m.withUnsafeBufferPointer { mp in
            bias.withUnsafeBufferPointer { b in
                res.withUnsafeBufferPointer { r in
                    out.withUnsafeMutableBufferPointer { o in
                        guard let mb = mp.baseAddress, let ob = o.baseAddress, let bb = b.baseAddress else { return }
                        let rp = residual == nil ? nil : r.baseAddress
                        if tile == .f2 {
                            Winograd.outputTransform(
                                mb, stride: total * c, output: ob, h: h, w: w, c: c, tilesW: tilesW,
                                perImage: perImage, first: 0, count: total, bias: bb, residual: rp, relu: relu,
                                level: level)
                        } else {
                            Winograd.outputTransformC(
                                tile, mb, stride: total * c, output: ob, h: h, w: w, c: c, tilesW: tilesW,
                                perImage: perImage, first: 0, count: total, bias: bb, residual: rp, relu: relu,
                                level: Int32(level))
                        }
                    }
                }
            }
        }
        return out
    }

    @Test("output transform", arguments: [(5, 7, 20, true), (4, 4, 64, false), (3, 3, 4, true)])
    func output(h: Int, w: Int, c: Int, residual: Bool) {
        let n = 2
        let tilesW = (w + 1) / 2, perImage = ((h + 1) / 2) * tilesW, total = n * perImage
        let m = Self.values(16 * total * c, seed: 5)
        let bias = Self.values(c, seed: 7)
        let res = Self.values(n * h * w * c, seed: 11)
        func run(_ level: Int, relu: Bool) -> [Float] {
            Self.runOutput(
                .f2, m: m, bias: bias, residual: residual ? res : nil, n: n, h: h, w: w, c: c, tilesW: tilesW,
                perImage: perImage, level: level, relu: relu)
        }
        for relu in [true, false] {
            let swift = run(-1, relu: relu)
            #expect(!swift.contains(1234), "every output written")
            for level in Self.levels {
                let out = run(level, relu: relu)
                #expect(out.map(\.bitPattern) == swift.map(\.bitPattern), "level \(level), relu \(relu)")
            }
        }
    }

    // MARK: F(4×4, 3×3): C only, so every level against the others bit for bit, and against the
    // transforms in double precision.

    static let bt6: [[Double]] = [
        [4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1],
    ]
    static let at6: [[Double]] = [
        [1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1],
    ]

    /// L · X · Rᵀ for small dense matrices (double).
    static func sandwich(_ l: [[Double]], _ x: [[Double]], _ r: [[Double]]) -> [[Double]] {
        l.map { lr in
            r.map { rr in
                var sum = 0.0
                for i in lr.indices { for j in rr.indices { sum += lr[i] * x[i][j] * rr[j] } }
                return sum
            }
        }
    }

    @Test(
        "F(4×4) input transform: same bits at every level, Bᵀ d B within float rounding",
        arguments: [(5, 7, 20), (8, 8, 64), (3, 2, 4), (9, 6, 35)])
    func input4(h: Int, w: Int, c: Int) {
        let n = 2
        let image = Self.values(n * h * w * c, seed: 13)
        let tilesW = (w + 3) / 4, perImage = ((h + 3) / 4) * tilesW, total = n * perImage
        let zeros = [Float](repeating: 0, count: c)
        func run(_ level: Int) -> [Float] {
            var out = [Float](repeating: .nan, count: 36 * total * c)
            image.withUnsafeBufferPointer { x in
                zeros.withUnsafeBufferPointer { z in
                    out.withUnsafeMutableBufferPointer { o in
                        Winograd.inputTransform4(
                            x.baseAddress!, h: h, w: w, c: c, tilesW: tilesW, perImage: perImage, first: 0,
                            count: total, v: o.baseAddress!, stride: total * c, zeros: z.baseAddress!,
                            level: Int32(level))
                    }
                }
            }
            return out
        }
        let base = run(0)
        for level in Self.levels.dropFirst() {
            #expect(run(level).map(\.bitPattern) == base.map(\.bitPattern), "level \(level), \(h)x\(w)x\(c)")
        }
        var worst = 0.0
        for t in 0..<total {
            let img = t / perImage, r = t % perImage
            let y0 = (r / tilesW) * 4 - 1, x0 = (r % tilesW) * 4 - 1
            for ch in 0..<c {
                let d = (0..<6).map { i in
                    (0..<6).map { j -> Double in
                        let y = y0 + i, x = x0 + j
                        guard y >= 0, y < h, x >= 0, x < w else { return 0 }
                        return Double(image[((img * h + y) * w + x) * c + ch])
                    }
                }
                let v = Self.sandwich(Self.bt6, d, Self.bt6)
                for a in 0..<6 {
                    for b in 0..<6 {
                        let got = Double(base[(a * 6 + b) * total * c + t * c + ch])
                        worst = max(worst, abs(got - v[a][b]))
                    }
                }
            }
        }
        // Inputs within ±4, |V| ≤ 400: float32 rounding of a few additions.
        #expect(worst < 1e-4, "worst absolute error \(worst)")
    }

    @Test(
        "F(4×4) output transform: same bits at every level, Aᵀ M A + bias (+ residual), ReLU",
        arguments: [(5, 7, 20, true), (8, 8, 64, false), (3, 3, 4, true), (6, 9, 35, false)])
    func output4(h: Int, w: Int, c: Int, residual: Bool) {
        let n = 2
        let tilesW = (w + 3) / 4, perImage = ((h + 3) / 4) * tilesW, total = n * perImage
        let m = Self.values(36 * total * c, seed: 17)
        let bias = Self.values(c, seed: 19)
        let res = Self.values(n * h * w * c, seed: 23)
        func run(_ level: Int, relu: Bool) -> [Float] {
            Self.runOutput(
                .f4, m: m, bias: bias, residual: residual ? res : nil, n: n, h: h, w: w, c: c, tilesW: tilesW,
                perImage: perImage, level: level, relu: relu)
        }
        for relu in [true, false] {
            let base = run(0, relu: relu)
            #expect(!base.contains(1234), "every output written, none past the edge")
            for level in Self.levels.dropFirst() {
                #expect(run(level, relu: relu).map(\.bitPattern) == base.map(\.bitPattern), "level \(level)")
            }
            var worst = 0.0
            for t in 0..<total {
                let img = t / perImage, r = t % perImage
                let y0 = (r / tilesW) * 4, x0 = (r % tilesW) * 4
                for ch in 0..<c {
                    let q = (0..<6).map { a in (0..<6).map { b in Double(m[(a * 6 + b) * total * c + t * c + ch]) } }
                    let y = Self.sandwich(Self.at6, q, Self.at6)
                    for i in 0..<4 where y0 + i < h {
                        for j in 0..<4 where x0 + j < w {
                            let o = ((img * h + y0 + i) * w + x0 + j) * c + ch
                            var v = y[i][j] + Double(bias[ch]) + (residual ? Double(res[o]) : 0)
                            if relu { v = max(v, 0) }
                            worst = max(worst, abs(Double(base[o]) - v))
                        }
                    }
                }
            }
            // |M| ≤ 4, |Y| ≤ 19² · 4: float32 rounding of a few additions.
            #expect(worst < 1e-3, "worst absolute error \(worst)")
        }
    }

    @Test("weight transforms: U = G g Gᵀ per (ci, co), rounded once from double", arguments: [WinogradTile.f2, .f4])
    func weights(tile: WinogradTile) {
        let cin = 3, cout = 5
        var state: UInt32 = 29
        let w = (0..<(9 * cin * cout)).map { _ -> Double in
            state = state &* 1_664_525 &+ 1_013_904_223
            return Double(state >> 8) / Double(1 << 24) - 0.5
        }
        let u = Winograd.transformWeights(tile, w, cin: cin, cout: cout)
        let t = tile.input
        let g = (0..<t).map { a in (0..<3).map { tile.g[a * 3 + $0] } }
        for ci in 0..<cin {
            for co in 0..<cout {
                let k = (0..<3).map { ky in (0..<3).map { kx in w[((ky * 3 + kx) * cin + ci) * cout + co] } }
                let v = Self.sandwich(g, k, g)
                for a in 0..<t {
                    for b in 0..<t {
                        let got = u.pointer[(a * t + b) * cin * cout + ci * cout + co]
                        #expect(abs(Double(got) - v[a][b]) <= 1e-7 * max(1, abs(v[a][b])), "ξ \(a * t + b)")
                    }
                }
            }
        }
    }
}
