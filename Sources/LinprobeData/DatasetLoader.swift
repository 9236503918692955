import Foundation
import LinprobeCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Builds the `DatasetListing` of a split from VISSL's `DATA.<SPLIT>` settings.
///
/// Path resolution follows VISSL's `dataset_catalog.get_data_files`: `DATA_PATHS[0]` if set,
/// else the catalog entry of `DATASET_NAMES[0]` (TRAIN → `train`, TEST → `val`). Labels:
/// `LABEL_PATHS[0]`, else the catalog's label path.
///
/// Source detection:
/// - `disk_folder` + a directory → torchvision `ImageFolder` (classes = sorted sub-folders,
///   files with torchvision's image extensions, case-insensitive, found recursively in sorted
///   `os.walk` order);
/// - `disk_filelist` + a `.npy` file → the filelist (labels from a `.npy` of ints, N×C ints, or
///   strings mapped by sorted unique value);
/// - either source + a directory holding `JPEGImages/` and `ImageSets/Main/` → the PASCAL VOC
///   layout, as VISSL converts its `voc2007_folder` catalog entries: TRAIN = `trainval` (or
///   `train` when there is no `test` split, as in VOC2012), TEST = `test` (or `val`); targets
///   N×20 with 1 present, 0 absent, −1 difficult.
public enum DatasetLoader {
    /// torchvision's `IMG_EXTENSIONS`.
    public static let imageExtensions = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"]

