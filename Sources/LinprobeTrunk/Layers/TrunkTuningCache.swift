import CLinprobeTrunkKernels
import Foundation
import LinprobeBLAS
import LinprobeCore

/// What a tuning decision holds for: the machine as the kernels see it.
struct TrunkTuningMachine: Codable, Hashable, Sendable {
    /// `model name` of /proc/cpuinfo ("unknown" elsewhere).
    var cpu: String
    /// The trunk kernels' vector level: `avx512`, `avx2+fma` or `portable`.
    var isa: String
    var threads: Int
    /// OpenBLAS's kernel family (`openblas_get_corename`, which follows OPENBLAS_CORETYPE).
    var blasCore: String

    static func current(threads: Int) -> TrunkTuningMachine {
        let levels = ["portable", "avx2+fma", "avx512"]
        let level = Int(lp_trunk_simd_level())
        return TrunkTuningMachine(
            cpu: cpuModel, isa: levels.indices.contains(level) ? levels[level] : "level \(level)", threads: threads,
            blasCore: BLAS.coreName)
    }

    static let cpuModel: String = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }()
}

struct TrunkTuningKey: Codable, Hashable, Sendable {
    var machine: TrunkTuningMachine
    /// SHA-256 of the network's convolution shape set, micro-batch, chunking and candidates.
    var network: String
}

struct TrunkTuningLayer: Codable, Sendable {
    var shape: ConvShapeKey
    var algorithm: ConvAlgorithm
    /// Whether the layer holds more than one algorithm (only those shapes enter the plan).
    var choosable: Bool
    /// Measured seconds per image, by `<parallelism>/<algorithm>`.
    var timings: [String: Double]
}

struct TrunkTuningEntry: Codable, Sendable {
    var key: TrunkTuningKey
    var parallelism: TrunkParallelism
    var layers: [TrunkTuningLayer]
    /// How long the measurement took.
    var measuredSeconds: Double

    var choices: [ConvShapeKey: ConvAlgorithm] {
        Dictionary(
            layers.filter(\.choosable).map { ($0.shape, $0.algorithm) }, uniquingKeysWith: { a, _ in a })
    }
}

/// The cache file: `$XDG_CACHE_HOME/linprobe/trunk-tuning.json` (else `~/.cache/linprobe/…`).
struct TrunkTuningDocument: Codable, Sendable {
    static let formatName = "linprobe-trunk-tuning"
    static let currentVersion = 1

    var format = TrunkTuningDocument.formatName
    var version = TrunkTuningDocument.currentVersion
    var entries: [TrunkTuningEntry] = []
}

extension TrunkParallelism: Codable {}

/// Reads and writes tuning decisions. A missing file is an empty cache; a corrupt or foreign
/// file is ignored with a one-line warning (and replaced on the next save); a folder that cannot
/// be written means measuring each run, with one warning.
final class TrunkTuningCache: @unchecked Sendable {
    let path: String
    private let warn: (String) -> Void
    private let lock = NSLock()

    init(path: String, warn: @escaping (String) -> Void = TrunkTuningCache.standardWarning) {
        self.path = path
        self.warn = warn
    }

    static func standardWarning(_ message: String) {
        FileHandle.standardError.write(Data("linprobe: warning: \(message)\n".utf8))
    }

    /// The user's cache file, or nil when no cache folder can be named.
    static func user(environment: [String: String] = ProcessInfo.processInfo.environment) -> TrunkTuningCache? {
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return TrunkTuningCache(path: Paths.join(xdg, "linprobe", "trunk-tuning.json"))
        }
        guard let home = environment["HOME"], !home.isEmpty else { return nil }
        return TrunkTuningCache(path: Paths.join(home, ".cache", "linprobe", "trunk-tuning.json"))
    }

    /// The document on disk; empty when missing, corrupt or of another format or version.
    func load() -> TrunkTuningDocument {
        guard FileManager.default.fileExists(atPath: path) else { return TrunkTuningDocument() }
        struct Header: Decodable {
            var format: String?
            var version: Int?
        }
        guard let data = FileManager.default.contents(atPath: path),
            let header = try? JSONDecoder().decode(Header.self, from: data)
        else {
            warn("\(path): not a trunk tuning cache (unreadable JSON); ignoring it and measuring again")
            return TrunkTuningDocument()
        }
        guard header.format == TrunkTuningDocument.formatName, header.version == TrunkTuningDocument.currentVersion
        else {
            warn(
                "\(path): trunk tuning cache format \(header.format ?? "none") version \(header.version.map(String.init) ?? "none"), not \(TrunkTuningDocument.formatName) version \(TrunkTuningDocument.currentVersion); ignoring it and measuring again"
            )
            return TrunkTuningDocument()
        }
        do {
            return try JSONDecoder().decode(TrunkTuningDocument.self, from: data)
        } catch {
            warn("\(path): corrupt trunk tuning cache (\(oneLine(error))); ignoring it and measuring again")
            return TrunkTuningDocument()
        }
    }

    func entry(for key: TrunkTuningKey) -> TrunkTuningEntry? {
        lock.lock()
        defer { lock.unlock() }
        return load().entries.last { $0.key == key }
    }

    /// Adds (or replaces) `entry`; a failure to write is a warning, never an error.
    func store(_ entry: TrunkTuningEntry) {
        lock.lock()
        defer { lock.unlock() }
        var document = load()
        document.entries.removeAll { $0.key == entry.key }
        document.entries.append(entry)
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try encoder.encode(document), to: path)
        } catch {
            warn("cannot save the trunk tuning cache (\(oneLine(error))); it will be measured again next run")
        }
    }
}
