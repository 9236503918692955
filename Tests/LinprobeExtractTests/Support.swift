import Foundation
import LinprobeCore
import LinprobeData
import LinprobeStore
import LinprobeTestSupport
import LinprobeTrunk
import Testing

@testable import LinprobeExtract

/// An ImageFolder tree made of committed image fixtures: `layout` maps class folders to
/// fixture file names (copied from Tests/Fixtures/images/files); `extra` adds other files
/// (relative path → text) that are not images.
func makeImageFolder(
    in dir: TemporaryDirectory, _ layout: [String: [String]], extra: [String: String] = [:],
    name: String = "data"
) throws -> String {
    let root = dir.file(name)
    let fm = FileManager.default
    for (cls, files) in layout {
        try fm.createDirectory(atPath: root + "/" + cls, withIntermediateDirectories: true)
        for f in files {
            try fm.copyItem(atPath: fixturePath("images/files/" + f), toPath: root + "/" + cls + "/" + f)
        }
    }
    for (rel, text) in extra {
        try fm.createDirectory(
            atPath: ((root + "/" + rel) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: root + "/" + rel, atomically: true, encoding: .utf8)
    }
    return root
}

/// A standard small layout: photos, odd formats and one file that is not an image.
let smallLayout: [String: [String]] = [
    "a": ["photo_500x375.jpg", "gray_50x70.jpg", "cmyk_43x31.jpg", "tall_24x160.jpg"],
    "b": ["photo_375x500.jpg", "rgba_52x38.png", "palette_52x38.png", "garbage.jpg", "wide_300x40.jpg"],
]

/// A pipeline (VISSL's bare-key form) over `root` for the TEST split, with `extra` YAML lines
/// appended under `config:`.
func pipelineText(
    root: String, split: String = "TEST", transforms: String = testTransforms, batch: Int = 3,
    poolMap: String = #"[["res4", ["AdaptiveAvgPool2d", [[2, 1]]]], ["res5avg", ["Identity", []]]]"#,
    depth: Int = 18, extra: String = ""
) -> String {
    extractionPipelineText(
        root: root, split: split, transforms: transforms, batch: batch, poolMap: poolMap, depth: depth, extra: extra)
}

let testTransforms =
    #"[{name: Resize, size: 40}, {name: CenterCrop, size: 32}, {name: ToTensor}, {name: Normalize, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}]"#
let randomTransforms = #"[{name: RandomResizedCrop, size: 32}, {name: RandomHorizontalFlip}, {name: ToTensor}]"#

func loadConfig(_ text: String, overrides: [String] = []) throws -> PipelineConfig {
    try PipelineConfig.load(text: text, source: "test.yaml", overrides: overrides)
}

/// A cheap, exactly reproducible model: output 0 is each channel's mean, output 1 a
/// position-weighted checksum of the whole tensor (catches any reordering), output 2 the first
/// value. Computed in Double and rounded, so the result does not depend on batching.
final class ProbeModel: FeatureModel, @unchecked Sendable {
    let inputHeight: Int
    let inputWidth: Int
    var outputDimensions: [Int] { [3, 1, 1] }
    /// Throws on this forward call (0-based), if set.
    var failOnCall: Int?
    private(set) var calls = 0
    private(set) var imagesSeen = 0

    init(height: Int, width: Int) {
        inputHeight = height
        inputWidth = width
    }

    static func compute(_ x: UnsafePointer<Float>, h: Int, w: Int) -> [[Float]] {
        let plane = h * w
        var means = [Float](repeating: 0, count: 3)
        var checksum = 0.0
        for c in 0..<3 {
            var s = 0.0
            for i in 0..<plane {
                let v = Double(x[c * plane + i])
                s += v
                checksum += v * Double((c * plane + i) % 13 + 1)
            }
            means[c] = Float(s / Double(plane))
        }
        return [means, [Float(checksum)], [x[0]]]
    }

    func forward(input: UnsafePointer<Float>, count: Int, destinations: [UnsafeMutablePointer<Float>]) throws {
        defer { calls += 1 }
        if let f = failOnCall, f == calls { throw LinprobeError(.numerical, "probe model failed on purpose") }
        let size = 3 * inputHeight * inputWidth
        for i in 0..<count {
            let out = Self.compute(input + i * size, h: inputHeight, w: inputWidth)
            for (k, values) in out.enumerated() {
                for (j, v) in values.enumerated() { destinations[k][i * values.count + j] = v }
            }
        }
        imagesSeen += count
    }
}

/// The probe model's expected rows for a listing, computed by loading every row directly.
func expectedProbeRows(
    listing: DatasetListing, pipeline: TransformPipeline, views: Int, seed: UInt64, h: Int, w: Int
)
    throws -> (features: [[Float]], unreadable: [Bool])
{
    let loader = SampleLoader(pipeline: pipeline, grayImageSize: 224, baseSeed: seed)
    var buffer = [Float](repeating: 0, count: 3 * h * w)
    var out: [[Float]] = [[], [], []]
    var flags: [Bool] = []
    for row in 0..<(listing.count * views) {
        let s = row / views
        let loaded = try buffer.withUnsafeMutableBufferPointer {
            try loader.load(path: listing.samples[s].path, sampleIndex: s, view: row % views, into: $0)
        }
        flags.append(loaded.unreadable != nil)
        let values = try buffer.withUnsafeBufferPointer { ProbeModel.compute(try #require($0.baseAddress), h: h, w: w) }
        for k in 0..<3 { out[k] += values[k] }
    }
    return (out, flags)
}

let probeLayers = [
    StoreLayer(name: "mean", shapeCHW: [3, 1, 1]), StoreLayer(name: "checksum", shapeCHW: [1, 1, 1]),
    StoreLayer(name: "first", shapeCHW: [1, 1, 1]),
]

func probeWriter(
    _ path: String, listing: DatasetListing, views: Int = 1, chunkRows: Int = 4
) throws -> FeatureStoreWriter {
    try FeatureStoreWriter(
        creating: path, layers: probeLayers, targetLayout: .singleLabel,
        metadata: StoreMetadata(
            fingerprint: "probe", split: "test", numClasses: listing.numClasses, classNames: listing.classNames,
            trainViews: views),
        chunkRows: chunkRows)
}

/// Every dataset of a store, for whole-store comparisons.
struct StoreContents: Equatable {
    var layers: [String]
    var features: [[Float]]
    var targets: [Int64]
    var indices: [Int64]
    var paths: [String]
    var unreadable: [Int]

    init(_ path: String) throws {
        let r = try FeatureStoreReader(path: path)
        layers = r.layers.map(\.name)
        features = try r.layers.map { try r.readLayer($0.name) }
        targets = try r.targets()
        indices = try r.indices()
        paths = try r.imagePaths()
        unreadable = try r.unreadableRows()
    }

    /// Bitwise equality of the features (NaN-safe, -0 ≠ +0).
    func bitwiseEqual(_ o: StoreContents) -> Bool {
        guard layers == o.layers, targets == o.targets, indices == o.indices, paths == o.paths,
            unreadable == o.unreadable,
            features.count == o.features.count
        else { return false }
        for (a, b) in zip(features, o.features) where a.map(\.bitPattern) != b.map(\.bitPattern) { return false }
        return true
    }
}
