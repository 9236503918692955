import Foundation
import LinprobeCheckpoint

/// A stored (uncompressed) zip archive in the ZIP64 layout, whose 64-bit fields can be forged:
/// every size, offset and count sits in a ZIP64 field (the classic ones are saturated).
public struct Zip64Builder {
    public var entries: [(name: String, data: [UInt8])]
    /// Forged values; nil keeps the true one.
    public var entrySize: UInt64?
    public var localHeaderOffset: UInt64?
    public var directorySize: UInt64?
    public var directoryOffset: UInt64?
    public var entryCount: UInt64?
    public var recordOffset: UInt64?

    public init(_ entries: [(name: String, data: [UInt8])]) { self.entries = entries }

    public func bytes() -> [UInt8] {
        var out: [UInt8] = []
        emit { out += $0 }
        return out
    }

    /// Writes the archive piece by piece (the entries' data is not copied into one buffer).
    public func write(to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        defer { try? handle.close() }
        var failure: (any Error)?
        emit { piece in
            guard failure == nil else { return }
            do { try handle.write(contentsOf: piece) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// The archive's bytes in order: small headers and each entry's data as they come.
    private func emit(_ sink: ([UInt8]) -> Void) {
        var offset: UInt64 = 0
        var header: [UInt8] = []
        func u16(_ v: Int) { header += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { header += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { header += $0 } }
        func flush(_ data: [UInt8]? = nil) {
            sink(header)
            offset += UInt64(header.count)
            header = []
            if let data {
                sink(data)
                offset += UInt64(data.count)
            }
        }
        var locals: [UInt64] = []
        let checksums = entries.map { e in e.data.withUnsafeBytes { CRC32.checksum($0) } }
        for ((name, data), crc) in zip(entries, checksums) {
            locals.append(offset)
            u32(0x0403_4B50); u16(45); u16(0); u16(0); u16(0); u16(0)
            u32(crc); u32(UInt32(truncatingIfNeeded: data.count)); u32(UInt32(truncatingIfNeeded: data.count))
            u16(name.utf8.count); u16(0)
            header += Array(name.utf8)
            flush(data)
        }
        let directoryStart = offset
        for (((name, data), local), crc) in zip(zip(entries, locals), checksums) {
            u32(0x0201_4B50); u16(45); u16(45); u16(0); u16(0); u16(0); u16(0)
            u32(crc); u32(0xFFFF_FFFF); u32(0xFFFF_FFFF)
            u16(name.utf8.count); u16(28); u16(0); u16(0); u16(0); u32(0); u32(0xFFFF_FFFF)
            header += Array(name.utf8)
            u16(0x0001); u16(24)
            u64(entrySize ?? UInt64(data.count)); u64(entrySize ?? UInt64(data.count))
            u64(localHeaderOffset ?? local)
        }
        let record = offset + UInt64(header.count)
        let size = record - directoryStart
        u32(0x0606_4B50); u64(44); u16(45); u16(45); u32(0); u32(0)
        u64(UInt64(entries.count)); u64(entryCount ?? UInt64(entries.count))
        u64(directorySize ?? size); u64(directoryOffset ?? directoryStart)
        u32(0x0706_4B50); u32(0); u64(recordOffset ?? record); u32(1)
        u32(0x0605_4B50); u16(0); u16(0); u16(0xFFFF); u16(0xFFFF); u32(0xFFFF_FFFF); u32(0xFFFF_FFFF); u16(0)
        flush()
    }
}

/// A float tensor to write into a checkpoint: name, shape, values (row-major).
public struct CheckpointTensorValues: Sendable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]
    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// Writes what `torch.save` writes for nested dicts of tensors: a zip (ZIP64 layout) holding
/// `archive/data.pkl` (pickle protocol 2, tensors rebuilt by `torch._utils._rebuild_tensor_v2`
/// from persistent storages), one `archive/data/<i>` entry per storage and `archive/version`.
/// `nesting` names the dicts around the tensors (`["classy_state_dict", "base_model", "model",
/// "trunk"]` is VISSL's layout). With `half`, storages are float16 (`HalfStorage`). For tests
/// that need a checkpoint too large to commit; the format is checked against PyTorch's files by
/// the committed fixtures, which `torch.save` wrote.
public func writeTorchCheckpoint(
    to path: String, nesting: [String], tensors: [CheckpointTensorValues], half: Bool = false
) throws {
    var pickle = PickleWriter()
    pickle.protocol2()
    for key in nesting {
        pickle.emptyDict()
        pickle.string(key)
    }
    pickle.emptyDict()
    var entries: [(name: String, data: [UInt8])] = []
    for (i, t) in tensors.enumerated() {
        pickle.string(t.name)
        pickle.tensor(storage: String(i), storageType: half ? "HalfStorage" : "FloatStorage", shape: t.shape)
        pickle.setItem()
        entries.append(("archive/data/\(i)", half ? halfBytes(t.values) : floatBytes(t.values)))
    }
    for _ in nesting { pickle.setItem() }
    pickle.stop()
    entries.insert(("archive/data.pkl", pickle.bytes), at: 0)
    entries.append(("archive/version", Array("3\n".utf8)))
    try Zip64Builder(entries).write(to: path)
}

private func floatBytes(_ values: [Float]) -> [UInt8] {
    values.withUnsafeBytes { Array($0) }
}

private func halfBytes(_ values: [Float]) -> [UInt8] {
    values.map { Float16($0) }.withUnsafeBytes { Array($0) }
}

/// The few pickle opcodes `torch.save` output needs (protocol 2).
private struct PickleWriter {
    var bytes: [UInt8] = []

    mutating func protocol2() { bytes += [0x80, 0x02] }
    mutating func emptyDict() { bytes.append(0x7D) }
    mutating func setItem() { bytes.append(0x73) }
    mutating func stop() { bytes.append(0x2E) }
    mutating func mark() { bytes.append(0x28) }
    mutating func tuple() { bytes.append(0x74) }
    mutating func reduce() { bytes.append(0x52) }

    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        bytes.append(0x58)
        withUnsafeBytes(of: UInt32(utf8.count).littleEndian) { bytes += $0 }
        bytes += utf8
    }

    mutating func int(_ v: Int) {
        bytes.append(0x4A)
        withUnsafeBytes(of: Int32(v).littleEndian) { bytes += $0 }
    }

    mutating func global(_ module: String, _ name: String) {
        bytes.append(0x63)
        bytes += Array("\(module)\n\(name)\n".utf8)
    }

    mutating func intTuple(_ values: [Int]) {
        mark()
        values.forEach { int($0) }
        tuple()
    }

    /// `_rebuild_tensor_v2(storage, 0, shape, contiguous strides, False, OrderedDict())`.
    mutating func tensor(storage key: String, storageType: String, shape: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        mark()
        mark()
        string("storage")
        global("torch", storageType)
        string(key)
        string("cpu")
        int(shape.reduce(1, *))
        tuple()
        bytes.append(0x51)  // BINPERSID
        int(0)
        intTuple(shape)
        intTuple(CheckpointTensor.contiguousStrides(shape))
        bytes.append(0x89)  // NEWFALSE
        global("collections", "OrderedDict")
        bytes.append(0x29)  // EMPTY_TUPLE
        reduce()
        tuple()
        reduce()
    }
}
