import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeData

/// `DATA.<SPLIT>` settings from a JSON object, as the config loader would hand them over.
func settings(_ split: DatasetSplit, _ fields: [String: JSONValue]) throws -> DatasetSettings {
    try DatasetSettings(split: split, config: ConfigNode(path: "DATA.\(split.rawValue)", value: .object(fields)))
}

func settings(_ fields: [String: JSONValue]) throws -> DatasetSettings {
    try settings(.train, fields)
}

func write(_ text: String, to path: String) throws {
    try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// Expects a LinprobeError whose one-line message contains every fragment.
func expectError(
    _ fragments: [String], code: LinprobeError.Code? = nil, _ body: () throws -> Void,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    do {
        try body()
        Issue.record("no error; expected one mentioning \(fragments)", sourceLocation: sourceLocation)
    } catch let e as LinprobeError {
        let line = oneLine(e)
        for f in fragments where !line.contains(f) {
            Issue.record("error '\(line)' does not mention '\(f)'", sourceLocation: sourceLocation)
        }
        if let code, e.code != code {
            Issue.record("error code \(e.code), expected \(code): \(line)", sourceLocation: sourceLocation)
        }
        #expect(!line.contains("\n"))
    } catch {
        Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
    }
}

/// Decodes the JSON fixture `name` (relative to Tests/Fixtures). A missing, unreadable or empty
/// fixture throws, so a parameterised test whose arguments come from it fails instead of running
/// no case at all.
private func fixtureCases<T: Decodable & Collection>(_ name: String, as type: T.Type) throws -> T {
    let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath(name)))
    let cases = try JSONDecoder().decode(T.self, from: data)
    guard !cases.isEmpty else { throw LinprobeError(.missingInput, "fixture \(name) holds no cases") }
    return cases
}

@Suite struct NPYReaderTests {
    struct Case: Decodable {
        var dtype: String?
        var shape: [Int]?
        var values: [JSONValue]?
        var error: String?
    }

    static func cases() throws -> [String: Case] { try fixtureCases("data/npy.json", as: [String: Case].self) }

    @Test(arguments: try cases().keys.sorted())
    func readsWhatNumPyWrote(_ name: String) throws {
        let c = try #require(try Self.cases()[name])
        let path = fixturePath("data/npy/\(name)")
        if let error = c.error {
            expectError([error, name], code: .unsupported) { _ = try NPYArray.read(path: path) }
            return
        }
        let a = try NPYArray.read(path: path)
        #expect(a.shape == c.shape)
        if let d = c.dtype { #expect(a.dtype.hasPrefix(d)) }
        switch a.values {
        case .strings(let s): #expect(s == c.values?.compactMap(\.stringValue))
        case .integers(let v): #expect(v == c.values?.compactMap(\.intValue))
        case .floats(let v): #expect(v == c.values?.compactMap(\.doubleValue))
        }
    }

    @Test func garbageIsACorruptInputError() throws {
        let dir = try TemporaryDirectory()
        try write("not numpy", to: dir.file("x.npy"))
        expectError(["x.npy", "not a valid NumPy"], code: .corruptInput) {
            _ = try NPYArray.read(path: dir.file("x.npy"))
        }
        expectError(["missing.npy", "cannot read"], code: .missingInput) {
            _ = try NPYArray.read(path: dir.file("missing.npy"))
        }
    }

    @Test func truncatedDataIsRefused() throws {
        let dir = try TemporaryDirectory()
        let full = try Data(contentsOf: URL(fileURLWithPath: fixturePath("data/npy/int64_be.npy")))
        try full.prefix(full.count - 3).write(to: URL(fileURLWithPath: dir.file("t.npy")))
        expectError(["t.npy", "need"], code: .corruptInput) { _ = try NPYArray.read(path: dir.file("t.npy")) }
    }
}

@Suite struct ImageFolderTests {
    /// The tree that torchvision's ImageFolder lists as (checked with torchvision 0.28):
    /// Zebra/Z2.Jpg 0, Zebra/z.pgm 0, cat/.hidden.jpg 1, cat/a.PNG 1, cat/b.jpg 1, cat/sub/c.jpg 1,
    /// cat/sub-x/d.jpeg 1, cat/sub/deeper/e.webp 1, dog/x.TIFF 2, dog/y.bmp 2.
    func makeTree(_ dir: TemporaryDirectory, emptyClass: Bool = false) throws {
        for f in [
            "cat/b.jpg", "cat/a.PNG", "cat/notes.txt", "cat/sub/c.jpg", "cat/sub/deeper/e.webp", "cat/sub-x/d.jpeg",
            "cat/.hidden.jpg", "dog/x.TIFF", "dog/readme.md", "dog/y.bmp", "Zebra/z.pgm", "Zebra/Z2.Jpg",
            "toplevel.jpg",
        ] {
            try write("x", to: dir.file(f))
        }
        if emptyClass {
            try FileManager.default.createDirectory(atPath: dir.file("emu/nested"), withIntermediateDirectories: true)
            try write("x", to: dir.file("emu/nested/info.txt"))
        }
    }

