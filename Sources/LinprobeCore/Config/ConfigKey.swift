// Pipeline configuration lives in this folder:
//   ConfigKey.swift            — the type of one registered key (path, type, default, limits, doc)
//   LinprobeKeys.swift         — the registry: every key Linprobe reads (VISSL's and LINPROBE.*)
//   VISSLKeyTree.swift         — VISSL's own key tree (defaults.yaml), generated into
//                                VISSLKeyTree+Generated.swift by scripts/gen_vissl_keys.py
//   ConfigYAML.swift           — YAML reading with VISSL's (OmegaConf's) scalar rules, and writing
//   ConfigOverride.swift       — `config.A.B=value` override parsing
//   HydraValueParser.swift     — override values read by Hydra's grammar
//   KeySpace.swift             — what a dotted path means (Linprobe key, VISSL key to ignore, alias, unknown)
//   PipelineComposition.swift  — what a command line names: the base (a pipeline file or VISSL's
//                                config=PATH), +GROUP=NAME overlays, overrides; files found case-sensitively
//   ComposedTree.swift         — one document read, and OmegaConf's merge with the origin of every value
//   PipelineConfig.swift       — the loader: defaults ⊕ base ⊕ overlays ⊕ overrides → effective config
//   KnownInconsistencies.swift — VISSL's own config bugs, reported before any work
//   ConfigExplain.swift        — `linprobe config --explain`: each value with where it came from
//   PipelineSchema.swift       — the JSON Schema of pipeline files, generated from the registry
import Foundation

/// The type of a configuration value, as checked when a pipeline or override sets it.
public indirect enum ConfigValueType: Sendable, Equatable, CustomStringConvertible {
    case bool
    case integer
    /// Integer or floating point; stored as a floating-point value in the effective config so that
    /// `0` and `0.0` give the same fingerprint.
    case number
    case string
    /// A mapping with free-form content.
    case mapping
    /// Anything, including null.
    case any
    case list(ConfigValueType)
    /// One value or a list of them (VISSL's `NEAREST_NEIGHBOR.TOPK: 200` or `[10, 20]`); the
    /// effective config holds the list form, so `200` and `[200]` give the same fingerprint.
    case oneOrList(ConfigValueType)

    public var description: String {
        switch self {
        case .oneOrList(let element): return "\(element) or a list of them"
        case .bool: return "true or false"
        case .integer: return "an integer"
        case .number: return "a number"
        case .string: return "a string"
        case .mapping: return "a mapping"
        case .any: return "any value"
        case .list(let element):
            switch element {
            case .any: return "a list"
            case .bool: return "a list of true/false values"
            case .integer: return "a list of integers"
            case .number: return "a list of numbers"
            case .string: return "a list of strings"
            case .mapping: return "a list of mappings"
            case .list, .oneOrList: return "a list of lists"
            }
        }
    }

    /// The value in this type's canonical form, or nil when it does not have this type.
    public func normalize(_ value: JSONValue) -> JSONValue? {
        switch (self, value) {
        case (.any, _): return value
        case (.bool, .bool): return value
        case (.integer, .int): return value
        case (.number, .int(let i)): return .double(Double(i))
        case (.number, .double): return value
        case (.string, .string): return value
        case (.mapping, .object): return value
        case (.oneOrList(let element), .array):
            return ConfigValueType.list(element).normalize(value)
        case (.oneOrList(let element), _):
            return element.normalize(value).map { .array([$0]) }
        case (.list(let element), .array(let items)):
            var out: [JSONValue] = []
            out.reserveCapacity(items.count)
            for item in items {
                guard let n = element.normalize(item) else { return nil }
                out.append(n)
            }
            return .array(out)
        default: return nil
        }
    }
}

/// One key of the configuration that Linprobe reads: its dotted path, type, default value,
/// optional limits and a one-line description (also used for the JSON Schema).
public struct ConfigKey: Sendable {
    /// Where the key comes from: a VISSL key (default taken from VISSL's defaults.yaml unless
    /// Linprobe overrides it) or one of Linprobe's own `LINPROBE.*` keys.
    public enum Origin: Sendable, Equatable {
        case vissl
        case linprobe
    }

