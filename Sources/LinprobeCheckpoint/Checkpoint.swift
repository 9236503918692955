import Foundation
import LinprobeCore

/// A weights file read into memory without running any of its code: the object tree of a
/// `torch.save` file (zip or legacy format) or the tensors of a safetensors file. Tensors are
/// views into the memory-mapped file.
public struct Checkpoint: @unchecked Sendable {
    public enum Format: String, Sendable {
        /// `torch.save` of PyTorch ≥ 1.6 (a zip archive with `data.pkl` and `data/<key>`).
        case torchZip = "torch-zip"
        /// `torch.save(..., _use_new_zipfile_serialization=False)` and files from PyTorch < 1.6.
        case torchLegacy = "torch-legacy"
        case safetensors
    }

    public let path: String
    public let format: Format
    /// The unpickled object (for safetensors: a dict of name → tensor).
    public let root: PickleValue

    /// Reads a checkpoint, detecting its format from its first bytes.
    public static func load(path: String) throws -> Checkpoint {
        let file = try MappedFile(path: path)
        let b = file.bytes
        guard b.count > 0 else {
            throw LinprobeError(.corruptInput, "\(path): the weights file is empty")
        }
        if b.count >= 4, b[0] == 0x50, b[1] == 0x4B, (b[2] == 0x03 && b[3] == 0x04) || (b[2] == 0x05 && b[3] == 0x06) {
            return Checkpoint(path: path, format: .torchZip, root: try readTorchZip(file))
        }
        if b.count >= 2, b[0] == 0x80, (2...5).contains(b[1]) {
            return Checkpoint(path: path, format: .torchLegacy, root: try readTorchLegacy(file))
        }
        if b.count >= 10, b[8] == UInt8(ascii: "{") {
            return Checkpoint(path: path, format: .safetensors, root: try readSafetensors(file))
        }
        if b.count >= 262, String(decoding: UnsafeRawBufferPointer(rebasing: b[257..<262]), as: UTF8.self) == "ustar" {
            throw LinprobeError(
                .unsupported,
                "\(path): a tar-format torch.save file (PyTorch < 0.4) is not supported; load and re-save it with a newer PyTorch"
            )
        }
        let head = b.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
        throw LinprobeError(
            .corruptInput,
            "\(path): not a PyTorch checkpoint (torch.save zip or legacy format) or safetensors file (first bytes: \(head)); check MODEL.WEIGHTS_INIT.PARAMS_FILE"
        )
    }

    // MARK: - torch.save, zip format

