import Crypto
import Foundation
import LinprobeCore

/// The checkpoint file of one head (`<head>/checkpoint_epoch<E>.lpck`).
///
/// Layout: 8-byte magic `LPHEAD01`, little-endian UInt64 length of a JSON header, the header
/// (format, version, `meta`, tensor table with name/shape/offset/count, SHA-256 of the payload),
/// then the payload: every tensor as little-endian float32, in table order. Written to a
/// temporary file and renamed, so a killed run never leaves a half-written checkpoint under the
/// final name; the reader checks the magic, sizes and payload hash.
enum HeadCheckpoint {
    static let magic = Array("LPHEAD01".utf8)
    static let format = "linprobe.linear-head-checkpoint"
    static let version: Int64 = 1

    struct Tensor {
        var name: String
        var shape: [Int]
        var buffer: FloatBuffer
    }

    static func write(path: String, tensors: [Tensor], meta: JSONValue) throws {
        var hasher = SHA256()
        var table: [JSONValue] = []
        var offset = 0
        for t in tensors {
            let bytes = UnsafeRawBufferPointer(start: t.buffer.pointer, count: t.buffer.count * 4)
            hasher.update(bufferPointer: bytes)
            table.append(["name": .string(t.name), "shape": .array(t.shape.map { .int(Int64($0)) }),
                          "offset": .int(Int64(offset)), "count": .int(Int64(t.buffer.count))])
            offset += t.buffer.count
        }
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let header: JSONValue = ["format": .string(format), "version": .int(version), "meta": meta,
                                 "tensors": .array(table), "payload_sha256": .string(digest)]
        let headerData = Data(header.canonicalText.utf8)
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let handle = FileHandle(forWritingAtPath: temporary) else {
            throw LinprobeError(.io, "\(temporary): cannot create checkpoint file (is the folder writable?)")
        }
        do {
            var prefix = Data(magic)
            var length = UInt64(headerData.count).littleEndian
            withUnsafeBytes(of: &length) { prefix.append(contentsOf: $0) }
            prefix.append(headerData)
            try handle.write(contentsOf: prefix)
            for t in tensors {
                // Float32 in memory is little-endian on every platform Linprobe builds for.
                let data = Data(bytesNoCopy: t.buffer.pointer, count: t.buffer.count * 4, deallocator: .none)
                try handle.write(contentsOf: data)
            }
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw LinprobeError(.io, "\(path): writing the checkpoint failed (is the disk full?): \(oneLine(error))")
        }
        if rename(temporary, path) != 0 {
            let reason = String(cString: strerror(errno))
            throw LinprobeError(.io, "\(path): cannot rename the finished checkpoint: \(reason)")
        }
    }

    /// Reads a checkpoint: its `meta` block and its tensors by name.
    static func read(path: String) throws -> (meta: JSONValue, tensors: [String: (shape: [Int], values: [Float])]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LinprobeError(.missingInput, "\(path): checkpoint not found or unreadable")
        }
        func corrupt(_ what: String) -> LinprobeError {
            LinprobeError(.corruptInput, "\(path): damaged checkpoint (\(what)); delete the run folder to retrain from scratch")
        }
        guard data.count >= 16, Array(data.prefix(8)) == magic else { throw corrupt("bad magic") }
        let length = data.subdata(in: 8..<16).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length < UInt64(data.count), 16 + Int(length) <= data.count else { throw corrupt("header length") }
        let headerText = String(decoding: data.subdata(in: 16..<(16 + Int(length))), as: UTF8.self)
        guard let header = try? JSONValue.parse(headerText), header["format"]?.stringValue == format else {
            throw corrupt("header is not a Linprobe head checkpoint")
        }
        guard let v = header["version"]?.intValue, v <= version else {
            throw LinprobeError(.incompatible, "\(path): checkpoint version is newer than this Linprobe reads; upgrade Linprobe")
        }
        let payload = data.subdata(in: (16 + Int(length))..<data.count)
        let digest = SHA256.hash(data: payload).map { String(format: "%02x", $0) }.joined()
        guard digest == header["payload_sha256"]?.stringValue else { throw corrupt("payload hash mismatch") }
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        for entry in header["tensors"]?.arrayValue ?? [] {
            guard let name = entry["name"]?.stringValue, let shape = entry["shape"]?.arrayValue?.compactMap(\.intValue),
                  let offset = entry["offset"]?.intValue, let count = entry["count"]?.intValue,
                  offset >= 0, count >= 0, Int(offset + count) * 4 <= payload.count,
                  shape.reduce(1, *) == count
            else { throw corrupt("tensor table") }
            var values = [Float](repeating: 0, count: Int(count))
            values.withUnsafeMutableBytes { dst in
                payload.withUnsafeBytes { src in
                    dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(Int(offset) * 4)..<(Int(offset + count) * 4)]))
                }
            }
            tensors[name] = (shape.map { Int($0) }, values)
        }
        return (header["meta"] ?? .null, tensors)
    }
}

/// Writes text atomically (temporary file + rename).
func writeAtomically(_ text: String, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    do {
        try Data(text.utf8).write(to: url, options: .atomic)
    } catch {
        throw LinprobeError(.io, "\(path): cannot write (\(oneLine(error)))")
    }
}
