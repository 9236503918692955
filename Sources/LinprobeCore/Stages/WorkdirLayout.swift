import Foundation

/// Every path under a work folder, in one place. Stages, the manifest and the report ask this type
/// where an artifact lives; no other code spells a work-folder path.
///
/// ```
/// <root>/manifest.json                     the manifest (and manifest.json.lock)
/// <root>/file-hashes.json                  cached SHA-256 of large input files
/// <root>/.locks/<stage>-<fp>.lock          one lock per artifact
/// <root>/features/<fp>/<split>.h5          feature stores (extract, import-features)
/// <root>/features/<fp>/parts/<split>-<i>-of-<n>.h5   part stores of a sharded extraction
/// <root>/svm/<fp>/<layer>/results.json     train-svm
/// <root>/linear/<fp>/<head>/results.json   train-linear
/// <root>/knn/<fp>/<layer>/results.json     knn
/// <root>/reports/<pipeline>/report.{md,json,html}
/// <root>/slurm/<pipeline>/                 sbatch scripts, job logs and submitted job ids
/// ```
public struct WorkdirLayout: Sendable, Equatable {
    /// The work folder as given (relative or absolute).
    public let root: String

    public init(_ root: String) { self.root = root }

    /// The artifacts a work folder holds.
    public enum Artifact: Sendable, Equatable {
        case manifest
        case fileHashes
        case lock(StageKind, fingerprint: String)
        case featureStore(fingerprint: String, split: String)
        /// Shard `index` of `count` of a split's store (`extract --shard I/N`).
        case featurePart(fingerprint: String, split: String, index: Int, count: Int)
        case svmRun(fingerprint: String)
        case svmLayer(fingerprint: String, layer: String)
        case linearRun(fingerprint: String)
        case linearHead(fingerprint: String, head: String)
        case knnRun(fingerprint: String)
        case knnLayer(fingerprint: String, layer: String)
        case reportFolder(pipeline: String)
        case reportFile(pipeline: String, name: String)
        /// A Slurm submission's folder: scripts, logs, `jobs.json`.
        case slurmFolder(pipeline: String)
        case slurmFile(pipeline: String, name: String)
    }

    /// The artifact's path relative to the work folder (as the manifest records it).
    public func relativePath(_ artifact: Artifact) -> String {
        switch artifact {
        case .manifest: return "manifest.json"
        case .fileHashes: return "file-hashes.json"
        case .lock(let stage, let fp): return ".locks/\(stage.name)-\(fp).lock"
        case .featureStore(let fp, let split): return "features/\(fp)/\(split).h5"
        case .featurePart(let fp, let split, let i, let n): return "features/\(fp)/\(Self.partFile(split, i, n))"
        case .svmRun(let fp): return "svm/\(fp)"
        case .svmLayer(let fp, let layer): return "svm/\(fp)/\(layer)"
        case .linearRun(let fp): return "linear/\(fp)"
        case .linearHead(let fp, let head): return "linear/\(fp)/\(head)"
        case .knnRun(let fp): return "knn/\(fp)"
        case .knnLayer(let fp, let layer): return "knn/\(fp)/\(layer)"
        case .reportFolder(let pipeline): return "reports/\(pipeline)"
        case .reportFile(let pipeline, let name): return "reports/\(pipeline)/\(name)"
        case .slurmFolder(let pipeline): return "slurm/\(pipeline)"
        case .slurmFile(let pipeline, let name): return "slurm/\(pipeline)/\(name)"
        }
    }

    /// The artifact's path inside the work folder.
    public func path(_ artifact: Artifact) -> String { resolve(relativePath(artifact)) }

    /// A path recorded relative to the work folder, made usable (absolute paths are kept).
    public func resolve(_ recorded: String) -> String {
        Paths.absolute(recorded, relativeTo: root)
    }

    /// `path` relative to the work folder when it lies inside it, otherwise its absolute form.
    public func relative(_ path: String) -> String {
        let p = Paths.standardized(path)
        let w = Paths.standardized(root)
        return p.hasPrefix(w + "/") ? String(p.dropFirst(w.count + 1)) : p
    }

    /// A part store's path relative to its split store's folder (how a merged store names its
    /// parts, so the work folder can move): `parts/<split>-<i>-of-<n>.h5`.
    public static func partFile(_ split: String, _ index: Int, _ count: Int) -> String {
        "parts/\(split)-\(index)-of-\(count).h5"
    }

    /// Where `results.json` lives in a results folder.
    public static func resultsFile(in folder: String) -> String {
        Paths.join(folder, "results.json")
    }
}
