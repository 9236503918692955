import Foundation
import LinprobeCore

/// A value produced by the restricted unpickler. Containers are reference types because the
/// pickle machine memoises a container and fills it afterwards (`EMPTY_DICT`, `BINPUT`, ...,
/// `SETITEMS`).
public indirect enum PickleValue: @unchecked Sendable {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer too large for `Int`, as little-endian two's-complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// A class or function named by `GLOBAL`, checked against the allow-list.
    case global(module: String, name: String)
    /// A storage named by a persistent id (`('storage', torch.FloatStorage, key, location, numel)`).
    case storage(StorageRef)
    /// A tensor rebuilt by `torch._utils._rebuild_tensor_v2` and friends.
    case tensor(TensorRecord)
    /// An object of an inert class (e.g. a numpy scalar in a training-state entry): never
    /// constructed, kept only as the class name so that unrelated entries of a full training
    /// checkpoint do not stop the weights from loading.
    case opaque(String)

    /// Short type name for messages.
    public var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .global(let m, let n): return "\(m).\(n)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        case .opaque(let name): return name
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
    public var dictValue: PickleDict? { if case .dict(let d) = self { return d }; return nil }

    /// Elements of a tuple or list.
    public var sequence: [PickleValue]? {
        switch self {
        case .tuple(let t): return t
        case .list(let l): return l.items
        default: return nil
        }
    }
}

public final class PickleList: @unchecked Sendable {
    public var items: [PickleValue]
    /// Nesting bookkeeping of the unpickler (`Unpickler.maxDepth`).
    var nesting = Nesting()
    init(_ items: [PickleValue] = []) { self.items = items }
}

/// How deep a mutable container may be, as the unpickler tracks it: `depth` is at least the
/// height of the tree below the container (1 for an empty one), and once the container has been
/// placed in another (`sealed`) its depth may no longer grow — so every recorded depth stays an
/// upper bound, the tree stays within `Unpickler.maxDepth`, and no cycle can form.
struct Nesting {
    var depth = 1
    var sealed = false
}

/// An insertion-ordered dictionary (Python dicts and `OrderedDict` keep insertion order).
public final class PickleDict: @unchecked Sendable {
    public private(set) var keys: [PickleValue] = []
    public private(set) var values: [PickleValue] = []
    private var stringIndex: [String: Int] = [:]
    private var intIndex: [Int: Int] = [:]
    /// Nesting bookkeeping of the unpickler (`Unpickler.maxDepth`).
    var nesting = Nesting()

    init() {}

    func set(_ key: PickleValue, _ value: PickleValue) {
        switch key {
        case .string(let s):
            if let i = stringIndex[s] { values[i] = value; return }
            stringIndex[s] = keys.count
        case .int(let n):
            if let i = intIndex[n] { values[i] = value; return }
            intIndex[n] = keys.count
        default:
            break
        }
        keys.append(key)
        values.append(value)
    }

    public subscript(key: String) -> PickleValue? {
        stringIndex[key].map { values[$0] }
    }

    public var count: Int { keys.count }

    /// The string keys, in order (non-string keys are shown as their type).
    public var keyDescriptions: [String] {
        keys.map { k in
            switch k {
            case .string(let s): return s
            case .int(let i): return String(i)
            default: return "<\(k.typeName)>"
            }
        }
    }
}

/// A storage named by a persistent id. Its bytes are known at once in the zip format and only
/// after the whole object pickle in the legacy format, hence the mutable region. A legacy
/// storage *view* refers to a slice of a root storage.
public final class StorageRef: @unchecked Sendable {
    public let key: String
    public let dtype: TensorDType
    /// Element count announced by the persistent id.
    public let numel: Int
    var ownRegion: ByteRegion?
    let root: StorageRef?
    let rootOffset: Int

    init(key: String, dtype: TensorDType, numel: Int, region: ByteRegion? = nil) {
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.ownRegion = region
        self.root = nil
        self.rootOffset = 0
    }

    init(viewKey: String, of root: StorageRef, offset: Int, numel: Int) {
        self.key = viewKey
        self.dtype = root.dtype
        self.numel = numel
        self.ownRegion = nil
        self.root = root
        self.rootOffset = offset
    }

    /// The storage's bytes, checked against the file.
    func region(what: String) throws -> ByteRegion {
        if let root {
            let base = try root.region(what: what)
            let (start, o1) = rootOffset.multipliedReportingOverflow(by: dtype.size)
            let (length, o2) = numel.multipliedReportingOverflow(by: dtype.size)
            guard rootOffset >= 0, numel >= 0, !o1, !o2, start <= base.count, length <= base.count - start else {
                throw LinprobeError(
                    .corruptInput,
                    "\(what): storage view '\(key)' [\(rootOffset), +\(numel)) lies outside storage '\(root.key)'")
            }
            return ByteRegion(
                owner: base.owner, bytes: UnsafeRawBufferPointer(rebasing: base.bytes[start..<(start + length)]))
        }
        guard let ownRegion else {
            throw LinprobeError(
                .corruptInput, "\(what): the data of storage '\(key)' is missing from the file (truncated?)")
        }
        return ownRegion
    }
}

/// A tensor as described by the pickle: its storage and the view on it.
public struct TensorRecord: @unchecked Sendable {
    public let storage: StorageRef
    public let dtype: TensorDType
    public let shape: [Int]
    public let strides: [Int]
    public let storageOffset: Int

    /// The tensor, with its elements checked to lie inside the storage's bytes.
    public func resolve(what: String) throws -> CheckpointTensor {
        try CheckpointTensor(
            dtype: dtype, shape: shape, strides: strides, storageOffset: storageOffset,
            storage: try storage.region(what: what), what: what)
    }
}
