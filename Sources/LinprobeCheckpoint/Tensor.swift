import Foundation
import LinprobeCore

/// Element types a checkpoint tensor may have (the ones state dicts of image models use).
public enum TensorDType: String, Sendable, CaseIterable {
    case float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// The PyTorch legacy storage class naming this type (`torch.FloatStorage`, ...).
    static func fromStorageClass(_ name: String) -> TensorDType? {
        switch name {
        case "FloatStorage": return .float32
        case "HalfStorage": return .float16
        case "BFloat16Storage": return .bfloat16
        case "DoubleStorage": return .float64
        case "LongStorage": return .int64
        case "IntStorage": return .int32
        case "ShortStorage": return .int16
        case "CharStorage": return .int8
        case "ByteStorage": return .uint8
        case "BoolStorage": return .bool
        default: return nil
        }
    }

    /// A `torch.<dtype>` global (`torch.float32`, `torch.half`, ...).
    static func fromTorchDType(_ name: String) -> TensorDType? {
        switch name {
        case "float32", "float": return .float32
        case "float16", "half": return .float16
        case "bfloat16": return .bfloat16
        case "float64", "double": return .float64
        case "int64", "long": return .int64
        case "int32", "int": return .int32
        case "int16", "short": return .int16
        case "int8": return .int8
        case "uint8": return .uint8
        case "bool": return .bool
        default: return nil
        }
    }

    /// A safetensors dtype string (`F32`, `F16`, `BF16`, `F64`, `I64`, ...).
    static func fromSafetensors(_ name: String) -> TensorDType? {
        switch name {
        case "F32": return .float32
        case "F16": return .float16
        case "BF16": return .bfloat16
        case "F64": return .float64
        case "I64": return .int64
        case "I32": return .int32
        case "I16": return .int16
        case "I8": return .int8
        case "U8": return .uint8
        case "BOOL": return .bool
        default: return nil
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float64: return true
        default: return false
        }
    }
}

/// A tensor read from a checkpoint: a typed, strided view into bytes of the file (nothing is
/// copied until `floats()` is called). Shapes and strides are in elements, as in PyTorch.
public struct CheckpointTensor: @unchecked Sendable, CustomStringConvertible {
    public let dtype: TensorDType
    public let shape: [Int]
    public let strides: [Int]
    /// Offset of element [0, 0, ...] in elements from the start of `storage`.
    public let storageOffset: Int
    /// The storage's bytes (its element count is `storage.count / dtype.size`).
    public let storage: ByteRegion

