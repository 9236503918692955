import Foundation

/// One document or override that a composed configuration was made of, in composition order.
public struct ConfigSource: Sendable, Equatable {
    public enum Role: String, Sendable {
        /// The pipeline file, or VISSL's `config=PATH`.
        case base
        /// A `+GROUP=NAME` option.
        case overlay
        /// A dotted `config.A.B=value`.
        case override
    }

    public let role: Role
    /// As the command line spelled it (the pipeline argument, `+GROUP=NAME`, the override).
    public let spelled: String
    /// The file read (nil for an override).
    public let path: String?
}

/// The files a command line names, resolved and read, and their composition — the way Hydra
/// composes a VISSL run: the base (a pipeline file, or `config=PATH` in a VISSL configs folder),
/// then each `+GROUP=NAME` overlay in command-line order (mappings merge, lists are replaced
/// whole); the dotted overrides come last (applied by `PipelineConfig`).
///
/// `+config/…/GROUP=NAME` (VISSL's spelling) is `<configs>/config/…/GROUP/NAME.yaml`;
/// a short `+GROUP=NAME` is `GROUP/NAME.yaml` in the base file's folder. Folder and file names
/// are matched case-sensitively on every file system, with a "did you mean" for near misses.
struct PipelineComposition {
    /// The pipeline's name: the base's file name, then `+NAME` per overlay.
    let name: String
    /// The base file (nil for text).
    let basePath: String?
    /// Where the dataset catalog is looked for when neither LINPROBE.DATASET_CATALOG nor the
    /// environment names one: next to the base file, or VISSL's `config/dataset_catalog.json`.
    let catalogPath: String?
    let sources: [ConfigSource]
    /// The documents merged, base first.
    let tree: ComposedNode
    /// Root keys beside `config:` (VISSL launcher keys), ignored.
    let rootKeys: [String]
    let overrides: [ConfigOverride]

    /// The environment variable naming VISSL's configs folder.
    static let configsVariable = "LINPROBE_VISSL_CONFIGS"

    /// Resolves and reads what `pipeline` and `arguments` name.
    init(pipeline: String, arguments: [String], configs: String?, searchPaths: [String]) throws {
        let base = try Self.resolveBase(pipeline, configs: configs, searchPaths: searchPaths)
        let baseFolder = Paths.parent(base.path)
        var overlays: [(spelled: String, option: String, path: String)] = []
        var overrides: [ConfigOverride] = []
        for text in arguments {
            switch try Self.classify(text, baseFolder: baseFolder) {
            case .overlay(let group, let option):
                let path = try Self.resolveOverlay(
                    group: group, option: option, text: text, base: base.path, configs: configs)
                overlays.append((text, option, path))
            case .override:
                overrides.append(try ConfigOverride(parsing: text))
            }
        }
        var documents = [try ConfigDocument(text: Self.read(base.path), source: base.path)]
        for overlay in overlays {
            documents.append(try ConfigDocument(text: Self.read(overlay.path), source: overlay.path))
        }
        self.name = ([base.name] + overlays.map { Paths.lastComponent($0.option) }).joined(separator: "+")
        self.basePath = base.path
        self.catalogPath = Self.catalogPath(base: base.path, configs: configs)
        self.sources =
            [ConfigSource(role: .base, spelled: pipeline, path: base.path)]
            + overlays.map { ConfigSource(role: .overlay, spelled: $0.spelled, path: $0.path) }
            + overrides.map { ConfigSource(role: .override, spelled: $0.text, path: nil) }
        self.tree = try Self.merge(documents)
        self.rootKeys = documents.flatMap(\.rootKeys)
        self.overrides = overrides
    }

