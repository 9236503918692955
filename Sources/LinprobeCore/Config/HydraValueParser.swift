/// Reads an override value the way Hydra's override grammar does (checked against hydra-core by
/// `scripts/gen_config_reference.py`): unquoted scalars are null, booleans (any case), integers
/// (`0`, `12`, `1_000`), floats (`1.5`, `1.`, `.5`, `1e-3`, `inf`, `nan`) or strings; quoted
/// strings keep everything but the escaped quote; `[...]` lists and `{k: v}` mappings nest.
/// Accepts a little more than Hydra (any character in an unquoted string but `,[]{}` and quotes).
struct HydraValueParser {
    struct Problem: Error { let message: String }

    private let chars: [Character]
    private var i = 0

    init(_ text: String) { chars = Array(text) }

    /// The whole value (an empty value is the empty string).
    mutating func parseTop() throws -> JSONValue {
        skipSpaces()
        if i == chars.count { return .string("") }
        let value: JSONValue
        switch chars[i] {
        case "[", "{", "\"", "'":
            value = try parseElement()
            skipSpaces()
            if i < chars.count { throw Problem(message: "unexpected text '\(String(chars[i...]))' after the value") }
        default:
            let text = String(chars[i...]).trimmingSpaces
            if containsTopLevelComma(text) {
                throw Problem(
                    message:
                        "comma-separated values are a Hydra sweep, which Linprobe does not run; give one value, or a list as [a, b]"
                )
            }
            value = Self.scalar(text)
            i = chars.count
        }
        return value
    }

    private func containsTopLevelComma(_ text: String) -> Bool { text.contains(",") }

    private mutating func skipSpaces() {
        while i < chars.count, chars[i] == " " || chars[i] == "\t" { i += 1 }
    }

    private mutating func parseElement() throws -> JSONValue {
        skipSpaces()
        guard i < chars.count else { throw Problem(message: "a value is missing") }
        switch chars[i] {
        case "[": return try parseList()
        case "{": return try parseMapping()
        case "\"", "'": return .string(try parseQuoted())
        default: return Self.scalar(try parseUnquoted(stopAtColon: false))
        }
    }

    private mutating func parseList() throws -> JSONValue {
        i += 1  // [
        var items: [JSONValue] = []
        skipSpaces()
        if i < chars.count, chars[i] == "]" { i += 1; return .array(items) }
        while true {
            items.append(try parseElement())
            skipSpaces()
            guard i < chars.count else { throw Problem(message: "unbalanced brackets: '[' is never closed") }
            if chars[i] == "]" { i += 1; return .array(items) }
            guard chars[i] == "," else { throw Problem(message: "expected ',' or ']' in a list, found '\(chars[i])'") }
            i += 1
            skipSpaces()
            if i < chars.count, chars[i] == "]" { throw Problem(message: "a list item is missing before ']'") }
        }
    }

    private mutating func parseMapping() throws -> JSONValue {
        i += 1  // {
        var out: [String: JSONValue] = [:]
        skipSpaces()
        if i < chars.count, chars[i] == "}" { i += 1; return .object(out) }
        while true {
            skipSpaces()
            guard i < chars.count else { throw Problem(message: "unbalanced brackets: '{' is never closed") }
            let key: String
            if chars[i] == "\"" || chars[i] == "'" {
                key = try parseQuoted()
            } else {
                key = try parseUnquoted(stopAtColon: true)
            }
            guard !key.isEmpty else { throw Problem(message: "a mapping key is missing") }
            skipSpaces()
            guard i < chars.count, chars[i] == ":" else {
                throw Problem(message: "expected ':' after mapping key '\(key)'")
            }
            i += 1
            if out[key] != nil { throw Problem(message: "duplicate mapping key '\(key)'") }
            out[key] = try parseElement()
            skipSpaces()
            guard i < chars.count else { throw Problem(message: "unbalanced brackets: '{' is never closed") }
            if chars[i] == "}" { i += 1; return .object(out) }
            guard chars[i] == "," else {
                throw Problem(message: "expected ',' or '}' in a mapping, found '\(chars[i])'")
            }
            i += 1
        }
    }

