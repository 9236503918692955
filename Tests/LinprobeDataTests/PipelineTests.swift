import Foundation
import LinprobeCodecs
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeData

func pipeline(_ items: JSONValue, requireTensor: Bool = true) throws -> TransformPipeline {
    try TransformPipeline(config: ConfigNode(path: "DATA.TRAIN.TRANSFORMS", value: items), requireTensor: requireTensor)
}

let imagenetNormalize: JSONValue = ["name": "Normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]]

@Suite struct TransformConfigTests {
    @Test func visslTestTransformParsesWithDefaultsExplicit() throws {
        let p = try pipeline([
            ["name": "Resize", "size": 256], ["name": "CenterCrop", "size": 224], ["name": "ToTensor"],
            imagenetNormalize,
        ])
        #expect(p.fixedOutputShape == [3, 224, 224])
        #expect(!p.isRandom)
        let text = p.description.canonicalText
        #expect(text.contains(#""interpolation":"bilinear""#) && text.contains(#""max_size":null"#))
        // Same config, same description; a different size, a different one.
        let q = try pipeline([
            ["name": "Resize", "size": 256], ["name": "CenterCrop", "size": 224], ["name": "ToTensor"],
            imagenetNormalize,
        ])
        #expect(p.description == q.description)
        let r = try pipeline([
            ["name": "Resize", "size": 257], ["name": "CenterCrop", "size": 224], ["name": "ToTensor"],
            imagenetNormalize,
        ])
        #expect(p.description != r.description)
    }

    @Test func trainTransformIsRandomWithFixedShape() throws {
        let p = try pipeline([
            ["name": "RandomResizedCrop", "size": 224], ["name": "RandomHorizontalFlip"], ["name": "ToTensor"],
            imagenetNormalize,
        ])
        #expect(p.isRandom)
        #expect(p.fixedOutputShape == [3, 224, 224])
        #expect(
            p.steps[0]
                == .randomResizedCrop(
                    height: 224, width: 224, scale: 0.08...1.0, ratio: (3.0 / 4.0)...(4.0 / 3.0), filter: .bilinear))
    }

    @Test func shapesFollowTorchvisionRules() throws {
        let p = try pipeline([["name": "Resize", "size": 256], ["name": "ToTensor"]])
        #expect(p.fixedOutputShape == nil)
        #expect(p.outputShape(imageWidth: 500, imageHeight: 375) == [3, 256, 341])
        #expect(p.outputShape(imageWidth: 375, imageHeight: 500) == [3, 341, 256])
        let voc = try pipeline([
            ["name": "Resize", "size": 256], ["name": "Resize", "size": [224, 224]], ["name": "ToTensor"],
        ])
        #expect(voc.fixedOutputShape == [3, 224, 224])
        #expect(
            TransformPipeline.resizedSize(height: 40, width: 300, size: .shorterSide(30), maxSize: 120) == (16, 120))
    }

    @Test(
        arguments: [
            (
                JSONValue.array([["name": "ColorJitter", "brightness": 0.4], ["name": "ToTensor"]]),
                ["TRANSFORMS[0] (ColorJitter)", "not supported", "Resize"]
            ),
            (
                [["name": "Resize", "sizes": 256], ["name": "ToTensor"]],
                ["TRANSFORMS[0] (Resize)", "unknown argument 'sizes'", "accepted: size"]
            ),
            (
                [["name": "ToTensor"], ["name": "CenterCrop", "size": 3, "pad": 1]],
                ["TRANSFORMS[1] (CenterCrop)", "unknown argument 'pad'"]
            ),
            (
                [["name": "Resize", "size": 256, "interpolation": 7], ["name": "ToTensor"]],
                ["TRANSFORMS[0] (Resize)", "interpolation 7"]
            ),
            ([["name": "Resize", "size": [1, 2, 3]], ["name": "ToTensor"]], ["TRANSFORMS[0] (Resize)", "size"]),
            ([["name": "Resize", "size": -4], ["name": "ToTensor"]], ["TRANSFORMS[0] (Resize)", "positive"]),
            ([["name": "Resize", "size": [224, 224], "max_size": 300], ["name": "ToTensor"]], ["max_size"]),
            (
                [["name": "Normalize", "mean": [0.5], "std": [0.5]], ["name": "ToTensor"]],
                ["TRANSFORMS[0] (Normalize)", "put ToTensor before it"]
            ),
            ([["name": "ToTensor"], ["name": "Resize", "size": 8]], ["TRANSFORMS[1] (Resize)", "after ToTensor"]),
            ([["name": "Resize", "size": 8]], ["ToTensor"]),
            (
                [["name": "ToTensor"], ["name": "Normalize", "mean": [0.5, 0.5], "std": [1, 1]]],
                ["TRANSFORMS[1] (Normalize)", "1 or 3 values"]
            ),
            ([["name": "ToTensor"], ["name": "Normalize", "mean": [0.5], "std": [0]]], ["division by zero"]),
            (
                [["name": "RandomResizedCrop", "size": 8, "scale": [0.9, 0.1]], ["name": "ToTensor"]],
                ["TRANSFORMS[0] (RandomResizedCrop)", "scale"]
            ),
            ([["name": "RandomHorizontalFlip", "p": 2], ["name": "ToTensor"]], ["p must be within"]),
            ([["name": "ToTensor", "indices": [1]]], ["indices"]),
            ([["size": 3]], ["TRANSFORMS[0]", "no 'name'"]),
            (["name": "ToTensor"], ["TRANSFORMS", "expected a list"]),
        ] as [(JSONValue, [String])])
    func badTransformsAreConfigErrorsNamingTheItem(_ items: JSONValue, _ fragments: [String]) {
        expectError(fragments, code: .invalidConfig) { _ = try pipeline(items) }
    }

    @Test func visslSpellingsAreAccepted() throws {
        let p = try pipeline([
            ["name": "Resize", "size": [256], "interpolation": 3, "antialias": true],
            ["name": "CenterCrop", "size": [224]], ["name": "ImgPilToRawTensor", "indices": [0]],
        ])
        #expect(
            p.steps == [
                .resize(.shorterSide(256), maxSize: nil, filter: .bicubic), .centerCrop(height: 224, width: 224),
                .toRawTensor,
            ])
    }
}

