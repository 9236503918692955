import Crypto
import Foundation

/// Content fingerprints: SHA-256 over canonical JSON of whatever determines an artifact.
public enum Fingerprint {
    /// Full hex SHA-256 of canonical JSON.
    public static func sha256(of value: JSONValue) -> String {
        sha256(Data(value.canonicalText.utf8))
    }

    /// Hex SHA-256 of bytes.
    public static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The short form used in directory names (`features/<fp>/`): the first 16 hex digits.
    public static func short(_ value: JSONValue) -> String {
        String(sha256(of: value).prefix(16))
    }

    /// Hex SHA-256 of a file's content, streamed in 4 MiB blocks.
    public static func sha256(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw LinprobeError(
                .missingInput, "\(path): cannot open file to hash it (does it exist and is it readable?)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            try StopRequest.check("hashing \(path)")
            let chunk = try handle.read(upToCount: 4 << 20) ?? Data()
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
