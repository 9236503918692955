import Foundation

/// A runtime failure as the user sees it: one line naming the file or stage, what happened,
/// and what to do. The CLI prints `errorDescription` and exits with `exitCode`.
public struct LinprobeError: Error, LocalizedError, Sendable, CustomStringConvertible {
    /// Broad classes of failure; configuration errors exit 64, all others exit 1.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let invalidConfig = Code(name: "invalid configuration")
        public static let usage = Code(name: "bad usage")
        public static let missingInput = Code(name: "missing input")
        public static let corruptInput = Code(name: "corrupt input")
        public static let incompatible = Code(name: "incompatible input")
        public static let shapeMismatch = Code(name: "shape mismatch")
        public static let io = Code(name: "I/O failure")
        public static let numerical = Code(name: "numerical failure")
        public static let unsupported = Code(name: "unsupported")
        public static let interrupted = Code(name: "interrupted")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Exit status for the CLI: 64 for configuration and usage errors, 1 otherwise.
    public var exitCode: Int32 { code == .invalidConfig || code == .usage ? 64 : 1 }

    public var description: String { message }
    public var errorDescription: String? { message }

    /// A configuration error naming the key path.
    public static func config(_ message: String) -> LinprobeError { LinprobeError(.invalidConfig, message) }
}

/// Turns any error into the one line shown to the user.
public func oneLine(_ error: any Error) -> String {
    let text: String
    if let e = error as? LocalizedError, let d = e.errorDescription {
        text = d
    } else {
        text = String(describing: error)
    }
    return text.split(whereSeparator: \.isNewline).joined(separator: " ")
}
