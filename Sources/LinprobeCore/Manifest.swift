import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One artifact's record in `<workdir>/manifest.json`.
public struct ManifestRecord: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable { case running, complete, failed }

    /// `extract`, `train-svm`, `train-linear`, `report` (`StageKind.name`).
    public var stage: String
    /// Short content fingerprint of everything that determines the artifact.
    public var fingerprint: String
    public var status: Status
    /// Fingerprints of input artifacts and hashes of input files.
    public var inputs: JSONValue
    /// The effective parameters that went into the fingerprint.
    public var parameters: JSONValue
    /// Output paths, relative to the work folder.
    public var outputs: [String]
    /// ISO-8601 times and the duration in seconds.
    public var started: String
    public var finished: String?
    public var seconds: Double?
    /// The pipeline that asked for it, and a one-line message (failure reason, notes).
    public var pipeline: String?
    public var message: String?
    /// Size and modification time of each output file when the record was completed (absent in
    /// records written before they were kept, and for folders).
    public var outputFiles: [String: OutputFileStamp]?

    public init(
        stage: String, fingerprint: String, status: Status, inputs: JSONValue = .object([:]),
        parameters: JSONValue = .object([:]), outputs: [String] = [], started: String = Manifest.now(),
        finished: String? = nil, seconds: Double? = nil, pipeline: String? = nil, message: String? = nil
    ) {
        self.stage = stage
        self.fingerprint = fingerprint
        self.status = status
        self.inputs = inputs
        self.parameters = parameters
        self.outputs = outputs
        self.started = started
        self.finished = finished
        self.seconds = seconds
        self.pipeline = pipeline
        self.message = message
    }

    /// The record's key in the manifest: `<stage>/<fingerprint>`.
    public var key: String { "\(stage)/\(fingerprint)" }

    enum CodingKeys: String, CodingKey {
        case stage, fingerprint, status, inputs, parameters, outputs, started, finished, seconds, pipeline, message
        case outputFiles = "output_files"
    }

    /// Stamps every output that is a regular file now.
    public mutating func stampOutputs(_ layout: WorkdirLayout) {
        var stamps: [String: OutputFileStamp] = [:]
        for output in outputs {
            if let stamp = OutputFileStamp(path: layout.resolve(output)) { stamps[output] = stamp }
        }
        outputFiles = stamps.isEmpty ? nil : stamps
    }

    /// One line per stamped output that changed since the record was completed.
    public func changedOutputs(_ layout: WorkdirLayout) -> [String] {
        (outputFiles ?? [:]).keys.sorted().compactMap { changedOutput($0, layout) }
    }

    /// The line for one output when it is stamped and changed since (nil when unchanged, not
    /// stamped, or gone — a missing output is handled as missing).
    public func changedOutput(_ output: String, _ layout: WorkdirLayout) -> String? {
        let path = layout.resolve(output)
        guard let stamp = outputFiles?[output], let now = OutputFileStamp(path: path), now != stamp else { return nil }
        return
            "\(path): changed since \(stage) wrote it (\(stamp.size) → \(now.size) bytes, modified \(now.modifiedDescription)); rerun with --force to make it again, or restore the file"
    }
}

/// A file's size and modification time (nanoseconds since 1970), as `stat` gives them.
public struct OutputFileStamp: Codable, Sendable, Equatable {
    public var size: Int64
    public var modifiedNanoseconds: Int64

    enum CodingKeys: String, CodingKey {
        case size
        case modifiedNanoseconds = "modified_ns"
    }

    public init(size: Int64, modifiedNanoseconds: Int64) {
        self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds
    }

    /// The stamp of a regular file; nil for anything else or a missing path.
    public init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        size = Int64(st.st_size)
        modifiedNanoseconds = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    }

    var modifiedDescription: String {
        let date = Date(timeIntervalSince1970: Double(modifiedNanoseconds) / 1e9)
        let f = ISO8601DateFormatter()
        return f.string(from: date)
    }
}

/// The manifest file's content.
public struct Manifest: Codable, Sendable, Equatable {
    public static let formatName = "linprobe.manifest"
    public static let currentVersion = 1

    public var format: String
    public var formatVersion: Int
    /// Records keyed by `<stage>/<fingerprint>`.
    public var records: [String: ManifestRecord]

    public init() {
        format = Manifest.formatName
        formatVersion = Manifest.currentVersion
        records = [:]
    }

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case records
    }

    public static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }

    /// The record of a stage with this fingerprint.
    public func record(stage: String, fingerprint: String) -> ManifestRecord? {
        records["\(stage)/\(fingerprint)"]
    }
}

/// Reads and updates `<workdir>/manifest.json` safely: every update is a read-modify-write under
/// an exclusive `flock` on `manifest.json.lock` (so concurrent stages, e.g. under `make -j2`, never
/// lose a record), and the file is replaced atomically (temporary file, fsync, rename).
public final class ManifestStore: @unchecked Sendable {
    public let layout: WorkdirLayout
    public var workdir: String { layout.root }
    public var path: String { layout.path(.manifest) }
    private var lockPath: String { path + ".lock" }
    private let threadLock = NSLock()

