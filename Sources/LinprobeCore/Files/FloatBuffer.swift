import Foundation

/// The one float buffer: a fixed-size, 64-byte aligned, zero-initialised (or `value`-filled) block
/// of float32 owned by one object and freed in `deinit` (trunk activations and weights, head
/// parameters, optimizer state, workspaces).
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int, value: Float = 0) {
        precondition(count >= 0, "negative buffer size \(count)")
        self.count = count
        let capacity = max(1, count)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: capacity)
        pointer.initialize(repeating: value, count: capacity)
    }

    public convenience init(_ count: Int, value: Float = 0) {
        self.init(count: count, value: value)
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        copy(from: values)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    public func fill(_ value: Float) { pointer.update(repeating: value, count: count) }

    public func copy(from values: [Float]) {
        precondition(values.count == count, "copying \(values.count) values into a buffer of \(count)")
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: count) }
        }
    }

    /// True when every value is finite.
    public var allFinite: Bool {
        var acc: Float = 0
        for i in 0..<count { acc += pointer[i] * 0 }  // NaN or ±inf turn the sum into NaN
        return acc == 0
    }
}
