import Foundation
import LinprobeCore

/// A small JSON Schema (draft 2020-12) validator for the subset the project's schemas use:
/// `type`, `required`, `properties`, `additionalProperties` (bool or schema), `items`,
/// `prefixItems`, `enum`, `const`, `minimum`, `maximum`, `minItems`, `maxItems`, `$ref` to
/// `#/$defs/...`, `oneOf`, `anyOf`, `allOf`, `pattern` (anchored regex). Unknown keywords are
/// ignored except where they would make a test pass silently — those are listed as unsupported.
public struct SchemaValidator {
    public let schema: JSONValue

    public init(schemaPath: String) throws {
        schema = try JSONValue.parse(String(contentsOfFile: schemaPath, encoding: .utf8))
    }

    public init(schema: JSONValue) { self.schema = schema }

    /// Errors, each as `<json path>: <problem>`; empty when the instance is valid.
    public func validate(_ instance: JSONValue) -> [String] {
        var errors: [String] = []
        check(instance, against: schema, at: "$", errors: &errors)
        return errors
    }

    private func resolve(_ s: JSONValue) -> JSONValue {
        guard let ref = s["$ref"]?.stringValue else { return s }
        precondition(ref.hasPrefix("#/"), "only local references are supported: \(ref)")
        var node = schema
        for part in ref.dropFirst(2).split(separator: "/") { node = node[String(part)] ?? .null }
        return resolve(node)
    }

    private func typeName(_ v: JSONValue) -> [String] {
        switch v {
        case .null: return ["null"]
        case .bool: return ["boolean"]
        case .int: return ["integer", "number"]
        case .double(let d): return d == d.rounded() ? ["number", "integer"] : ["number"]
        case .string: return ["string"]
        case .array: return ["array"]
        case .object: return ["object"]
        }
    }

    private func check(_ v: JSONValue, against raw: JSONValue, at path: String, errors: inout [String]) {
        if case .bool(let b) = raw { if !b { errors.append("\(path): not allowed") }; return }
        let s = resolve(raw)
        for unsupported in ["patternProperties", "dependentRequired", "if", "not", "contains", "uniqueItems"]
        where s[unsupported] != nil {
            errors.append("\(path): schema keyword '\(unsupported)' is not supported by the test validator")
        }
        if let t = s["type"] {
            let allowed = t.arrayValue?.compactMap(\.stringValue) ?? [t.stringValue ?? ""]
            if Set(allowed).isDisjoint(with: typeName(v)) {
                errors.append("\(path): expected \(allowed.joined(separator: "|")), got \(typeName(v)[0])")
                return
            }
        }
        if let c = s["const"], c != v, !(c.doubleValue != nil && c.doubleValue == v.doubleValue) {
            errors.append("\(path): expected \(c.canonicalText)")
        }
        if let e = s["enum"]?.arrayValue,
            !e.contains(where: { $0 == v || ($0.doubleValue != nil && $0.doubleValue == v.doubleValue) })
        {
            errors.append("\(path): \(v.canonicalText) not in \(JSONValue.array(e).canonicalText)")
        }
        if let d = v.doubleValue {
            if let m = s["minimum"]?.doubleValue, d < m { errors.append("\(path): \(d) < minimum \(m)") }
            if let m = s["maximum"]?.doubleValue, d > m { errors.append("\(path): \(d) > maximum \(m)") }
        }
        if let p = s["pattern"]?.stringValue, let str = v.stringValue,
            str.range(of: p, options: .regularExpression) == nil
        {
            errors.append("\(path): '\(str)' does not match \(p)")
        }
        if case .object(let o) = v {
            for key in s["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where o[key] == nil {
                errors.append("\(path): missing required '\(key)'")
            }
            let props = s["properties"]?.objectValue ?? [:]
            for (key, value) in o {
                if let ps = props[key] {
                    check(value, against: ps, at: "\(path).\(key)", errors: &errors)
                } else if let extra = s["additionalProperties"] {
                    check(value, against: extra, at: "\(path).\(key)", errors: &errors)
                }
            }
        }
        if case .array(let a) = v {
            if let n = s["minItems"]?.intValue, a.count < n { errors.append("\(path): fewer than \(n) items") }
            if let n = s["maxItems"]?.intValue, a.count > n { errors.append("\(path): more than \(n) items") }
            let prefix = s["prefixItems"]?.arrayValue ?? []
            for (i, item) in a.enumerated() {
                if i < prefix.count {
                    check(item, against: prefix[i], at: "\(path)[\(i)]", errors: &errors)
                } else if let itemSchema = s["items"] {
                    check(item, against: itemSchema, at: "\(path)[\(i)]", errors: &errors)
                }
            }
        }
        if let all = s["allOf"]?.arrayValue {
            for sub in all { check(v, against: sub, at: path, errors: &errors) }
        }
        if let one = s["oneOf"]?.arrayValue {
            let passing = one.filter { sub in
                var e: [String] = []
                check(v, against: sub, at: path, errors: &e)
                return e.isEmpty
            }.count
            if passing != 1 { errors.append("\(path): matches \(passing) of the oneOf branches (expected exactly 1)") }
        }
        if let any = s["anyOf"]?.arrayValue {
            let ok = any.contains { sub in
                var e: [String] = []
                check(v, against: sub, at: path, errors: &e)
                return e.isEmpty
            }
            if !ok { errors.append("\(path): matches none of the anyOf branches") }
        }
    }
}

/// Path of a schema under `schemas/`.
public func schemaPath(_ name: String) -> String {
    repositoryRoot.appendingPathComponent("schemas").appendingPathComponent(name).path
}
