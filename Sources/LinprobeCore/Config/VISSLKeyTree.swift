import Foundation

/// VISSL's configuration key tree (every key under `config:` of `vissl/config/defaults.yaml`,
/// with its kind and default), plus the few keys VISSL's own benchmark configs set although
/// defaults.yaml lacks them. The data is generated Swift source (VISSLKeyTree+Generated.swift),
/// so the binary needs no resource files.
struct VISSLKeyTree: Sendable {
    enum Kind: String, Sendable {
        /// A mapping with children listed in the tree.
        case mapping
        /// An empty mapping in defaults.yaml: any content is VISSL's.
        case open
        case null, bool, int, float, string, list
    }

    struct Entry: Sendable {
        let path: String
        let kind: Kind
        let defaultValue: JSONValue
    }

    /// Entries by dotted path.
    let entries: [String: Entry]
    /// Child key names by parent path ("" for the root), in file order.
    let children: [String: [String]]
    /// Legacy keys (set by VISSL's shipped configs, absent from defaults.yaml) → the config file.
    let legacy: [String: String]

    static let shared: VISSLKeyTree = VISSLKeyTree.parse() ?? VISSLKeyTree(entries: [:], children: [:], legacy: [:])

    func entry(_ path: String) -> Entry? { entries[path] }

    /// Whether `path` is a legacy key or lies below one.
    func isLegacy(_ path: String) -> Bool {
        if legacy[path] != nil { return true }
        var p = path
        while let dot = p.lastIndex(of: ".") {
            p = String(p[..<dot])
            if legacy[p] != nil { return true }
        }
        return false
    }

    private static func parse() -> VISSLKeyTree? {
        guard case .array(let rows)? = try? JSONValue.parse(entriesJSON),
            case .array(let legacyRows)? = try? JSONValue.parse(legacyJSON)
        else { return nil }
        var entries: [String: Entry] = [:]
        var children: [String: [String]] = [:]
        for row in rows {
            guard case .array(let cols) = row, cols.count == 3,
                let path = cols[0].stringValue, let kindText = cols[1].stringValue,
                let kind = Kind(rawValue: kindText)
            else { return nil }
            var value = cols[2]
            // JSON does not keep "1.0" apart from "1": the kind does.
            if kind == .float, let d = value.doubleValue { value = .double(d) }
            entries[path] = Entry(path: path, kind: kind, defaultValue: value)
            let parent = path.lastIndex(of: ".").map { String(path[..<$0]) } ?? ""
            let name = path.lastIndex(of: ".").map { String(path[path.index(after: $0)...]) } ?? path
            children[parent, default: []].append(name)
        }
        var legacy: [String: String] = [:]
        for row in legacyRows {
            guard case .array(let cols) = row, cols.count == 2,
                let path = cols[0].stringValue, let source = cols[1].stringValue
            else { return nil }
            legacy[path] = source
        }
        return VISSLKeyTree(entries: entries, children: children, legacy: legacy)
    }
}
