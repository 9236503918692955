import Foundation
import LinprobeCodecs
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeData

/// One case of `Tests/Fixtures/images/transforms.json` (made by `scripts/make_image_fixtures.py`
/// with torchvision on PIL).
struct TransformCase: Sendable, CustomTestStringConvertible {
    var name: String
    var image: String
    var kind: String
    var expected: String
    var shape: [Int]
    var transforms: JSONValue?
    var resizedCrop: JSONValue?

    var testDescription: String { name }

    static let all: [TransformCase] = {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: fixturePath("images/transforms.json"))),
            let json = try? JSONDecoder().decode(JSONValue.self, from: data), case .array(let items) = json
        else { return [] }
        return items.compactMap { item in
            guard let name = item["case"]?.stringValue, let image = item["image"]?.stringValue,
                let kind = item["kind"]?.stringValue, let expected = item["expected"]?.stringValue,
                let shape = item["shape"]?.arrayValue?.compactMap({ $0.intValue.map(Int.init) })
            else { return nil }
            return TransformCase(
                name: name, image: image, kind: kind, expected: expected, shape: shape,
                transforms: item["transforms"], resizedCrop: item["resized_crop"])
        }
    }()

    func pipeline() throws -> TransformPipeline {
        if let transforms {
            return try TransformPipeline(config: ConfigNode(path: name, value: transforms), requireTensor: false)
        }
        let b = try #require(resizedCrop)
        func i(_ k: String) -> Int { Int(b[k]?.intValue ?? -1) }
        let size = b["size"]?.arrayValue?.compactMap { $0.intValue.map(Int.init) } ?? []
        var steps: [TransformStep] = [
            .resizedCrop(
                top: i("top"), left: i("left"), boxHeight: i("height"), boxWidth: i("width"),
                height: size[0], width: size[1],
                filter: try #require(ResampleFilter(pilCode: i("interpolation"))))
        ]
        if b["flip"] == .bool(true) { steps.append(.randomHorizontalFlip(p: 1)) }
        return try TransformPipeline(steps: steps, requireTensor: false)
    }
}

/// How far an output is from torchvision's, in 8-bit levels.
struct Agreement {
    var count = 0
    var exact = 0
    var withinOne = 0
    var worst = 0.0

    mutating func add(levels d: Double) {
        count += 1
        if d < 1e-3 { exact += 1 }
        if d <= 1 + 1e-3 { withinOne += 1 }
        worst = max(worst, d)
    }

    /// The issue's bar: within 1/255 on ≥ 99.9 % of values and 2/255 at most.
    var meetsTolerance: Bool { count > 0 && Double(withinOne) >= 0.999 * Double(count) && worst <= 2 + 1e-3 }
    var summary: String { "\(exact)/\(count) exact, \(withinOne) within 1 level, worst \(worst) levels" }
}

func decodeFixture(_ name: String) throws -> RGBImage {
    let decoder = ImageDecoder()
    var image = RGBImage()
    let outcome = decoder.decodeFile(atPath: fixturePath("images/files/\(name)"), into: &image)
    try #require(outcome.isDecoded, "\(name): \(outcome)")
    return image
}

@Suite struct TransformFidelityTests {
    @Test func casesArePresent() {
        #expect(TransformCase.all.count >= 40, "fixture missing or short: images/transforms.json")
    }

    @Test(arguments: TransformCase.all)
    func matchesTorchvisionOnPIL(_ c: TransformCase) throws {
        let image = try decodeFixture(c.image)
        let pipeline = try c.pipeline()
        let runner = TransformRunner(pipeline: pipeline)
        let expected = try NPYArray.read(path: fixturePath("images/\(c.expected)"))
        var random = TransformRandom(seed: 1)
        var agreement = Agreement()
        if c.kind == "uint8" {
            let out = runner.transformToImage(image, random: &random)
            #expect([out.height, out.width, 3] == expected.shape, "\(c.name): shape")
            guard case .integers(let want) = expected.values, want.count == out.byteCount else {
                Issue.record("\(c.name): size mismatch")
                return
            }
            for (a, b) in zip(out.packedRGB, want) { agreement.add(levels: abs(Double(a) - Double(b))) }
        } else {
            guard case .floats(let want) = expected.values else { Issue.record("\(c.name): expected floats"); return }
            var out = [Float](repeating: .nan, count: want.count)
            let shape = try out.withUnsafeMutableBufferPointer {
                try runner.transform(image, random: &random, into: $0)
            }
            #expect(shape == expected.shape, "\(c.name): shape")
            #expect(pipeline.outputShape(imageWidth: image.width, imageHeight: image.height) == expected.shape)
            // Compare in 8-bit levels: undo Normalize's std (0.229 … 0.225, or 0.25).
            let std: [Double] =
                pipeline.steps.compactMap { step -> [Double]? in
                    if case .normalize(_, let s) = step { return s.map(Double.init) }
                    return nil
                }.first ?? [1]
            let plane = want.count / 3
            for (i, (a, b)) in zip(out, want).enumerated() {
                let s = std.count == 1 ? std[0] : std[i / plane]
                agreement.add(levels: abs(Double(a) - b) * s * 255)
            }
            #expect(
                zip(out, want).allSatisfy { Double($0) == $1 },
                "\(c.name): float values are not bit-identical to torch's")
        }
        #expect(agreement.meetsTolerance, "\(c.name): \(agreement.summary)")
        #expect(agreement.exact == agreement.count, "\(c.name): \(agreement.summary)")
    }
}

/// `Image.resize` of a 37×29 crop to 150 random sizes (1…79 per side, up and down, asymmetric)
/// with every PIL filter: all must be byte-identical (covers Pillow's pass-order rule).
@Suite struct ResizeSweepTests {
    struct Sweep: Decodable {
        struct Case: Decodable {
            var filter: String
            var width: Int
            var height: Int
            var offset: Int
        }
        var source: String
        var crop: [Int]
        var cases: [Case]
    }

    @Test func everySizeAndFilterEqualsPIL() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("images/resize_sweep.json")))
        let sweep = try JSONDecoder().decode(Sweep.self, from: data)
        guard
            case .integers(let expected) = try NPYArray.read(path: fixturePath("images/expected/resize_sweep.npy"))
                .values
        else {
            Issue.record("resize_sweep.npy is not uint8")
            return
        }
        let image = try decodeFixture(sweep.source)
        #expect(sweep.cases.count == 150)
        var failures = [String]()
        for c in sweep.cases {
            let filter = try #require(ResampleFilter(rawValue: c.filter))
            let steps: [TransformStep] = [
                .resizedCrop(
                    top: sweep.crop[1], left: sweep.crop[0], boxHeight: sweep.crop[3],
                    boxWidth: sweep.crop[2], height: c.height, width: c.width, filter: filter)
            ]
            let runner = TransformRunner(pipeline: try TransformPipeline(steps: steps, requireTensor: false))
            var random = TransformRandom(seed: 0)
            let out = runner.transformToImage(image, random: &random).packedRGB
            let want = expected[c.offset..<(c.offset + out.count)].map { UInt8($0) }
            if out != want {
                let differing = zip(out, want).filter { $0 != $1 }.count
                failures.append("\(c.filter) 37×29→\(c.width)×\(c.height): \(differing) bytes differ")
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(10))")
    }
}
