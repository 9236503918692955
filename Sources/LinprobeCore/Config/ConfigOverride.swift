/// One command-line override in VISSL's (Hydra's) spelling: `config.A.B=value`, also `A.B=value`,
/// `+config.A.B=value` and `++config.A.B=value`. The value is read as Hydra reads it: a scalar
/// (`true`/`False`, `null`, `8`, `1e-3`, `inf`, else a string — `yes` stays a string), a quoted
/// string, a list (`[1, 2]`, nested lists such as the pool-op map) or a mapping (`{a: 1}`);
/// an empty value is the empty string. Comma-separated sweeps (`a,b`) are refused.
/// `+` (Hydra: add a key) also accepts a key known to neither VISSL nor Linprobe, which is then
/// ignored like VISSL's own unused keys.
public struct ConfigOverride: Sendable, Equatable {
    /// The override as given.
    public let text: String
    /// Dotted key path without the `config.` prefix.
    public let path: String
    public let value: JSONValue
    /// Spelled with `+` or `++` (Hydra: add the key).
    public let adds: Bool

    public init(parsing text: String) throws {
        self.text = text
        func bad(_ why: String) -> LinprobeError {
            LinprobeError.config("bad override '\(text)': \(why)")
        }
        var body = Substring(text)
        if body.hasPrefix("~") {
            throw bad("deleting keys (~) is not supported; set the key to another value instead")
        }
        adds = body.hasPrefix("+")
        if body.hasPrefix("++") { body = body.dropFirst(2) } else if body.hasPrefix("+") { body = body.dropFirst() }
        guard let eq = body.firstIndex(of: "=") else {
            throw bad("no '=' (write config.A.B=value)")
        }
        var key = String(body[..<eq])
        let valueText = String(body[body.index(after: eq)...])
        if key == "config" {
            throw bad("config=PATH names the base configuration; give it as the first argument")
        }
        if key.contains("/") {
            throw bad("a config group option is added with '+' (+\(text))")
        }
        if key.hasPrefix("config.") { key.removeFirst("config.".count) }
        guard !key.isEmpty else { throw bad("empty key before '='") }
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        if parts.contains(where: \.isEmpty) { throw bad("empty key component in '\(key)'") }
        for part in parts where !part.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
            throw bad("'\(part)' is not a key name (letters, digits and _ only; list items cannot be set one by one)")
        }
        self.path = key
        self.value = try Self.parseValue(valueText, bad: bad)
    }

    private static func parseValue(_ text: String, bad: (String) -> LinprobeError) throws -> JSONValue {
        if let problem = bracketProblem(text) { throw bad(problem) }
        var parser = HydraValueParser(text)
        do {
            return try parser.parseTop()
        } catch let problem as HydraValueParser.Problem {
            throw bad(problem.message)
        }
    }

    /// Unbalanced `[`/`]` or `{`/`}` outside quotes, as a message.
    private static func bracketProblem(_ text: String) -> String? {
        var stack: [Character] = []
        var quote: Character? = nil
        var escaped = false
        for c in text {
            if let q = quote {
                if escaped {
                    escaped = false
                } else if c == "\\" {
                    escaped = true  // a backslash escapes the quote character (Hydra)
                } else if c == q {
                    quote = nil
                }
                continue
            }
            switch c {
            case "\"", "'": quote = c
            case "[", "{": stack.append(c)
            case "]", "}":
                let open: Character = c == "]" ? "[" : "{"
                guard stack.last == open else { return "unbalanced brackets: unexpected '\(c)'" }
                stack.removeLast()
            default: break
            }
        }
        if quote != nil { return "unterminated quote" }
        if let open = stack.last { return "unbalanced brackets: '\(open)' is never closed" }
        return nil
    }
}
