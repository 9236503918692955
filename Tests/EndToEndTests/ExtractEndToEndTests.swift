import Foundation
import LinprobeCore
import LinprobeHDF5
import LinprobeStore
import LinprobeTestSupport
import LinprobeTrunk
import Testing

#if canImport(Glibc)
    import Glibc
#endif

// `linprobe extract` through the built binary: fidelity against PyTorch, reuse, resumption after
// SIGKILL / SIGINT / a full disk / strict stops, augmented views, and bad inputs.

/// One test's work area: a dataset folder, pipeline files, the work folder.
private struct Area {
    let dir: TemporaryDirectory
    var workdir: String { dir.file("work") }

    init() throws { dir = try TemporaryDirectory("linprobe-extract-e2e") }

    /// An ImageFolder dataset: class → fixture files from Tests/Fixtures/images/files (a name
    /// `new<-fixture` copies the fixture under a new name); `text` adds non-image files.
    @discardableResult
    func dataset(_ layout: [String: [String]], text: [String] = [], name: String = "data") throws -> String {
        let root = dir.file(name)
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (cls, files) in layout {
            try fm.createDirectory(atPath: root + "/" + cls, withIntermediateDirectories: true)
            for f in files {
                let parts = f.components(separatedBy: "<-")
                let (target, source) = parts.count == 2 ? (parts[0], parts[1]) : (f, f)
                try fm.copyItem(atPath: fixturePath("images/files/" + source), toPath: root + "/" + cls + "/" + target)
            }
        }
        for rel in text { try "not an image\n".write(toFile: root + "/" + rel, atomically: true, encoding: .utf8) }
        return root
    }

    func write(_ text: String, to name: String) throws -> String {
        let path = dir.file(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs `linprobe extract <pipeline> <args…> --workdir <work>` in the area.
    func extract(_ pipeline: String, _ args: [String] = [], workdir: String? = nil) throws -> ProcessResult {
        try runProcess(
            linprobeBinary(), ["extract", pipeline] + args + ["--workdir", workdir ?? self.workdir],
            currentDirectory: dir.path)
    }

    func process(_ pipeline: String, _ args: [String], workdir: String? = nil) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: linprobeBinary())
        p.arguments = ["extract", pipeline] + args + ["--workdir", workdir ?? self.workdir]
        p.currentDirectoryURL = dir.url
        p.environment = childEnvironment()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        return p
    }
}

/// A pipeline over `root` (TEST split unless `split` says otherwise), random ResNet-18 weights
/// unless `weights` is given, `extra` YAML appended under `config:`.
private func pipeline(
    root: String, split: String = "TEST", size: Int = 32, batch: Int = 4,
    transforms: String? = nil,
    poolMap: String = #"[["res4", ["AdaptiveAvgPool2d", [[2, 1]]]], ["res5avg", ["Identity", []]]]"#,
    weights: String = "", extra: String = ""
) -> String {
    let t =
        transforms
        ?? #"[{name: Resize, size: \#(size + 8)}, {name: CenterCrop, size: \#(size)}, {name: ToTensor}, {name: Normalize, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}]"#
    return extractionPipelineText(
        root: root, split: split, transforms: t, batch: batch, poolMap: poolMap, weights: weights, extra: extra)
}

private let fewImages: [String: [String]] = [
    "cat": ["photo_500x375.jpg", "gray_50x70.jpg", "cmyk_43x31.jpg"],
    "dog": ["photo_375x500.jpg", "rgba_52x38.png", "palette_52x38.png"],
]

/// `n` photos (copies of the two fixture photos under new names) in two classes.
private func manyPhotos(_ n: Int) -> [String: [String]] {
    var layout: [String: [String]] = ["x": [], "y": []]
    for i in 0..<n {
        let source = i % 2 == 0 ? "photo_500x375.jpg" : "photo_375x500.jpg"
        layout[i % 3 == 0 ? "x" : "y", default: []].append(String(format: "img%03d.jpg<-%@", i, source))
    }
    return layout
}

/// The lines of stderr that report an error.
private func errorLines(_ r: ProcessResult) -> [Substring] {
    r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
}

/// Every dataset of a finished store.
private struct Contents: Equatable {
    var layers: [String], shapes: [[Int]], features: [[UInt32]], targets: [Int64], indices: [Int64], paths: [String],
        unreadable: [Int]
    var fingerprint: String

    init(_ path: String) throws {
        let r = try FeatureStoreReader(path: path)
        layers = r.layers.map(\.name)
        shapes = r.layers.map(\.shapeCHW)
        features = try r.layers.map { try r.readLayer($0.name).map(\.bitPattern) }
        targets = try r.targets()
        indices = try r.indices()
        paths = try r.imagePaths()
        unreadable = try r.unreadableRows()
        fingerprint = r.fingerprint
    }
}

