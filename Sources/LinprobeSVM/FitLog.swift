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
        guard sum == checksum(json), let value = try? JSONValue.parse(json), let key = value["key"]?.stringValue else { return nil }
        return (key, value)
    }

    /// The record stored under `key`, if a verified one exists.
    func record(_ key: String) -> JSONValue? {
        lock.lock()
        defer { lock.unlock() }
        return records[key]
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

/// Small file helpers: atomic writes and NumPy `.npy` float64 matrices (readable with `np.load`).
enum Files {
    /// Writes `data` to a temporary file beside `path`, flushes it, then renames it into place.
    static func writeAtomically(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            guard FileManager.default.createFile(atPath: tmp, contents: nil) else {
                throw LinprobeError(.io, "\(tmp): cannot create file (is the folder writable?)")
            }
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp))
            try h.write(contentsOf: data)
            try h.synchronize()
            try h.close()
        } catch let e as LinprobeError {
            throw e
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw LinprobeError(.io, "\(path): cannot write (is the disk full?): \(oneLine(error))")
        }
        if rename(tmp, path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: tmp)
            throw LinprobeError(.io, "\(path): cannot move the finished file into place: \(reason)")
        }
    }

    static func ensureDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw LinprobeError(.io, "\(path): cannot create folder: \(oneLine(error))")
        }
    }

    /// A `.npy` (format 1.0) file of little-endian float64, C order, shape `[rows, cols]`.
    static func npy(rows: Int, cols: Int, values: [Double]) -> Data {
        precondition(values.count == rows * cols)
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (\(rows), \(cols)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        values.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: UInt8.self) { data.append(contentsOf: $0) }
        }
        return data
    }

    /// Reads a float64 `.npy` written by `npy(rows:cols:values:)` (C order, little-endian).
    static func readNpy(_ path: String) throws -> (rows: Int, cols: Int, values: [Double]) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw LinprobeError(.missingInput, "\(path): cannot read the saved models: \(oneLine(error))")
        }
        let bytes = [UInt8](data)
        func bad(_ what: String) -> LinprobeError {
            LinprobeError(.corruptInput, "\(path): \(what); rerun train-svm with SVM.force_retrain=true to rebuild the models")
        }
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8), bytes[6] == 1 else {
            throw bad("not a NumPy .npy file of format 1.0")
        }
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        guard bytes.count >= 10 + headerLength else { throw bad("truncated header") }
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        guard header.contains("'<f8'"), header.contains("'fortran_order': False"),
            let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")")
        else { throw bad("expected a C-order float64 matrix") }
        let dims = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard dims.count == 2 else { throw bad("expected a 2-D matrix") }
        let start = 10 + headerLength
        guard bytes.count == start + dims[0] * dims[1] * 8 else { throw bad("size does not match shape \(dims)") }
        var values = [Double](repeating: 0, count: dims[0] * dims[1])
        values.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start...]))
            }
        }
        return (dims[0], dims[1], values)
    }
}
