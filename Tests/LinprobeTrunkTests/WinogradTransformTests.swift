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

    @Test("output transform", arguments: [(5, 7, 20, true), (4, 4, 64, false), (3, 3, 4, true)])
    func output(h: Int, w: Int, c: Int, residual: Bool) {
        let n = 2
        let tilesW = (w + 1) / 2, perImage = ((h + 1) / 2) * tilesW, total = n * perImage
        let m = Self.values(16 * total * c, seed: 5)
        let bias = Self.values(c, seed: 7)
        let res = Self.values(n * h * w * c, seed: 11)
        func run(_ level: Int, relu: Bool) -> [Float] {
            var out = [Float](repeating: 1234, count: n * h * w * c)
            m.withUnsafeBufferPointer { mp in
                bias.withUnsafeBufferPointer { b in
                    res.withUnsafeBufferPointer { r in
                        out.withUnsafeMutableBufferPointer { o in
                            Winograd.outputTransform(
                                mp.baseAddress!, stride: total * c, output: o.baseAddress!, h: h, w: w, c: c,
                                tilesW: tilesW, perImage: perImage, first: 0, count: total, bias: b.baseAddress!,
                                residual: residual ? r.baseAddress! : nil, relu: relu, level: level)
                        }
                    }
                }
            }
            return out
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
}
