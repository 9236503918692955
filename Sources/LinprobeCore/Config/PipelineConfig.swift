import Foundation

/// Where a value of the effective configuration came from.
public enum ConfigOrigin: Sendable, Equatable, CustomStringConvertible {
    /// Linprobe's registry default (VISSL's default unless Linprobe's differs).
    case defaultValue
    /// Set in a pipeline file (line numbers start at 1).
    case file(path: String, line: Int?)
    /// Set by a command-line override, as given.
    case override(String)

    public var isExplicit: Bool { self != .defaultValue }

    public var description: String {
        switch self {
        case .defaultValue: return "default"
        case .file(let path, let line?): return "\(path) line \(line)"
        case .file(let path, nil): return path
        case .override(let text): return "override '\(text)'"
        }
    }
}

/// A VISSL key that Linprobe does not use, as the composition set it (for checks and `--explain`).
struct IgnoredSetting: Sendable {
    let value: JSONValue
    let origin: ConfigOrigin
}

/// The effective configuration of a pipeline: Linprobe's defaults ⊕ the base (a pipeline file or
/// VISSL's `config=PATH`) ⊕ `+GROUP=NAME` overlays in command-line order ⊕ the command-line
/// overrides, composed as Hydra composes a VISSL run (`PipelineComposition`) and validated once
/// against the registry (`LinprobeKeys`) and VISSL's key tree.
///
/// VISSL's own benchmark files load unchanged (root `config:` key, `# @package _global_`), as do
/// bare-key snippets; `MODEL.TRUNK.TRUNK_PARAMS.X` is read as `MODEL.TRUNK.X`. Only the keys
/// Linprobe reads are in the effective tree; VISSL keys it does not use are listed in
/// `ignoredKeys`. Inconsistencies known in VISSL's own files are errors here, before any work
/// (`KnownInconsistencies`).
public struct PipelineConfig: Sendable {
    /// The base pipeline file read (nil when loaded from text).
    public let pipelinePath: String?
    /// The pipeline's name: the base file's name without extension (or the text's source name),
    /// then `+NAME` for each overlay.
    public let name: String
    /// The effective configuration: every registry key, nested by its dotted path.
    public let effective: JSONValue
    /// VISSL keys set by the file or overrides that Linprobe does not use, sorted, each once.
    public let ignoredKeys: [String]
    /// Other remarks for the user (e.g. a key read at another place), each one line.
    public let notes: [String]
    /// The documents and overrides composed, in order.
    public let sources: [ConfigSource]
    /// The dataset catalog used when neither `LINPROBE.DATASET_CATALOG` nor the environment names
    /// one: `dataset_catalog.json` next to the base file (VISSL's `config/dataset_catalog.json`
    /// for a file of VISSL's configs folder).
    public let defaultCatalogPath: String?
    /// Origin of every explicitly set registry key.
    private let origins: [String: ConfigOrigin]
    /// The value and origin of every ignored VISSL key that was set.
    let ignoredSettings: [String: IgnoredSetting]

    /// The effective tree as a `ConfigNode` (typed accessors whose errors name the key path).
    public var root: ConfigNode { ConfigNode(path: "", value: effective) }

    /// A key or branch of the effective tree, e.g. `node("SVM.costs.costs_list")`.
    public func node(_ dotted: String) -> ConfigNode { root.at(dotted) }

    /// The canonical JSON value of the effective configuration (for fingerprints). It depends on
    /// the composed result only, not on how the command line spelled it.
    public var canonicalJSON: JSONValue { effective }

    /// Compact canonical JSON text (sorted keys).
    public var jsonText: String { effective.canonicalText }

    /// YAML text under a root `config:` key; loading it gives this configuration back.
    public var yamlText: String { ConfigYAML.emit(effective, rootKey: "config") }

