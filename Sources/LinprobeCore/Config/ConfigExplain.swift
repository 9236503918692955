import Foundation

extension PipelineConfig {
    /// `linprobe config --explain`: the composed configuration as YAML under `config:`, every
    /// value on one line followed by `# <where it came from>` (a file and line, an override, or
    /// the default), after a header naming the documents composed, and followed by the VISSL keys
    /// that were set but are not used. The text loads back to the same configuration.
    public var explainText: String {
        var out = "# Composed as Hydra composes a VISSL run: defaults, the base, the overlays in order (mappings\n"
        out += "# merge, lists are replaced whole), then the overrides. After each value: where it came from.\n"
        let labels = fileLabels
        for source in sources {
            let role = source.role.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
            if let path = source.path, let label = labels[path] {
                out += "#   \(role)\(label)   \(path)\n"
            } else {
                out += "#   \(role)\(source.spelled)\n"
            }
        }
        out += "config:\n"
        explainLines(effective, path: "", indent: 2, labels: labels, into: &out)
        if !ignoredSettings.isEmpty {
            out += "# VISSL keys set here that Linprobe does not use:\n"
            for path in ignoredSettings.keys.sorted() {
                guard let setting = ignoredSettings[path] else { continue }
                var value = ConfigYAML.flowText(setting.value)
                if value.count > 80 { value = String(value.prefix(77)) + "..." }
                out += "#   \(path): \(value)  # \(label(setting.origin, labels))\n"
            }
        }
        return out
    }

    private func explainLines(
        _ value: JSONValue, path: String, indent: Int, labels: [String: String], into out: inout String
    ) {
        guard case .object(let o) = value else { return }
        let pad = String(repeating: " ", count: indent)
        for key in o.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let child = o[key] ?? .null
            let childPath = path.isEmpty ? key : "\(path).\(key)"
            let name = ConfigYAML.flowText(.string(key))
            if case .object(let inner) = child, !inner.isEmpty {
                out += "\(pad)\(name):\n"
                explainLines(child, path: childPath, indent: indent + 2, labels: labels, into: &out)
            } else {
                out += "\(pad)\(name): \(ConfigYAML.flowText(child))  # \(label(origin(of: childPath), labels))\n"
            }
        }
    }

    private func label(_ origin: ConfigOrigin, _ labels: [String: String]) -> String {
        switch origin {
        case .defaultValue: return "default"
        case .file(let path, let line?): return "\(labels[path] ?? path) line \(line)"
        case .file(let path, nil): return labels[path] ?? path
        case .override(let text): return "override \(text)"
        }
    }

    /// A short name for each file composed: the base by its file name, an overlay by its group
    /// folder and file name, longer where two would read the same.
    private var fileLabels: [String: String] {
        let files = sources.compactMap { s in s.path.map { (path: $0, role: s.role) } }
        let parts = files.map { $0.path.split(separator: "/").map(String.init) }
        var labels: [String: String] = [:]
        for (i, file) in files.enumerated() {
            var k = min(file.role == .overlay ? 2 : 1, parts[i].count)
            func suffix(_ p: [String], _ n: Int) -> [String] { Array(p.suffix(n)) }
            while k < parts[i].count,
                parts.indices.contains(where: {
                    $0 != i && parts[$0] != parts[i] && suffix(parts[$0], k) == suffix(parts[i], k)
                })
            {
                k += 1
            }
            labels[file.path] = suffix(parts[i], k).joined(separator: "/")
        }
        return labels
    }
}
