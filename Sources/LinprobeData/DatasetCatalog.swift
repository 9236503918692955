import Foundation
import LinprobeCore

/// VISSL's `dataset_catalog.json`: dataset name → `{"train": [data, labels], "val": [data, labels]}`.
/// The TRAIN split reads `train`, TEST reads `val`.
public struct DatasetCatalog: Sendable {
    public struct Entry: Sendable, Equatable {
        public var data: String
        public var labels: String?
    }

    /// Where the catalog came from (for messages).
    public let path: String
    public let entries: [String: [String: Entry]]

    /// Environment variables consulted, in order, when no explicit path is given.
    public static let environmentVariables = ["LINPROBE_DATASET_CATALOG", "VISSL_DATASET_CATALOG_PATH"]

    public init(path: String, entries: [String: [String: Entry]]) {
        self.path = path
        self.entries = entries
    }

    /// Reads a catalog file; errors name the file and the entry at fault.
    public static func load(path: String) throws -> DatasetCatalog {
        try requireRegularFile(path, what: "the dataset catalog")
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw LinprobeError(.missingInput, "\(path): cannot read the dataset catalog (\(oneLine(error)))")
        }
        let json: JSONValue
        do {
            json = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw LinprobeError(.corruptInput, "\(path): the dataset catalog is not valid JSON")
        }
        guard case .object(let top) = json else {
            throw LinprobeError(
                .corruptInput,
                "\(path): the dataset catalog must map names to {\"train\": [data, labels], \"val\": [data, labels]}")
        }
        var entries = [String: [String: Entry]]()
        for (name, value) in top {
            guard case .object(let splits) = value else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): entry '\(name)' must be {\"train\": [data, labels], \"val\": [data, labels]}")
            }
            var parsed = [String: Entry]()
            for (split, pair) in splits {
                guard case .array(let items) = pair, let first = items.first?.stringValue,
                    items.allSatisfy({ $0.stringValue != nil })
                else {
                    throw LinprobeError(
                        .corruptInput, "\(path): entry '\(name)'.\(split) must be a list [data_path, label_path]")
                }
                parsed[split] = Entry(data: first, labels: items.count > 1 ? items[1].stringValue : nil)
            }
            entries[name] = parsed
        }
        return DatasetCatalog(path: path, entries: entries)
    }

    /// Finds the catalog: `explicitPath` (a setting), else `LINPROBE_DATASET_CATALOG`, else
    /// VISSL's `VISSL_DATASET_CATALOG_PATH`, else `defaultPath` if that file exists. A path
    /// that is set but missing is an error naming where it was set.
    public static func locate(
        explicitPath: String?, environment: [String: String],
        defaultPath: String? = nil
    ) throws -> DatasetCatalog? {
        if let explicitPath, !explicitPath.isEmpty {
            guard FileManager.default.fileExists(atPath: explicitPath) else {
                throw LinprobeError(.missingInput, "\(explicitPath): dataset catalog not found")
            }
            return try load(path: explicitPath)
        }
        for variable in environmentVariables {
            if let p = environment[variable], !p.isEmpty {
                guard FileManager.default.fileExists(atPath: p) else {
                    throw LinprobeError(.missingInput, "\(p): dataset catalog not found (set by \(variable))")
                }
                return try load(path: p)
            }
        }
        if let defaultPath, FileManager.default.fileExists(atPath: defaultPath) {
            return try load(path: defaultPath)
        }
        return nil
    }

    /// The entry of `name` for catalog split `split` (`train` or `val`).
    public func entry(_ name: String, split: String) throws -> Entry {
        guard let splits = entries[name] else {
            let known = entries.keys.sorted(by: pythonLess).joined(separator: ", ")
            throw LinprobeError.config(
                "dataset '\(name)' is not in the dataset catalog \(path) (known: \(known)); add it there or set DATA_PATHS"
            )
        }
        guard let e = splits[split] else {
            throw LinprobeError.config("dataset '\(name)' in the dataset catalog \(path) has no '\(split)' entry")
        }
        if Self.isPlaceholder(e.data) {
            throw LinprobeError.config(
                "dataset '\(name)' in the dataset catalog \(path) has the placeholder '\(e.data)' for '\(split)'; put the real path there or set DATA_PATHS"
            )
        }
        return e
    }

    /// VISSL's shipped catalog uses `<img_path>`-style placeholders.
    static func isPlaceholder(_ p: String) -> Bool {
        p.hasPrefix("<") && p.hasSuffix(">")
    }
}