    /// Where a key's value came from. For a branch (e.g. `SVM.costs`), the origin of its first
    /// explicitly set key, or `.defaultValue` when none is set.
    public func origin(of path: String) -> ConfigOrigin {
        if let o = origins[path] { return o }
        let prefix = path + "."
        if let first = origins.keys.filter({ $0.hasPrefix(prefix) }).sorted().first {
            return origins[first] ?? .defaultValue
        }
        return .defaultValue
    }

    /// Whether the key (or any key below a branch) was set by the pipeline file or an override.
    public func isExplicit(_ path: String) -> Bool {
        if let o = origins[path] { return o.isExplicit }
        let prefix = path + "."
        return origins.contains { $0.key.hasPrefix(prefix) && $0.value.isExplicit }
    }

    /// The one-line note listing ignored VISSL keys, or nil when there are none.
    public var ignoredKeysNote: String? {
        ignoredKeys.isEmpty
            ? nil : "note: ignoring VISSL keys Linprobe does not use: " + ignoredKeys.joined(separator: ", ")
    }

    // MARK: Loading

    /// Loads a pipeline and composes it: `pipeline` is a file path, the name of one (see
    /// `resolve`) or VISSL's `config=PATH`; `overrides` holds `+GROUP=NAME` overlays and dotted
    /// overrides in command-line order. VISSL's configs folder is `configs`, else
    /// `$LINPROBE_VISSL_CONFIGS`.
    public static func load(
        pipeline: String, overrides: [String] = [], configs: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        searchPaths: [String] = defaultSearchPaths()
    ) throws -> PipelineConfig {
        let folder = configs ?? environment[PipelineComposition.configsVariable].flatMap { $0.isEmpty ? nil : $0 }
        let composition = try PipelineComposition(
            pipeline: pipeline, arguments: overrides, configs: folder, searchPaths: searchPaths)
        return try load(composition)
    }

    /// Loads pipeline text (`source` names it in messages) and applies `overrides`.
    public static func load(
        text: String, source: String, name: String? = nil, overrides: [String] = []
    ) throws -> PipelineConfig {
        let composition = try PipelineComposition(
            text: text, source: source, name: name ?? source, arguments: overrides)
        return try load(composition)
    }

    /// Validates the composed documents, then the overrides, over the registry defaults.
    private static func load(_ composition: PipelineComposition) throws -> PipelineConfig {
        let space = KeySpace.shared
        let fileLayer = Layer(space: space)
        try fileLayer.read(composition.tree)
        fileLayer.ignored += composition.rootKeys
        let overrideLayer = Layer(space: space)
        for o in composition.overrides { try overrideLayer.readOverride(o) }

        var values: [String: JSONValue] = [:]
        for key in LinprobeKeys.all { values[key.path] = key.defaultValue }
        var origins: [String: ConfigOrigin] = [:]
        for layer in [fileLayer, overrideLayer] {
            for a in layer.assignments.values {
                values[a.path] = a.value
                origins[a.path] = a.origin
            }
        }
        let ignored = Set(fileLayer.ignored).union(overrideLayer.ignored).sorted()
        let config = PipelineConfig(
            pipelinePath: composition.basePath, name: composition.name, effective: nest(values),
            ignoredKeys: ignored, notes: fileLayer.notes + overrideLayer.notes, sources: composition.sources,
            defaultCatalogPath: composition.catalogPath, origins: origins,
            ignoredSettings: fileLayer.ignoredSettings.merging(overrideLayer.ignoredSettings) { _, new in new })
        try KnownInconsistencies.check(config)
        return config
    }

    /// The value and origin of an ignored VISSL key, if the composition set it.
    func ignoredSetting(_ path: String) -> IgnoredSetting? { ignoredSettings[path] }

    /// Builds the nested tree from dotted paths.
    private static func nest(_ values: [String: JSONValue]) -> JSONValue {
        final class Box { var children: [String: Box] = [:]; var value: JSONValue? }
        let root = Box()
        for (path, value) in values {
            var node = root
            for part in path.split(separator: ".").map(String.init) {
                if let next = node.children[part] {
                    node = next
                } else {
                    let next = Box()
                    node.children[part] = next
                    node = next
                }
            }
            node.value = value
        }
        func build(_ b: Box) -> JSONValue {
            if let v = b.value { return v }
            return .object(b.children.mapValues(build))
        }
        return build(root)
    }