    public let path: String
    public let type: ConfigValueType
    public let origin: Origin
    /// Linprobe's default when it differs from VISSL's (VISSL keys), or the default (own keys).
    public let explicitDefault: JSONValue?
    /// Allowed values (for a scalar, or for each element of a list).
    public let allowed: [JSONValue]?
    /// Inclusive numeric bounds (for a number, or for each element of a list).
    public let minimum: Double?
    public let maximum: Double?
    public let doc: String

    init(
        path: String, type: ConfigValueType, origin: Origin, explicitDefault: JSONValue?,
        allowed: [JSONValue]?, minimum: Double?, maximum: Double?, doc: String
    ) {
        self.path = path
        self.type = type
        self.origin = origin
        self.explicitDefault = explicitDefault
        self.allowed = allowed
        self.minimum = minimum
        self.maximum = maximum
        self.doc = doc
    }

    /// A VISSL key with VISSL's default (or `default`, where Linprobe's differs).
    public static func vissl(
        _ path: String, _ type: ConfigValueType, default value: JSONValue? = nil,
        oneOf allowed: [JSONValue]? = nil, min: Double? = nil, max: Double? = nil,
        _ doc: String
    ) -> ConfigKey {
        ConfigKey(
            path: path, type: type, origin: .vissl, explicitDefault: value, allowed: allowed,
            minimum: min, maximum: max, doc: doc)
    }

    /// One of Linprobe's own keys (its path starts with `LINPROBE.`, except `SVM.solver`).
    public static func linprobe(
        _ path: String, _ type: ConfigValueType, default value: JSONValue,
        oneOf allowed: [JSONValue]? = nil, min: Double? = nil, max: Double? = nil,
        _ doc: String
    ) -> ConfigKey {
        ConfigKey(
            path: path, type: type, origin: .linprobe, explicitDefault: value, allowed: allowed,
            minimum: min, maximum: max, doc: doc)
    }

    /// The default of the effective configuration, in this key's canonical form.
    public var defaultValue: JSONValue {
        let raw = explicitDefault ?? VISSLKeyTree.shared.entry(path)?.defaultValue ?? .null
        return type.normalize(raw) ?? raw
    }

    /// Checks a value against the type and limits; returns it in canonical form or a reason.
    func check(_ value: JSONValue) -> Result<JSONValue, CheckFailure> {
        guard let normalized = type.normalize(value) else { return .failure(.type) }
        var scalars: [JSONValue] = [normalized]
        switch (type, normalized) {
        case (.list, .array(let items)), (.oneOrList, .array(let items)): scalars = items
        default: break
        }
        for scalar in scalars {
            if let allowed, !allowed.contains(scalar) { return .failure(.notAllowed(scalar)) }
            if let d = scalar.doubleValue {
                if let minimum, d < minimum { return .failure(.outOfRange(scalar)) }
                if let maximum, d > maximum { return .failure(.outOfRange(scalar)) }
            }
        }
        return .success(normalized)
    }

    enum CheckFailure: Error {
        case type
        case notAllowed(JSONValue)
        case outOfRange(JSONValue)
    }

    /// Human text for the allowed values or bounds, used in error messages.
    var limitsText: String {
        if let allowed { return "one of " + allowed.map(\.displayText).joined(separator: ", ") }
        switch (minimum, maximum) {
        case (let lo?, let hi?): return "between \(Self.bound(lo)) and \(Self.bound(hi))"
        case (let lo?, nil): return "at least \(Self.bound(lo))"
        case (nil, let hi?): return "at most \(Self.bound(hi))"
        default: return ""
        }
    }

    private static func bound(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }
}

extension JSONValue {
    /// The value as a user reads it in a message: strings bare, everything else as compact JSON.
    var displayText: String {
        if case .string(let s) = self { return s }
        return canonicalText
    }
}