    /// A quoted string; a backslash before the quote character escapes it, other backslashes stay.
    private mutating func parseQuoted() throws -> String {
        let quote = chars[i]
        i += 1
        var out = ""
        while i < chars.count {
            let c = chars[i]
            if c == "\\", i + 1 < chars.count, chars[i + 1] == quote {
                out.append(quote)
                i += 2
                continue
            }
            if c == quote { i += 1; return out }
            out.append(c)
            i += 1
        }
        throw Problem(message: "unterminated quote")
    }

    private mutating func parseUnquoted(stopAtColon: Bool) throws -> String {
        let start = i
        while i < chars.count {
            let c = chars[i]
            if c == "," || c == "]" || c == "}" || c == "[" || c == "{" || (stopAtColon && c == ":") { break }
            if c == "\"" || c == "'" {
                throw Problem(message: "a quote inside an unquoted value; quote the whole item")
            }
            i += 1
        }
        let text = String(chars[start..<i]).trimmingSpaces
        if text.isEmpty { throw Problem(message: "a value is missing") }
        return text
    }

    // MARK: Scalars

    /// The value of an unquoted scalar, by Hydra's rules.
    static func scalar(_ text: String) -> JSONValue {
        let lower = text.lowercased()
        if lower == "null" { return .null }
        if lower == "true" { return .bool(true) }
        if lower == "false" { return .bool(false) }
        if let i = integer(text) { return .int(i) }
        if let d = float(text) { return .double(d) }
        return .string(text)
    }

    /// `[+-]?(0|[1-9](_?[0-9])*)`.
    private static func integer(_ text: String) -> Int64? {
        var body = Substring(text)
        if let f = body.first, f == "+" || f == "-" { body = body.dropFirst() }
        guard isDigits(body, leadingZeroAllowed: false) else { return nil }
        return Int64(text.replacingOccurrences(of: "_", with: "").replacingOccurrences(of: "+", with: ""))
    }

    /// `[+-]?(POINT_FLOAT | EXPONENT_FLOAT | inf | nan)`, any case for inf and nan.
    private static func float(_ text: String) -> Double? {
        var body = Substring(text)
        var negative = false
        if let f = body.first, f == "+" || f == "-" { negative = f == "-"; body = body.dropFirst() }
        switch body.lowercased() {
        case "inf": return negative ? -.infinity : .infinity
        case "nan": return .nan
        default: break
        }
        var mantissa = body
        var exponent: Substring? = nil
        if let e = body.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = body[..<e]
            exponent = body[body.index(after: e)...]
        }
        if let exponent {
            var digits = exponent
            if let f = digits.first, f == "+" || f == "-" { digits = digits.dropFirst() }
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        }
        if let dot = mantissa.firstIndex(of: ".") {
            let intPart = mantissa[..<dot], fracPart = mantissa[mantissa.index(after: dot)...]
            guard !(intPart.isEmpty && fracPart.isEmpty) else { return nil }
            if !intPart.isEmpty, !isDigits(intPart, leadingZeroAllowed: false) { return nil }
            if !fracPart.isEmpty, !isDigits(fracPart, leadingZeroAllowed: true) { return nil }
        } else {
            // Without a dot, an exponent is required.
            guard exponent != nil, isDigits(mantissa, leadingZeroAllowed: false) else { return nil }
        }
        return Double(text.replacingOccurrences(of: "_", with: ""))
    }

    /// Digits with single `_` separators between them; a leading 0 only for "0" itself unless allowed.
    private static func isDigits(_ s: Substring, leadingZeroAllowed: Bool) -> Bool {
        guard let first = s.first, first.isASCII, first.isNumber else { return false }
        if !leadingZeroAllowed, first == "0", s.count > 1 { return false }
        var previousUnderscore = false
        for c in s.dropFirst() {
            if c == "_" {
                if previousUnderscore { return false }
                previousUnderscore = true
            } else if c.isASCII && c.isNumber {
                previousUnderscore = false
            } else {
                return false
            }
        }
        return !previousUnderscore
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
