import Foundation

/// The most memory one buffer sized by the configuration may take: half of the machine's
/// physical memory (`ProcessInfo.physicalMemory`). Sizes are checked against it before anything
/// is allocated, with overflow-checked arithmetic, so a configuration asking for terabytes is a
/// one-line error giving the figure instead of an allocation abort. Used by the transforms, the
/// trunk's workspaces and pool ops, the store reader and the `.npy` reader.
public enum MemoryBudget {
    public static var physicalBytes: UInt64 { ProcessInfo.processInfo.physicalMemory }

    /// Half the physical memory, in bytes.
    public static var limitBytes: Int { Int(clamping: physicalBytes / 2) }

    /// The product of `factors` (bytes), or nil when it overflows or a factor is negative.
    public static func product(_ factors: [Int]) -> Int? {
        var total = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (p, overflow) = total.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            total = p
        }
        return total
    }

    /// nil when `factors` multiply to at most the limit; otherwise the phrase "needs [at least]
    /// <figure>, more than the <limit> limit (half of this machine's <memory> of memory)".
    public static func excess(_ factors: [Int], atLeast: Bool = false) -> String? {
        excess(sumOf: [factors], atLeast: atLeast)
    }

    /// As `excess(_:)` for several buffers held at once: the sum of the products of `terms`.
    public static func excess(sumOf terms: [[Int]], atLeast: Bool = false) -> String? {
        var total: Int? = 0
        for t in terms {
            guard let sum = total, let bytes = product(t) else {
                total = nil
                break
            }
            let (s, overflow) = sum.addingReportingOverflow(bytes)
            total = overflow ? nil : s
        }
        if let total, total <= limitBytes { return nil }
        let figure = terms.reduce(0.0) { sum, t in sum + t.reduce(1.0) { $0 * Double($1) } }
        return "needs \(atLeast ? "at least " : "")\(text(figure)), more than the \(text(Double(limitBytes))) limit "
            + "(half of this machine's "
            + "\(text(Double(physicalBytes))) of memory)"
    }

    /// Bytes in decimal units, e.g. "25.6 GB".
    public static func text(_ bytes: Double) -> String {
        let units = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"]
        var value = bytes, unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        if unit == 0 { return "\(Int(value)) bytes" }
        if value >= 1000 { return String(format: "%.3g", bytes) + " bytes" }
        return String(format: "%.1f", value) + " " + units[unit]
    }
}