    @Test func listsLikeTorchvisionImageFolder() throws {
        let dir = try TemporaryDirectory()
        try makeTree(dir)
        let listing = try DatasetLoader.load(
            try settings([
                "DATA_SOURCES": ["disk_folder"], "LABEL_SOURCES": ["disk_folder"],
                "DATA_PATHS": [.string(dir.path)],
            ]), catalog: nil)
        #expect(listing.classNames == ["Zebra", "cat", "dog"])
        #expect(
            listing.samples.map(\.relativePath) == [
                "Zebra/Z2.Jpg", "Zebra/z.pgm", "cat/.hidden.jpg", "cat/a.PNG", "cat/b.jpg",
                "cat/sub/c.jpg", "cat/sub-x/d.jpeg", "cat/sub/deeper/e.webp",
                "dog/x.TIFF", "dog/y.bmp",
            ])
        #expect(listing.targets == .singleLabel([0, 0, 1, 1, 1, 1, 1, 1, 2, 2]))
        #expect(listing.samples.allSatisfy { $0.path == dir.path + "/" + $0.relativePath })
        #expect(listing.samples.map(\.sourceIndex) == Array(0..<10))
        #expect(listing.numClasses == 3 && listing.source == .diskFolder)
    }

    @Test func withoutLabelSourcesThereAreNoTargets() throws {
        let dir = try TemporaryDirectory()
        try makeTree(dir)
        let listing = try DatasetLoader.load(
            try settings(["DATA_SOURCES": ["disk_folder"], "DATA_PATHS": [.string(dir.path)]]), catalog: nil)
        #expect(listing.targets == .none)
        #expect(listing.count == 10)
    }

    @Test func classFolderWithoutImagesIsOneClearError() throws {
        let dir = try TemporaryDirectory()
        try makeTree(dir, emptyClass: true)
        expectError([dir.path, "no valid image file", "emu", ".jpg"], code: .missingInput) {
            _ = try DatasetLoader.load(
                try settings(["DATA_SOURCES": ["disk_folder"], "DATA_PATHS": [.string(dir.path)]]), catalog: nil)
        }
    }

    @Test func folderWithoutClassFoldersIsAnError() throws {
        let dir = try TemporaryDirectory()
        try write("x", to: dir.file("a.jpg"))
        expectError(["couldn't find any class folder", dir.path]) {
            _ = try DatasetLoader.load(
                try settings(["DATA_SOURCES": ["disk_folder"], "DATA_PATHS": [.string(dir.path)]]), catalog: nil)
        }
    }

    @Test func missingDatasetPathNamesPathAndKey() throws {
        expectError(["/no/such/dataset", "does not exist", "DATA.TEST.DATA_PATHS[0]"], code: .missingInput) {
            _ = try DatasetLoader.load(
                try settings(.test, ["DATA_SOURCES": ["disk_folder"], "DATA_PATHS": ["/no/such/dataset"]]), catalog: nil
            )
        }
    }

    @Test func symlinkLoopsAreWalkedOnce() throws {
        let dir = try TemporaryDirectory()
        try write("x", to: dir.file("cat/a.jpg"))
        try FileManager.default.createSymbolicLink(atPath: dir.file("cat/loop"), withDestinationPath: dir.file("cat"))
        let listing = try DatasetLoader.load(
            try settings(["DATA_SOURCES": ["disk_folder"], "DATA_PATHS": [.string(dir.path)]]), catalog: nil)
        #expect(listing.samples.map(\.relativePath) == ["cat/a.jpg"])
    }
}

