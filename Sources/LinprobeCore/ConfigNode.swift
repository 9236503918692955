import Foundation

/// A read-only view of one key of the effective configuration, with typed accessors whose
/// errors name the key's full path (exit 64 through `LinprobeError.config`).
///
/// Stage modules read their settings through this type, e.g.
/// `try config["SVM"]["costs"]["costs_list"].doubles()`.
public struct ConfigNode: Sendable {
    /// Dotted path from the root, e.g. `SVM.costs.costs_list` (empty for the root).
    public let path: String
    /// The value, or nil when the key is absent.
    public let value: JSONValue?

    public init(path: String, value: JSONValue?) {
        self.path = path
        self.value = value
    }

    /// A child key (absent children give a node whose `value` is nil).
    public subscript(key: String) -> ConfigNode {
        let childPath = path.isEmpty ? key : "\(path).\(key)"
        guard case .object(let o)? = value else { return ConfigNode(path: childPath, value: nil) }
        return ConfigNode(path: childPath, value: o[key])
    }

    /// A descendant by dotted path (`"TRUNK.RESNETS.DEPTH"`).
    public func at(_ dotted: String) -> ConfigNode {
        dotted.split(separator: ".").reduce(self) { $0[String($1)] }
    }

    public var exists: Bool { value != nil && value != .null }

    private func typeError(_ expected: String) -> LinprobeError {
        let shown = value.map { $0.canonicalText } ?? "nothing"
        return .config("\(path): expected \(expected), got \(shown)")
    }

    private func required() throws -> JSONValue {
        guard let value, value != .null else { throw LinprobeError.config("\(path): required key is missing") }
        return value
    }

    public func int() throws -> Int {
        let v = try required()
        if let i = v.intValue, let r = Int(exactly: i) { return r }
        throw typeError("an integer")
    }

    public func double() throws -> Double {
        let v = try required()
        if let d = v.doubleValue { return d }
        throw typeError("a number")
    }

    public func bool() throws -> Bool {
        let v = try required()
        if case .bool(let b) = v { return b }
        throw typeError("true or false")
    }

    public func string() throws -> String {
        let v = try required()
        switch v {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        default: throw typeError("a string")
        }
    }

    /// The elements of a list, each as a node with path `KEY[i]`.
    public func list() throws -> [ConfigNode] {
        let v = try required()
        guard case .array(let a) = v else { throw typeError("a list") }
        return a.enumerated().map { ConfigNode(path: "\(path)[\($0.offset)]", value: $0.element) }
    }

    /// The keys of a mapping, sorted.
    public func keys() throws -> [String] {
        let v = try required()
        guard case .object(let o) = v else { throw typeError("a mapping") }
        return o.keys.sorted()
    }

    public func ints() throws -> [Int] { try list().map { try $0.int() } }
    public func doubles() throws -> [Double] { try list().map { try $0.double() } }
    public func strings() throws -> [String] { try list().map { try $0.string() } }

    // Optional forms: nil when the key is absent or null, an error when present with a wrong type.
    public func intIfPresent() throws -> Int? { exists ? try int() : nil }
    public func doubleIfPresent() throws -> Double? { exists ? try double() : nil }
    public func boolIfPresent() throws -> Bool? { exists ? try bool() : nil }
    public func stringIfPresent() throws -> String? { exists ? try string() : nil }

    /// An integer constrained to a range, with the allowed values in the error.
    public func int(in range: ClosedRange<Int>) throws -> Int {
        let i = try int()
        guard range.contains(i) else {
            throw LinprobeError.config("\(path): \(i) is outside \(range.lowerBound)…\(range.upperBound)")
        }
        return i
    }

    /// A string that must be one of `allowed`.
    public func string(oneOf allowed: [String]) throws -> String {
        let s = try string()
        guard allowed.contains(s) else {
            throw LinprobeError.config("\(path): '\(s)' is not one of \(allowed.joined(separator: ", "))")
        }
        return s
    }
}