    private static func readTorchZip(_ file: MappedFile) throws -> PickleValue {
        let path = file.path
        let zip = try ZipArchive(file: file)
        let pickles = zip.entries.filter { $0.name.hasSuffix("/data.pkl") && $0.name.split(separator: "/").count == 2 }
        guard let pkl = pickles.first else {
            if zip.entries.contains(where: { $0.name.hasSuffix("constants.pkl") }) {
                throw LinprobeError(
                    .unsupported,
                    "\(path): a TorchScript archive (torch.jit.save) is not a state dict; save one with torch.save(model.state_dict(), path)"
                )
            }
            throw LinprobeError(.corruptInput, "\(path): zip archive without data.pkl — not a torch.save checkpoint")
        }
        let prefix = String(pkl.name.dropLast("data.pkl".count))
        if zip.entry(named: prefix + "constants.pkl") != nil
            || zip.entries.contains(where: { $0.name.hasPrefix(prefix + "code/") })
        {
            throw LinprobeError(
                .unsupported,
                "\(path): a TorchScript archive (torch.jit.save) is not a state dict; save one with torch.save(model.state_dict(), path)"
            )
        }
        if let order = zip.entry(named: prefix + "byteorder") {
            let text = String(decoding: try zip.data(of: order).bytes, as: UTF8.self)
            guard text == "little" else {
                throw LinprobeError(
                    .unsupported,
                    "\(path): tensors are stored \(text)-endian; only little-endian checkpoints are supported")
            }
        }
        let pickleData = try zip.data(of: pkl)
        guard let pickleBase = pickleData.bytes.baseAddress, let fileBase = file.base else {
            throw LinprobeError(.corruptInput, "\(path): \(pkl.name) is empty — not a torch.save checkpoint")
        }
        let pickleStart = pickleBase - fileBase
        var storages: [String: StorageRef] = [:]
        var unpickler = Unpickler(data: pickleData.bytes, fileOffset: pickleStart, source: path) { pid, offset in
            guard let items = pid.sequence, items.count >= 5, items[0].stringValue == "storage" else {
                throw LinprobeError(
                    .corruptInput, "\(path): unexpected persistent id (\(pid.typeName)) at byte \(offset)")
            }
            guard case .global(_, let cls) = items[1] else {
                throw LinprobeError(.corruptInput, "\(path): storage type is a \(items[1].typeName) at byte \(offset)")
            }
            let dtype: TensorDType
            if cls == "UntypedStorage" {
                dtype = .uint8
            } else {
                guard let d = TensorDType.fromStorageClass(cls) else {
                    throw LinprobeError(
                        .unsupported, "\(path): storage type torch.\(cls) is not supported (byte \(offset))")
                }
                dtype = d
            }
            guard let key = items[2].stringValue ?? items[2].intValue.map(String.init), let numel = items[4].intValue,
                numel >= 0
            else {
                throw LinprobeError(.corruptInput, "\(path): malformed storage record at byte \(offset)")
            }
            if let existing = storages[key] { return .storage(existing) }
            let name = prefix + "data/" + key
            guard let entry = zip.entry(named: name) else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): storage '\(key)' is missing (no entry \(name)); the checkpoint is truncated or corrupt")
            }
            let region = try zip.data(of: entry)
            let (needed, overflow) = numel.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, region.count >= needed else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): storage '\(key)' holds \(region.count) bytes, its record needs \(numel) × \(dtype.size); the checkpoint is corrupt"
                )
            }
            let ref = StorageRef(key: key, dtype: dtype, numel: numel, region: region)
            storages[key] = ref
            return .storage(ref)
        }
        return try unpickler.load()
    }

    // MARK: - torch.save, legacy format

    /// Legacy layout: pickles of the magic number, the protocol version and the system info,
    /// the object pickle (storages as persistent ids), the pickled list of storage keys, then
    /// for each key its element count (int64, little-endian) and its raw bytes.
    private static func readTorchLegacy(_ file: MappedFile) throws -> PickleValue {
        let path = file.path
        let all = file.bytes
        var offset = 0
        func nextPickle(_ loader: Unpickler.PersistentLoader? = nil) throws -> PickleValue {
            var u = Unpickler(
                data: UnsafeRawBufferPointer(rebasing: all[offset...]), fileOffset: offset, source: path,
                persistentLoad: loader)
            let v = try u.load()
            offset += u.consumed
            return v
        }
        let magic = try nextPickle()
        let expected: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
        guard case .bigInt(let m) = magic, m == expected else {
            throw LinprobeError(
                .corruptInput, "\(path): a pickle file, but not a torch.save checkpoint (magic number missing)")
        }
        guard let proto = try nextPickle().intValue, proto == 1001 else {
            throw LinprobeError(.unsupported, "\(path): unsupported legacy torch.save protocol version")
        }
        if let info = try nextPickle().dictValue, case .bool(false)? = info["little_endian"] {
            throw LinprobeError(
                .unsupported, "\(path): written on a big-endian machine; only little-endian checkpoints are supported")
        }
        var storages: [String: StorageRef] = [:]
        let root = try nextPickle { pid, at in
            guard let items = pid.sequence, let kind = items.first?.stringValue else {
                throw LinprobeError(.corruptInput, "\(path): unexpected persistent id at byte \(at)")
            }
            if kind == "module" {
                throw LinprobeError(
                    .unsupported,
                    "\(path): stores a whole nn.Module (torch.save(model)); Linprobe reads state dicts — save model.state_dict() instead"
                )
            }
            guard kind == "storage", items.count >= 5, case .global(_, let cls) = items[1],
                let dtype = TensorDType.fromStorageClass(cls),
                let key = items[2].stringValue ?? items[2].intValue.map(String.init), let numel = items[4].intValue,
                numel >= 0
            else {
                throw LinprobeError(.corruptInput, "\(path): malformed storage record at byte \(at)")
            }
            let root: StorageRef
            if let existing = storages[key] {
                root = existing
            } else {
                root = StorageRef(key: key, dtype: dtype, numel: numel)
                storages[key] = root
            }
            if items.count >= 6, let view = items[5].sequence, view.count == 3,
                let viewKey = view[0].stringValue ?? view[0].intValue.map(String.init),
                let viewOffset = view[1].intValue, let viewSize = view[2].intValue
            {
                return .storage(StorageRef(viewKey: viewKey, of: root, offset: viewOffset, numel: viewSize))
            }
            return .storage(root)
        }
        guard let keys = try nextPickle().sequence else {
            throw LinprobeError(.corruptInput, "\(path): storage key list missing after the object pickle (truncated?)")
        }
        for keyValue in keys {
            guard let key = keyValue.stringValue ?? keyValue.intValue.map(String.init), let ref = storages[key] else {
                throw LinprobeError(.corruptInput, "\(path): storage key list names an unknown storage")
            }
            guard offset + 8 <= all.count else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): storage '\(key)' is missing at byte \(offset): the file ends there (truncated)")
            }
            let numel = Int(Int64(littleEndian: all.loadUnaligned(fromByteOffset: offset, as: Int64.self)))
            guard numel == ref.numel else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): storage '\(key)' at byte \(offset) announces \(numel) elements, its record says \(ref.numel); the file is corrupt"
                )
            }
            let start = offset + 8
            let (length, overflow) = numel.multipliedReportingOverflow(by: ref.dtype.size)
            guard !overflow, length <= all.count - start else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): storage '\(key)' of \(numel) \(ref.dtype.rawValue) elements at byte \(start) "
                        + "does not fit in the \(all.count)-byte file (truncated or corrupt)")
            }
            ref.ownRegion = ByteRegion(
                owner: file, bytes: UnsafeRawBufferPointer(rebasing: all[start..<(start + length)]))
            offset = start + length
        }
        return root
    }

    // MARK: - safetensors

    private static func readSafetensors(_ file: MappedFile) throws -> PickleValue {
        let path = file.path
        let all = file.bytes
        let headerLength = all.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(all.count - 8), headerLength <= 100_000_000 else {
            throw LinprobeError(
                .corruptInput,
                "\(path): safetensors header of \(headerLength) bytes exceeds the \(all.count)-byte file (truncated or not safetensors)"
            )
        }
        let dataStart = 8 + Int(headerLength)
        let headerText = String(decoding: UnsafeRawBufferPointer(rebasing: all[8..<dataStart]), as: UTF8.self)
        let header: JSONValue
        do { header = try JSONValue.parse(headerText) } catch {
            throw LinprobeError(.corruptInput, "\(path): safetensors header is not valid JSON (\(oneLine(error)))")
        }
        guard case .object(let fields) = header else {
            throw LinprobeError(.corruptInput, "\(path): safetensors header is not a JSON object")
        }
        let data = UnsafeRawBufferPointer(rebasing: all[dataStart...])
        let dict = PickleDict()
        // Deterministic order: by data offset (the order the writer laid the tensors out).
        var records: [(name: String, begin: Int, value: PickleValue)] = []
        for (name, spec) in fields where name != "__metadata__" {
            guard let dt = spec["dtype"]?.stringValue, let shapeValues = spec["shape"]?.arrayValue,
                let offsets = spec["data_offsets"]?.arrayValue, offsets.count == 2,
                let b = offsets[0].intValue, let e = offsets[1].intValue
            else {
                throw LinprobeError(
                    .corruptInput, "\(path): safetensors entry '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = TensorDType.fromSafetensors(dt) else {
                throw LinprobeError(.unsupported, "\(path): safetensors entry '\(name)' has unsupported dtype \(dt)")
            }
            let shape = try shapeValues.map { v -> Int in
                guard let i = v.intValue, i >= 0, i <= Int64(Int32.max) else {
                    throw LinprobeError(.corruptInput, "\(path): safetensors entry '\(name)' has a bad shape")
                }
                return Int(i)
            }
            guard b >= 0, e >= b, e <= Int64(data.count) else {
                throw LinprobeError(
                    .corruptInput,
                    "\(path): safetensors entry '\(name)' spans bytes [\(b), \(e)) of a \(data.count)-byte data section (truncated or corrupt)"
                )
            }
            let numel = try shape.reduce(1) { n, d in
                let (p, overflow) = n.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw LinprobeError(
                        .corruptInput,
                        "\(path): safetensors entry '\(name)' has shape \(shape), more elements than can be addressed")
                }
                return p
            }
            let (bytes, overflow) = numel.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, Int64(bytes) == e - b else {
                let needed = overflow ? "more than \(Int.max)" : "\(bytes)"
                throw LinprobeError(
                    .corruptInput,
                    "\(path): safetensors entry '\(name)' of \(dt)\(shape) needs \(needed) bytes but spans \(e - b)")
            }
            let region = ByteRegion(owner: file, bytes: UnsafeRawBufferPointer(rebasing: data[Int(b)..<Int(e)]))
            let ref = StorageRef(key: name, dtype: dtype, numel: numel, region: region)
            let record = TensorRecord(
                storage: ref, dtype: dtype, shape: shape,
                strides: CheckpointTensor.contiguousStrides(shape), storageOffset: 0)
            records.append((name, Int(b), .tensor(record)))
        }
        for r in records.sorted(by: { ($0.begin, $0.name) < ($1.begin, $1.name) }) {
            dict.set(.string(r.name), r.value)
        }
        return .dict(dict)
    }
}