@Suite struct FilelistTests {
    let images = fixturePath("images")

    func load(_ extra: [String: JSONValue], split: DatasetSplit = .train) throws -> DatasetListing {
        var fields: [String: JSONValue] = [
            "DATA_SOURCES": ["disk_filelist"],
            "DATA_PATHS": [.string(fixturePath("data/filelist_images.npy"))],
        ]
        for (k, v) in extra { fields[k] = v }
        return try DatasetLoader.load(try settings(split, fields), catalog: nil, workingDirectory: images)
    }

    @Test func stringLabelsMapBySortedUniqueValue() throws {
        let l = try load([
            "LABEL_SOURCES": ["disk_filelist"], "LABEL_PATHS": [.string(fixturePath("data/filelist_labels_str.npy"))],
        ])
        #expect(l.classNames == ["bird", "cat", "dog", "zebra"])
        #expect(l.targets == .singleLabel([2, 1, 2, 0, 1, 3]))
        #expect(l.root == images + "/files/")
        #expect(l.samples.first?.relativePath == "rgb420_67x45.jpg")
        #expect(l.samples.first?.path == images + "/files/rgb420_67x45.jpg")
    }

    @Test func integerLabels() throws {
        let l = try load([
            "LABEL_SOURCES": ["disk_filelist"], "LABEL_PATHS": [.string(fixturePath("data/filelist_labels_int.npy"))],
        ])
        #expect(l.targets == .singleLabel([1, 0, 1, 4, 0, 2]))
        #expect(l.numClasses == 5 && l.classNames.isEmpty)
    }

    @Test func labelCountMismatchIsAnError() throws {
        expectError(["filelist_labels_short.npy", "6 images"]) {
            _ = try load([
                "LABEL_SOURCES": ["disk_filelist"],
                "LABEL_PATHS": [.string(fixturePath("data/filelist_labels_short.npy"))],
            ])
        }
    }

    @Test func missingLabelFileIsAnError() throws {
        expectError(["/nope/labels.npy", "does not exist", "LABEL_PATHS"], code: .missingInput) {
            _ = try load(["LABEL_SOURCES": ["disk_filelist"], "LABEL_PATHS": ["/nope/labels.npy"]])
        }
    }

    @Test func labelSourceWithoutLabelPathIsAConfigError() throws {
        expectError(["LABEL_PATHS"], code: .invalidConfig) { _ = try load(["LABEL_SOURCES": ["disk_filelist"]]) }
    }

    @Test func pathPrefixRewriteFollowsVISSL() throws {
        let l = try load(["REMOVE_IMG_PATH_PREFIX": "files/", "NEW_IMG_PATH_PREFIX": "moved/"])
        #expect(l.samples.first?.path == images + "/moved/rgb420_67x45.jpg")
        expectError(["NEW_IMG_PATH_PREFIX", "REMOVE_IMG_PATH_PREFIX"], code: .invalidConfig) {
            _ = try load(["NEW_IMG_PATH_PREFIX": "moved/"])
        }
    }

    @Test func emptyFilelistIsAnError() throws {
        expectError(["lists no images"], code: .missingInput) {
            _ = try load(["DATA_PATHS": [.string(fixturePath("data/filelist_empty.npy"))]])
        }
    }

    @Test func objectArrayFilelistIsRefused() throws {
        expectError(["pickled object array"]) {
            _ = try load(["DATA_PATHS": [.string(fixturePath("data/npy/object.npy"))]])
        }
    }

    @Test func folderGivenToFilelistIsAConfigError() throws {
        expectError(["disk_filelist expects a .npy"], code: .invalidConfig) {
            _ = try load(["DATA_PATHS": [.string(images)]])
        }
    }

    @Test func unsupportedSourcesAndCountsAreConfigErrors() throws {
        expectError(["DATA.TRAIN.DATA_SOURCES[0]", "torchvision_dataset"], code: .invalidConfig) {
            _ = try settings(["DATA_SOURCES": ["torchvision_dataset"], "DATA_PATHS": ["/x"]])
        }
        expectError(["DATA.TRAIN.DATA_SOURCES", "exactly one"], code: .invalidConfig) {
            _ = try settings(["DATA_SOURCES": ["disk_folder", "disk_folder"], "DATA_PATHS": ["/x", "/y"]])
        }
        expectError(["DATA_PATHS or DATASET_NAMES"], code: .invalidConfig) {
            _ = try settings(["DATA_SOURCES": ["disk_folder"]])
        }
    }
}

