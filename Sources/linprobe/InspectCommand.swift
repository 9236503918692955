import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeStore

/// `linprobe inspect <store.h5 | manifest.json | workdir> [--json]`.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what a feature store, a manifest or a work folder holds.")

    @Argument(help: "A feature store (.h5 or .h5.partial), a manifest.json, or a work folder.")
    var target: String

    @Flag(help: "Print JSON for machines instead of a table.")
    var json = false

    func run() throws {
        try reportingErrors {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory) else {
                throw LinprobeError(.missingInput, "\(target): no such file or folder")
            }
            let value: JSONValue
            if isDirectory.boolValue {
                value = try describeWorkdir(target)
            } else if target.hasSuffix(".json") {
                value = try describeManifest(
                    ManifestStore(workdir: (target as NSString).deletingLastPathComponent), path: target)
            } else {
                value = try describeStore(target)
            }
            if json {
                Console.result(try value.prettyText())
            } else {
                Console.result(render(value))
            }
        }
    }

    private func describeStore(_ path: String) throws -> JSONValue {
        let reader = try FeatureStoreReader(path: path, allowIncomplete: true)
        let layers: [JSONValue] = reader.layers.map { l in
            [
                "name": .string(l.name), "dim": .int(Int64(l.dim)),
                "shape_chw": .array(l.shapeCHW.map { .int(Int64($0)) }),
                "dtype": .string(l.storedType), "chunk_rows": l.chunkRows.map { .int(Int64($0)) } ?? .null,
            ]
        }
        let targets: JSONValue
        switch reader.targetLayout {
        case .singleLabel: targets = ["layout": "single-label", "shape": [.int(Int64(reader.count))]]
        case .multiLabel(let c):
            targets = [
                "layout": "multi-label (1 present, 0 absent, -1 difficult)",
                "shape": [.int(Int64(reader.count)), .int(Int64(c))],
            ]
        }
        let unreadable = try reader.unreadableRows()
        let paths = unreadable.isEmpty ? [] : try reader.imagePaths()
        var provenance: [String: JSONValue] = [:]
        for name in ["trunk", "weights", "transforms", "pool_ops", "provenance"] {
            provenance[name] = try reader.jsonAttribute(name)
        }
        return [
            "kind": "feature store",
            "path": .string(path),
            "format_version": .int(Int64(reader.formatVersion)),
            "complete": .bool(reader.isComplete),
            "rows": .int(Int64(reader.count)),
            "split": .string(reader.split),
            "fingerprint": .string(reader.fingerprint),
            "num_classes": .int(Int64(reader.numClasses)),
            "class_names": .array(reader.classNames.map { .string($0) }),
            "targets": targets,
            "layers": .array(layers),
            "unreadable_images": [
                "count": .int(Int64(unreadable.count)),
                "first": .array(unreadable.prefix(5).map { .string(paths[$0]) }),
            ],
            "provenance": .object(provenance),
        ]
    }

    private func describeManifest(_ store: ManifestStore, path: String) throws -> JSONValue {
        let manifest: Manifest
        if path == store.path {
            manifest = try store.read()
        } else {
            // A manifest somewhere else: read it through a store rooted at its folder.
            manifest = try ManifestStore(workdir: (path as NSString).deletingLastPathComponent).read()
        }
        let records: [JSONValue] = manifest.records.values.sorted { ($0.stage, $0.started) < ($1.stage, $1.started) }
            .map { r in
                [
                    "stage": .string(r.stage), "fingerprint": .string(r.fingerprint),
                    "status": .string(r.status.rawValue),
                    "outputs": .array(r.outputs.map { .string($0) }), "started": .string(r.started),
                    "seconds": r.seconds.map { .double(($0 * 10).rounded() / 10) } ?? .null,
                    "pipeline": r.pipeline.map { .string($0) } ?? .null,
                    "message": r.message.map { .string($0) } ?? .null,
                ]
            }
        return [
            "kind": "manifest", "path": .string(store.path), "format_version": .int(Int64(manifest.formatVersion)),
            "records": .array(records),
        ]
    }

    private func describeWorkdir(_ dir: String) throws -> JSONValue {
        let store = ManifestStore(workdir: dir)
        guard FileManager.default.fileExists(atPath: store.path) else {
            throw LinprobeError(.missingInput, "\(dir): no manifest.json here — is this a Linprobe work folder?")
        }
        var value = try describeManifest(store, path: store.path)
        var stores: [JSONValue] = []
        let featuresDir = (dir as NSString).appendingPathComponent("features")
        if let enumerator = FileManager.default.enumerator(atPath: featuresDir) {
            for case let rel as String in enumerator where rel.hasSuffix(".h5") || rel.hasSuffix(".h5.partial") {
                let path = (featuresDir as NSString).appendingPathComponent(rel)
                if let reader = try? FeatureStoreReader(path: path, allowIncomplete: true) {
                    stores.append([
                        "path": .string(path), "rows": .int(Int64(reader.count)), "complete": .bool(reader.isComplete),
                        "layers": .array(reader.layers.map { .string($0.name) }),
                    ])
                } else {
                    stores.append(["path": .string(path), "error": "unreadable"])
                }
            }
        }
        if case .object(var o) = value {
            o["kind"] = "work folder"
            o["stores"] = .array(stores.sorted { ($0["path"]?.stringValue ?? "") < ($1["path"]?.stringValue ?? "") })
            value = .object(o)
        }
        return value
    }

    /// A readable rendering: scalars as `key: value`, lists of records as aligned tables.
    private func render(_ value: JSONValue) -> String {
        guard case .object(let o) = value else { return value.canonicalText }
        var lines: [String] = []
        let order = [
            "kind", "path", "format_version", "complete", "rows", "split", "fingerprint", "num_classes", "class_names",
            "targets", "layers", "unreadable_images", "records", "stores", "provenance",
        ]
        for key in order + o.keys.sorted().filter({ !order.contains($0) }) {
            guard let v = o[key] else { continue }
            switch v {
            case .array(let items) where items.first?.objectValue != nil:
                lines.append("\(key):")
                lines.append(contentsOf: table(items).map { "  " + $0 })
                if items.isEmpty { lines.append("  (none)") }
            case .array(let items):
                let shown = items.prefix(12).map { $0.stringValue ?? $0.canonicalText }.joined(separator: ", ")
                lines.append("\(key): \(shown)\(items.count > 12 ? ", … (\(items.count) in all)" : "")")
            case .object(let inner) where key == "provenance":
                lines.append("provenance:")
                for (k, value) in inner.sorted(by: { $0.key < $1.key }) {
                    lines.append("  \(k): \(value.canonicalText)")
                }
            case .object:
                lines.append("\(key): \(v.canonicalText)")
            default:
                lines.append("\(key): \(v.stringValue ?? v.canonicalText)")
            }
        }
        return lines.joined(separator: "\n")
    }

    private func table(_ rows: [JSONValue]) -> [String] {
        guard let first = rows.first?.objectValue else { return [] }
        let preferred = [
            "name", "stage", "dim", "shape_chw", "dtype", "chunk_rows", "fingerprint", "status", "rows", "complete",
            "seconds", "outputs", "layers", "path", "error",
        ]
        let columns =
            preferred.filter { first[$0] != nil }
            + first.keys.sorted().filter {
                !preferred.contains($0) && $0 != "started" && $0 != "message" && $0 != "pipeline"
            }
        func cell(_ v: JSONValue?) -> String {
            guard let v else { return "" }
            switch v {
            case .string(let s): return s
            case .null: return "-"
            case .array(let a) where a.allSatisfy({ $0.stringValue != nil }):
                return a.compactMap(\.stringValue).joined(separator: ",")
            default: return v.canonicalText
            }
        }
        let cells = rows.map { r in columns.map { cell(r[$0]) } }
        let widths = columns.indices.map { i in max(columns[i].count, cells.map { $0[i].count }.max() ?? 0) }
        func line(_ values: [String]) -> String {
            zip(values, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        return [line(columns)] + cells.map(line)
    }
}