@Suite struct RandomTransformTests {
    @Test func randomResizedCropBoxFollowsTorchvisionsRules() {
        var random = TransformRandom(seed: 42)
        var fallbacks = 0
        for i in 0..<2000 {
            let w = 50 + i % 300, h = 40 + (i * 7) % 250
            let box = TransformRunner.randomResizedCropBox(
                width: w, height: h, scale: 0.08...1.0, ratio: 0.75...(4.0 / 3.0), random: &random)
            #expect(box.top >= 0 && box.left >= 0 && box.top + box.height <= h && box.left + box.width <= w)
            let area = Double(box.width * box.height) / Double(w * h)
            let aspect = Double(box.width) / Double(box.height)
            if box.width == w && box.height == h { fallbacks += 1; continue }
            // Rounding to whole pixels loosens the bounds slightly.
            #expect(area > 0.05 && area <= 1.0)
            #expect(aspect > 0.6 && aspect < 1.6)
        }
        #expect(fallbacks < 100)
    }

    @Test func extremeAspectFallsBackToTheCentralCrop() {
        var random = TransformRandom(seed: 1)
        let box = TransformRunner.randomResizedCropBox(
            width: 1000, height: 10, scale: 0.9...1.0, ratio: 0.75...(4.0 / 3.0), random: &random)
        // in_ratio 100 > 4/3: h = 10, w = round(10 · 4/3) = 13, centred.
        #expect(box.height == 10 && box.width == 13 && box.top == 0 && box.left == (1000 - 13) / 2)
    }

