import Foundation
import LinprobeCodecs
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeData

/// torchvision's `RandomCrop(size)` (VISSL's AlexNet TRAIN transforms): a seeded box inside the image.
@Suite("RandomCrop")
struct RandomCropTests {
    static func pipeline(_ crop: JSONValue) throws -> TransformPipeline {
        try TransformPipeline(
            config: ConfigNode(path: "DATA.TRAIN.TRANSFORMS", value: [crop]), requireTensor: false)
    }

    /// A 40×30 image whose pixel (x, y) is (x, y, x ^ y): every window is recognisable.
    static let image: RGBImage = {
        var rgb: [UInt8] = []
        for y in 0..<30 { for x in 0..<40 { rgb += [UInt8(x), UInt8(y), UInt8(x ^ y)] } }
        return RGBImage(width: 40, height: 30, rgb: rgb)
    }()

    @Test("a window of the image, the same for the same sample, spread over the offsets")
    func windows() throws {
        let p = try Self.pipeline(["name": "RandomCrop", "size": [12, 16]])
        #expect(p.steps == [.randomCrop(height: 12, width: 16)] && p.isRandom)
        #expect(p.fixedOutputShape == [3, 12, 16])
        let runner = TransformRunner(pipeline: p)
        var offsets = Set<[Int]>()
        for sample in 0..<40 {
            var r1 = TransformRandom(baseSeed: 3, sampleIndex: sample), r2 = r1
            let a = runner.transformToImage(Self.image, random: &r1)
            #expect(a.pixels == runner.transformToImage(Self.image, random: &r2).pixels)
            #expect(a.width == 16 && a.height == 12)
            let left = Int(a.pixels[0]), top = Int(a.pixels[1])
            #expect(left <= 40 - 16 && top <= 30 - 12)
            for y in 0..<12 {
                for x in 0..<16 {
                    let i = 3 * (y * 16 + x)
                    #expect(a.pixels[i] == UInt8(left + x) && a.pixels[i + 1] == UInt8(top + y))
                }
            }
            offsets.insert([top, left])
        }
        #expect(offsets.count > 20)
    }

    @Test("a crop larger than the image and padding arguments are errors naming the step")
    func errors() throws {
        let p = try Self.pipeline(["name": "RandomCrop", "size": 31])
        let runner = TransformRunner(pipeline: try TransformPipeline(steps: p.steps + [.toTensor]))
        var random = TransformRandom(baseSeed: 0, sampleIndex: 0)
        var out = [Float](repeating: 0, count: 3 * 31 * 31)
        let e = #expect(throws: LinprobeError.self) {
            try out.withUnsafeMutableBufferPointer { _ = try runner.transform(Self.image, random: &random, into: $0) }
        }
        #expect(
            e?.message
                == "TRANSFORMS[0] (RandomCrop) of a 40×30 image: required crop size (31, 31) is larger than the input image size (30, 40)"
        )
        let bad = #expect(throws: LinprobeError.self) {
            _ = try Self.pipeline(["name": "RandomCrop", "size": 8, "padding": 4])
        }
        #expect(bad?.exitCode == 64)
    }
}