    // MARK: Pipeline resolution

    /// The folders searched for `<name>.yaml`, in order: `pipelines/` in the current directory,
    /// the folders of `$LINPROBE_PIPELINES` (colon-separated), and the `pipelines/` folder of the
    /// source tree the executable was built in (`<exe>/../../../pipelines`).
    public static func defaultSearchPaths(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        executablePath: String? = CommandLine.arguments.first
    ) -> [String] {
        var paths = [URL(fileURLWithPath: currentDirectory).appendingPathComponent("pipelines").path]
        if let env = environment["LINPROBE_PIPELINES"] {
            paths += env.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        if let exe = executablePath, !exe.isEmpty {
            let given = URL(fileURLWithPath: exe, relativeTo: URL(fileURLWithPath: currentDirectory, isDirectory: true))
                .standardizedFileURL
            let resolved = given.resolvingSymlinksInPath()
            var found: String? = nil
            search: for start in [given, resolved] {
                var dir = start.deletingLastPathComponent()
                for _ in 0..<4 {
                    dir = dir.deletingLastPathComponent()
                    let candidate = dir.appendingPathComponent("pipelines")
                    var isDir: ObjCBool = false
                    if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDir), isDir.boolValue {
                        found = candidate.path
                        break search
                    }
                }
            }
            let nominal = given.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("pipelines").path
            paths.append(found ?? nominal)
        }
        var seen: Set<String> = []
        return paths.filter { seen.insert($0).inserted }
    }

    /// The file a pipeline argument names: an existing file path, else `<name>.yaml` (or `.yml`,
    /// or the name as given when it ends in one) in each search folder in turn.
    public static func resolve(pipeline: String, searchPaths: [String] = defaultSearchPaths()) throws -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: pipeline, isDirectory: &isDir) {
            if isDir.boolValue {
                throw LinprobeError(
                    .usage, "\(pipeline) is a folder; give a pipeline file (.yaml) or the name of one under pipelines/")
            }
            return pipeline
        }
        guard !pipeline.isEmpty else {
            throw LinprobeError(
                .usage, "empty pipeline name; give a pipeline file (.yaml) or the name of one under pipelines/")
        }
        let names =
            pipeline.hasSuffix(".yaml") || pipeline.hasSuffix(".yml")
            ? [pipeline] : [pipeline + ".yaml", pipeline + ".yml"]
        var looked = [pipeline]
        for dir in searchPaths {
            for name in names {
                let candidate = URL(fileURLWithPath: dir).appendingPathComponent(name).path
                if fm.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue { return candidate }
            }
            looked.append(URL(fileURLWithPath: dir).appendingPathComponent(names[0]).path)
        }
        throw LinprobeError(
            .usage,
            "pipeline '\(pipeline)' not found; looked at: \(looked.joined(separator: ", ")) (set LINPROBE_PIPELINES to add a folder)"
        )
    }
}

// MARK: - Reading one layer (the composed documents, or the overrides)

/// Collects the assignments of one layer, validating every key and value.
private final class Layer {
    struct Assignment {
        let path: String
        let value: JSONValue
        let origin: ConfigOrigin
        /// The key as spelled where it was set (differs from `path` under TRUNK_PARAMS).
        let spelled: String
    }

    let space: KeySpace
    var assignments: [String: Assignment] = [:]
    var ignored: [String] = []
    var ignoredSettings: [String: IgnoredSetting] = [:]
    var notes: [String] = []

    init(space: KeySpace) { self.space = space }

    /// The composed documents: a mapping of configuration keys (the `config:` subtree).
    func read(_ tree: ComposedNode) throws {
        guard case .map(let entries, _) = tree else { return }
        for e in entries { try visitChild(parent: "", spelledParent: "", key: e.key, node: e.node) }
    }