    /// Creates a tensor view, checking that every element it addresses lies inside the storage.
    /// `what` names the tensor in errors.
    public init(
        dtype: TensorDType, shape: [Int], strides: [Int]? = nil, storageOffset: Int = 0,
        storage: ByteRegion, what: String
    ) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw LinprobeError(.corruptInput, "\(what): negative dimension in shape \(shape)")
        }
        let strides = strides ?? CheckpointTensor.contiguousStrides(shape)
        guard strides.count == shape.count else {
            throw LinprobeError(.corruptInput, "\(what): shape \(shape) and strides \(strides) differ in rank")
        }
        guard storageOffset >= 0, strides.allSatisfy({ $0 >= 0 }) else {
            throw LinprobeError(
                .unsupported, "\(what): negative storage offset or stride (offset \(storageOffset), strides \(strides))"
            )
        }
        let storageElements = storage.count / dtype.size
        var numel = 1
        var lastIndex = storageOffset
        for (d, s) in zip(shape, strides) {
            let (n, o1) = numel.multipliedReportingOverflow(by: d)
            guard !o1 else { throw LinprobeError(.corruptInput, "\(what): shape \(shape) overflows") }
            numel = n
            if d > 0 {
                let (step, o2) = (d - 1).multipliedReportingOverflow(by: s)
                let (sum, o3) = lastIndex.addingReportingOverflow(step)
                guard !o2, !o3 else { throw LinprobeError(.corruptInput, "\(what): strides \(strides) overflow") }
                lastIndex = sum
            }
        }
        // Zero strides (an expanded view) let a tiny storage announce any number of elements:
        // converted to float32 they must fit in half the machine's memory.
        let maxElements = Int(clamping: ProcessInfo.processInfo.physicalMemory / 8)
        if numel > maxElements {
            throw LinprobeError(
                .corruptInput,
                "\(what): tensor of shape \(shape) (strides \(strides)) has \(numel) elements, more than "
                    + "\(maxElements) (half of this machine's memory as float32)")
        }
        if numel > 0 && lastIndex >= storageElements {
            throw LinprobeError(
                .corruptInput,
                "\(what): tensor of shape \(shape) (strides \(strides), offset \(storageOffset)) reaches element \(lastIndex) but its storage holds only \(storageElements) \(dtype.rawValue) elements; the file is truncated or corrupt"
            )
        }
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.storageOffset = storageOffset
        self.storage = storage
    }

    /// A contiguous float32 tensor held in memory (tests and random initialisation).
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.dtype = .float32
        self.shape = shape
        self.strides = CheckpointTensor.contiguousStrides(shape)
        self.storageOffset = 0
        self.storage = values.withUnsafeBytes { ByteRegion(copying: $0) }
    }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = acc
            acc *= max(shape[i], 1)
        }
        return strides
    }

    public var count: Int { shape.reduce(1, *) }

    public var description: String { "\(dtype.rawValue)\(shape)" }

    /// The values as float32 in row-major (C) order, converted from the stored type
    /// (float16/bfloat16 exactly, float64 rounded to nearest, integers converted).
    /// Drops the resident pages of a mapped file that hold this tensor's elements (see
    /// `ByteRegion.releaseResidentPages`); the tensor stays readable.
    public func releaseResidentPages() {
        guard count > 0 else { return }
        let last = storageOffset + zip(shape, strides).reduce(0) { $0 + ($1.0 - 1) * $1.1 }
        storage.releaseResidentPages(storageOffset * dtype.size..<(last + 1) * dtype.size)
    }

    public func floats() -> [Float] {
        let n = count
        var out = [Float](repeating: 0, count: n)
        if n == 0 { return out }
        out.withUnsafeMutableBufferPointer { dst in
            // n > 0 and init checked that the n elements lie inside the storage: neither is nil.
            guard let raw = storage.bytes.baseAddress, let target = dst.baseAddress else { return }
            let esize = dtype.size
            let convert: (UnsafeRawPointer) -> Float
            switch dtype {
            case .float32: convert = { $0.loadUnaligned(as: Float.self) }
            case .float64: convert = { Float($0.loadUnaligned(as: Double.self)) }
            case .float16: convert = { Float(halfBits: $0.loadUnaligned(as: UInt16.self)) }
            case .bfloat16: convert = { Float(bitPattern: UInt32($0.loadUnaligned(as: UInt16.self)) << 16) }
            case .int64: convert = { Float($0.loadUnaligned(as: Int64.self)) }
            case .int32: convert = { Float($0.loadUnaligned(as: Int32.self)) }
            case .int16: convert = { Float($0.loadUnaligned(as: Int16.self)) }
            case .int8: convert = { Float($0.loadUnaligned(as: Int8.self)) }
            case .uint8, .bool: convert = { Float($0.load(as: UInt8.self)) }
            }
            // Fast path: contiguous float32 is a straight copy.
            if dtype == .float32 && strides == CheckpointTensor.contiguousStrides(shape) {
                memcpy(target, raw + storageOffset * esize, n * esize)
                return
            }
            let rank = shape.count
            if rank == 0 {
                dst[0] = convert(raw + storageOffset * esize)
                return
            }
            var index = [Int](repeating: 0, count: rank)
            var offset = storageOffset
            let inner = shape[rank - 1], innerStride = strides[rank - 1]
            var o = 0
            while o < n {
                var p = offset
                for _ in 0..<inner {
                    dst[o] = convert(raw + p * esize)
                    o += 1
                    p += innerStride
                }
                // Advance the outer index (odometer).
                var d = rank - 2
                while d >= 0 {
                    index[d] += 1
                    offset += strides[d]
                    if index[d] < shape[d] { break }
                    offset -= strides[d] * shape[d]
                    index[d] = 0
                    d -= 1
                }
                if d < 0 { break }
            }
        }
        return out
    }

    /// The values as Int64 (for integer bookkeeping tensors such as `num_batches_tracked`).
    public func int64s() -> [Int64] {
        floats().map { Int64($0) }
    }

    /// Rows `range` of the first dimension, as a view of the same storage (nothing is copied).
    public func rows(_ range: Range<Int>) throws -> CheckpointTensor {
        guard let first = shape.first, range.lowerBound >= 0, range.upperBound <= first else {
            throw LinprobeError(.usage, "rows \(range) of a tensor of shape \(shape)")
        }
        var view = shape
        view[0] = range.count
        return try CheckpointTensor(
            dtype: dtype, shape: view, strides: strides, storageOffset: storageOffset + range.lowerBound * strides[0],
            storage: storage, what: "tensor rows \(range)")
    }

    /// The values as Int64 in row-major order, exact for integer types (labels, indices);
    /// floating-point values are rounded toward zero.
    public func integers() -> [Int64] {
        guard !dtype.isFloatingPoint, let raw = storage.bytes.baseAddress, count > 0 else {
            return floats().map { Int64($0) }
        }
        let esize = dtype.size
        let load: (UnsafeRawPointer) -> Int64
        switch dtype {
        case .int64: load = { $0.loadUnaligned(as: Int64.self) }
        case .int32: load = { Int64($0.loadUnaligned(as: Int32.self)) }
        case .int16: load = { Int64($0.loadUnaligned(as: Int16.self)) }
        case .int8: load = { Int64($0.load(as: Int8.self)) }
        default: load = { Int64($0.load(as: UInt8.self)) }
        }
        var out: [Int64] = []
        out.reserveCapacity(count)
        var index = [Int](repeating: 0, count: shape.count)
        for _ in 0..<count {
            let offset = zip(index, strides).reduce(storageOffset) { $0 + $1.0 * $1.1 }
            out.append(load(raw + offset * esize))
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }
}

extension Float {
    /// IEEE 754 binary16 → binary32 (exact; subnormals, infinities and NaN included).
    init(halfBits h: UInt16) {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        let mant = UInt32(h & 0x3FF)
        let bits: UInt32
        if exp == 0 {
            if mant == 0 {
                bits = sign
            } else {
                // Subnormal: normalise.
                var e: UInt32 = 127 - 15 + 1
                var m = mant
                while m & 0x400 == 0 { m <<= 1; e -= 1 }
                bits = sign | (e << 23) | ((m & 0x3FF) << 13)
            }
        } else if exp == 0x1F {
            bits = sign | 0x7F80_0000 | (mant << 13)
        } else {
            bits = sign | ((exp + 127 - 15) << 23) | (mant << 13)
        }
        self = Float(bitPattern: bits)
    }
}
