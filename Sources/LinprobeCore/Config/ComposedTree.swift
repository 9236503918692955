import Foundation

/// A configuration tree composed from several documents, as OmegaConf merges them: mappings merge
/// key by key, anything else (a scalar, a list, null) replaces what was there whole. Every node
/// remembers the document and line that set it, for messages and `linprobe config --explain`.
indirect enum ComposedNode: Sendable {
    /// A scalar or a list (or null): a later document replaces it whole.
    case value(YAMLItem, origin: ConfigOrigin)
    /// A mapping, keys in the order they were first set.
    case map([(key: String, node: ComposedNode)], origin: ConfigOrigin)

    /// A document's item; `origin(line)` names the document at a line.
    init(_ item: YAMLItem, line: Int?, origin: (Int?) -> ConfigOrigin) {
        switch item {
        case .map(let pairs, _):
            self = .map(
                pairs.map { (key: $0.key, node: ComposedNode($0.value, line: $0.line, origin: origin)) },
                origin: origin(line ?? item.line))
        default:
            self = .value(item, origin: origin(line ?? item.line))
        }
    }

    /// An empty mapping (nothing set).
    static let empty = ComposedNode.map([], origin: .defaultValue)

    var origin: ConfigOrigin {
        switch self {
        case .value(_, let o), .map(_, let o): return o
        }
    }

    /// The plain value.
    var json: JSONValue {
        switch self {
        case .value(let item, _): return item.json
        case .map(let entries, _):
            var o: [String: JSONValue] = [:]
            for e in entries { o[e.key] = e.node.json }
            return .object(o)
        }
    }

    /// The node at a dotted path, or nil.
    func at(_ dotted: String) -> ComposedNode? {
        var node = self
        for part in dotted.split(separator: ".") {
            guard case .map(let entries, _) = node, let next = entries.first(where: { $0.key == part }) else {
                return nil
            }
            node = next.node
        }
        return node
    }

    /// This tree with `other` merged over it (OmegaConf's merge). `path` names this node in messages.
    func merging(_ other: ComposedNode, path: String) throws -> ComposedNode {
        switch (self, other) {
        case (.map(var entries, let origin), .map(let incoming, _)):
            for e in incoming {
                let childPath = path.isEmpty ? e.key : "\(path).\(e.key)"
                if let i = entries.firstIndex(where: { $0.key == e.key }) {
                    entries[i].node = try entries[i].node.merging(e.node, path: childPath)
                } else {
                    entries.append(e)
                }
            }
            return .map(entries, origin: origin)
        case (.map, .value(.list, _)), (.value(.list, _), .map):
            throw LinprobeError.config(
                "\(path): cannot merge \(other.kindName) (\(other.origin)) into \(kindName) (\(origin)); OmegaConf merges mappings and replaces lists but does not mix them"
            )
        default:
            return other
        }
    }

    private var kindName: String {
        switch self {
        case .map: return "a mapping"
        case .value(.list, _): return "a list"
        case .value: return "a value"
        }
    }
}

/// One document of a composition: a pipeline file, a VISSL config or an overlay, reduced to its
/// configuration mapping (the `config:` subtree of VISSL's form, or the bare keys).
struct ConfigDocument {
    /// The file's path as given (messages name it).
    let source: String
    /// The configuration keys, each with the line it was set on.
    let tree: ComposedNode
    /// Keys beside `config:` that VISSL's launcher reads (`hydra`, `VERSION`, ...): ignored.
    let rootKeys: [String]

    /// Reads one document's text. `# @package _global_` (or no header, Hydra 1.0's default for
    /// VISSL's files) places it at the root; any other package is refused.
    init(text: String, source: String) throws {
        try Self.checkPackageDirective(text, source: source)
        self.source = source
        var pairs: [(key: String, value: YAMLItem, line: Int?)] = []
        var rootKeys: [String] = []
        if let item = try ConfigYAML.parse(text, source: source) {
            (pairs, rootKeys) = try Self.configPairs(item, source: source)
        }
        self.rootKeys = rootKeys
        self.tree = ComposedNode(.map(pairs, line: nil), line: nil) { .file(path: source, line: $0) }
    }

    /// The mapping under `config:` (VISSL's form) or the document's own keys (bare form).
    private static func configPairs(
        _ item: YAMLItem, source: String
    ) throws -> ([(key: String, value: YAMLItem, line: Int?)], [String]) {
        guard case .map(let pairs, _) = item else {
            if case .scalar(.null, _) = item { return ([], []) }
            throw LinprobeError.config(
                "\(source): a pipeline must be a mapping of keys (e.g. config: or DATA:), not \(item.json.canonicalText)"
            )
        }
        let rootKeys = Set(VISSLKeyTree.rootKeys)
        let wrapped = pairs.contains { $0.key == "config" }
        var out: [(key: String, value: YAMLItem, line: Int?)] = []
        var ignored: [String] = []
        for pair in pairs {
            let origin = ConfigOrigin.file(path: source, line: pair.line)
            if pair.key == "defaults" {
                throw LinprobeError.config(
                    "defaults (\(origin)): Hydra defaults lists are not supported in a config file; name the files on the command line as +GROUP=NAME overlays"
                )
            }
            if wrapped && pair.key == "config" {
                switch pair.value {
                case .map(let inner, _): out += inner
                case .scalar(.null, _): break
                default:
                    throw LinprobeError.config(
                        "config (\(origin)): expected a mapping of keys (DATA, MODEL, ...), got \(pair.value.json.canonicalText)"
                    )
                }
            } else if rootKeys.contains(pair.key) {
                ignored.append(pair.key)
            } else if wrapped {
                throw misplacedRootKey(pair.key, origin: origin, rootKeys: rootKeys)
            } else {
                out.append(pair)
            }
        }
        return (out, ignored)
    }

    private static func misplacedRootKey(_ key: String, origin: ConfigOrigin, rootKeys: Set<String>) -> LinprobeError {
        let space = KeySpace.shared
        let hint: String
        if case .unknown = space.meaning(of: key) {
            hint = "closest valid key: config.\(space.suggestion(for: key))"
        } else {
            hint = "move it under config:"
        }
        return LinprobeError.config(
            "unknown key '\(key)' (\(origin)): beside config: only \(rootKeys.sorted().joined(separator: ", ")) may appear; \(hint)"
        )
    }

    /// Hydra's `# @package` header: only `_global_` (VISSL's) is meaningful here.
    private static func checkPackageDirective(_ text: String, source: String) throws {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).prefix(20) {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("#") else { continue }
            let body = t.dropFirst().trimmingCharacters(in: .whitespaces)
            guard body.hasPrefix("@package") else { continue }
            let package = body.dropFirst("@package".count).trimmingCharacters(in: .whitespaces)
            if package != "_global_" {
                throw LinprobeError.config(
                    "\(source): '# @package \(package)' is not supported; VISSL config files use '# @package _global_' with a root config: key"
                )
            }
        }
    }
}