    /// A command-line override.
    func readOverride(_ o: ConfigOverride) throws {
        let origin = ConfigOrigin.override(o.text)
        let node = ComposedNode(YAMLItem.from(o.value), line: nil) { _ in origin }
        // Walk the dotted path, following the TRUNK_PARAMS alias, down to the key it sets.
        let parts = o.path.split(separator: ".").map(String.init)
        var path = ""
        for (i, part) in parts.enumerated() {
            path = path.isEmpty ? part : "\(path).\(part)"
            let last = i == parts.count - 1
            switch space.meaning(of: path) {
            case .alias(let target):
                path = target
            case .branch:
                break
            case .key(let key):
                if !last {
                    throw LinprobeError.config(
                        "\(o.path) (\(origin)): \(key.path) takes \(key.type), it has no key \(parts[(i + 1)...].joined(separator: "."))"
                    )
                }
            case .ignored(let kind, let def):
                if !last {
                    // Inside a VISSL key Linprobe does not use: the whole override is ignored,
                    // unless VISSL's key is a plain value (then the sub-key cannot exist).
                    if let kind, kind != .open, kind != .null {
                        throw unknownKey(o.path, origin: origin)
                    }
                    ignored.append(path)
                    ignoredSettings[o.path] = IgnoredSetting(value: node.json, origin: origin)
                    return
                }
                try checkIgnored(path: path, kind: kind, default: def, value: node.json, origin: origin)
                ignore(path, node: node)
                return
            case .unknown:
                // Hydra's `+` adds a key VISSL's defaults do not have; VISSL then ignores it too.
                guard o.adds else { throw unknownKey(o.path, origin: origin) }
                ignore(o.path, node: node)
                return
            }
        }
        try visit(path: path, spelled: o.path, node: node)
    }

    private func ignore(_ path: String, node: ComposedNode) {
        ignored.append(path)
        ignoredSettings[path] = IgnoredSetting(value: node.json, origin: node.origin)
    }

    private func unknownKey(_ spelled: String, origin: ConfigOrigin) -> LinprobeError {
        let suggestion = space.suggestion(for: spelled)
        return LinprobeError.config(
            "unknown key '\(spelled)' (\(origin)): neither a VISSL nor a Linprobe key; closest valid key: \(suggestion)"
        )
    }

    private func visitChild(parent: String, spelledParent: String, key: String, node: ComposedNode) throws {
        let path = parent.isEmpty ? key : "\(parent).\(key)"
        let spelled = spelledParent.isEmpty ? key : "\(spelledParent).\(key)"
        if parent.isEmpty, key == "TRUNK", case .unknown = space.meaning(of: path) {
            // VISSL's documentation shows TRUNK at the root in one snippet; it belongs to MODEL.
            notes.append("note: reading root key TRUNK (\(node.origin)) as MODEL.TRUNK")
            try visit(path: "MODEL.TRUNK", spelled: "TRUNK", node: node)
            return
        }
        try visit(path: path, spelled: spelled, node: node)
    }

    /// Applies `node` at canonical `path`.
    private func visit(path: String, spelled: String, node: ComposedNode) throws {
        let origin = node.origin
        let meaning: KeyMeaning = path.isEmpty ? .branch : space.meaning(of: path)
        switch meaning {
        case .key(let key):
            try assign(key: key, spelled: spelled, value: node.json, origin: origin)
        case .branch, .alias:
            var base = path
            if case .alias(let target) = meaning { base = target }
            switch node {
            case .map(let entries, _):
                for e in entries { try visitChild(parent: base, spelledParent: spelled, key: e.key, node: e.node) }
            case .value(.scalar(.null, _), _):
                return  // an empty section: nothing set
            case .value(let item, _):
                let keys = (space.children[base] ?? []).sorted().prefix(4).joined(separator: ", ")
                throw LinprobeError.config(
                    "\(spelled) (\(origin)): expected a mapping of keys (\(keys), ...), got \(item.json.canonicalText)")
            }
        case .ignored(let kind, let def):
            try checkIgnored(path: path, kind: kind, default: def, value: node.json, origin: origin)
            ignore(path, node: node)
        case .unknown:
            throw unknownKey(spelled, origin: origin)
        }
    }