    /// Loads the listing; `workingDirectory` resolves relative paths (VISSL opens them relative
    /// to the current directory).
    public static func load(
        _ settings: DatasetSettings, catalog: DatasetCatalog?,
        workingDirectory: String = FileManager.default.currentDirectoryPath
    ) throws -> DatasetListing {
        let key = settings.split.catalogKey
        let name = settings.datasetNames.first
        var catalogEntry: DatasetCatalog.Entry?
        func entry() throws -> DatasetCatalog.Entry? {
            guard let name else { return nil }
            if let catalogEntry { return catalogEntry }
            guard let catalog else {
                throw LinprobeError.config(
                    "\(settings.path): dataset '\(name)' needs a dataset catalog (set LINPROBE_DATASET_CATALOG or VISSL_DATASET_CATALOG_PATH) or DATA_PATHS"
                )
            }
            catalogEntry = try catalog.entry(name, split: key)
            return catalogEntry
        }
        let dataKey: String
        let rawDataPath: String
        if let p = settings.dataPaths.first {
            rawDataPath = p
            dataKey = "\(settings.path).DATA_PATHS[0]"
        } else {
            guard let e = try entry() else {
                throw LinprobeError.config("\(settings.path): set DATA_PATHS or DATASET_NAMES")
            }
            rawDataPath = e.data
            dataKey = "dataset '\(name ?? "")' (\(key)) in \(catalog?.path ?? "the catalog")"
        }
        let dataPath = Paths.absolute(rawDataPath, relativeTo: workingDirectory)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dataPath, isDirectory: &isDir) else {
            throw LinprobeError(
                .missingInput,
                "\(dataPath): dataset path does not exist (\(dataKey)); check the path or the dataset catalog")
        }
        let source = settings.dataSources[0]
        var listing: DatasetListing
        let wantsLabels = !settings.labelSources.isEmpty
        if isDir.boolValue {
            if isVOCRoot(dataPath) {
                listing = try loadVOC(root: dataPath, settings: settings)
                if wantsLabels, let labelPath = try labelPath(settings, entry: entry, workingDirectory),
                    labelPath.hasSuffix(".npy")
                {
                    listing.targets = try loadLabelFile(labelPath, count: listing.count, into: &listing)
                } else if !wantsLabels {
                    listing.targets = .none
                }
            } else if source == "disk_folder" {
                listing = try loadImageFolder(root: dataPath, settings: settings)
                if !wantsLabels {
                    listing.targets = .none
                } else if settings.labelSources[0] == "disk_filelist" {
                    guard let labelPath = try labelPath(settings, entry: entry, workingDirectory) else {
                        throw LinprobeError.config(
                            "\(settings.path).LABEL_PATHS: disk_filelist labels need a .npy label file")
                    }
                    listing.targets = try loadLabelFile(labelPath, count: listing.count, into: &listing)
                }
            } else {
                throw LinprobeError.config(
                    "\(dataKey): \(dataPath) is a folder, but disk_filelist expects a .npy file of image paths (or a PASCAL VOC root with JPEGImages/ and ImageSets/Main/); use DATA_SOURCES [disk_folder] for an ImageFolder tree"
                )
            }
        } else {
            guard source == "disk_filelist" else {
                throw LinprobeError.config(
                    "\(dataKey): \(dataPath) is a file, but disk_folder expects a folder of class sub-folders; use DATA_SOURCES [disk_filelist] for a .npy filelist"
                )
            }
            listing = try loadFilelist(dataPath, settings: settings, workingDirectory: workingDirectory)
            if wantsLabels {
                guard let labelPath = try labelPath(settings, entry: entry, workingDirectory) else {
                    throw LinprobeError.config(
                        "\(settings.path).LABEL_PATHS: LABEL_SOURCES is [disk_filelist] but no label file is given (LABEL_PATHS or the catalog's label path)"
                    )
                }
                listing.targets = try loadLabelFile(labelPath, count: listing.count, into: &listing)
            }
        }
        listing.name = name ?? rawDataPath
        guard listing.count > 0 else {
            throw LinprobeError(.missingInput, "\(dataPath): the dataset lists no images (\(settings.path))")
        }
        return try applyDataLimit(listing)
    }

    /// The label path to use (explicit, else the catalog's), checked to exist; nil if none.
    private static func labelPath(
        _ settings: DatasetSettings, entry: () throws -> DatasetCatalog.Entry?,
        _ cwd: String
    ) throws -> String? {
        let raw: String
        let whereSet: String
        if let p = settings.labelPaths.first {
            raw = p
            whereSet = "\(settings.path).LABEL_PATHS[0]"
        } else if settings.datasetNames.first != nil, let e = try? entry(), let l = e.labels,
            !DatasetCatalog.isPlaceholder(l)
        {
            raw = l
            whereSet = "the dataset catalog"
        } else {
            return nil
        }
        let p = Paths.absolute(raw, relativeTo: cwd)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
            throw LinprobeError(.missingInput, "\(p): label file does not exist (\(whereSet))")
        }
        return isDir.boolValue ? nil : p
    }

    // MARK: - ImageFolder

    static func loadImageFolder(root: String, settings: DatasetSettings) throws -> DatasetListing {
        let entries = try listDirectory(root)
        let classes = entries.filter { $0.isDirectory }.map(\.name).sorted(by: pythonLess)
        guard !classes.isEmpty else {
            throw LinprobeError(
                .missingInput, "\(root): couldn't find any class folder (disk_folder expects <root>/<class>/<image>)")
        }
        var samples = [DatasetSample]()
        var labels = [Int64]()
        var empty = [String]()
        for (index, cls) in classes.enumerated() {
            let classRoot = root.hasSuffix("/") ? root + cls : root + "/" + cls
            var walked = [(String, [String])]()  // (relative folder, files)
            var visited = Set<[UInt64]>()
            try walk(classRoot, relative: cls, into: &walked, visited: &visited)
            walked.sort { pythonLess($0.0, $1.0) }
            let before = samples.count
            for (folder, files) in walked {
                for f in files.sorted(by: pythonLess) where hasImageExtension(f) {
                    let rel = folder + "/" + f
                    samples.append(
                        DatasetSample(
                            path: (root.hasSuffix("/") ? root : root + "/") + rel, relativePath: rel,
                            sourceIndex: samples.count))
                    labels.append(Int64(index))
                }
            }
            if samples.count == before { empty.append(cls) }
        }
        if !empty.isEmpty {
            throw LinprobeError(
                .missingInput,
                "\(root): found no valid image file for the class\(empty.count > 1 ? "es" : "") \(empty.joined(separator: ", ")) (supported extensions: \(imageExtensions.joined(separator: " ")))"
            )
        }
        return DatasetListing(
            split: settings.split, name: root, source: .diskFolder, root: root, samples: samples,
            targets: .singleLabel(labels), classNames: classes, numClasses: classes.count, settings: settings)
    }

    static func hasImageExtension(_ name: String) -> Bool {
        let lower = name.lowercased()
        return imageExtensions.contains { lower.hasSuffix($0) }
    }

    struct DirEntry {
        var name: String
        var isDirectory: Bool
    }

    /// One directory's entries (symbolic links followed, like `os.scandir(...).is_dir()`).
    static func listDirectory(_ path: String) throws -> [DirEntry] {
        try StopRequest.check("listing \(path)")
        guard let dir = opendir(path) else {
            throw LinprobeError(.io, "\(path): cannot list the folder (\(String(cString: strerror(errno))))")
        }
        defer { closedir(dir) }
        var out = [DirEntry]()
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var isDir = Int32(ent.pointee.d_type) == Int32(DT_DIR)
            let type = Int32(ent.pointee.d_type)
            if type == Int32(DT_LNK) || type == Int32(DT_UNKNOWN) {
                var st = stat()
                isDir = stat(path + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            }
            out.append(DirEntry(name: name, isDirectory: isDir))
        }
        return out
    }

    /// `os.walk(top, followlinks=True)`: every folder's (relative path, file names); folder
    /// cycles through links are walked once.
    private static func walk(
        _ path: String, relative: String, into out: inout [(String, [String])],
        visited: inout Set<[UInt64]>
    ) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            let key = [UInt64(st.st_dev), UInt64(st.st_ino)]
            if visited.contains(key) { return }
            visited.insert(key)
        }
        let entries = try listDirectory(path)
        out.append((relative, entries.filter { !$0.isDirectory }.map(\.name)))
        for e in entries where e.isDirectory {
            try walk(path + "/" + e.name, relative: relative + "/" + e.name, into: &out, visited: &visited)
        }
    }

    // MARK: - Filelist

    static func loadFilelist(
        _ path: String, settings: DatasetSettings, workingDirectory: String
    ) throws -> DatasetListing {
        let array = try NPYArray.read(path: path)
        guard case .strings(var paths) = array.values else {
            throw LinprobeError(
                .corruptInput, "\(path): the image filelist must hold path strings, got dtype '\(array.dtype)'")
        }
        guard array.shape.count == 1 else {
            throw LinprobeError(.corruptInput, "\(path): the image filelist must be 1-D, got shape \(array.shape)")
        }
        // VISSL: `if path.startswith(REMOVE): path = path.replace(REMOVE, NEW)` (every occurrence).
        let remove = settings.removeImagePathPrefix
        if !remove.isEmpty {
            for i in paths.indices where paths[i].hasPrefix(remove) {
                paths[i] = paths[i].replacingOccurrences(of: remove, with: settings.newImagePathPrefix)
            }
        }
        let absolutePaths = paths.map { Paths.absolute($0, relativeTo: workingDirectory) }
        let root = commonFolder(absolutePaths)
        let samples = absolutePaths.enumerated().map { i, p in
            DatasetSample(path: p, relativePath: String(p.dropFirst(root.count)), sourceIndex: i)
        }
        return DatasetListing(
            split: settings.split, name: path, source: .diskFilelist, root: root, samples: samples,
            targets: .none, classNames: [], numClasses: 0, settings: settings)
    }

    /// The longest common folder prefix of absolute paths, ending with `/`.
    static func commonFolder(_ paths: [String]) -> String {
        guard var prefix = paths.first.map({ Array($0.utf8) }) else { return "/" }
        for p in paths.dropFirst() {
            var k = 0
            for (a, b) in zip(prefix, p.utf8) {
                if a != b { break }
                k += 1
            }
            prefix.removeLast(prefix.count - k)
            if prefix.isEmpty { break }
        }
        while let last = prefix.last, last != UInt8(ascii: "/") { prefix.removeLast() }
        return prefix.isEmpty ? "" : String(decoding: prefix, as: UTF8.self)
    }

    /// Reads a label `.npy` and sets targets, class names and class count.
    static func loadLabelFile(_ path: String, count: Int, into listing: inout DatasetListing) throws -> DatasetTargets {
        let array = try NPYArray.read(path: path)
        guard array.shape.first == count, array.shape.count == 1 || array.shape.count == 2 else {
            throw LinprobeError(
                .corruptInput,
                "\(path): labels have shape \(array.shape) but the dataset lists \(count) images (expected [\(count)] or [\(count), C])"
            )
        }
        switch array.values {
        case .integers(let values):
            if array.shape.count == 2 {
                listing.classNames = []
                listing.numClasses = array.shape[1]
                return .multiLabel(classes: array.shape[1], values: values)
            }
            listing.classNames = []
            listing.numClasses = Int((values.max() ?? -1) + 1)
            return .singleLabel(values)
        case .strings(let values):
            guard array.shape.count == 1 else {
                throw LinprobeError(.corruptInput, "\(path): string labels must be 1-D, got shape \(array.shape)")
            }
            let unique = Array(Set(values)).sorted(by: pythonLess)
            var ids = [String: Int64]()
            for (i, v) in unique.enumerated() { ids[v] = Int64(i) }
            listing.classNames = unique
            listing.numClasses = unique.count
            return .singleLabel(
                try values.map { v in
                    guard let id = ids[v] else {
                        throw LinprobeError(.corruptInput, "\(path): label '\(v)' has no class id")
                    }
                    return id
                })
        case .floats:
            throw LinprobeError(
                .corruptInput, "\(path): labels must be integers or strings, got dtype '\(array.dtype)'")
        }
    }

    // MARK: - VOC

    static func isVOCRoot(_ p: String) -> Bool {
        var isDir: ObjCBool = false
        let fm = FileManager.default
        return fm.fileExists(atPath: p + "/JPEGImages", isDirectory: &isDir) && isDir.boolValue
            && fm.fileExists(atPath: p + "/ImageSets/Main", isDirectory: &isDir) && isDir.boolValue
    }

    static func loadVOC(root: String, settings: DatasetSettings) throws -> DatasetListing {
        let main = root + "/ImageSets/Main"
        let names = try listDirectory(main).filter { !$0.isDirectory }.map(\.name)
        // VISSL keeps `<class>_<split>.txt` files: exactly one underscore in the name.
        func files(_ split: String) -> [String] {
            names.filter {
                $0.hasSuffix("_\(split).txt") && $0.split(separator: "_", omittingEmptySubsequences: false).count == 2
            }
        }
        var trainFiles = files("trainval"), testFiles = files("test")
        if testFiles.isEmpty {
            trainFiles = files("train")
            testFiles = files("val")
        }
        guard !trainFiles.isEmpty || !testFiles.isEmpty else {
            throw LinprobeError(.missingInput, "\(main): no <class>_<split>.txt files (PASCAL VOC layout)")
        }
        guard trainFiles.count == testFiles.count else {
            throw LinprobeError(
                .corruptInput,
                "\(main): \(trainFiles.count) classes have train files but \(testFiles.count) have test files (missing classes)"
            )
        }
        let chosen = (settings.split == .train ? trainFiles : testFiles).sorted(by: pythonLess)
        let classes = chosen.map { String($0.split(separator: "_")[0]) }
        let c = classes.count
        var table = [String: [Int64]]()
        for (k, file) in chosen.enumerated() {
            let text: String
            try requireRegularFile(main + "/" + file, what: "a PASCAL VOC image-set file")
            do {
                text = try String(contentsOfFile: main + "/" + file, encoding: .utf8)
            } catch {
                throw LinprobeError(.io, "\(main)/\(file): cannot read (\(oneLine(error)))")
            }
            for line in text.split(whereSeparator: \.isNewline) {
                let parts = line.split(whereSeparator: \.isWhitespace)
                guard parts.count == 2, let label = Int(parts[1]) else { continue }  // VISSL skips such lines
                let id = String(parts[0])
                var row = table[id] ?? [Int64](repeating: -1, count: c)
                row[k] = label == -1 ? 0 : (label == 0 ? -1 : Int64(label))
                table[id] = row
            }
        }
        let rows = table.sorted { pythonLess($0.key, $1.key) }
        var samples = [DatasetSample]()
        var values = [Int64]()
        samples.reserveCapacity(rows.count)
        values.reserveCapacity(rows.count * c)
        for (i, (id, row)) in rows.enumerated() {
            let rel = "JPEGImages/\(id).jpg"
            samples.append(DatasetSample(path: root + "/" + rel, relativePath: rel, sourceIndex: i))
            values.append(contentsOf: row)
        }
        return DatasetListing(
            split: settings.split, name: root, source: .vocLayout, root: root, samples: samples,
            targets: .multiLabel(classes: c, values: values), classNames: classes, numClasses: c,
            settings: settings)
    }

    // MARK: - DATA_LIMIT

    /// VISSL's `unbalanced_sub_sampling` / `balanced_sub_sampling` with NumPy's legacy generator:
    /// the same subset, in the same order.
    static func applyDataLimit(_ listing: DatasetListing) throws -> DatasetListing {
        let s = listing.settings
        guard s.dataLimit >= 0 else { return listing }
        let n = listing.count
        var rng = NumPyLegacyRandom(seed: UInt32(s.samplingSeed))
        let key = "\(s.path).DATA_LIMIT"
        var chosen: [Int]
        if !s.samplingBalanced {
            guard s.dataLimit + s.samplingSkip <= n else {
                throw LinprobeError.config(
                    "\(key): \(s.dataLimit) samples (+ \(s.samplingSkip) skipped) exceed the \(n) images of the dataset"
                )
            }
            chosen = Array(rng.choiceWithoutReplacement(n, s.dataLimit + s.samplingSkip).dropFirst(s.samplingSkip))
        } else {
            guard case .singleLabel(let labels) = listing.targets else {
                throw LinprobeError.config(
                    "\(s.path).DATA_LIMIT_SAMPLING.IS_BALANCED: balanced sampling needs single-label targets (LABEL_SOURCES)"
                )
            }
            var groups = [Int64: [Int]]()
            for (i, l) in labels.enumerated() { groups[l, default: []].append(i) }
            let unique = groups.sorted { $0.key < $1.key }
            let (skipQ, skipR) = s.samplingSkip.quotientAndRemainder(dividingBy: unique.count)
            let (numQ, numR) = s.dataLimit.quotientAndRemainder(dividingBy: unique.count)
            guard numQ > 0 else {
                throw LinprobeError.config(
                    "\(key): balanced sampling needs at least one sample per class (\(unique.count) classes, DATA_LIMIT \(s.dataLimit))"
                )
            }
            chosen = []
            for (i, (label, members)) in unique.enumerated() {
                let take = numQ + (i < numR ? 1 : 0), skip = skipQ + (i < skipR ? 1 : 0)
                guard take + skip <= members.count else {
                    throw LinprobeError.config(
                        "\(key): class \(label) has \(members.count) images, balanced sampling wants \(take) (+ \(skip) skipped)"
                    )
                }
                chosen += rng.choiceWithoutReplacement(members.count, take + skip).dropFirst(skip).map { members[$0] }
            }
        }
        var out = listing
        out.samples = chosen.map { listing.samples[$0] }
        out.targets = listing.targets.subset(chosen)
        return out
    }
}