    @Test func sameSeedSameOutputDifferentSampleDifferentCrop() throws {
        let p = try pipeline([
            ["name": "RandomResizedCrop", "size": 32], ["name": "RandomHorizontalFlip"], ["name": "ToTensor"],
            imagenetNormalize,
        ])
        let loader = SampleLoader(pipeline: p, baseSeed: 7)
        let path = fixturePath("images/files/photo_500x375.jpg")
        var a = [Float](repeating: 0, count: 3 * 32 * 32), b = a, c = a, d = a
        _ = try a.withUnsafeMutableBufferPointer { try loader.load(path: path, sampleIndex: 3, into: $0) }
        _ = try b.withUnsafeMutableBufferPointer {
            try SampleLoader(pipeline: p, baseSeed: 7).load(path: path, sampleIndex: 3, into: $0)
        }
        _ = try c.withUnsafeMutableBufferPointer { try loader.load(path: path, sampleIndex: 4, into: $0) }
        _ = try d.withUnsafeMutableBufferPointer { try loader.load(path: path, sampleIndex: 3, view: 1, into: $0) }
        #expect(a == b)
        #expect(a != c)
        #expect(a != d)
    }

    @Test func flipProbabilityIsRespected() throws {
        let p = try pipeline([["name": "RandomHorizontalFlip", "p": 0.3], ["name": "ToTensor"]])
        let runner = TransformRunner(pipeline: p)
        let image = RGBImage(width: 2, height: 1, rgb: [0, 0, 0, 255, 255, 255])
        var flipped = 0
        var out = [Float](repeating: 0, count: 6)
        for i in 0..<4000 {
            var random = TransformRandom(baseSeed: 0, sampleIndex: i)
            _ = try out.withUnsafeMutableBufferPointer { try runner.transform(image, random: &random, into: $0) }
            if out[0] == 1 { flipped += 1 }
        }
        #expect(abs(Double(flipped) / 4000 - 0.3) < 0.03)
    }

    @Test func tensorStageFlipEqualsImageStageFlip() throws {
        let image = try decodeFixture("rgb420_67x45.jpg")
        let before = TransformRunner(
            pipeline: try pipeline([
                ["name": "Resize", "size": 20], ["name": "RandomHorizontalFlip", "p": 1], ["name": "ToTensor"],
            ]))
        let after = TransformRunner(
            pipeline: try pipeline([
                ["name": "Resize", "size": 20], ["name": "ToTensor"], ["name": "RandomHorizontalFlip", "p": 1],
            ]))
        var r1 = TransformRandom(seed: 0), r2 = TransformRandom(seed: 0)
        var a = [Float](repeating: 0, count: 3 * 20 * 29), b = a
        _ = try a.withUnsafeMutableBufferPointer { try before.transform(image, random: &r1, into: $0) }
        _ = try b.withUnsafeMutableBufferPointer { try after.transform(image, random: &r2, into: $0) }
        #expect(a == b)
    }
}

@Suite struct SampleLoaderTests {
    @Test func unreadableImageBecomesVISSLsGrayImageAndSaysWhy() throws {
        let p = try pipeline([
            ["name": "Resize", "size": 256], ["name": "CenterCrop", "size": 224], ["name": "ToTensor"],
            imagenetNormalize,
        ])
        let loader = SampleLoader(pipeline: p, grayImageSize: 224)
        var out = [Float](repeating: .nan, count: 3 * 224 * 224)
        let result = try out.withUnsafeMutableBufferPointer {
            try loader.load(path: fixturePath("images/files/truncated_half.jpg"), sampleIndex: 0, into: $0)
        }
        #expect(result.shape == [3, 224, 224])
        #expect(result.unreadable?.kind == .truncated)
        #expect(result.image == nil)
        // 128/255 normalised per channel, as torch computes it in float32.
        let expected: [Float] = [0, 1, 2].map { c in
            (Float(128) / Float(255) - [Float(0.485), 0.456, 0.406][c]) / [Float(0.229), 0.224, 0.225][c]
        }
        #expect(out[0] == expected[0] && out[224 * 224] == expected[1] && out[2 * 224 * 224 + 5] == expected[2])
        #expect(!out.contains { $0.isNaN })
    }

    @Test func missingFileIsUnreadableAndTheLoaderKeepsWorking() throws {
        let p = try pipeline([["name": "Resize", "size": [8, 8]], ["name": "ToTensor"]])
        let loader = SampleLoader(pipeline: p, grayImageSize: 5)
        var out = [Float](repeating: 0, count: 3 * 8 * 8)
        let missing = try out.withUnsafeMutableBufferPointer {
            try loader.load(path: "/nonexistent.jpg", sampleIndex: 0, into: $0)
        }
        #expect(missing.unreadable?.kind == .unreadableFile)
        #expect(out.allSatisfy { $0 == Float(128) / Float(255) })
        let ok = try out.withUnsafeMutableBufferPointer {
            try loader.load(path: fixturePath("images/files/cmyk_43x31.jpg"), sampleIndex: 1, into: $0)
        }
        #expect(ok.unreadable == nil && ok.image?.sourceMode == "CMYK")
    }

