import CLinprobeSVMKernels

/// Zeroed arrays read at scattered places (the lockstep state, the Gram matrix) in memory marked
/// for transparent huge pages, so that scattered reads miss the TLB less (`lp_huge_alloc`).
enum HugePages {
    static func allocate<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let bytes = max(count, 1) * MemoryLayout<T>.stride
        guard let raw = lp_huge_alloc(UInt(bytes)) else { fatalError("out of memory (\(bytes) bytes)") }
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    static func free<T>(_ pointer: UnsafeMutablePointer<T>, count: Int) {
        lp_huge_free(UnsafeMutableRawPointer(pointer), UInt(max(count, 1) * MemoryLayout<T>.stride))
    }
}
