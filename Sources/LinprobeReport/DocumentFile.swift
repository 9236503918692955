import Foundation
import LinprobeCore

/// Reading a JSON document the report needs: a missing, unreadable, damaged or mistyped file is one
/// line naming the file (and the field).
enum DocumentFile {
    /// The file's bytes, checked to be JSON.
    static func read(_ path: String, what: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else {
            throw LinprobeError(.missingInput, "\(path): missing (\(what))")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LinprobeError(.io, "\(path): cannot read (\(what))")
        }
        guard (try? JSONDecoder().decode(JSONValue.self, from: data)) != nil else {
            throw LinprobeError(
                .corruptInput,
                "\(path): not valid JSON (\(what) is damaged or truncated); rerun the stage that wrote it")
        }
        return data
    }

    /// `format` and `format_version` of a document, when present.
    struct Header: Decodable {
        var format: String?
        var formatVersion: Int?

        enum CodingKeys: String, CodingKey {
            case format
            case formatVersion = "format_version"
        }
    }

    static func header(_ data: Data) -> Header? {
        try? JSONDecoder().decode(Header.self, from: data)
    }

    /// Decodes a document; a decoding error becomes `<path>: <field> is missing; <rerun>`.
    static func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String, rerun: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw LinprobeError(.corruptInput, "\(path): \(describe(error)); \(rerun)")
        }
    }

    /// `rows[0].dataset is missing`, `charts[1].series is not an array`, ….
    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            return "\(field(context.codingPath + [key])) is missing"
        case .valueNotFound(_, let context):
            return "\(field(context.codingPath)) is null"
        case .typeMismatch(let type, let context):
            return "\(field(context.codingPath)) is not \(typeName(type))"
        case .dataCorrupted(let context):
            let name = field(context.codingPath)
            return name.isEmpty ? "not valid JSON" : "\(name) \(context.debugDescription)"
        @unknown default:
            return "cannot be read (\(error))"
        }
    }

    static func field(_ path: [any CodingKey]) -> String {
        var text = ""
        for key in path {
            if let i = key.intValue {
                text += "[\(i)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return text
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "a boolean"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "of the expected type (\(name))"
        }
    }
}
