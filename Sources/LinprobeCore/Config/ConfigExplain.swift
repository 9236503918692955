import Foundation

extension PipelineConfig {
    /// `linprobe config --explain`: the composed configuration as YAML under `config:`, every
    /// value on one line followed by `# <where it came from>` (a file and line, an override, or
    /// the default), after a header naming the documents composed, and followed by the VISSL keys
    /// that were set but are not used. The text loads back to the same configuration.
    public var explainText: String {
        var out = "# Composed as Hydra composes a VISSL run: defaults, the base, the overlays in order (mappings\n"
        out += "# merge, lists are replaced whole), then the overrides. After each value: where it came from.\n"
        if let folder = explainFolder { out += "# Files in \(folder):\n" }
        for source in sources {
            let role = source.role.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
            let file = source.path.map(shortPath) ?? source.spelled
            out += "#   \(role)\(file)" + (file == source.spelled ? "" : "   \(source.spelled)") + "\n"
        }
        out += "config:\n"
        explainLines(effective, path: "", indent: 2, into: &out)
        if !ignoredSettings.isEmpty {
            out += "# VISSL keys set here that Linprobe does not use:\n"
            for path in ignoredSettings.keys.sorted() {
                guard let setting = ignoredSettings[path] else { continue }
                var value = ConfigYAML.flowText(setting.value)
                if value.count > 80 { value = String(value.prefix(77)) + "..." }
                out += "#   \(path): \(value)  # \(label(setting.origin))\n"
            }
        }
        return out
    }

    private func explainLines(_ value: JSONValue, path: String, indent: Int, into out: inout String) {
        guard case .object(let o) = value else { return }
        let pad = String(repeating: " ", count: indent)
        for key in o.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let child = o[key] ?? .null
            let childPath = path.isEmpty ? key : "\(path).\(key)"
            let name = ConfigYAML.flowText(.string(key))
            if case .object(let inner) = child, !inner.isEmpty {
                out += "\(pad)\(name):\n"
                explainLines(child, path: childPath, indent: indent + 2, into: &out)
            } else {
                out += "\(pad)\(name): \(ConfigYAML.flowText(child))  # \(label(origin(of: childPath)))\n"
            }
        }
    }

    private func label(_ origin: ConfigOrigin) -> String {
        switch origin {
        case .defaultValue: return "default"
        case .file(let path, let line?): return "\(shortPath(path)) line \(line)"
        case .file(let path, nil): return shortPath(path)
        case .override(let text): return "override \(text)"
        }
    }

    /// The folder holding every file composed (values name files relative to it).
    private var explainFolder: String? {
        let folders = sources.compactMap(\.path).map { Paths.parent(Paths.standardized($0)) }
        guard var common = folders.first else { return nil }
        for folder in folders.dropFirst() {
            while common != "/" && !(folder == common || folder.hasPrefix(common + "/")) {
                common = Paths.parent(common)
            }
        }
        return common
    }

    /// A composed file's path relative to `explainFolder`.
    private func shortPath(_ path: String) -> String {
        guard let folder = explainFolder else { return path }
        let file = Paths.standardized(path)
        let prefix = folder == "/" ? "/" : folder + "/"
        return file.hasPrefix(prefix) ? String(file.dropFirst(prefix.count)) : path
    }
}
