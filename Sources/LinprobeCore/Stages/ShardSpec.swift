import Foundation

/// One shard of a sharded extraction: shard `index` of `count` (`--shard I/N`).
///
/// A split's rows are cut into `count` contiguous ranges on whole units of `unit` rows (a batch
/// that is also a whole number of samples), so every shard forms exactly the batches an unsharded
/// run forms and its rows are bit-identical to the same rows of an unsharded store.
public struct ShardSpec: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw LinprobeError(.usage, "--shard I/N: N must be at least 1, got \(count)") }
        guard (0..<count).contains(index) else {
            throw LinprobeError(.usage, "--shard I/N: I must be 0…\(count - 1), got \(index)")
        }
        self.index = index
        self.count = count
    }

    /// `I/N`.
    public var description: String { "\(index)/\(count)" }

    /// Parses `I/N`.
    public static func parse(_ text: String) throws -> ShardSpec {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw LinprobeError(.usage, "--shard: expected I/N (shard I of N, I = 0…N−1), got '\(text)'")
        }
        return try ShardSpec(index: i, count: n)
    }

    /// The shard Slurm's job-array variables name (`SLURM_ARRAY_TASK_ID` of
    /// `SLURM_ARRAY_TASK_COUNT`), or nil outside a job array.
    public static func fromSlurm(_ environment: [String: String]) throws -> ShardSpec? {
        guard let id = environment["SLURM_ARRAY_TASK_ID"], let count = environment["SLURM_ARRAY_TASK_COUNT"] else {
            return nil
        }
        guard let i = Int(id), let n = Int(count) else {
            throw LinprobeError(
                .usage, "SLURM_ARRAY_TASK_ID=\(id), SLURM_ARRAY_TASK_COUNT=\(count): not whole numbers")
        }
        return try ShardSpec(index: i, count: n)
    }

    /// Rows of this shard among `rows`, cut on multiples of `unit` (the last unit may be short).
    /// Throws when there are fewer units than shards (a shard would be empty).
    public func rowRange(rows: Int, unit: Int) throws -> Range<Int> {
        let unit = max(1, unit)
        let units = (rows + unit - 1) / unit
        guard units >= count else {
            throw LinprobeError(
                .usage,
                "--shard \(self): \(rows) rows make only \(units) batch(es) of \(unit) rows, fewer than \(count) shards; use at most \(max(1, units)) shards"
            )
        }
        let lo = index * units / count * unit
        let hi = min(rows, (index + 1) * units / count * unit)
        return lo..<hi
    }

    /// The unit shards are cut on: the least common multiple of the batch and the views per sample.
    public static func unit(batch: Int, views: Int) -> Int {
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        let b = max(1, batch)
        let v = max(1, views)
        return b / gcd(b, v) * v
    }
}
