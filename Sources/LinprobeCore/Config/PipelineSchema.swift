/// The JSON Schema (draft 2020-12) of pipeline files, generated from the registry. The committed
/// `schemas/pipeline.schema.json` is this document (`linprobe config --schema`); a test checks
/// that the committed file and the registry agree.
public enum PipelineSchema {
    public static func document() -> JSONValue {
        let config = branch(
            prefix: "", keys: LinprobeKeys.all,
            description:
                "The configuration: VISSL's keys (Linprobe reads those listed here; other keys of VISSL's defaults.yaml are accepted and reported as ignored) and Linprobe's own keys under LINPROBE."
        )
        return [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "pipeline.schema.json",
            "title": "Linprobe pipeline file",
            "description": .string(
                "A pipeline file: YAML with VISSL's key names, either under a root config: key (VISSL's own benchmark files load unchanged) or as bare keys. "
                    + "Every key Linprobe reads is documented here with its type and default; VISSL keys Linprobe does not use are accepted and listed as ignored; any other key is an error. "
                    + "VISSL key tree: facebookresearch/vissl vissl/config/defaults.yaml at \(VISSLKeyTree.sourceCommit)."
            ),
            "type": "object",
            "anyOf": [
                ["required": ["config"], "properties": ["config": ["$ref": "#/$defs/config"]]],
                ["not": ["required": ["config"]], "$ref": "#/$defs/config"],
            ],
            "$defs": ["config": config],
        ]
    }

    /// Schema of the branch `prefix` holding `keys` (paths relative to the whole config).
    private static func branch(prefix: String, keys: [ConfigKey], description: String?) -> JSONValue {
        var leaves: [String: JSONValue] = [:]
        var groups: [String: [ConfigKey]] = [:]
        for key in keys {
            let rest = prefix.isEmpty ? key.path : String(key.path.dropFirst(prefix.count + 1))
            if let dot = rest.firstIndex(of: ".") {
                groups[String(rest[..<dot]), default: []].append(key)
            } else {
                leaves[rest] = leaf(key)
            }
        }
        var properties = leaves
        for (name, members) in groups {
            let path = prefix.isEmpty ? name : "\(prefix).\(name)"
            properties[name] = branch(prefix: path, keys: members, description: nil)
        }
        if prefix == KeySpace.trunkParamsAlias.target {
            properties["TRUNK_PARAMS"] = [
                "type": ["object", "null"],
                "description":
                    "Newer VISSL spelling: TRUNK_PARAMS.X is read as MODEL.TRUNK.X (e.g. TRUNK_PARAMS.RESNETS.DEPTH); setting both spellings to different values is an error.",
                "x-linprobe-alias-of": .string(KeySpace.trunkParamsAlias.target),
            ]
        }
        var out: [String: JSONValue] = ["type": "object", "properties": .object(properties)]
        if let description { out["description"] = .string(description) }
        return .object(out)
    }

    private static func leaf(_ key: ConfigKey) -> JSONValue {
        var out = typeSchema(key.type, allowed: key.allowed, minimum: key.minimum, maximum: key.maximum)
        out["default"] = key.defaultValue
        out["description"] = .string(key.doc)
        out["x-linprobe-origin"] = key.origin == .vissl ? "vissl" : "linprobe"
        return .object(out)
    }

    private static func typeSchema(
        _ type: ConfigValueType, allowed: [JSONValue]?, minimum: Double?, maximum: Double?
    ) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        func limits(_ o: inout [String: JSONValue]) {
            if let allowed { o["enum"] = .array(allowed) }
            if let minimum { o["minimum"] = number(minimum, integer: type == .integer) }
            if let maximum { o["maximum"] = number(maximum, integer: type == .integer) }
        }
        switch type {
        case .bool: out["type"] = "boolean"
        case .integer: out["type"] = "integer"; limits(&out)
        case .number: out["type"] = "number"; limits(&out)
        case .string: out["type"] = "string"; limits(&out)
        case .mapping: out["type"] = "object"
        case .any: break
        case .list(let element):
            out["type"] = "array"
            out["items"] = .object(typeSchema(element, allowed: allowed, minimum: minimum, maximum: maximum))
        case .oneOrList(let element):
            let one = typeSchema(element, allowed: allowed, minimum: minimum, maximum: maximum)
            out["oneOf"] = [.object(one), ["type": "array", "items": .object(one)]]
        }
        return out
    }

    private static func number(_ d: Double, integer: Bool) -> JSONValue {
        if let i = Int64(exactly: d), integer || d == d.rounded() { return .int(i) }
        return .double(d)
    }
}