@Suite struct VOCLayoutTests {
    struct Split: Decodable {
        var images: [String]
        var targets: [[Int64]]
        var classes: [String]
    }

    static func expected() throws -> [String: Split] { try fixtureCases("data/voc.json", as: [String: Split].self) }

    @Test(arguments: [(DatasetSplit.train, "disk_filelist"), (.test, "disk_filelist"), (.train, "disk_folder")])
    func matchesVISSLConversion(_ split: DatasetSplit, _ source: String) throws {
        let root = fixturePath("data/voc")
        let l = try DatasetLoader.load(
            try settings(
                split,
                [
                    "DATA_SOURCES": .array([.string(source)]),
                    "LABEL_SOURCES": .array([.string(source)]),
                    "DATA_PATHS": [.string(root)],
                ]), catalog: nil)
        let want = try #require(
            try Self.expected()[split == .train ? "train" : "test"], "data/voc.json lacks the split")
        #expect(l.source == .vocLayout)
        #expect(l.classNames == want.classes)
        #expect(l.samples.map(\.relativePath) == want.images)
        #expect(l.targets == .multiLabel(classes: want.classes.count, values: want.targets.flatMap { $0 }))
        #expect(l.samples.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })
    }

    @Test func catalogEntryAndEnvironmentVariable() throws {
        let dir = try TemporaryDirectory()
        let root = fixturePath("data/voc")
        try write(
            #"{"voc2007_folder": {"train": ["\#(root)", "\#(root)"], "val": ["\#(root)", "\#(root)"]}, "imagenet1k_folder": {"train": ["<img_path>", "<lbl_path>"], "val": ["<img_path>", "<lbl_path>"]}}"#,
            to: dir.file("catalog.json"))
        for variable in DatasetCatalog.environmentVariables {
            let catalog = try DatasetCatalog.locate(
                explicitPath: nil, environment: [variable: dir.file("catalog.json")])
            let l = try DatasetLoader.load(
                try settings(
                    .test,
                    [
                        "DATA_SOURCES": ["disk_filelist"], "LABEL_SOURCES": ["disk_filelist"],
                        "DATASET_NAMES": ["voc2007_folder"],
                    ]), catalog: catalog)
            #expect(l.count == 4 && l.name == "voc2007_folder")
        }
        let catalog = try DatasetCatalog.load(path: dir.file("catalog.json"))
        // DATA_PATHS overrides the catalog.
        let other = try TemporaryDirectory()
        try write("x", to: other.file("only/a.png"))
        let l = try DatasetLoader.load(
            try settings([
                "DATA_SOURCES": ["disk_folder"], "DATASET_NAMES": ["voc2007_folder"],
                "DATA_PATHS": [.string(other.path)],
            ]), catalog: catalog)
        #expect(l.samples.map(\.relativePath) == ["only/a.png"])
        expectError(["placeholder", "<img_path>", "imagenet1k_folder"], code: .invalidConfig) {
            _ = try DatasetLoader.load(
                try settings(["DATA_SOURCES": ["disk_folder"], "DATASET_NAMES": ["imagenet1k_folder"]]),
                catalog: catalog)
        }
        expectError(["'places205_folder' is not in the dataset catalog", "voc2007_folder"], code: .invalidConfig) {
            _ = try DatasetLoader.load(
                try settings(["DATA_SOURCES": ["disk_folder"], "DATASET_NAMES": ["places205_folder"]]), catalog: catalog
            )
        }
        expectError(["needs a dataset catalog"], code: .invalidConfig) {
            _ = try DatasetLoader.load(
                try settings(["DATA_SOURCES": ["disk_folder"], "DATASET_NAMES": ["voc2007_folder"]]), catalog: nil)
        }
        expectError(["/missing/catalog.json", "VISSL_DATASET_CATALOG_PATH"], code: .missingInput) {
            _ = try DatasetCatalog.locate(
                explicitPath: nil, environment: ["VISSL_DATASET_CATALOG_PATH": "/missing/catalog.json"])
        }
        #expect(try DatasetCatalog.locate(explicitPath: nil, environment: [:]) == nil)
    }

    @Test func descriptionChangesWithLabelsAndIsStable() throws {
        let root = fixturePath("data/voc")
        let s = try settings([
            "DATA_SOURCES": ["disk_filelist"], "LABEL_SOURCES": ["disk_filelist"], "DATA_PATHS": [.string(root)],
        ])
        let a = try DatasetLoader.load(s, catalog: nil), b = try DatasetLoader.load(s, catalog: nil)
        #expect(a.description == b.description)
        var c = a
        c.targets = .multiLabel(classes: 3, values: Array(repeating: 1, count: 15))
        #expect(c.listingDigest() != a.listingDigest())
    }
}

