import Foundation
import LinprobeCore

/// Compares a JSON Schema with JSON instances key by key, in both directions:
/// - `undeclared`: keys an instance holds that the schema does not declare. An object is checked
///   against the `properties` of its schema (and of its `oneOf`/`anyOf`/`allOf` branches); a key not
///   listed is allowed only where `additionalProperties` is a schema (a map, whose values are
///   checked in turn) or `true` (a free-form copy, not looked into). An object whose schema says
///   neither is an error too: a schema must state that a part is free-form.
/// - `declared` and `reached`: the property paths a schema declares (`a.b[].c`, `m{}.x` for map
///   values), without those marked `"deprecated": true` (kept to read older versions), and the
///   paths instances reach; a declared path that no instance reaches has no type behind it.
struct SchemaCoverage {
    /// The whole schema document (`$ref`s are resolved against it).
    let document: JSONValue

    init(schemaPath: String) throws {
        document = try JSONValue.parse(String(contentsOfFile: schemaPath, encoding: .utf8))
    }

    init(document: JSONValue) { self.document = document }

    /// The schema at a `#/…` pointer.
    func at(_ pointer: String) -> JSONValue {
        var node = document
        for part in pointer.dropFirst(2).split(separator: "/") { node = node[String(part)] ?? .null }
        return node
    }

    private func resolve(_ schema: JSONValue) -> JSONValue {
        var s = schema
        var hops = 0
        while let ref = s["$ref"]?.stringValue, hops < 32 {
            s = at(ref)
            hops += 1
        }
        return s
    }

    /// The schema and its branches (`oneOf`, `anyOf`, `allOf`), resolved.
    private func alternatives(_ schema: JSONValue) -> [JSONValue] {
        let s = resolve(schema)
        var all = [s]
        for keyword in ["oneOf", "anyOf", "allOf"] {
            for branch in s[keyword]?.arrayValue ?? [] { all.append(contentsOf: alternatives(branch)) }
        }
        return all
    }

    private static func isDeprecated(_ schema: JSONValue) -> Bool { schema["deprecated"] == .bool(true) }

    // MARK: - Instance → schema

    /// Paths of keys in `instance` that the schema does not declare.
    func undeclared(_ instance: JSONValue, schema: JSONValue, path: String = "$") -> [String] {
        var problems: [String] = []
        var reachedPaths = Set<String>()
        walk(instance, schema: schema, path: path, problems: &problems, reached: &reachedPaths)
        return problems
    }

    /// Property paths (relative, `a.b[].c`) that `instance` reaches in the schema.
    func reached(_ instance: JSONValue, schema: JSONValue) -> Set<String> {
        var problems: [String] = []
        var reachedPaths = Set<String>()
        walk(instance, schema: schema, path: "", problems: &problems, reached: &reachedPaths)
        return reachedPaths
    }

    private func walk(
        _ v: JSONValue, schema: JSONValue, path: String, problems: inout [String], reached: inout Set<String>
    ) {
        let options = alternatives(schema)
        switch v {
        case .object(let object):
            let objectSchemas = options.filter { $0["properties"] != nil || $0["additionalProperties"] != nil }
            if objectSchemas.isEmpty {
                if !object.isEmpty {
                    problems.append(
                        "\(path): an object whose schema declares no properties (say additionalProperties: true)")
                }
                return
            }
            for (key, value) in object.sorted(by: { $0.key < $1.key }) {
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                let declaring = objectSchemas.compactMap { $0["properties"]?[key] }
                if !declaring.isEmpty {
                    reached.insert(childPath)
                    for sub in declaring {
                        walk(value, schema: sub, path: childPath, problems: &problems, reached: &reached)
                    }
                    continue
                }
                let maps = objectSchemas.compactMap { s -> JSONValue? in
                    guard let extra = s["additionalProperties"], extra.objectValue != nil else { return nil }
                    return extra
                }
                if !maps.isEmpty {
                    for sub in maps {
                        walk(value, schema: sub, path: "\(path){}", problems: &problems, reached: &reached)
                    }
                } else if !objectSchemas.contains(where: { $0["additionalProperties"] == .bool(true) }) {
                    problems.append("\(childPath): not declared in the schema")
                }
            }
        case .array(let items):
            for option in options {
                if let itemSchema = option["items"], itemSchema.objectValue != nil {
                    for item in items {
                        walk(item, schema: itemSchema, path: "\(path)[]", problems: &problems, reached: &reached)
                    }
                }
                for (i, prefix) in (option["prefixItems"]?.arrayValue ?? []).enumerated() where i < items.count {
                    walk(items[i], schema: prefix, path: "\(path)[]", problems: &problems, reached: &reached)
                }
            }
        default:
            return
        }
    }

    // MARK: - Schema → instance

    /// Every property path the schema declares below `schema` (deprecated ones left out).
    func declared(_ schema: JSONValue, path: String = "", depth: Int = 0) -> Set<String> {
        guard depth < 24 else { return [] }
        var paths = Set<String>()
        for option in alternatives(schema) {
            for (key, sub) in option["properties"]?.objectValue ?? [:] where !Self.isDeprecated(sub) {
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                paths.insert(childPath)
                paths.formUnion(declared(sub, path: childPath, depth: depth + 1))
            }
            if let extra = option["additionalProperties"], extra.objectValue != nil {
                paths.formUnion(declared(extra, path: "\(path){}", depth: depth + 1))
            }
            if let items = option["items"], items.objectValue != nil {
                paths.formUnion(declared(items, path: "\(path)[]", depth: depth + 1))
            }
            for prefix in option["prefixItems"]?.arrayValue ?? [] {
                paths.formUnion(declared(prefix, path: "\(path)[]", depth: depth + 1))
            }
        }
        return paths
    }
}