    /// VISSL keys Linprobe ignores are checked for their shape only (scalar, list or mapping).
    /// Keys whose VISSL default is null or an empty list take any value.
    private func checkIgnored(
        path: String, kind: VISSLKeyTree.Kind?, default def: JSONValue?, value v: JSONValue,
        origin: ConfigOrigin
    ) throws {
        guard let kind else { return }
        if v == .null { return }
        let ok: Bool
        let expected: String
        switch kind {
        case .null, .mapping: ok = true; expected = ""
        case .open: ok = v.objectValue != nil; expected = "a mapping"
        case .list:
            if case .array(let d)? = def, d.isEmpty { ok = true } else { ok = v.arrayValue != nil }
            expected = "a list"
        case .bool, .int, .float, .string:
            ok = !v.isContainer
            expected = "a single value (VISSL's default is \(def?.canonicalText ?? "null"))"
        }
        if !ok {
            throw LinprobeError.config("\(path) (\(origin)): expected \(expected), got \(v.canonicalText)")
        }
    }

    private func assign(key: ConfigKey, spelled: String, value: JSONValue, origin: ConfigOrigin) throws {
        let checked: JSONValue
        switch key.check(value) {
        case .success(let v): checked = v
        case .failure(.type):
            throw LinprobeError.config("\(key.path) (\(origin)): expected \(key.type), got \(value.canonicalText)")
        case .failure(.notAllowed(let v)):
            var text = "\(key.path) (\(origin)): \(v.displayText) is not allowed; expected \(key.limitsText)"
            if case .string(let s) = v, let allowed = key.allowed {
                let names = allowed.compactMap(\.stringValue)
                if let best = names.min(by: {
                    editDistance($0.lowercased(), s.lowercased()) < editDistance($1.lowercased(), s.lowercased())
                }) {
                    text += " (closest: \(best))"
                }
            }
            throw LinprobeError.config(text)
        case .failure(.outOfRange(let v)):
            throw LinprobeError.config(
                "\(key.path) (\(origin)): \(v.displayText) is out of range; expected \(key.limitsText)")
        }
        if let s = checked.firstString(where: { $0.contains("${") }) {
            throw LinprobeError.config(
                "\(key.path) (\(origin)): '\(s)' is an OmegaConf interpolation, which Linprobe does not resolve; write the value itself"
            )
        }
        if let previous = assignments[key.path], previous.value != checked {
            let how = previous.spelled == spelled ? "" : " (as \(previous.spelled) and \(spelled))"
            throw LinprobeError.config(
                "\(key.path) is set twice with different values\(how): \(previous.value.canonicalText) at \(previous.origin), \(checked.canonicalText) at \(origin); keep one"
            )
        }
        assignments[key.path] = Assignment(path: key.path, value: checked, origin: origin, spelled: spelled)
    }
}

extension JSONValue {
    /// The first string inside the value (depth first) that satisfies `predicate`.
    func firstString(where predicate: (String) -> Bool) -> String? {
        switch self {
        case .string(let s): return predicate(s) ? s : nil
        case .array(let items):
            for item in items { if let s = item.firstString(where: predicate) { return s } }
            return nil
        case .object(let o):
            for key in o.keys.sorted() { if let s = o[key]?.firstString(where: predicate) { return s } }
            return nil
        default: return nil
        }
    }
}

extension YAMLItem {
    /// A parsed override value as an item without positions (mapping keys sorted).
    static func from(_ value: JSONValue) -> YAMLItem {
        switch value {
        case .array(let items): return .list(items.map(from), line: nil)
        case .object(let o):
            return .map(o.keys.sorted().map { (key: $0, value: from(o[$0] ?? .null), line: nil) }, line: nil)
        default: return .scalar(value, line: nil)
        }
    }
}
