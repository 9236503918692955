import Crypto
import Foundation
import LinprobeCore

/// The checkpoint file of one head (`<head>/checkpoint_epoch<E>.lpck`).
///
/// Layout: 8-byte magic `LPHEAD01`, little-endian UInt64 length of a JSON header, the header
/// (format, version, `meta`, tensor table with name/shape/offset/count, SHA-256 of the payload),
/// then the payload: every tensor as little-endian float32, in table order. Written through
/// `AtomicFile` (temporary file, fsync, rename, fsync of the folder), so a killed run never leaves
/// a half-written checkpoint under the final name; the reader checks the magic, sizes and payload hash.
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
            table.append([
                "name": .string(t.name), "shape": .array(t.shape.map { .int(Int64($0)) }),
                "offset": .int(Int64(offset)), "count": .int(Int64(t.buffer.count)),
            ])
            offset += t.buffer.count
        }
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let header: JSONValue = [
            "format": .string(format), "version": .int(version), "meta": meta,
            "tensors": .array(table), "payload_sha256": .string(digest),
        ]
        let headerData = Data(header.canonicalText.utf8)
        var file = Data(capacity: 16 + headerData.count + offset * 4)
        file.append(contentsOf: magic)
        var length = UInt64(headerData.count).littleEndian
        withUnsafeBytes(of: &length) { file.append(contentsOf: $0) }
        file.append(headerData)
        for t in tensors {
            // Float32 in memory is little-endian on every platform Linprobe builds for.
            file.append(UnsafeBufferPointer(start: t.buffer.pointer, count: t.buffer.count))
        }
        try AtomicFile.write(file, to: path)
    }

    /// Reads a checkpoint: its `meta` block and its tensors by name.
    static func read(path: String) throws -> (meta: JSONValue, tensors: [String: (shape: [Int], values: [Float])]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LinprobeError(.missingInput, "\(path): checkpoint not found or unreadable")
        }
        func corrupt(_ what: String) -> LinprobeError {
            LinprobeError(
                .corruptInput, "\(path): damaged checkpoint (\(what)); delete the run folder to retrain from scratch")
        }
        guard data.count >= 16, Array(data.prefix(8)) == magic else { throw corrupt("bad magic") }
        let length = data.subdata(in: 8..<16).withUnsafeBytes {
            UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))
        }
        guard length < UInt64(data.count), 16 + Int(length) <= data.count else { throw corrupt("header length") }
        let headerText = String(decoding: data.subdata(in: 16..<(16 + Int(length))), as: UTF8.self)
        guard let header = try? JSONValue.parse(headerText), header["format"]?.stringValue == format else {
            throw corrupt("header is not a Linprobe head checkpoint")
        }
        guard let v = header["version"]?.intValue, v <= version else {
            throw LinprobeError(
                .incompatible, "\(path): checkpoint version is newer than this Linprobe reads; upgrade Linprobe")
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
                    dst.copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: src[(Int(offset) * 4)..<(Int(offset + count) * 4)]))
                }
            }
            tensors[name] = (shape.map { Int($0) }, values)
        }
        return (header["meta"] ?? .null, tensors)
    }
}
