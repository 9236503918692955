import Foundation
import LinprobeCheckpoint
import LinprobeCore
import LinprobeStore

/// Features made elsewhere, opened for import: the layers, labels, dataset indices and image
/// paths of one split, each read a row range at a time.
///
/// What `features` may name (detected from the content, not the file name):
///
/// | source | what |
/// |---|---|
/// | a folder of VISSL's `extract_features` files | `<prefix>_<split>_<layer>_{features,targets,inds}.npy`, merged by index |
/// | a folder written by `export-features --format npy` | `features_<layer>.npy`, `targets.npy`, `indices.npy`, `image_paths.npy` |
/// | an `.npz` (`np.savez`) | keys `features` or `features_<layer>`, `targets` or `labels`, optional `indices`/`inds`, `image_paths`, `class_names` |
/// | an `.npy` | the features array; `labels` names the labels (`.npy` or a torch file) |
/// | a `torch.save` file | a tensor (with `labels`), or a dict with the `.npz` keys (`features` may be a dict of layer → tensor) — read by Linprobe's unpickler, which never runs code from the file |
///
/// Features are `[N, D]` or `[N, C, H, W]` (stored flattened, `shape_chw` = `[C, H, W]`), any float
/// or integer type; labels `[N]` class indices or `[N, C]` in VOC's encoding (1 / 0 / −1).
public final class ImportSource {
    public enum Kind: String, Sendable {
        case visslDump = "vissl"
        case exportFolder = "export-npy"
        case npz
        case npy
        case torch
    }

    /// One layer to import.
    struct Layer {
        var name: String
        var shapeCHW: [Int]
        var rows: RowSource
    }

    public let kind: Kind
    /// The `features` path as given.
    public let location: String
    let layers: [Layer]
    let targets: RowSource
    let indices: RowSource?
    let imagePaths: StringSource?
    /// Class names the source carries (an export's `class_names`).
    public let classNames: [String]
    /// Every file read, for the fingerprint.
    public let files: [String]
    /// VISSL dumps: padded copies dropped by the merge.
    public let duplicatesDropped: Int

    public var count: Int { targets.rows }
    public var layerNames: [String] { layers.map(\.name) }
    public var storeLayers: [StoreLayer] { layers.map { StoreLayer(name: $0.name, shapeCHW: $0.shapeCHW) } }

    public var targetLayout: TargetLayout {
        targets.shape.count == 1 || targets.rowElements == 1 ? .singleLabel : .multiLabel(classes: targets.rowElements)
    }

    init(
        kind: Kind, location: String, layers: [Layer], targets: RowSource, indices: RowSource?,
        imagePaths: StringSource?, classNames: [String] = [], files: [String], duplicatesDropped: Int = 0
    ) throws {
        self.kind = kind
        self.location = location
        self.layers = layers
        self.targets = targets
        self.indices = indices
        self.imagePaths = imagePaths
        self.classNames = classNames
        self.files = files
        self.duplicatesDropped = duplicatesDropped
        try check()
    }