    /// Pipeline text (`source` names it); overlays need a file, so every argument is an override.
    init(text: String, source: String, name: String, arguments: [String]) throws {
        var overrides: [ConfigOverride] = []
        for argument in arguments {
            if case .overlay = try Self.classify(argument, baseFolder: nil) {
                throw LinprobeError(
                    .usage, "'\(argument)': an overlay is read next to a pipeline file; \(source) is not a file")
            }
            overrides.append(try ConfigOverride(parsing: argument))
        }
        let document = try ConfigDocument(text: text, source: source)
        self.name = name
        self.basePath = nil
        self.catalogPath = nil
        self.sources =
            [ConfigSource(role: .base, spelled: source, path: nil)]
            + overrides.map { ConfigSource(role: .override, spelled: $0.text, path: nil) }
        self.tree = document.tree
        self.rootKeys = document.rootKeys
        self.overrides = overrides
    }

    private static func read(_ path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LinprobeError.config("\(path): cannot read the pipeline file as UTF-8 text (\(oneLine(error)))")
        }
    }

    private static func merge(_ documents: [ConfigDocument]) throws -> ComposedNode {
        var tree = ComposedNode.empty
        for document in documents { tree = try tree.merging(document.tree, path: "") }
        return tree
    }

    // MARK: The command line

    enum Argument: Equatable {
        case overlay(group: String, option: String)
        case override
    }

    /// Whether an argument adds a config group option (`+GROUP=NAME`, `+config/…/GROUP=NAME`) or
    /// overrides a key. A `+NAME=…` without dots is an overlay unless NAME is a configuration key.
    static func classify(_ text: String, baseFolder: String?) throws -> Argument {
        guard let eq = text.firstIndex(of: "="), !text.hasPrefix("~") else { return .override }
        var key = Substring(text[..<eq])
        let adds = key.hasPrefix("+")
        while key.hasPrefix("+") { key = key.dropFirst() }
        let value = String(text[text.index(after: eq)...])
        if key == "config" {
            throw LinprobeError(
                .usage, "'\(text)': config=PATH names the base configuration; give it as the first argument")
        }
        if key.contains("/") {
            guard adds else {
                throw LinprobeError(
                    .usage, "'\(text)': a config group option is added with '+' (+\(text)), as in VISSL's commands")
            }
            return .overlay(group: String(key), option: value)
        }
        guard !key.contains("."), !key.isEmpty else { return .override }
        if case .unknown = KeySpace.shared.meaning(of: String(key)) {
            if adds { return .overlay(group: String(key), option: value) }
            if let baseFolder, isFolder(Paths.join(baseFolder, String(key))) {
                throw LinprobeError(
                    .usage, "'\(text)': \(key) is a config group next to the pipeline; add its option with +\(text)")
            }
        }
        return .override
    }

    // MARK: Resolving files

    /// The base file and its name: VISSL's `config=PATH`, or a pipeline file or name.
    private static func resolveBase(
        _ pipeline: String, configs: String?, searchPaths: [String]
    ) throws -> (path: String, name: String) {
        guard pipeline.hasPrefix("config=") else {
            let path = try PipelineConfig.resolve(pipeline: pipeline, searchPaths: searchPaths)
            return (path, URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)
        }
        let option = String(pipeline.dropFirst("config=".count))
        let root = try configsRoot(configs, for: pipeline)
        let path = try findOption(option, group: "config", in: root, text: pipeline)
        return (path, URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)
    }

    /// The file of an overlay: VISSL's groups (`config/…`) in the configs folder, others next to the base.
    private static func resolveOverlay(
        group: String, option: String, text: String, base: String, configs: String?
    ) throws -> String {
        if group == "config" || group.hasPrefix("config/") {
            return try findOption(option, group: group, in: configsRoot(configs, for: text), text: text)
        }
        return try findOption(option, group: group, in: Paths.parent(base), text: text)
    }

    /// VISSL's configs folder (the one holding `config/`), checked.
    private static func configsRoot(_ folder: String?, for text: String) throws -> String {
        guard let folder, !folder.isEmpty else {
            throw LinprobeError(
                .usage,
                "'\(text)' names a VISSL config: give VISSL's configs folder with --configs DIR or \(configsVariable) (the configs folder of a VISSL checkout)"
            )
        }
        guard isFolder(Paths.join(folder, "config")) else {
            let hint =
                isFolder(Paths.join(folder, "configs/config")) ? "; did you mean \(Paths.join(folder, "configs"))?" : ""
            throw LinprobeError(
                .usage,
                "\(folder) (--configs or \(configsVariable)): not a VISSL configs folder, it has no config/ folder\(hint)"
            )
        }
        return folder
    }

    /// `<root>/<group>/<option>.yaml`, every component matched case-sensitively.
    private static func findOption(_ option: String, group: String, in root: String, text: String) throws -> String {
        var name = option
        for suffix in [".yaml", ".yml"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
        let parts = (group.split(separator: "/") + name.split(separator: "/")).map(String.init)
        guard let file = parts.last, !name.isEmpty, !parts.contains(where: { $0 == ".." || $0 == "." }) else {
            throw LinprobeError(.usage, "'\(text)': no config name after '='")
        }
        var folder = root
        for (i, part) in parts.dropLast().enumerated() {
            let names = entries(of: folder, folders: true)
            guard names.contains(part) else {
                let groupName = parts[..<(i + 1)].joined(separator: "/")
                throw LinprobeError(
                    .usage,
                    "'\(text)': no config group '\(groupName)' (no folder '\(part)' in \(folder))\(suggestion(part, among: names))"
                )
            }
            folder = Paths.join(folder, part)
        }
        let options = entries(of: folder, folders: false)
        guard let match = ["\(file).yaml", "\(file).yml"].first(where: { options.contains($0) }) else {
            let names = options.map { String($0[..<($0.lastIndex(of: ".") ?? $0.endIndex)]) }
            let groupName = parts.dropLast().joined(separator: "/")
            throw LinprobeError(
                .usage,
                "'\(text)': no option '\(file)' in config group \(groupName) (\(folder))\(suggestion(file, among: names))"
            )
        }
        return Paths.join(folder, match)
    }

    /// Names in `folder` (sub-folders, or .yaml/.yml files), exactly as stored.
    private static func entries(of folder: String, folders: Bool) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { name in
            let isDir = isFolder(Paths.join(folder, name))
            return folders ? isDir : (!isDir && (name.hasSuffix(".yaml") || name.hasSuffix(".yml")))
        }.sorted()
    }

    /// "; did you mean 'X'?" for a near miss (case differences first), else the names there.
    static func suggestion(_ wanted: String, among names: [String]) -> String {
        guard !names.isEmpty else { return " (the folder is empty or missing)" }
        if let same = names.first(where: { $0.lowercased() == wanted.lowercased() }) {
            return "; did you mean '\(same)'? (names are case-sensitive)"
        }
        let best = names.min {
            (editDistance($0.lowercased(), wanted.lowercased()), $0) < (
                editDistance($1.lowercased(), wanted.lowercased()), $1
            )
        }
        if let best, editDistance(best.lowercased(), wanted.lowercased()) <= max(2, wanted.count / 4) {
            return "; did you mean '\(best)'?"
        }
        let shown = names.prefix(8).joined(separator: ", ")
        return "; there: \(shown)\(names.count > 8 ? ", … (\(names.count) in all)" : "")"
    }

    private static func isFolder(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// `dataset_catalog.json` next to the base; for a file inside VISSL's configs folder, the
    /// catalog of that folder (`config/dataset_catalog.json`), as VISSL reads it.
    private static func catalogPath(base: String, configs: String?) -> String {
        let beside = Paths.join(Paths.parent(base), "dataset_catalog.json")
        guard let configs, !configs.isEmpty else { return beside }
        let root = Paths.standardized(Paths.join(configs, "config"))
        let file = Paths.standardized(base)
        guard file.hasPrefix(root + "/"), !FileManager.default.fileExists(atPath: beside) else { return beside }
        return Paths.join(root, "dataset_catalog.json")
    }
}