    @Test func tooSmallOutputBufferIsAnErrorNotACrash() throws {
        let p = try pipeline([["name": "Resize", "size": 16], ["name": "ToTensor"]])
        let loader = SampleLoader(pipeline: p)
        var out = [Float](repeating: 0, count: 10)
        expectError(["output buffer"], code: .shapeMismatch) {
            _ = try out.withUnsafeMutableBufferPointer {
                try loader.load(path: fixturePath("images/files/rgb420_67x45.jpg"), sampleIndex: 0, into: $0)
            }
        }
    }

    @Test func workersOnSeveralThreadsGiveTheSameTensors() async throws {
        let p = try pipeline([
            ["name": "RandomResizedCrop", "size": 24], ["name": "RandomHorizontalFlip"], ["name": "ToTensor"],
            imagenetNormalize,
        ])
        let files = [
            "photo_500x375.jpg", "rgb420_67x45.jpg", "gray_50x70.jpg", "palette_52x38.png", "ycck_37x29.jpg",
            "rgba16_33x27.png",
        ]
        func run(_ indices: [Int]) throws -> [[Float]] {
            let loader = SampleLoader(pipeline: p, baseSeed: 11)
            return try indices.map { i in
                var out = [Float](repeating: 0, count: 3 * 24 * 24)
                _ = try out.withUnsafeMutableBufferPointer {
                    try loader.load(
                        path: fixturePath("images/files/\(files[i % files.count])"), sampleIndex: i, into: $0)
                }
                return out
            }
        }
        let serial = try run(Array(0..<24))
        let parallel = try await withThrowingTaskGroup(of: (Int, [[Float]]).self) { group in
            for w in 0..<4 { group.addTask { (w, try run(Array(stride(from: w, to: 24, by: 4)))) } }
            var merged = [[Float]](repeating: [], count: 24)
            for try await (w, outs) in group { for (k, o) in outs.enumerated() { merged[w + 4 * k] = o } }
            return merged
        }
        #expect(serial == parallel)
    }
}

@Suite struct SplitInputTests {
    @Test func loadsListingAndTransformsAndFeedsALoader() throws {
        let node = ConfigNode(
            path: "DATA.TEST",
            value: [
                "DATA_SOURCES": ["disk_filelist"], "LABEL_SOURCES": ["disk_filelist"],
                "DATA_PATHS": .array([.string(fixturePath("data/voc"))]), "DEFAULT_GRAY_IMG_SIZE": 100,
                "TRANSFORMS": [
                    ["name": "Resize", "size": 256], ["name": "Resize", "size": [224, 224]], ["name": "ToTensor"],
                    imagenetNormalize,
                ],
            ])
        let input = try SplitInput.load(split: .test, data: node, catalog: nil)
        #expect(input.listing.count == 4)
        #expect(input.pipeline.fixedOutputShape == [3, 224, 224])
        let loader = input.makeLoader(baseSeed: 0)
        var out = [Float](repeating: 0, count: 3 * 224 * 224)
        for (i, s) in input.listing.samples.enumerated() {
            let r = try out.withUnsafeMutableBufferPointer { try loader.load(path: s.path, sampleIndex: i, into: $0) }
            #expect(r.unreadable == nil && r.shape == [3, 224, 224])
        }
        #expect(input.description["default_gray_img_size"] == 100)
    }

    @Test func transformErrorsComeBeforeDatasetErrors() {
        let node = ConfigNode(
            path: "DATA.TRAIN",
            value: [
                "DATA_SOURCES": ["disk_folder"], "DATA_PATHS": ["/does/not/exist"], "TRANSFORMS": [["name": "Blur"]],
            ])
        expectError(["DATA.TRAIN.TRANSFORMS[0] (Blur)"], code: .invalidConfig) {
            _ = try SplitInput.load(split: .train, data: node, catalog: nil)
        }
    }
}
