/// What a dotted key path means: a key Linprobe reads, a branch to descend into, a VISSL key
/// Linprobe does not use, the `TRUNK_PARAMS` alias, or nothing known.
enum KeyMeaning {
    case key(ConfigKey)
    case branch
    /// A VISSL key Linprobe ignores; `kind` is its default's kind (nil for legacy keys).
    case ignored(VISSLKeyTree.Kind?, default: JSONValue?)
    /// `MODEL.TRUNK.TRUNK_PARAMS`: its children are read as children of `target`.
    case alias(target: String)
    case unknown
}

/// The union of Linprobe's registry and VISSL's key tree, with look-ups and suggestions.
struct KeySpace: Sendable {
    static let shared = KeySpace(registry: LinprobeKeys.all, vissl: .shared)

    /// Newer VISSL spelling `MODEL.TRUNK.TRUNK_PARAMS.X` of `MODEL.TRUNK.X`.
    static let trunkParamsAlias = (path: "MODEL.TRUNK.TRUNK_PARAMS", target: "MODEL.TRUNK")

    let registry: [String: ConfigKey]
    let vissl: VISSLKeyTree
    /// Every branch (proper prefix) of a registry key.
    let registryBranches: Set<String>
    /// Child names of every branch, registry and VISSL together ("" = root).
    let children: [String: Set<String>]

    init(registry keys: [ConfigKey], vissl: VISSLKeyTree) {
        var registry: [String: ConfigKey] = [:]
        var branches: Set<String> = []
        var children: [String: Set<String>] = [:]
        for (parent, names) in vissl.children { children[parent, default: []].formUnion(names) }
        for key in keys {
            registry[key.path] = registry[key.path] ?? key
            let parts = key.path.split(separator: ".").map(String.init)
            var prefix = ""
            for part in parts {
                children[prefix, default: []].insert(part)
                prefix = prefix.isEmpty ? part : "\(prefix).\(part)"
                if prefix != key.path { branches.insert(prefix) }
            }
        }
        children[Self.trunkParamsAlias.target, default: []].insert("TRUNK_PARAMS")
        for path in vissl.legacy.keys {
            let parent = path.lastIndex(of: ".").map { String(path[..<$0]) } ?? ""
            let name = path.lastIndex(of: ".").map { String(path[path.index(after: $0)...]) } ?? path
            children[parent, default: []].insert(name)
        }
        self.registry = registry
        self.vissl = vissl
        self.registryBranches = branches
        self.children = children
    }

    func meaning(of path: String) -> KeyMeaning {
        if let key = registry[path] { return .key(key) }
        if registryBranches.contains(path) { return .branch }
        if path == Self.trunkParamsAlias.path { return .alias(target: Self.trunkParamsAlias.target) }
        if let entry = vissl.entry(path) {
            return entry.kind == .mapping ? .branch : .ignored(entry.kind, default: entry.defaultValue)
        }
        if vissl.legacy[path] != nil { return .ignored(nil, default: nil) }
        return .unknown
    }

    /// Every valid dotted path (for suggestions).
    var allPaths: [String] {
        var out: [String] = []
        func walk(_ prefix: String) {
            for name in (children[prefix] ?? []).sorted() {
                let path = prefix.isEmpty ? name : "\(prefix).\(name)"
                out.append(path)
                walk(path)
            }
        }
        walk("")
        return out
    }

    /// The closest valid key to an unknown `path` whose first `validDepth` components are valid.
    /// Prefers a sibling of the bad component (and, when the rest of the path then becomes valid,
    /// the whole corrected path); otherwise the closest path anywhere.
    func suggestion(for path: String) -> String {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // Find the first component that makes the path invalid.
        var depth = 0
        var prefix = ""
        while depth < parts.count {
            let next = prefix.isEmpty ? parts[depth] : "\(prefix).\(parts[depth])"
            if case .unknown = meaning(of: next) { break }
            prefix = next
            depth += 1
        }
        let bad = depth < parts.count ? parts[depth] : (parts.last ?? "")
        let rest = depth + 1 < parts.count ? parts[(depth + 1)...].joined(separator: ".") : ""

        let all = allPaths
        let siblings = Array(children[prefix] ?? [])
        func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : "\(a).\(b)" }
        /// The corrected path, keeping the rest of the user's path when it is then valid.
        func corrected(_ name: String) -> String {
            let fixed = join(prefix, name)
            if !rest.isEmpty, case .unknown = meaning(of: "\(fixed).\(rest)") { return fixed }
            return rest.isEmpty ? fixed : "\(fixed).\(rest)"
        }

        // 1. A sibling spelled almost the same, or containing the other once case and underscores
        //    are ignored (BATCH_SIZE → BATCHSIZE_PER_REPLICA, SEED → SEED_VALUE).
        let ranked = siblings.map { (name: $0, score: nameScore($0, bad)) }
            .sorted { ($0.score, $0.name) < ($1.score, $1.name) }
        if let best = ranked.first, best.score <= 1 { return corrected(best.name) }

        // 2. The same name elsewhere in the tree (case-insensitive): RESNETS under MODEL.TRUNK.
        let wanted = ([bad] + (rest.isEmpty ? [] : [rest])).joined(separator: ".").lowercased()
        let elsewhere = all.filter { $0.lowercased().hasSuffix("." + wanted) || $0.lowercased() == wanted }
        if let best = elsewhere.min(by: { (usedRank($0), $0.count, $0) < (usedRank($1), $1.count, $1) }) { return best }

        // 3. Below a plain value (e.g. MACHINE.DEVICE.x): the value's own key.
        if siblings.isEmpty, !prefix.isEmpty { return prefix }

        // 4. A sibling within a few edits.
        if let best = ranked.first, best.score <= max(2, bad.count / 3) { return corrected(best.name) }

        // 5. The closest key below the valid prefix, else anywhere: by the last component, keys
        //    Linprobe reads first, then by the whole path.
        let target = path.lowercased()
        let lastBad = parts.last ?? bad
        func rank(_ candidate: String) -> (Int, Int, Int) {
            let last = candidate.split(separator: ".").last.map(String.init) ?? candidate
            return (nameScore(last, lastBad), usedRank(candidate), editDistance(candidate.lowercased(), target))
        }
        let pool = prefix.isEmpty ? all : all.filter { $0.hasPrefix(prefix + ".") }
        let best = pool.min { a, b in
            let (ra, rb) = (rank(a), rank(b))
            return ra != rb ? ra < rb : a < b
        }
        return best ?? prefix
    }

    /// 0 for a key Linprobe reads or a branch holding one, 1 for other VISSL keys.
    private func usedRank(_ path: String) -> Int {
        registry[path] != nil || registryBranches.contains(path) ? 0 : 1
    }
}

/// How far apart two key names are: their edit distance (ignoring case), or at most 1 when one
/// contains the other once case and underscores are ignored (both at least 3 letters).
func nameScore(_ candidate: String, _ wanted: String) -> Int {
    let d = editDistance(candidate.lowercased(), wanted.lowercased())
    let a = candidate.lowercased().filter { $0 != "_" }, b = wanted.lowercased().filter { $0 != "_" }
    let contains = a.count >= 3 && b.count >= 3 && (a.contains(b) || b.contains(a))
    return contains ? min(d, 1) : d
}

/// Levenshtein distance (insertions, deletions, substitutions) over characters.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous = Array(0...y.count)
    var current = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            let cost = x[i - 1] == y[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}