    /// Opens `features` (with `labels` for a bare array) for `split`.
    ///
    /// - Parameters:
    ///   - layers: the layers wanted (the pool-op map's names); empty = every layer the source holds.
    ///   - singleLayer: the name of an array that does not name its layer (`LINPROBE.IMPORT.LAYER`).
    public static func open(
        features: String, labels: String?, split: String, layers wanted: [String], singleLayer: String
    ) throws -> ImportSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: features, isDirectory: &isDirectory) else {
            throw LinprobeError(.missingInput, "\(features): no such file or folder of features to import")
        }
        if isDirectory.boolValue {
            if VISSLDump.holds(features, split: split) {
                try noLabels(labels, kind: "VISSL's feature folder (it has *_targets.npy)")
                return try visslDump(features, split: split, wanted: wanted)
            }
            return try exportFolder(features, labels: labels, wanted: wanted)
        }
        return try ArrayFormats.file(features, labels: labels, wanted: wanted, singleLayer: singleLayer)
    }

    static func noLabels(_ labels: String?, kind: String) throws {
        if let labels, !labels.isEmpty {
            throw LinprobeError.config("\(labels): labels are given, but the features are \(kind); drop the labels")
        }
    }

    /// The wanted layers of `available` (every one when `wanted` is empty), or one line naming
    /// what is missing and what there is.
    static func select(_ wanted: [String], from available: [String], in location: String) throws -> [String] {
        guard !available.isEmpty else {
            throw LinprobeError(.missingInput, "\(location): holds no features to import")
        }
        guard !wanted.isEmpty else { return available }
        for name in wanted where !available.contains(name) {
            throw LinprobeError(
                .missingInput,
                "\(location): no layer '\(name)' for tap '\(name)' of \(FeatureLayers.poolMapKey) (it holds: \(available.joined(separator: ", "))); list only layers the import holds"
            )
        }
        return wanted
    }

    /// `[C, H, W]` of a features array `[N, …]`: `[C, H, W]` for 4-D, `[D, 1, 1]` otherwise.
    static func shapeCHW(_ shape: [Int], what: String) throws -> [Int] {
        guard shape.count >= 2 else {
            throw LinprobeError(
                .incompatible, "\(what): features must be [N, D] or [N, C, H, W], found shape \(shape)")
        }
        if shape.count == 4 { return Array(shape.dropFirst()) }
        return [MemoryBudget.product(Array(shape.dropFirst())) ?? 0, 1, 1]
    }

    // MARK: - Folders

    static func visslDump(_ folder: String, split: String, wanted: [String]) throws -> ImportSource {
        let dump = try VISSLDump(folder: folder, split: split)
        let names = try select(wanted, from: dump.layers, in: "\(folder) (VISSL features of split '\(split)')")
        let merge = try dump.merge(layer: names[0])
        var layers: [Layer] = []
        var files: [String] = []
        for name in names {
            let shards = dump.shards[name] ?? []
            if name != names[0] { try checkSameRows(shards, as: merge, of: dump.shards[names[0]] ?? [], layer: name) }
            let features = try shards.map { try NPYFile(path: $0.features) }
            for (s, file) in features.enumerated() where file.rows != merge.shardIndices[s].count {
                throw LinprobeError(
                    .incompatible,
                    "\(file.path): \(file.rows) rows but its inds file has \(merge.shardIndices[s].count); the shard is truncated or mixed with another run"
                )
            }
            let rows = try MergedRows(
                files: features, order: merge.order, what: "\(folder) \(split) \(name) features")
            layers.append(Layer(name: name, shapeCHW: try shapeCHW(rows.shape, what: shards[0].features), rows: rows))
            files += shards.flatMap { [$0.features, $0.targets, $0.indices] }
        }
        let first = dump.shards[names[0]] ?? []
        let targetFiles = try first.map { try NPYFile(path: $0.targets) }
        for (s, file) in targetFiles.enumerated() where file.rows != merge.shardIndices[s].count {
            throw LinprobeError(
                .incompatible, "\(file.path): \(file.rows) rows but its inds file has \(merge.shardIndices[s].count)")
        }
        let targets = try MergedRows(
            files: targetFiles, order: merge.order, what: "\(folder) \(split) \(names[0]) targets")
        return try ImportSource(
            kind: .visslDump, location: folder, layers: layers, targets: targets,
            indices: MemoryRows(merge.indices, what: "\(folder) inds"), imagePaths: nil, files: files,
            duplicatesDropped: merge.duplicates)
    }

    /// Every layer of a dump must come from the same shards and rows (VISSL writes all layers of
    /// a rank's chunk together).
    static func checkSameRows(
        _ shards: [VISSLDump.Shard], as merge: VISSLDump.Merge, of reference: [VISSLDump.Shard], layer: String
    ) throws {
        guard shards.map(\.prefix) == reference.map(\.prefix) else {
            throw LinprobeError(
                .incompatible,
                "layer \(layer) has shards \(shards.map(\.prefix)) but \(reference.first.map { Paths.lastComponent($0.features) } ?? "the first layer") comes in \(reference.map(\.prefix)); both must come from one extraction"
            )
        }
        for (s, shard) in shards.enumerated() {
            let file = try NPYFile(path: shard.indices)
            guard try file.readInt64(rows: 0..<file.rows) == merge.shardIndices[s] else {
                throw LinprobeError(
                    .incompatible,
                    "\(shard.indices): other dataset indices than the first layer's shard \(shard.prefix)")
            }
        }
    }

    static func exportFolder(_ folder: String, labels: String?, wanted: [String]) throws -> ImportSource {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let available = names.filter { $0.hasPrefix("features_") && $0.hasSuffix(".npy") }
            .map { String($0.dropFirst("features_".count).dropLast(".npy".count)) }.sorted()
        guard !available.isEmpty else {
            throw LinprobeError(
                .missingInput,
                "\(folder): neither VISSL's feature files (<prefix>_<split>_<layer>_features.npy) nor an export (features_<layer>.npy, targets.npy)"
            )
        }
        try noLabels(labels, kind: "an export folder (it has targets.npy)")
        let chosen = try select(wanted, from: available, in: folder)
        func npy(_ name: String) throws -> NPYRows? {
            let path = Paths.join(folder, name)
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            return NPYRows(try NPYFile(path: path), what: path)
        }
        let layers = try chosen.map { name -> Layer in
            guard let rows = try npy("features_\(name).npy") else {
                throw LinprobeError(.missingInput, "\(folder): no features_\(name).npy")
            }
            return Layer(name: name, shapeCHW: try shapeCHW(rows.shape, what: rows.what), rows: rows)
        }
        guard let targets = try npy("targets.npy") else {
            throw LinprobeError(
                .missingInput, "\(Paths.join(folder, "targets.npy")): missing (the labels of the export)")
        }
        let extras = try ["indices.npy", "image_paths.npy", "class_names.npy"].map { try npy($0) }
        let classNames = try extras[2].map { try $0.strings(0..<$0.count) } ?? []
        let files =
            (chosen.map { "features_\($0).npy" } + ["targets.npy"]
            + zip(["indices.npy", "image_paths.npy", "class_names.npy"], extras).compactMap { $1 == nil ? nil : $0 })
            .map { Paths.join(folder, $0) }
        return try ImportSource(
            kind: .exportFolder, location: folder, layers: layers, targets: targets, indices: extras[0],
            imagePaths: extras[1], classNames: classNames, files: files)
    }

    // MARK: - Checks

    /// Every array has the rows of the labels; labels are `[N]` or `[N, C]`.
    private func check() throws {
        let n = targets.rows
        guard targets.shape.count <= 2 else {
            throw LinprobeError(
                .incompatible, "\(targets.what): labels must be [N] or [N, C], found shape \(targets.shape)")
        }
        for layer in layers where layer.rows.rows != n {
            throw LinprobeError(
                .incompatible,
                "\(layer.rows.what): \(layer.rows.rows) rows but the labels (\(targets.what)) have \(n)")
        }
        if let indices, indices.rows != n || indices.rowElements != 1 {
            throw LinprobeError(
                .incompatible, "\(indices.what): indices must be [\(n)], found shape \(indices.shape)")
        }
        if let imagePaths, imagePaths.count != n {
            throw LinprobeError(
                .incompatible, "\(imagePaths.what): \(imagePaths.count) image paths for \(n) rows")
        }
    }
}