// MARK: - Weights of the trunk fixtures, as a safetensors file

/// FNV-1a, 64-bit.
private func fnv1a64(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    return h
}

/// The weights `scripts/make_trunk_fixtures.py` gives case `caseName` (its PRNG, value by value),
/// written as a flat safetensors state dict with torchvision names.
private func writeFixtureWeights(_ spec: ResNetSpec, caseName: String, to path: String) throws {
    var header: [String: JSONValue] = [:]
    var data = Data()
    for p in spec.parameters {
        let n = p.shape.reduce(1, *)
        var rng = SeededGenerator(seed: fnv1a64("\(caseName):\(p.name)"))
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let u = Double(rng.next() >> 40) * 0x1p-24
            if p.name.hasSuffix("running_mean") {
                values[i] = Float(0.5 * (2 * u - 1))
            } else if p.name.hasSuffix("running_var") {
                values[i] = Float(0.5 + 1.5 * u)
            } else if p.name.hasSuffix(".bias") {
                values[i] = Float(0.2 * (2 * u - 1))
            } else if p.shape.count == 4 {
                values[i] = Float((2 * u - 1) * (6.0 / Double(p.shape.dropFirst().reduce(1, *))).squareRoot())
            } else {
                values[i] = Float(0.5 + u)
            }
        }
        let start = data.count
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        header[p.name] = [
            "dtype": "F32", "shape": .array(p.shape.map { .int(Int64($0)) }),
            "data_offsets": [.int(Int64(start)), .int(Int64(data.count))],
        ]
    }
    var text = Array(JSONValue.object(header).canonicalText.utf8)
    while text.count % 8 != 0 { text.append(0x20) }
    var file = Data()
    withUnsafeBytes(of: UInt64(text.count).littleEndian) { file.append(contentsOf: $0) }
    file.append(contentsOf: text)
    file.append(data)
    try file.write(to: URL(fileURLWithPath: path))
}

// MARK: - Tests

@Suite struct ExtractEndToEnd {
    /// The committed expectation (scripts/make_extract_fixtures.py): VISSL's loading (PIL,
    /// convert RGB, gray image for the unreadable file), torchvision's transforms, the ResNet-18
    /// trunk in float64 and VISSL's pool ops, on the committed image fixtures.
    ///
    /// Tolerance: per layer, max |ours − PyTorch| ≤ 1e-3 · max |PyTorch| + 1e-6. The transforms
    /// give byte-identical images to PIL (LinprobeDataTests), so what remains is float32
    /// arithmetic (float32 PyTorch itself is 9e-7 relative from the float64 reference; Winograd
    /// and folded BatchNorm add ~1e-5). A stray 1/255 in a few resampled pixels — the most the
    /// image pipeline is allowed — moves pooled features by well under 1e-3 of their range,
    /// while every real mistake (channel order, crop offset, interpolation, pool op, wrong
    /// image) moves them by 1e-2 or more.
    @Test func featuresMatchPyTorch() throws {
        let area = try Area()
        let doc = try JSONValue.parse(String(contentsOfFile: fixturePath("extract/dataset.json"), encoding: .utf8))
        let blob = try Data(contentsOf: URL(fileURLWithPath: fixturePath("extract/features.bin")))
        let reference: [Float] = blob.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        var layout: [String: [String]] = [:]
        for (cls, files) in try #require(doc["classes"]?.objectValue) {
            layout[cls] = files.arrayValue?.compactMap(\.stringValue)
        }
        let root = try area.dataset(layout, text: ["animals/README.txt"])
        try FileManager.default.copyItem(
            atPath: fixturePath("images/files/animation.gif"), toPath: root + "/bytes/animation.gif")
        let weights = area.dir.file("rn18.safetensors")
        try writeFixtureWeights(
            ResNetSpec(depth: 18), caseName: try #require(doc["weights_case"]?.stringValue), to: weights)
        let transforms = try #require(doc["transforms"])
        let poolMap = try #require(doc["pool_map"]).canonicalText
        let file = try area.write(
            pipeline(
                root: root, split: "TRAIN", transforms: transforms["TRAIN"]!.canonicalText,
                poolMap: poolMap, weights: weights), to: "fidelity.yaml")
        let result = try area.extract(
            file,
            [
                "config.DATA.TEST.DATA_SOURCES=[disk_folder]", "config.DATA.TEST.LABEL_SOURCES=[disk_folder]",
                "config.DATA.TEST.DATA_PATHS=[\(root)]", "config.DATA.TEST.BATCHSIZE_PER_REPLICA=5",
                "config.DATA.TEST.TRANSFORMS=\(transforms["TEST"]!.canonicalText)",
            ])
        #expect(result.status == 0, "\(result.stderr)")
        let paths = result.stdout.split(separator: "\n").map(String.init)
        #expect(paths.count == 2)
        #expect(paths.first?.hasSuffix("/train.h5") == true && paths.last?.hasSuffix("/test.h5") == true)
        #expect(result.stderr.contains("animals/garbage.jpg"), "the unreadable image is reported")
        #expect(
            !result.stderr.contains("README") && !result.stderr.contains("animation.gif"), "non-image files are ignored"
        )