    public init(layout: WorkdirLayout) {
        self.layout = layout
    }

    public convenience init(workdir: String) {
        self.init(layout: WorkdirLayout(workdir))
    }

    /// The current manifest (an empty one when the file does not exist yet).
    public func read() throws -> Manifest {
        try withLock { try readUnlocked() }
    }

    /// Applies `change` to the current manifest and writes the result atomically.
    @discardableResult
    public func update(_ change: (inout Manifest) throws -> Void) throws -> Manifest {
        try withLock {
            var manifest = try readUnlocked()
            try change(&manifest)
            try writeUnlocked(manifest)
            return manifest
        }
    }

    /// Records (or replaces) one record.
    public func put(_ record: ManifestRecord) throws {
        try update { $0.records[record.key] = record }
    }

    /// A complete record for the stage and fingerprint whose outputs all still exist (whether they
    /// changed since is the caller's question: `ManifestRecord.changedOutputs`).
    public func completeRecord(stage: String, fingerprint: String) throws -> ManifestRecord? {
        guard let r = try read().record(stage: stage, fingerprint: fingerprint), r.status == .complete else {
            return nil
        }
        let fm = FileManager.default
        for output in r.outputs where !fm.fileExists(atPath: layout.resolve(output)) {
            return nil
        }
        return r
    }

    /// Throws when a complete record lists `path` (absolute or relative to the work folder) as an
    /// output and the file changed since; a file no record stamps passes.
    public func checkUnchanged(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: self.path) else { return }
        let relative = layout.relative(path)
        // Every output of the record that lists the file: a virtual store's parts are its data.
        for r in try read().records.values where r.status == .complete && r.outputs.contains(relative) {
            if let changed = r.changedOutputs(layout).first { throw LinprobeError(.incompatible, changed) }
        }
    }

    private func readUnlocked() throws -> Manifest {
        guard FileManager.default.fileExists(atPath: path) else { return Manifest() }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw LinprobeError(.io, "\(path): cannot read the manifest: \(oneLine(error))")
        }
        let probe: JSONValue
        do { probe = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw LinprobeError(
                .corruptInput, "\(path): the manifest is not valid JSON; move it aside to start a fresh work folder")
        }
        guard probe["format"]?.stringValue == Manifest.formatName else {
            throw LinprobeError(
                .incompatible, "\(path): not a Linprobe manifest (format is not '\(Manifest.formatName)')")
        }
        let version = probe["format_version"]?.intValue ?? -1
        guard version >= 1, version <= Int64(Manifest.currentVersion) else {
            throw LinprobeError(
                .incompatible,
                "\(path): manifest format version \(version) is not supported by this Linprobe (reads \(Manifest.currentVersion))"
            )
        }
        do { return try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw LinprobeError(.corruptInput, "\(path): manifest records are malformed: \(oneLine(error))")
        }
    }

    private func writeUnlocked(_ manifest: Manifest) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(manifest)
        try AtomicFile.write(data, to: path)
    }

    private func withLock<T>(_ body: () throws -> T) throws -> T {
        threadLock.lock()
        defer { threadLock.unlock() }
        return try FileLock.exclusive(lockPath, body)
    }
}

/// SHA-256 of large input files, computed once and cached by (path, size, mtime) in
/// `<workdir>/file-hashes.json`.
public final class FileHashCache: @unchecked Sendable {
    private let cachePath: String
    private let lock = NSLock()

    public init(workdir: String) {
        cachePath = WorkdirLayout(workdir).path(.fileHashes)
    }

    public func sha256(of file: String) throws -> String {
        let absolute = URL(fileURLWithPath: file).standardizedFileURL.path
        let attrs: [FileAttributeKey: Any]
        do { attrs = try FileManager.default.attributesOfItem(atPath: absolute) } catch {
            throw LinprobeError(.missingInput, "\(file): no such file")
        }
        let size = (attrs[.size] as? NSNumber)?.int64Value ?? -1
        let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let stamp = "\(size):\(mtime)"
        lock.lock()
        defer { lock.unlock() }
        var cache = loadCache()
        if let entry = cache[absolute], entry["stamp"]?.stringValue == stamp, let hash = entry["sha256"]?.stringValue {
            return hash
        }
        let hash = try Fingerprint.sha256(ofFile: absolute)
        cache[absolute] = ["stamp": .string(stamp), "sha256": .string(hash)]
        try? AtomicFile.write(JSONValue.object(cache).canonicalText, to: cachePath)
        return hash
    }

    private func loadCache() -> [String: JSONValue] {
        guard let data = FileManager.default.contents(atPath: cachePath),
            let value = try? JSONDecoder().decode(JSONValue.self, from: data), let o = value.objectValue
        else { return [:] }
        return o
    }
}