@Suite struct DataLimitTests {
    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        var n: Int
        var limit: Int
        var skip: Int
        var seed: Int
        var balanced: Bool
        var labels: [Int64]?
        var indices: [Int]
        var testDescription: String { "n=\(n) limit=\(limit) skip=\(skip) seed=\(seed) balanced=\(balanced)" }
    }

    static func cases() throws -> [Case] { try fixtureCases("data/data_limit.json", as: [Case].self) }

    func listing(n: Int, labels: [Int64]?, limit: Int, skip: Int, seed: Int, balanced: Bool) throws -> DatasetListing {
        let s = try settings([
            "DATA_SOURCES": ["disk_folder"], "DATA_PATHS": ["/x"], "DATA_LIMIT": .int(Int64(limit)),
            "DATA_LIMIT_SAMPLING": [
                "SEED": .int(Int64(seed)), "IS_BALANCED": .bool(balanced),
                "SKIP_NUM_SAMPLES": .int(Int64(skip)),
            ],
        ])
        let samples = (0..<n).map { DatasetSample(path: "/x/\($0).jpg", relativePath: "\($0).jpg", sourceIndex: $0) }
        return DatasetListing(
            split: .train, name: "x", source: .diskFolder, root: "/x", samples: samples,
            targets: labels.map { .singleLabel($0) } ?? .none, classNames: [], numClasses: 0, settings: s)
    }

    @Test(arguments: try cases())
    func picksExactlyVISSLsSubset(_ c: Case) throws {
        let full = try listing(
            n: c.n, labels: c.labels, limit: c.limit, skip: c.skip, seed: c.seed, balanced: c.balanced)
        let sub = try DatasetLoader.applyDataLimit(full)
        #expect(sub.samples.map(\.sourceIndex) == c.indices)
        if let labels = c.labels { #expect(sub.targets == .singleLabel(c.indices.map { labels[$0] })) }
    }

    @Test func tooLargeLimitsAreConfigErrors() throws {
        expectError(["DATA.TRAIN.DATA_LIMIT", "exceed the 10 images"], code: .invalidConfig) {
            _ = try DatasetLoader.applyDataLimit(
                try listing(n: 10, labels: nil, limit: 8, skip: 3, seed: 0, balanced: false))
        }
        expectError(["at least one sample per class"], code: .invalidConfig) {
            _ = try DatasetLoader.applyDataLimit(
                try listing(n: 10, labels: [0, 1, 2, 0, 1, 2, 0, 1, 2, 3], limit: 3, skip: 0, seed: 0, balanced: true))
        }
        expectError(["IS_BALANCED", "single-label"], code: .invalidConfig) {
            _ = try DatasetLoader.applyDataLimit(
                try listing(n: 10, labels: nil, limit: 3, skip: 0, seed: 0, balanced: true))
        }
        expectError(["SEED"], code: .invalidConfig) {
            _ = try settings([
                "DATA_SOURCES": ["disk_folder"], "DATA_PATHS": ["/x"], "DATA_LIMIT_SAMPLING": ["SEED": -1],
            ])
        }
    }

    @Test func negativeLimitKeepsEverything() throws {
        let full = try listing(n: 7, labels: nil, limit: -1, skip: 0, seed: 0, balanced: false)
        #expect(try DatasetLoader.applyDataLimit(full).samples == full.samples)
    }
}
