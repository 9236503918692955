import Foundation
import Yams

/// A parsed YAML value that remembers its line, so errors can point at the file position.
indirect enum YAMLItem: Sendable {
    case scalar(JSONValue, line: Int?)
    case list([YAMLItem], line: Int?)
    /// Keys in file order (duplicates rejected when reading).
    case map([(key: String, value: YAMLItem, line: Int?)], line: Int?)

    var line: Int? {
        switch self {
        case .scalar(_, let l), .list(_, let l), .map(_, let l): return l
        }
    }

    /// The plain JSON value (mapping keys lose their order, as in the effective config).
    var json: JSONValue {
        switch self {
        case .scalar(let v, _): return v
        case .list(let items, _): return .array(items.map(\.json))
        case .map(let pairs, _):
            var o: [String: JSONValue] = [:]
            for p in pairs { o[p.key] = p.value.json }
            return .object(o)
        }
    }
}

/// Reads YAML the way VISSL does (OmegaConf's loader: PyYAML's YAML 1.1 SafeLoader, plus
/// floats written without a dot such as `1e-5`, and no timestamps). So `True`/`False`,
/// `yes`/`no`, `on`/`off` are booleans, `~`/`null`/empty are null, quoted scalars are strings.
enum ConfigYAML {
    /// Parses one YAML document. `source` names the text in errors (a file path or an override).
    static func parse(_ text: String, source: String) throws -> YAMLItem? {
        try YAMLBounds.check(text, source: source)
        let node: Node?
        do {
            node = try Yams.compose(yaml: text, .basic)
        } catch let error as YamlError {
            throw LinprobeError.config("\(source): not valid YAML (\(describe(error)))")
        } catch {
            throw LinprobeError.config("\(source): not valid YAML (\(oneLine(error)))")
        }
        guard let node else { return nil }
        var budget = YAMLBounds.nodeBudget
        return try convert(node, source: source, depth: 0, budget: &budget)
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let ctx = context.map { "\($0.text), " } ?? ""
            return "line \(mark.line), column \(mark.column): \(ctx)\(problem)"
        case .reader(let problem, let offset, _, _):
            return "\(problem)" + (offset.map { " at byte \($0)" } ?? "")
        default:
            return oneLine(error)
        }
    }

    /// The value tree of `node`. Aliases are expanded here (a YAML alias refers to an earlier node),
    /// so the expanded tree is bounded by a node budget and a depth limit: a 400-byte alias bomb
    /// would otherwise expand to billions of nodes.
    private static func convert(_ node: Node, source: String, depth: Int, budget: inout Int) throws -> YAMLItem {
        budget -= 1
        guard budget >= 0 else {
            throw LinprobeError.config(
                "\(source): expands to more than \(YAMLBounds.nodeBudget) values (YAML aliases expanding into each other?); a pipeline config is far smaller"
            )
        }
        guard depth <= YAMLBounds.maximumDepth else {
            throw LinprobeError.config(
                "\(source) line \(node.mark?.line ?? 0): nested deeper than \(YAMLBounds.maximumDepth) levels")
        }
        switch node {
        case .scalar(let s):
            let value: JSONValue = s.style == .plain || s.style == .any ? resolvePlain(s.string) : .string(s.string)
            return .scalar(value, line: s.mark?.line)
        case .sequence(let seq):
            var items: [YAMLItem] = []
            for child in seq { items.append(try convert(child, source: source, depth: depth + 1, budget: &budget)) }
            return .list(items, line: seq.mark?.line)
        case .mapping(let map):
            var pairs: [(key: String, value: YAMLItem, line: Int?)] = []
            var seen: [String: Int?] = [:]
            for (k, v) in map {
                guard case .scalar(let ks) = k else {
                    throw LinprobeError.config(
                        "\(source) line \(k.mark?.line ?? 0): a mapping key must be a plain name, not a list or mapping"
                    )
                }
                let key = ks.string
                if let first = seen[key] {
                    let at = first.map { " (first at line \($0))" } ?? ""
                    throw LinprobeError.config(
                        "\(source) line \(ks.mark?.line ?? 0): duplicate key '\(key)'\(at); keep one of them")
                }
                seen[key] = ks.mark?.line
                pairs.append((key, try convert(v, source: source, depth: depth + 1, budget: &budget), ks.mark?.line))
            }
            return .map(pairs, line: map.mark?.line)
        }
    }

    // MARK: Plain-scalar resolution (YAML 1.1 as PyYAML + OmegaConf)

    private static let nulls: Set<String> = ["", "~", "null", "Null", "NULL"]
    private static let trues: Set<String> = ["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"]
    private static let falses: Set<String> = ["false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"]

    /// The value of an unquoted scalar.
    static func resolvePlain(_ s: String) -> JSONValue {
        if nulls.contains(s) { return .null }
        if trues.contains(s) { return .bool(true) }
        if falses.contains(s) { return .bool(false) }
        if let i = parseInt(s) { return .int(i) }
        if let d = parseFloat(s) { return .double(d) }
        return .string(s)
    }

    /// YAML 1.1 integers: decimal, 0b binary, 0x hex, leading-0 octal, `_` separators.
    private static func parseInt(_ s: String) -> Int64? {
        var body = Substring(s)
        var negative = false
        if let f = body.first, f == "+" || f == "-" {
            negative = f == "-"
            body = body.dropFirst()
        }
        guard let first = body.first, first.isASCII, first.isNumber else { return nil }
        if body.contains(":") { return sexagesimalInt(body, negative: negative) }
        let digits: Substring
        let radix: Int
        if body.hasPrefix("0b") {
            digits = body.dropFirst(2); radix = 2
        } else if body.hasPrefix("0x") {
            digits = body.dropFirst(2); radix = 16
        } else if body.count > 1, body.hasPrefix("0") {
            digits = body.dropFirst(); radix = 8
        } else {
            digits = body; radix = 10
        }
        let cleaned = digits.filter { $0 != "_" }
        guard !cleaned.isEmpty, let magnitude = UInt64(cleaned, radix: radix) else { return nil }
        if radix == 10, digits.first == "_" { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        return Int64(exactly: magnitude)
    }

    /// YAML 1.1 base-60 integers, e.g. `1:30` = 90: `[1-9][0-9_]*(:[0-5]?[0-9])+`.
    private static func sexagesimalInt(_ body: Substring, negative: Bool) -> Int64? {
        let parts = body.split(separator: ":", omittingEmptySubsequences: false)
        guard let head = parts.first, let h = head.first, h != "0", h.isASCII, h.isNumber,
            head.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "_" }),
            var value = Int64(head.filter { $0 != "_" })
        else { return nil }
        for part in parts.dropFirst() {
            guard (1...2).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let digit = Int64(part), digit < 60 || (part.count == 1)
            else { return nil }
            if part.count == 2, part.first.map({ $0 > "5" }) == true { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 60)
            let (sum, o2) = m.addingReportingOverflow(digit)
            guard !o1, !o2 else { return nil }
            value = sum
        }
        return negative ? -value : value
    }

    /// YAML 1.1 base-60 floats, e.g. `1:30.5` = 90.5: `[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*`.
    private static func sexagesimalFloat(_ s: String) -> Double? {
        var body = Substring(s)
        var negative = false
        if let f = body.first, f == "+" || f == "-" { negative = f == "-"; body = body.dropFirst() }
        guard let dot = body.lastIndex(of: "."), body[..<dot].contains(":") else { return nil }
        let fraction = body[body.index(after: dot)...]
        guard fraction.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "_" }) else { return nil }
        let parts = body[..<dot].split(separator: ":", omittingEmptySubsequences: false)
        guard let head = parts.first, let h = head.first, h.isASCII, h.isNumber,
            head.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "_" }),
            var value = Double(head.filter { $0 != "_" })
        else { return nil }
        for (k, part) in parts.dropFirst().enumerated() {
            guard (1...2).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part.count == 1 || part.first.map({ $0 <= "5" }) == true,
                let digit = Double(part)
            else { return nil }
            let last = k == parts.count - 2
            value = value * 60 + (last ? digit + (Double("0." + fraction.filter { $0 != "_" }) ?? 0) : digit)
        }
        return negative ? -value : value
    }

    /// OmegaConf's float forms: `1.5`, `1.`, `1e-5`, `.5`, `1.5e3`, `.inf`, `.nan`.
    private static func parseFloat(_ s: String) -> Double? {
        switch s {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        case ".nan", ".NaN", ".NAN": return .nan
        default: break
        }
        if s.contains(":") { return sexagesimalFloat(s) }
        let c = Array(s.utf8)
        var i = 0
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        func isSign(_ b: UInt8) -> Bool { b == 0x2B || b == 0x2D }
        var signed = false
        if i < c.count, isSign(c[i]) { i += 1; signed = true }
        var intLen = 0
        if i < c.count, isDigit(c[i]) {
            i += 1; intLen = 1
            while i < c.count, isDigit(c[i]) || c[i] == 0x5F { i += 1; intLen += 1 }
        }
        var hasDot = false, fracLen = 0
        if i < c.count, c[i] == 0x2E {
            hasDot = true; i += 1
            while i < c.count, isDigit(c[i]) || c[i] == 0x5F { i += 1; fracLen += 1 }
        }
        var hasExp = false, expSigned = false
        if i < c.count, c[i] == 0x65 || c[i] == 0x45 {
            hasExp = true; i += 1
            if i < c.count, isSign(c[i]) { i += 1; expSigned = true }
            var expLen = 0
            while i < c.count, isDigit(c[i]) { i += 1; expLen += 1 }
            guard expLen > 0 else { return nil }
        }
        guard i == c.count else { return nil }
        if intLen > 0 {
            guard hasDot || hasExp else { return nil }
        } else {
            // `.5` form: no sign, fraction digits, and a signed exponent if any.
            guard !signed, hasDot, fracLen > 0, !hasExp || expSigned else { return nil }
        }
        return Double(s.filter { $0 != "_" })
    }

    // MARK: Writing

    /// YAML text of a JSON value under `rootKey:` (block style for mappings; lists of scalars and
    /// nested lists in flow style), which `parse` reads back to the same value.
    static func emit(_ value: JSONValue, rootKey: String) -> String {
        var out = "\(rootKey):"
        emitValue(value, indent: 2, into: &out)
        out += "\n"
        return out
    }

    private static func emitValue(_ value: JSONValue, indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        switch value {
        case .object(let o) where !o.isEmpty:
            for key in o.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
                out += "\n\(pad)\(scalarText(.string(key))):"
                emitValue(o[key] ?? .null, indent: indent + 2, into: &out)
            }
        case .array(let items) where !items.isEmpty && items.contains(where: { $0.isContainer }):
            for item in items {
                out += "\n\(pad)-"
                if case .object(let o) = item, !o.isEmpty {
                    // First key on the dash line, the rest aligned under it.
                    var first = true
                    for key in o.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
                        out += first ? " " : "\n\(pad)  "
                        first = false
                        out += "\(scalarText(.string(key))):"
                        emitValue(o[key] ?? .null, indent: indent + 4, into: &out)
                    }
                } else {
                    out += " " + flowText(item)
                }
            }
        default:
            out += " " + flowText(value)
        }
    }

    /// One-line flow form of any value.
    static func flowText(_ value: JSONValue) -> String {
        switch value {
        case .array(let items): return "[" + items.map(flowText).joined(separator: ", ") + "]"
        case .object(let o):
            let keys = o.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
            return "{" + keys.map { "\(scalarText(.string($0))): \(flowText(o[$0] ?? .null))" }.joined(separator: ", ")
                + "}"
        default: return scalarText(value)
        }
    }

    private static func scalarText(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            if d.isNaN { return ".nan" }
            if d.isInfinite { return d > 0 ? ".inf" : "-.inf" }
            if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) + ".0" }
            return "\(d)"
        case .string(let s):
            if isSafePlain(s), case .string = resolvePlain(s) { return s }
            return JSONValue.string(s).canonicalText  // JSON escapes are valid YAML double-quoted text
        case .array, .object: return flowText(value)
        }
    }

    private static func isSafePlain(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first else { return false }
        let startOK =
            first.properties.isAlphabetic || first == "_" || first == "/"
            || (first.isASCII && first.properties.numericType != nil)
        guard startOK, first.isASCII else { return false }
        return s.unicodeScalars.allSatisfy { c in
            c.isASCII
                && (c.properties.isAlphabetic || c.properties.numericType != nil || "_./-+".unicodeScalars.contains(c))
        }
    }
}

extension JSONValue {
    var isContainer: Bool {
        switch self {
        case .array, .object: return true
        default: return false
        }
    }
}