        for (split, storePath) in zip(["TRAIN", "TEST"], paths) {
            let expected = try #require(doc["splits"]?[split])
            let r = try FeatureStoreReader(path: storePath)
            let names = try #require(expected["layers"]?.arrayValue)
            #expect(r.layers.map(\.name) == names.compactMap { $0["name"]?.stringValue })
            #expect(r.layers.map(\.shapeCHW) == names.map { $0["shape_chw"]!.arrayValue!.map { Int($0.intValue!) } })
            #expect(try r.imagePaths() == expected["image_paths"]!.arrayValue!.compactMap(\.stringValue))
            #expect(try r.targets() == expected["targets"]!.arrayValue!.compactMap(\.intValue))
            let flags = expected["unreadable"]!.arrayValue!.compactMap(\.intValue)
            #expect(try r.unreadableRows() == flags.indices.filter { flags[$0] != 0 })
            #expect(r.classNames == ["animals", "bytes"])
            for layer in names {
                let name = layer["name"]!.stringValue!
                let offset = Int(layer["offset"]!.intValue!), count = Int(layer["count"]!.intValue!)
                let want = Array(reference[offset..<(offset + count)])
                let got = try r.readLayer(name)
                #expect(got.count == want.count)
                let scale = want.map(abs).max() ?? 0
                let worst = zip(got, want).map { abs($0 - $1) }.max() ?? 0
                #expect(worst <= 1e-3 * scale + 1e-6, "\(split) \(name): max |diff| \(worst) vs max |ref| \(scale)")
            }
        }
    }

    /// An empty pool map stores the trunk output as `heads` (VISSL's name), equal to res5avg.
    @Test func emptyPoolMapStoresHeads() throws {
        let area = try Area()
        let root = try area.dataset(fewImages)
        let withMap = try area.write(pipeline(root: root, poolMap: #"[["res5avg", ["Identity", []]]]"#), to: "map.yaml")
        let empty = try area.write(pipeline(root: root, poolMap: "[]"), to: "empty.yaml")
        let a = try area.extract(withMap, ["--threads", "1"])
        let b = try area.extract(empty, ["--threads", "1"])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr) \(b.stderr)")
        let res5avg = try Contents(a.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        let heads = try Contents(b.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(heads.layers == ["heads"])
        #expect(heads.shapes == [[512, 1, 1]])
        #expect(heads.features == res5avg.features)
        #expect(heads.fingerprint != res5avg.fingerprint)
    }

    @Test func rerunReusesTheStoreAndForceExtractsAgain() throws {
        let area = try Area()
        let root = try area.dataset(fewImages)
        let file = try area.write(pipeline(root: root), to: "p.yaml")
        let first = try area.extract(file)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("random initialisation"))
        let store = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(store.hasPrefix(area.workdir + "/features/") && store.hasSuffix("/test.h5"))
        let weights = try FeatureStoreReader(path: store).jsonAttribute("weights")
        #expect(weights["init"] == "random")
        let stamp = try FileManager.default.attributesOfItem(atPath: store)[.modificationDate] as? Date

        let second = try area.extract(file)
        #expect(second.status == 0)
        #expect(second.stdout == first.stdout)
        #expect(second.stderr.contains("reused \(store)"))
        #expect(!second.stderr.contains("extracted 6 images"))
        #expect(try FileManager.default.attributesOfItem(atPath: store)[.modificationDate] as? Date == stamp)
        let manifest = try JSONValue.parse(String(contentsOfFile: area.workdir + "/manifest.json", encoding: .utf8))
        let records = try #require(manifest["records"]?.objectValue)
        #expect(records.count == 1)
        #expect(records.values.first?["status"] == "complete")
        #expect(records.values.first?["stage"] == "extract")

        // Batch size and threads do not change the features, so they do not change the store.
        let other = try area.extract(file, ["config.DATA.TEST.BATCHSIZE_PER_REPLICA=5", "--threads", "1"])
        #expect(other.stderr.contains("reused"))

        let forced = try area.extract(file, ["--force"])
        #expect(forced.status == 0)
        #expect(forced.stderr.contains("extracted"))
        #expect(try Contents(store) == (try Contents(store)))
    }

    /// SIGKILL part-way, rerun: the store resumes from its watermark and ends bit-for-bit equal
    /// to an uninterrupted run (same threads both times).
    @Test func killedRunResumesToTheSameStore() throws {
        let area = try Area()
        let root = try area.dataset(manyPhotos(72))
        // conv1 unpooled at 64×64 is 256 KiB per row: 8-row chunks, so the watermark moves often.
        let file = try area.write(
            pipeline(
                root: root, size: 64, batch: 2,
                poolMap: #"[["conv1", ["Identity", []]], ["res5avg", ["Identity", []]]]"#), to: "p.yaml")
        let args = ["--threads", "2", "--decode-workers", "2", "--flush-seconds", "0"]

        let clean = try area.extract(file, args, workdir: area.dir.file("clean"))
        #expect(clean.status == 0, "\(clean.stderr)")
        let cleanStore = clean.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let partial = cleanStore.replacingOccurrences(of: area.dir.file("clean"), with: area.workdir) + ".partial"

        let process = area.process(file, args)
        try process.run()
        // Kill once at least two chunks (16 rows × 256 KiB) are on disk.
        var killed = false
        for _ in 0..<20_000 {
            if let size = try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int, size > 5 << 20 {
                kill(process.processIdentifier, SIGKILL)
                killed = true
                break
            }
            if !process.isRunning { break }
            usleep(1000)
        }
        process.waitUntilExit()
        try #require(killed && process.terminationReason == .uncaughtSignal, "the run ended before it could be killed")
        #expect(FileManager.default.fileExists(atPath: partial))

        let resumed = try area.extract(file, args)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let line = try #require(resumed.stderr.split(separator: "\n").first { $0.hasPrefix("resuming ") })
        let row = Int(line.split(separator: " ")[4]) ?? -1
        #expect(row > 0 && row < 72 && row % 8 == 0, "\(line)")
        let store = resumed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try Contents(store) == (try Contents(cleanStore)))
        let runs = try FeatureStoreReader(path: store).jsonAttribute("provenance")["runs"]?.arrayValue ?? []
        #expect(runs.count == 2, "the interrupted run and the resuming one")
    }

    /// SIGINT stops after the current batch, flushes, says how to resume; the rerun finishes.
    @Test func interruptStopsCleanlyAndTheRerunResumes() throws {
        let area = try Area()
        let root = try area.dataset(manyPhotos(60))
        let file = try area.write(
            pipeline(
                root: root, size: 64, batch: 2,
                poolMap: #"[["conv1", ["Identity", []]]]"#), to: "p.yaml")
        let process = area.process(file, ["--flush-seconds", "0"])
        let err = Pipe()
        process.standardError = err
        try process.run()
        let partial = area.workdir + "/features"
        var sent = false
        for _ in 0..<20_000 {
            let found = (try? FileManager.default.subpathsOfDirectory(atPath: partial))?.first {
                $0.hasSuffix(".partial")
            }
            if let found,
                let size = try? FileManager.default.attributesOfItem(atPath: partial + "/" + found)[.size] as? Int,
                size > 5 << 20
            {
                kill(process.processIdentifier, SIGINT)
                sent = true
                break
            }
            if !process.isRunning { break }
            usleep(1000)
        }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(sent, "the run ended before it could be interrupted")
        #expect(process.terminationStatus == 1)
        let errors = stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        #expect(errors.count == 1)
        #expect(errors.first?.contains("interrupted") == true && errors.first?.contains("rerun") == true, "\(stderr)")
        let rerun = try area.extract(file)
        #expect(rerun.status == 0)
        #expect(rerun.stderr.contains("resuming"))
        #expect(try FeatureStoreReader(path: rerun.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).count == 60)
    }

    /// Case 10 / deliver 2: the first SIGTERM stops the work before the first batch too. A 16 GB
    /// sparse weights file takes seconds to hash; the signal goes as soon as the file is open.
    @Test func sigtermWhileHashingTheWeightsStopsAtOnce() throws {
        let area = try Area()
        let root = try area.dataset(fewImages)
        let weights = area.dir.file("huge.pth")
        #expect(FileManager.default.createFile(atPath: weights, contents: nil))
        #expect(truncate(weights, 16 << 30) == 0)
        let file = try area.write(pipeline(root: root, weights: weights), to: "p.yaml")
        let process = area.process(file, [])
        let err = Pipe()
        process.standardError = err
        try process.run()
        var sent = false
        for _ in 0..<20_000 where process.isRunning {
            let fds =
                (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/fd")) ?? []
            let open = fds.contains {
                (try? FileManager.default.destinationOfSymbolicLink(
                    atPath: "/proc/\(process.processIdentifier)/fd/\($0)")) == weights
            }
            if open {
                kill(process.processIdentifier, SIGTERM)
                sent = true
                break
            }
            usleep(1000)
        }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(sent, "the run ended before the weights file was opened: \(stderr)")
        #expect(process.terminationStatus == 1, "\(stderr)")
        let errors = stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        #expect(errors.count == 1, "\(stderr)")
        #expect(errors.first?.contains("interrupted while hashing \(weights)") == true, "\(stderr)")
        #expect(!FileManager.default.fileExists(atPath: area.workdir + "/features"))
    }

    @Test func unreadableImagesAreFlaggedAndStrictStopsKeepingTheRowsBefore() throws {
        let area = try Area()
        var layout = fewImages
        layout["dog"]! += ["broken.jpg<-truncated_half.jpg", "zz_text.png<-text.png"]
        let root = try area.dataset(layout)
        let file = try area.write(pipeline(root: root, batch: 1), to: "p.yaml")

        let strict = try area.extract(file, ["--strict", "--flush-seconds", "0"])
        #expect(strict.status == 1)
        #expect(strict.stdout.isEmpty)
        let errors = errorLines(strict)
        #expect(errors.count == 1)
        #expect(errors.first?.contains("dog/broken.jpg") == true, "\(strict.stderr)")
        #expect(errors.first?.contains("rows kept") == true)

        // Without --strict the rerun resumes after the kept rows and flags both bad files.
        let lenient = try area.extract(file)
        #expect(lenient.status == 0, "\(lenient.stderr)")
        #expect(lenient.stderr.contains("resuming"))
        #expect(lenient.stderr.contains("2 image(s) of 8 could not be read"))
        #expect(lenient.stderr.contains("dog/broken.jpg") && lenient.stderr.contains("dog/zz_text.png"))
        let store = lenient.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let r = try FeatureStoreReader(path: store)
        let paths = try r.imagePaths()
        #expect(try r.unreadableRows().map { paths[$0] } == ["dog/broken.jpg", "dog/zz_text.png"])

        // A reused store with unreadable rows: a warning, or a failure under LINPROBE.STRICT_IMAGES.
        let again = try area.extract(file)
        #expect(again.status == 0 && again.stderr.contains("gray image"))
        let strictAgain = try area.extract(file, ["config.LINPROBE.STRICT_IMAGES=true"])
        #expect(strictAgain.status == 1)
        #expect(errorLines(strictAgain).first?.contains("--force") == true)
    }

    @Test("LINPROBE.MAX_IMAGE_PIXELS bounds images as PIL's MAX_IMAGE_PIXELS does: refused above twice the limit")
    func maxImagePixelsRefusesLargerImagesBeforeDecoding() throws {
        let area = try Area()
        let root = try area.dataset(fewImages)
        let file = try area.write(pipeline(root: root), to: "p.yaml")
        // 500×375 = 187,500 pixels: refused above 2 × 90,000; 50×70 and the 52×38 images pass.
        let limited = try area.extract(file, ["config.LINPROBE.MAX_IMAGE_PIXELS=90000"])
        #expect(limited.status == 0, "\(limited.stderr)")
        #expect(limited.stderr.contains("2 image(s) of 6 could not be read"), "\(limited.stderr)")
        let store = limited.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let paths = try FeatureStoreReader(path: store).imagePaths()
        let refused = try FeatureStoreReader(path: store).unreadableRows().map { paths[$0] }
        #expect(refused.sorted() == ["cat/photo_500x375.jpg", "dog/photo_375x500.jpg"])

        // 93,750 × 2 ≥ 187,500: nothing refused, and a store of its own (the limit is in the fingerprint).
        let enough = try area.extract(file, ["config.LINPROBE.MAX_IMAGE_PIXELS=93750"])
        #expect(enough.status == 0 && !enough.stderr.contains("could not be read"), "\(enough.stderr)")
        #expect(enough.stdout != limited.stdout)
        let bad = try area.extract(file, ["config.LINPROBE.MAX_IMAGE_PIXELS=0"])
        #expect(bad.status == 64 && errorLines(bad).count == 1)
        #expect(errorLines(bad).first?.contains("LINPROBE.MAX_IMAGE_PIXELS") == true, "\(bad.stderr)")
    }

    @Test func trainViewsStoreSeededAugmentedViewsSampleMajor() throws {
        let area = try Area()
        let root = try area.dataset(fewImages)
        let file = try area.write(
            pipeline(
                root: root, split: "TRAIN", batch: 4,
                transforms: "[{name: RandomResizedCrop, size: 32}, {name: RandomHorizontalFlip}, {name: ToTensor}]",
                extra: "  LINPROBE: {TRAIN_VIEWS: 3}\n  SEED_VALUE: 11"), to: "p.yaml")
        let first = try area.extract(file)
        #expect(first.status == 0, "\(first.stderr)")
        let store = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(store.hasSuffix("/train.h5"))
        let r = try FeatureStoreReader(path: store)
        #expect(r.views == 3)
        #expect(r.count == 18)
        #expect(try r.indices() == (0..<6).flatMap { Array(repeating: Int64($0), count: 3) })
        let paths = try r.imagePaths()
        #expect((0..<6).allSatisfy { s in Set(paths[(3 * s)..<(3 * s + 3)]).count == 1 })
        let features = try r.readLayer("res5avg")
        let d = 512
        let views = (0..<3).map { Array(features[($0 * d)..<(($0 + 1) * d)]) }
        #expect(Set(views.map { $0.map(\.bitPattern) }).count == 3, "three different views of sample 0")
        let before = try Contents(store)
        let forced = try area.extract(file, ["--force"])
        #expect(forced.status == 0)
        #expect(try Contents(store) == before, "the same seed gives the same views, bit for bit")
        // Other threads and batches draw the same views; the trunk's float32 sums may then differ
        // in the last bits (BLAS blocking), nothing more.
        let other = try area.extract(
            file,
            [
                "--force", "--threads", "1", "--decode-workers", "0",
                "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=5",
            ])
        #expect(other.status == 0)
        let again = try FeatureStoreReader(path: store).readLayer("res5avg")
        let scale = features.map(abs).max() ?? 0
        #expect(zip(again, features).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
        let reseeded = try area.extract(file, ["config.SEED_VALUE=12"])
        #expect(reseeded.status == 0)
        #expect(reseeded.stdout != first.stdout, "another seed is another store")
    }

    /// A PASCAL VOC root read as VISSL's VOC07 configs read it (disk_filelist): TRAIN = trainval,
    /// TEST = test, multi-label targets with VISSL's 1 / 0 / −1 encoding.
    @Test func vocLayoutGivesMultiLabelStores() throws {
        let area = try Area()
        let voc = fixturePath("data/voc")
        let expected = try JSONValue.parse(String(contentsOfFile: fixturePath("data/voc.json"), encoding: .utf8))
        let text = pipeline(root: voc, split: "TRAIN").replacingOccurrences(
            of: "[disk_folder]", with: "[disk_filelist]")
        let file = try area.write(text, to: "voc.yaml")
        let r = try area.extract(
            file,
            [
                "config.DATA.TEST.DATA_SOURCES=[disk_filelist]", "config.DATA.TEST.LABEL_SOURCES=[disk_filelist]",
                "config.DATA.TEST.DATA_PATHS=[\(voc)]",
                "config.DATA.TEST.TRANSFORMS=[{name: Resize, size: [32, 32]}, {name: ToTensor}]",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let stores = r.stdout.split(separator: "\n").map(String.init)
        #expect(stores.count == 2)
        for (split, path) in zip(["train", "test"], stores) {
            let want = try #require(expected[split])
            let store = try FeatureStoreReader(path: path)
            let classes = want["classes"]!.arrayValue!.compactMap(\.stringValue)
            #expect(store.targetLayout == .multiLabel(classes: classes.count))
            #expect(store.classNames == classes)
            #expect(try store.imagePaths() == want["images"]!.arrayValue!.compactMap(\.stringValue))
            #expect(
                try store.targets() == want["targets"]!.arrayValue!.flatMap { $0.arrayValue!.compactMap(\.intValue) })
        }
    }

    /// float16 storage with deflate: the store says so, and values are float32's rounded.
    @Test func storageDtypeAndDeflateAreApplied() throws {
        let area = try Area()
        let root = try area.dataset(fewImages)
        let file = try area.write(pipeline(root: root), to: "p.yaml")
        let full = try area.extract(file, ["--threads", "1"])
        let half = try area.extract(
            file, ["--threads", "1", "config.LINPROBE.STORAGE_DTYPE=float16", "config.LINPROBE.DEFLATE=4"])
        #expect(full.status == 0 && half.status == 0, "\(half.stderr)")
        #expect(full.stdout != half.stdout)
        let a = try FeatureStoreReader(path: full.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        let b = try FeatureStoreReader(path: half.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(b.layers.allSatisfy { $0.storedType == "float16" })
        let x = try a.readLayer("res5avg"), y = try b.readLayer("res5avg")
        #expect(zip(x, y).allSatisfy { abs($0 - $1) <= abs($0) * 1e-3 + 1e-7 })
    }

    struct BadInput: CustomTestStringConvertible, Sendable {
        var name: String
        var status: Int32
        var mentions: [String]
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        BadInput(name: "missing dataset path", status: 1, mentions: ["no-such-folder", "does not exist"]),
        BadInput(name: "empty dataset", status: 1, mentions: ["empty-data", "class folder"]),
        BadInput(name: "class folder without images", status: 1, mentions: ["ghost"]),
        BadInput(name: "missing weights file", status: 1, mentions: ["missing.torch", "not found"]),
        BadInput(name: "corrupt checkpoint", status: 1, mentions: ["corrupt_pickle.pt"]),
        BadInput(name: "foreign checkpoint", status: 1, mentions: ["not_a_checkpoint.txt"]),
        BadInput(name: "checkpoint of another network", status: 1, mentions: ["small_zip.pt", "ResNet-18"]),
        BadInput(name: "pool kernel larger than the map", status: 64, mentions: ["res5", "AvgPool2d"]),
        BadInput(name: "unknown transform", status: 64, mentions: ["TRANSFORMS[1]", "Solarize"]),
    ]

    @Test(arguments: badInputs)
    func badInputGivesOneLine(_ bad: BadInput) throws {
        let area = try Area()
        var root = try area.dataset(fewImages)
        var extra: [String] = []
        switch bad.name {
        case "missing dataset path": root = area.dir.file("no-such-folder")
        case "empty dataset":
            root = area.dir.file("empty-data")
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try "x".write(toFile: root + "/readme.txt", atomically: true, encoding: .utf8)
        case "class folder without images":
            try FileManager.default.createDirectory(atPath: root + "/ghost", withIntermediateDirectories: true)
            try "x".write(toFile: root + "/ghost/notes.txt", atomically: true, encoding: .utf8)
        case "missing weights file": extra = ["config.MODEL.WEIGHTS_INIT.PARAMS_FILE=missing.torch"]
        case "corrupt checkpoint":
            extra = ["config.MODEL.WEIGHTS_INIT.PARAMS_FILE=\(fixturePath("trunk/checkpoints/corrupt_pickle.pt"))"]
        case "foreign checkpoint":
            extra = ["config.MODEL.WEIGHTS_INIT.PARAMS_FILE=\(fixturePath("trunk/checkpoints/not_a_checkpoint.txt"))"]
        case "checkpoint of another network":
            extra = ["config.MODEL.WEIGHTS_INIT.PARAMS_FILE=\(fixturePath("trunk/checkpoints/small_zip.pt"))"]
        case "pool kernel larger than the map":
            extra = [
                #"config.MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP=[["res5", ["AvgPool2d", [[6, 6], 1, 0]]]]"#
            ]
        case "unknown transform":
            extra = [
                "config.DATA.TEST.TRANSFORMS=[{name: Resize, size: 40}, {name: Solarize, threshold: 3}, {name: ToTensor}]"
            ]
        default: Issue.record("no setup for \(bad.name)")
        }
        let file = try area.write(pipeline(root: root), to: "p.yaml")
        let r = try area.extract(file, extra)
        #expect(r.status == bad.status, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        let errors = errorLines(r)
        #expect(errors.count == 1, "\(r.stderr)")
        for m in bad.mentions { #expect(errors.first?.contains(m) == true, "'\(m)' missing from: \(r.stderr)") }
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Stack dump"))
    }

    /// A store of another format version where this run would write is refused (not touched)
    /// unless --force.
    @Test func storeOfAnotherFormatVersionInTheWay() throws {
        let area = try Area()
        let root = try area.dataset(fewImages)
        let file = try area.write(pipeline(root: root), to: "p.yaml")
        let first = try area.extract(file)
        #expect(first.status == 0)
        let store = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // Pretend a future Linprobe wrote it, and that this work folder's manifest is gone.
        try rewriteFormatVersion(store, to: 99)
        try FileManager.default.removeItem(atPath: area.workdir + "/manifest.json")
        let refused = try area.extract(file)
        #expect(refused.status == 1)
        let errors = errorLines(refused)
        #expect(errors.count == 1)
        #expect(
            errors.first?.contains("format version 99") == true && errors.first?.contains("--force") == true,
            "\(refused.stderr)")
        // With the manifest still claiming it: also one line.
        let withManifest = try area.extract(file)
        #expect(withManifest.status == 1)
        let forced = try area.extract(file, ["--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try FeatureStoreReader(path: store).formatVersion == Int(StoreLayout.formatVersion))
    }

    /// Issue 19 case 13: the manifest stamps each store's size and modification time; a store
    /// changed since (here: a rewritten attribute) is one line naming it, for the reuse and for the
    /// training stages, and `--force` makes it again.
    @Test func aStoreChangedSinceExtractionIsNamed() throws {
        let area = try Area()
        let root = try area.dataset(fewImages)
        let file = try area.write(pipeline(root: root), to: "p.yaml")
        let first = try area.extract(file)
        #expect(first.status == 0, "\(first.stderr)")
        let store = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let manifest = try String(contentsOfFile: area.workdir + "/manifest.json", encoding: .utf8)
        #expect(manifest.contains("\"output_files\"") && manifest.contains("\"modified_ns\""))
        try rewriteFormatVersion(store, to: Int64(StoreLayout.formatVersion))  // same value, new bytes
        let again = try area.extract(file)
        #expect(again.status == 1)
        let errors = errorLines(again)
        #expect(
            errors.count == 1 && errors.first?.contains("changed since extract wrote it") == true, "\(again.stderr)")
        #expect(errors.first?.contains(store) == true, "\(again.stderr)")
        let forced = try area.extract(file, ["--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try area.extract(file).status == 0)
    }

    /// A full disk stops the run with one line and loses nothing: after space is freed the rerun
    /// resumes. Uses a 4 MiB tmpfs when the tests may mount one (root), else a file-size limit.
    @Test func fullDiskStopsWithOneLineAndTheRerunResumes() throws {
        let area = try Area()
        let root = try area.dataset(manyPhotos(40))
        let file = try area.write(
            pipeline(
                root: root, size: 64, batch: 2,
                poolMap: #"[["conv1", ["Identity", []]]]"#), to: "p.yaml")
        let mountPoint = area.dir.file("small-disk")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted =
            getuid() == 0
            && (try? runProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mountPoint]))?.status == 0
        defer { if mounted { _ = try? runProcess("/bin/umount", ["-l", mountPoint]) } }
        let workdir = mounted ? mountPoint + "/work" : area.workdir
        let full: ProcessResult
        if mounted {
            full = try area.extract(file, ["--flush-seconds", "0"], workdir: workdir)
        } else {
            // 4 MiB per file (512-byte blocks); SIGXFSZ ignored so writes fail with EFBIG.
            full = try runProcess(
                "/bin/sh",
                [
                    "-c", "trap '' XFSZ; ulimit -f 8192; exec \"$0\" \"$@\"", linprobeBinary(), "extract", file,
                    "--flush-seconds", "0", "--workdir", workdir,
                ], currentDirectory: area.dir.path)
        }
        #expect(full.status == 1, "\(full.stderr)")
        let errors = errorLines(full)
        #expect(errors.count == 1, "\(full.stderr)")
        #expect(errors.first?.contains("disk full") == true, "\(full.stderr)")
        #expect(!full.stderr.contains("HDF5-DIAG") && !full.stderr.contains("crashed"), "\(full.stderr)")
        // The system's reason, once, rather than HDF5's stack that quotes it a dozen times.
        let reason = mounted ? "No space left on device" : "File too large"
        #expect(errors.first?.contains(reason) == true && errors.first?.contains("H5FD") == false, "\(full.stderr)")
        if mounted { _ = try runProcess("/bin/mount", ["-o", "remount,size=64m", mountPoint]) }
        let rerun = try area.extract(file, [], workdir: workdir)
        // Case 16: the rerun resumes the partial store; when the full disk kept the failure from
        // being recorded, it says so rather than leaving a silent "running" record.
        #expect(rerun.stderr.contains("resuming") && rerun.stderr.contains("at row 8 of 40"), "\(rerun.stderr)")
        if mounted { #expect(rerun.stderr.contains("ended without a record"), "\(rerun.stderr)") }
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(try FeatureStoreReader(path: rerun.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).count == 40)
    }
}

/// A batch too large for one store chunk is a configuration error naming the key (exit 64), not
/// HDF5's "number of elements in chunk must be < 4GB" (exit 1), and nothing is written.
@Suite struct HugeBatchTests {
    @Test(arguments: ["1000000000", "9223372036854775807"]) func hugeBatchIsOneConfigLine(_ batch: String) throws {
        let tmp = try TemporaryDirectory()
        let r = try runProcess(
            linprobeBinary(),
            ["extract", "demo", "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=\(batch)", "--workdir", tmp.file("w")],
            currentDirectory: repositoryRoot.path)
        #expect(r.status == 64, "\(r.stderr)")
        let errors = errorLines(r)
        #expect(errors.count == 1, "\(r.stderr)")
        #expect(errors.first?.contains("DATA.TRAIN.BATCHSIZE_PER_REPLICA") == true, "\(r.stderr)")
        #expect(!r.stderr.contains("HDF5") && !r.stderr.contains("Fatal error"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tmp.file("w/features")))
    }
}

/// Sets a store's `format_version` attribute (simulating another Linprobe version's store).
private func rewriteFormatVersion(_ path: String, to version: Int64) throws {
    let file = try HDF5File.open(path, writable: true)
    try file.setAttribute("format_version", int64: version)
    try file.close()
}
