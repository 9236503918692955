import Foundation
import LinprobeCheckpoint
import LinprobeCodecs
import LinprobeCore
import LinprobeStore

extension FuzzTarget {
    /// Every target, in the order `make fuzz` runs them.
    public static let all: [FuzzTarget] = [checkpoint, yaml, npy, store, image]

    /// The target called `name`.
    public static func named(_ name: String) throws -> FuzzTarget {
        guard let target = (all + selfTests).first(where: { $0.name == name }) else {
            throw FuzzError("unknown fuzz target '\(name)' (known: \(all.map(\.name).joined(separator: ", ")))")
        }
        return target
    }

    /// `torch.save` zip and legacy pickles, safetensors: `Checkpoint.load`, then the state dict
    /// selected as `extract` does and every tensor's values read.
    static let checkpoint = FuzzTarget(
        name: "checkpoint", defaultIterations: 2500, seedPaths: ["Tests/Fixtures/trunk/checkpoints"],
        extensions: [".pt", ".pth", ".torch", ".tar", ".safetensors"], maximumSeedBytes: 16_384,
        hotspots: { bytes in
            let zip: [[UInt8]] = [[0x50, 0x4B, 3, 4], [0x50, 0x4B, 1, 2], [0x50, 0x4B, 5, 6], [0x50, 0x4B, 6, 6]]
            return Array(0..<min(bytes.count, 64)) + offsets(of: zip, in: bytes, span: 48)
                + offsets(of: [Array("data.pkl".utf8)], in: bytes, span: 160)
        },
        parse: { _, path in
            let loaded = try Checkpoint.load(path: path)
            let nested = loaded.root.dictValue?["classy_state_dict"] != nil
            let settings = WeightsInit(stateDictKeyName: nested ? ["classy_state_dict"] : [])
            let state = try TrunkStateDict.select(from: loaded, settings: settings)
            for name in state.order { _ = state.tensors[name]?.tensor.floats() }
        }, upstream: nil, repair: Checksums.fixZip)

    /// Pipeline YAML: `PipelineConfig.load(text:)` (YAMLBounds, the YAML library, key checks).
    static let yaml = FuzzTarget(
        name: "yaml", defaultIterations: 1500, seedPaths: ["pipelines", "Tests/Fixtures/vissl-configs/seed-snippets"],
        extensions: [".yaml", ".yml"], maximumSeedBytes: 16_384,
        hotspots: { bytes in
            bytes.indices.filter { bytes[$0] == 0x3A || bytes[$0] == 0x0A || bytes[$0] == 0x2D || bytes[$0] == 0x5B }
        },
        parse: { bytes, _ in
            _ = try PipelineConfig.load(text: String(decoding: bytes, as: UTF8.self), source: "fuzz.yaml")
        }, upstream: nil)

    /// NumPy `.npy` label and file-list arrays: `NPYArray.parse` (magic, header dict, shape, data).
    static let npy = FuzzTarget(
        name: "npy", defaultIterations: 2500, seedPaths: ["Tests/Fixtures/data/npy", "Tests/Fixtures/data"],
        extensions: [".npy"], maximumSeedBytes: 16_384,
        hotspots: { bytes in
            let end = bytes.firstIndex(of: 0x0A) ?? min(bytes.count, 128)
            return Array(0..<end)
        },
        parse: { bytes, path in
            _ = try bytes.withUnsafeBytes { try NPYArray.parse($0, path: path) }
        }, upstream: nil)

    /// Feature stores (HDF5): `FeatureStoreReader` on open (attributes, shapes, row counts),
    /// then every layer, the targets, indices, paths and unreadable rows read.
    static let store = FuzzTarget(
        name: "store", defaultIterations: 1000, seedPaths: ["Tests/Fixtures/svm/synth_test.h5"],
        extensions: [".h5"], maximumSeedBytes: 65_536,
        hotspots: { bytes in
            let names = [
                "format", "format_version", "complete", "rows_written", "train_views", "layer_order", "shape_chw",
                "num_classes", "class_names", "target_layout", "dim", "fingerprint", "split", "targets", "indices",
            ]
            return Array(0..<min(bytes.count, 128))
                + offsets(of: names.map { Array($0.utf8) }, in: bytes, span: 96)
                + offsets(of: [Array("OHDR".utf8), Array("TREE".utf8), Array("HEAP".utf8)], in: bytes, span: 64)
        },
        parse: { _, path in
            let reader = try FeatureStoreReader(path: path)
            for layer in reader.layers { _ = try reader.readLayer(layer.name) }
            _ = try reader.targets()
            _ = try reader.indices()
            _ = try reader.imagePaths()
            _ = try reader.unreadableRows()
        }, upstream: Upstream(library: "libhdf5", tool: ["h5dump"]))

    /// JPEG and PNG: `ImageDecoder.decode` (an unreadable image is a rejection). A 4-megapixel
    /// bound keeps a forged size quick to refuse; the bound itself is what is exercised.
    static let image = FuzzTarget(
        name: "image", defaultIterations: 2500,
        seedPaths: ["Tests/Fixtures/images/files", "Tests/Fixtures/images/pil-quirks"],
        extensions: [".png", ".jpg"], maximumSeedBytes: 8192,
        hotspots: { bytes in
            let png = ["IHDR", "PLTE", "IDAT", "tRNS", "gAMA", "iCCP", "zTXt", "IEND"].map { Array($0.utf8) }
            let jpeg: [[UInt8]] = [0xC0, 0xC2, 0xC4, 0xDA, 0xDB, 0xDD, 0xE0, 0xEE].map { [0xFF, $0] }
            return offsets(of: png, in: bytes, span: 21).map { max(0, $0 - 4) } + offsets(of: jpeg, in: bytes, span: 20)
        },
        parse: { bytes, _ in
            var image = RGBImage()
            if case .unreadable(let why) = ImageDecoder(maxPixels: 1 << 22).decode(bytes, into: &image) {
                throw FuzzError("unreadable image: \(why.reason)")
            }
        }, upstream: nil, repair: { $0.starts(with: [0x89, 0x50, 0x4E, 0x47]) ? Checksums.fixPNG($0) : $0 })
}

extension FuzzTarget {
    /// Targets that crash, hang or allocate without bound on every input: they check that the
    /// runner records each as a finding (used by the tests, not by `make fuzz`).
    public static let selfTests: [FuzzTarget] = [
        selfTest("selftest-crash") { _ in fatalError("self-test crash") },
        selfTest("selftest-hang") { _ in while true { sleep(1) } },
        selfTest("selftest-allocation") { bytes in
            let huge = [UInt8](repeating: bytes.first ?? 1, count: 1 << 40)
            if huge[Int(bytes.count)] == 7 { print("unreachable") }
        },
    ]

    private static func selfTest(_ name: String, _ body: @escaping @Sendable ([UInt8]) -> Void) -> FuzzTarget {
        FuzzTarget(
            name: name, defaultIterations: 0, seedPaths: ["Tests/Fixtures/data/npy/uint8.npy"], extensions: [],
            maximumSeedBytes: 4096, hotspots: { _ in [] }, parse: { bytes, _ in body(bytes) }, upstream: nil,
            warmsUp: false)
    }
}
