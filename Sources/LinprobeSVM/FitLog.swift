import Foundation
import LinprobeCore

/// An append-only log of finished fits, one line each: canonical JSON, a tab, and the first 16
/// hex digits of the JSON's SHA-256. Opening the log keeps the longest prefix of lines whose
/// checksums verify and cuts the file there, so a line torn by a kill is never read as a result
/// and is rewritten by the resumed run. Each append is flushed to disk before it counts.
final class FitLog: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var handle: FileHandle
    private var records: [String: JSONValue] = [:]

    /// Opens (creating if needed) the log; `fresh` discards earlier records (force_retrain).
    init(path: String, fresh: Bool = false) throws {
        self.path = path
        let fm = FileManager.default
        if fresh { try? fm.removeItem(atPath: path) }
        if !fm.fileExists(atPath: path) {
            guard fm.createFile(atPath: path, contents: nil) else {
                throw LinprobeError(.io, "\(path): cannot create the fit log (is the folder writable?)")
            }
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw LinprobeError(.io, "\(path): cannot read the fit log: \(oneLine(error))")
        }
        var validLength = 0
        var offset = 0
        let bytes = [UInt8](data)
        while offset < bytes.count {
            guard let newline = bytes[offset...].firstIndex(of: 0x0A) else { break }
            let line = String(decoding: bytes[offset..<newline], as: UTF8.self)
            guard let (key, record) = FitLog.parse(line) else { break }
            records[key] = record
            offset = newline + 1
            validLength = offset
        }
        do {
            handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
            if validLength < bytes.count { try handle.truncate(atOffset: UInt64(validLength)) }
            try handle.seekToEnd()
        } catch {
            throw LinprobeError(.io, "\(path): cannot open the fit log for appending: \(oneLine(error))")
        }
    }

    deinit { try? handle.close() }

    static func checksum(_ text: String) -> String { String(Fingerprint.sha256(Data(text.utf8)).prefix(16)) }

    private static func parse(_ line: String) -> (String, JSONValue)? {
        guard let tab = line.lastIndex(of: "\t") else { return nil }
        let json = String(line[..<tab])
        let sum = String(line[line.index(after: tab)...])
        guard sum == checksum(json), let value = try? JSONValue.parse(json), let key = value["key"]?.stringValue else {
            return nil
        }
        return (key, value)
    }

    /// The record stored under `key`, if a verified one exists.
    func record(_ key: String) -> JSONValue? {
        lock.lock()
        defer { lock.unlock() }
        return records[key]
    }

    /// Every verified record, sorted by key.
    var allRecords: [(String, JSONValue)] {
        lock.lock()
        defer { lock.unlock() }
        return records.keys.sorted().compactMap { key in records[key].map { (key, $0) } }
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return records.count
    }

    /// Appends a record (it must contain a string `key`) and makes it durable.
    func append(_ record: JSONValue) throws {
        guard let key = record["key"]?.stringValue else { preconditionFailure("fit record without key") }
        let json = record.canonicalText
        let line = json + "\t" + FitLog.checksum(json) + "\n"
        lock.lock()
        defer { lock.unlock() }
        do {
            try handle.write(contentsOf: Data(line.utf8))
            try handle.synchronize()
        } catch {
            throw LinprobeError(.io, "\(path): cannot append to the fit log (is the disk full?): \(oneLine(error))")
        }
        records[key] = record
    }
}
