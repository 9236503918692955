import Foundation

/// What happened when a stage was asked to produce an artifact.
public enum StageOutcome: Sendable, Equatable {
    /// A complete record with the same fingerprint existed and its outputs were present.
    case reused(ManifestRecord)
    /// The stage ran (fully, or resuming earlier partial work) and completed.
    case ran(ManifestRecord)

    public var record: ManifestRecord {
        switch self {
        case .reused(let r), .ran(let r): return r
        }
    }

    public var wasReused: Bool { if case .reused = self { return true }; return false }
}

/// Runs one stage under the manifest's rules: skip when a complete record with the same
/// fingerprint exists (unless forced), otherwise record `running`, run, and record `complete`
/// with timings — or `failed` with the one-line reason, rethrowing the error. A `complete`
/// record is only written after the body has returned, so it never claims a partial output.
/// The whole of it runs under an exclusive lock on `<workdir>/.locks/<stage>-<fingerprint>.lock`.
public func runStage(
    _ stage: String, fingerprint: String, manifest: ManifestStore, inputs: JSONValue, parameters: JSONValue,
    outputs: [String], pipeline: String? = nil, force: Bool = false, waiting: ((String) -> Void)? = nil,
    body: () throws -> String?
) throws -> StageOutcome {
    // One process per artifact at a time (e.g. two pipelines sharing a store under `make -j2`):
    // the second waits, then finds the record complete and reuses the artifact.
    let lockPath = ((manifest.workdir as NSString).appendingPathComponent(".locks") as NSString)
        .appendingPathComponent("\(stage)-\(fingerprint).lock")
    return try FileLock.exclusive(lockPath, onWait: {
        waiting?("waiting for another linprobe process producing \(outputs.first ?? stage) (\(stage) \(fingerprint))")
    }) {
        try runStageLocked(stage, fingerprint: fingerprint, manifest: manifest, inputs: inputs, parameters: parameters,
                           outputs: outputs, pipeline: pipeline, force: force, body: body)
    }
}

private func runStageLocked(
    _ stage: String, fingerprint: String, manifest: ManifestStore, inputs: JSONValue, parameters: JSONValue,
    outputs: [String], pipeline: String?, force: Bool, body: () throws -> String?
) throws -> StageOutcome {
    if !force, let done = try manifest.completeRecord(stage: stage, fingerprint: fingerprint) {
        return .reused(done)
    }
    let start = Date()
    var record = ManifestRecord(stage: stage, fingerprint: fingerprint, status: .running, inputs: inputs,
                                parameters: parameters, outputs: outputs, pipeline: pipeline)
    try manifest.put(record)
    do {
        let message = try body()
        record.status = .complete
        record.message = message
    } catch {
        record.status = .failed
        record.message = oneLine(error)
        record.finished = Manifest.now()
        record.seconds = Date().timeIntervalSince(start)
        try? manifest.put(record)
        throw error
    }
    record.finished = Manifest.now()
    record.seconds = Date().timeIntervalSince(start)
    try manifest.put(record)
    return .ran(record)
}
