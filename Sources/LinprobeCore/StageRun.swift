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
public func runStage(
    _ stage: String, fingerprint: String, manifest: ManifestStore, inputs: JSONValue, parameters: JSONValue,
    outputs: [String], pipeline: String? = nil, force: Bool = false,
    body: () throws -> String?
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
