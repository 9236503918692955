import Foundation

/// One parser under fuzzing: where its seed inputs come from, which offsets hold its header
/// fields, and how one input is parsed. `parse` returns normally when the input was accepted and
/// throws when it was rejected; anything else (a crash, a hang, an allocation past the limit) is a
/// finding.
public struct FuzzTarget: Sendable {
    /// Short name (`checkpoint`, `yaml`, `npy`, `store`, `image`): command-line argument,
    /// findings folder and regression-fixture folder (`Tests/Fixtures/fuzz/<name>/`).
    public let name: String
    /// Mutants run by `make fuzz` when `ITER` is not given.
    public let defaultIterations: Int
    /// Seed files, relative to the repository root (folders: every file with one of `extensions`).
    let seedPaths: [String]
    let extensions: [String]
    /// Largest seed file taken (bytes); larger ones dilute the mutations.
    let maximumSeedBytes: Int
    /// Offsets of the format's header fields in one input (mutations aim there half of the time).
    let hotspots: @Sendable ([UInt8]) -> [Int]
    /// Parses one input, stored at `path` for parsers that read files.
    let parse: @Sendable (_ bytes: [UInt8], _ path: String) throws -> Void
    /// The native library whose faults on a corrupt file are a known upstream limitation.
    let upstream: Upstream?
    /// Whether the seeds are parsed once in the runner's own process first (building lazy state
    /// before the children fork); off for the self-test targets, which misbehave on every input.
    var warmsUp = true
    /// Repairs what a mutation broke before the parser under test sees it (checksums), applied
    /// to half of the mutants; the other half keep the damage.
    var repair: @Sendable ([UInt8]) -> [UInt8] = { $0 }

    /// Parses `bytes` (written to `path` first): returns when accepted, throws when rejected.
    public func run(_ bytes: [UInt8], path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try parse(bytes, path)
    }

    /// The seed inputs under `root` (the repository), in a stable order.
    public func seeds(root: String) throws -> [[UInt8]] {
        var files: [String] = []
        let manager = FileManager.default
        for relative in seedPaths {
            let path = (root as NSString).appendingPathComponent(relative)
            var isFolder: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isFolder) else { continue }
            if isFolder.boolValue {
                let names = try manager.contentsOfDirectory(atPath: path).sorted()
                files += names.filter { n in extensions.contains { n.hasSuffix($0) } }.map {
                    (path as NSString).appendingPathComponent($0)
                }
            } else {
                files.append(path)
            }
        }
        let seeds = try files.map { Array(try Data(contentsOf: URL(fileURLWithPath: $0))) }
            .filter { !$0.isEmpty && $0.count <= maximumSeedBytes }
        guard !seeds.isEmpty else {
            throw FuzzError("\(name): no seed inputs under \(root) (\(seedPaths.joined(separator: ", ")))")
        }
        return seeds
    }
}

/// A native library that cannot be trusted with a corrupt file (libhdf5, case 8 of issue 19): a
/// crash whose innermost frame lies in `library`, or a crash or hang that the library's own `tool`
/// reproduces on the same file, is counted apart from Linprobe's own findings.
struct Upstream: Sendable {
    let library: String
    let tool: [String]
}

/// A harness failure (missing seeds, unknown target): not a finding.
public struct FuzzError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Every offset at which one of `patterns` starts in `bytes`, each widened to `span` bytes.
func offsets(of patterns: [[UInt8]], in bytes: [UInt8], span: Int, limit: Int = 4096) -> [Int] {
    var found: [Int] = []
    guard let shortest = patterns.map(\.count).min(), shortest > 0, bytes.count >= shortest else { return [] }
    for i in 0...(bytes.count - shortest) where found.count < limit {
        for p in patterns where i + p.count <= bytes.count && bytes[i] == p[0] {
            if bytes[i..<(i + p.count)].elementsEqual(p) {
                found += stride(from: i, to: min(bytes.count, i + span), by: 1)
                break
            }
        }
    }
    return found
}
