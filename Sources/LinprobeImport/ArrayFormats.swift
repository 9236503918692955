import Foundation
import LinprobeCheckpoint
import LinprobeCore

/// Features in one file: a `.npy` array, an `.npz` archive or a `torch.save` file, told apart by
/// their first bytes.
enum ArrayFormats {
    enum Detected {
        case npy
        case zip
        case torchLegacy
    }

    /// Names the `.npz` / dict keys may have, in order of preference.
    static let targetKeys = ["targets", "labels"]
    static let indexKeys = ["indices", "inds"]

    static func detect(_ path: String) throws -> Detected {
        try NPYArray.requireRegularFile(path)
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw LinprobeError(.missingInput, "\(path): cannot open the file")
        }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: 8)) ?? Data())
        if head.count >= 6, head[0] == 0x93, Array(head[1..<6]) == Array("NUMPY".utf8) { return .npy }
        if head.count >= 4, head[0] == 0x50, head[1] == 0x4B, head[2] == 0x03 || head[2] == 0x05 { return .zip }
        if head.count >= 2, head[0] == 0x80, (2...5).contains(head[1]) { return .torchLegacy }
        let shown = head.map { String(format: "%02x", $0) }.joined(separator: " ")
        throw LinprobeError(
            .unsupported,
            "\(path): not a NumPy .npy/.npz or torch.save file (first bytes: \(shown)); see 'linprobe import-features --help' for what can be imported"
        )
    }

    static func file(_ path: String, labels: String?, wanted: [String], singleLayer: String) throws -> ImportSource {
        switch try detect(path) {
        case .npy:
            let rows = NPYRows(try NPYFile(path: path), what: path)
            return try bare(path, rows: rows, kind: .npy, labels: labels, wanted: wanted, singleLayer: singleLayer)
        case .zip:
            let zip = try ZipArchive(file: try MappedFile(path: path))
            if zip.entries.contains(where: { $0.name.hasSuffix("data.pkl") }) {
                return try torch(path, labels: labels, wanted: wanted, singleLayer: singleLayer)
            }
            return try npz(path, zip: zip, labels: labels, wanted: wanted, singleLayer: singleLayer)
        case .torchLegacy:
            return try torch(path, labels: labels, wanted: wanted, singleLayer: singleLayer)
        }
    }

    /// One unnamed features array; its labels come from `labels`.
    static func bare(
        _ path: String, rows: RowSource, kind: ImportSource.Kind, labels: String?, wanted: [String],
        singleLayer: String
    ) throws -> ImportSource {
        guard let labels, !labels.isEmpty else {
            throw LinprobeError.config(
                "\(path): a bare features array needs its labels: give LINPROBE.IMPORT.<SPLIT>.LABELS (or --labels) an .npy or torch file of [N] class indices or [N, C] VOC-encoded labels"
            )
        }
        let name = try ImportSource.select(
            wanted, from: [singleLayer], in: "\(path) (layer named by LINPROBE.IMPORT.LAYER)")[0]
        let targets = try labelArray(labels)
        let layer = ImportSource.Layer(
            name: name, shapeCHW: try ImportSource.shapeCHW(rows.shape, what: path), rows: rows)
        return try ImportSource(
            kind: kind, location: path, layers: [layer], targets: targets, indices: nil, imagePaths: nil,
            files: [path, labels])
    }

    /// A labels file: an `.npy`, or a torch file holding a tensor (or a dict with `targets`/`labels`).
    static func labelArray(_ path: String) throws -> RowSource {
        switch try detect(path) {
        case .npy: return NPYRows(try NPYFile(path: path), what: path)
        case .zip, .torchLegacy:
            let root = try Checkpoint.load(path: path).root
            if case .tensor(let t) = root { return TensorRows(try t.resolve(what: path), what: path) }
            if let dict = root.dictValue, let key = targetKeys.first(where: { dict[$0] != nil }),
                case .tensor(let t)? = dict[key]
            {
                return TensorRows(try t.resolve(what: "\(path) '\(key)'"), what: "\(path) '\(key)'")
            }
            throw LinprobeError(.incompatible, "\(path): holds a \(root.typeName), not a labels tensor")
        }
    }

    // MARK: - .npz

    static func npz(
        _ path: String, zip: ZipArchive, labels: String?, wanted: [String], singleLayer: String
    ) throws -> ImportSource {
        var arrays: [String: NPYRows] = [:]
        for entry in zip.entries where entry.name.hasSuffix(".npy") {
            let key = String(entry.name.dropLast(4))
            guard entry.method == 0 else {
                throw LinprobeError(
                    .unsupported,
                    "\(path): '\(key)' is compressed (np.savez_compressed); save with np.savez, whose arrays can be read a row range at a time"
                )
            }
            let region = try zip.data(of: entry, verify: true)
            guard let start = region.bytes.baseAddress, let base = zip.file.base else { continue }
            let file = try NPYFile(path: path, offset: start - base, length: region.count)
            arrays[key] = NPYRows(file, what: "\(path) '\(key)'")
        }
        let keyed = arrays.keys.filter { $0.hasPrefix("features_") }.map { String($0.dropFirst("features_".count)) }
        var available = keyed.sorted()
        if arrays["features"] != nil { available.append(singleLayer) }
        let chosen = try ImportSource.select(wanted, from: available, in: path)
        let layers = try chosen.map { name -> ImportSource.Layer in
            let rows = arrays["features_\(name)"] ?? arrays["features"]
            guard let rows else { throw LinprobeError(.missingInput, "\(path): no 'features_\(name)'") }
            return ImportSource.Layer(
                name: name, shapeCHW: try ImportSource.shapeCHW(rows.shape, what: rows.what), rows: rows)
        }
        var files = [path]
        let targets: RowSource
        if let key = targetKeys.first(where: { arrays[$0] != nil }), let t = arrays[key] {
            try ImportSource.noLabels(labels, kind: "an .npz holding '\(key)'")
            targets = t
        } else if let labels, !labels.isEmpty {
            targets = try labelArray(labels)
            files.append(labels)
        } else {
            throw LinprobeError(
                .missingInput, "\(path): no 'targets' (or 'labels') array; add one, or give the labels file")
        }
        let classNames = try arrays["class_names"].map { try $0.strings(0..<$0.count) } ?? []
        return try ImportSource(
            kind: .npz, location: path, layers: layers, targets: targets,
            indices: indexKeys.compactMap { arrays[$0] }.first, imagePaths: arrays["image_paths"],
            classNames: classNames, files: files)
    }

    // MARK: - torch.save

    static func torch(_ path: String, labels: String?, wanted: [String], singleLayer: String) throws -> ImportSource {
        let root = try Checkpoint.load(path: path).root
        if case .tensor(let t) = root {
            let rows = TensorRows(try t.resolve(what: path), what: path)
            return try bare(path, rows: rows, kind: .torch, labels: labels, wanted: wanted, singleLayer: singleLayer)
        }
        guard let dict = root.dictValue else {
            throw LinprobeError(
                .incompatible, "\(path): holds a \(root.typeName); expected a tensor or a dict of tensors")
        }
        func tensor(_ value: PickleValue?, _ what: String) throws -> TensorRows? {
            guard let value else { return nil }
            guard case .tensor(let t) = value else {
                throw LinprobeError(.incompatible, "\(path): '\(what)' is a \(value.typeName), not a tensor")
            }
            return TensorRows(try t.resolve(what: "\(path) '\(what)'"), what: "\(path) '\(what)'")
        }
        var byLayer: [String: TensorRows] = [:]
        for key in dict.keyDescriptions where key.hasPrefix("features_") {
            byLayer[String(key.dropFirst("features_".count))] = try tensor(dict[key], key)
        }
        if let nested = dict["features"]?.dictValue {
            for key in nested.keyDescriptions { byLayer[key] = try tensor(nested[key], "features.\(key)") }
        } else if let single = try tensor(dict["features"], "features") {
            byLayer[singleLayer] = single
        }
        let chosen = try ImportSource.select(wanted, from: byLayer.keys.sorted(), in: path)
        let layers = try chosen.map { name -> ImportSource.Layer in
            guard let rows = byLayer[name] else { throw LinprobeError(.missingInput, "\(path): no layer \(name)") }
            return ImportSource.Layer(
                name: name, shapeCHW: try ImportSource.shapeCHW(rows.shape, what: rows.what), rows: rows)
        }
        var files = [path]
        let targets: RowSource
        if let key = targetKeys.first(where: { dict[$0] != nil }), let t = try tensor(dict[key], key) {
            try ImportSource.noLabels(labels, kind: "a torch dict holding '\(key)'")
            targets = t
        } else if let labels, !labels.isEmpty {
            targets = try labelArray(labels)
            files.append(labels)
        } else {
            throw LinprobeError(
                .missingInput,
                "\(path): no 'targets' (or 'labels') tensor among its keys (\(dict.keyDescriptions.joined(separator: ", "))); add one, or give the labels file"
            )
        }
        let indices = try indexKeys.compactMap { try tensor(dict[$0], $0) }.first
        return try ImportSource(
            kind: .torch, location: path, layers: layers, targets: targets, indices: indices,
            imagePaths: try strings(dict["image_paths"], path: path), files: files)
    }

    /// A list or tuple of strings (image paths) of a torch dict.
    static func strings(_ value: PickleValue?, path: String) throws -> MemoryRows? {
        guard let value else { return nil }
        guard let items = value.sequence else {
            throw LinprobeError(.incompatible, "\(path): 'image_paths' is a \(value.typeName), not a list of strings")
        }
        let texts = try items.map { item -> String in
            guard let s = item.stringValue else {
                throw LinprobeError(.incompatible, "\(path): 'image_paths' holds a \(item.typeName), not a string")
            }
            return s
        }
        return MemoryRows(strings: texts, what: "\(path) 'image_paths'")
    }
}
