import Foundation

/// What a stage will produce, decided from the configuration and its inputs before any work:
/// the artifact's fingerprint, what went into it, and where its outputs go.
public struct StagePlan: Sendable, Equatable {
    public var kind: StageKind
    /// Short content fingerprint of everything that determines the outputs.
    public var fingerprint: String
    /// Fingerprints of input artifacts and hashes of input files.
    public var inputs: JSONValue
    /// The effective parameters that went into the fingerprint.
    public var parameters: JSONValue
    /// Output paths relative to the work folder (see `WorkdirLayout`); a reused record needs
    /// every one of them to exist.
    public var outputs: [String]
    /// The pipeline that asked for it.
    public var pipeline: String?

    public init(
        kind: StageKind, fingerprint: String, inputs: JSONValue, parameters: JSONValue, outputs: [String],
        pipeline: String?
    ) {
        self.kind = kind
        self.fingerprint = fingerprint
        self.inputs = inputs
        self.parameters = parameters
        self.outputs = outputs
        self.pipeline = pipeline
    }
}

/// What a running stage may use: the work folder, the progress reporter and a diagnostic sink.
public struct StageContext: Sendable {
    public let layout: WorkdirLayout
    public let progress: ProgressReporter
    /// One-line diagnostics for stderr (warnings, notes).
    public let note: @Sendable (String) -> Void

    public init(layout: WorkdirLayout, progress: ProgressReporter, note: @escaping @Sendable (String) -> Void) {
        self.layout = layout
        self.progress = progress
        self.note = note
    }
}

/// A stage of the pipeline: planned (config + inputs → `StagePlan`), then run, returning a typed
/// outcome. The manifest (lock, reuse, record, failure) is handled once, by `StageRunner`, for
/// every stage; a stage only says what it will produce, how to produce it, and how to describe
/// outputs that already exist.
public protocol PipelineStage {
    associatedtype Outcome

    /// Fingerprint, inputs, parameters and outputs; computed without running anything.
    var plan: StagePlan { get }

    /// Produces the outputs (resuming earlier partial work where the stage can).
    func run(_ context: StageContext) throws -> Outcome

    /// The outcome of outputs that a complete manifest record with this fingerprint vouches for.
    func reuse(_ context: StageContext, record: ManifestRecord) throws -> Outcome

    /// A one-line note for the manifest record of a finished run (e.g. "resumed at epoch 3").
    func manifestMessage(_ outcome: Outcome) -> String?

    /// Called under the artifact's lock before a forced run: forget partial or finished work the
    /// stage would otherwise resume from or take as it is.
    func discardPreviousRun(_ context: StageContext) throws

    /// Called before a reuse with one line per output file changed since the record was completed
    /// (size or modification time, `ManifestRecord.changedOutputs`). The default refuses the
    /// first, so a changed artifact is never silently reused; a stage whose reuse rewrites its
    /// outputs anyway (report) accepts them.
    func outputsChanged(_ context: StageContext, changes: [String]) throws
}

extension PipelineStage {
    public func manifestMessage(_ outcome: Outcome) -> String? { nil }
    public func discardPreviousRun(_ context: StageContext) throws {}
    public func outputsChanged(_ context: StageContext, changes: [String]) throws {
        if let first = changes.first { throw LinprobeError(.incompatible, first) }
    }
}

/// A stage's outcome and the manifest record behind it.
public struct StageResult<Outcome> {
    public var outcome: Outcome
    public var record: ManifestRecord
    /// True when a complete record with the same fingerprint was found and nothing ran.
    public var reused: Bool
}

/// Runs stages under the manifest's rules, the same way for every stage: under an exclusive lock
/// on the artifact (`WorkdirLayout.Artifact.lock`), reuse a complete record whose outputs exist
/// (unless forced); otherwise record `running`, run, and record `complete` with timings — or
/// `failed` with the one-line reason, rethrowing the error. A `complete` record is written only
/// after the stage returned, so it never claims a partial output.
public struct StageRunner: Sendable {
    public let layout: WorkdirLayout
    public var force: Bool
    public let note: @Sendable (String) -> Void

    public init(layout: WorkdirLayout, force: Bool = false, note: @escaping @Sendable (String) -> Void = { _ in }) {
        self.layout = layout
        self.force = force
        self.note = note
    }

    public var manifest: ManifestStore { ManifestStore(layout: layout) }

    /// Plans are checked, then the stage runs or is reused. `progress` defaults to a reporter
    /// named after the stage.
    public func execute<S: PipelineStage>(
        _ stage: S, progress: ProgressReporter? = nil
    ) throws -> StageResult<S.Outcome> {
        let plan = stage.plan
        let context = StageContext(
            layout: layout, progress: progress ?? ProgressReporter(stage: plan.kind.name), note: note)
        let lockPath = layout.path(.lock(plan.kind, fingerprint: plan.fingerprint))
        // One process per artifact at a time (two pipelines sharing a store under `make -j2`): the
        // second waits, then finds the record complete and reuses the artifact.
        let waiting =
            "waiting for another linprobe process producing \(plan.outputs.first ?? plan.kind.name) (\(plan.kind.name) \(plan.fingerprint))"
        return try FileLock.exclusive(
            lockPath, onWait: { note(waiting) }, { try executeLocked(stage, plan: plan, context: context) })
    }

    private func executeLocked<S: PipelineStage>(
        _ stage: S, plan: StagePlan, context: StageContext
    ) throws
        -> StageResult<S.Outcome>
    {
        let store = manifest
        if !force, let done = try store.completeRecord(stage: plan.kind.name, fingerprint: plan.fingerprint) {
            try stage.outputsChanged(context, changes: done.changedOutputs(layout))
            return StageResult(outcome: try stage.reuse(context, record: done), record: done, reused: true)
        }
        if force { try stage.discardPreviousRun(context) }
        if let previous = try store.read().record(stage: plan.kind.name, fingerprint: plan.fingerprint),
            previous.status == .running
        {
            // We hold the artifact's lock, so no process is still producing it.
            note(
                "note: the previous \(plan.kind.name) run (started \(previous.started)) ended without a record — killed, or its disk was full; starting again (extraction resumes its partial stores)"
            )
        }
        let start = Date()
        var record = ManifestRecord(
            stage: plan.kind.name, fingerprint: plan.fingerprint, status: .running, inputs: plan.inputs,
            parameters: plan.parameters, outputs: plan.outputs, pipeline: plan.pipeline)
        try store.put(record)
        let outcome: S.Outcome
        do {
            outcome = try stage.run(context)
        } catch {
            record.status = .failed
            record.message = oneLine(error)
            record.finished = Manifest.now()
            record.seconds = Date().timeIntervalSince(start)
            do { try store.put(record) } catch let recordError {
                note("note: could not record the failure in \(store.path): \(oneLine(recordError))")
            }
            throw error
        }
        record.status = .complete
        record.message = stage.manifestMessage(outcome)
        record.finished = Manifest.now()
        record.seconds = Date().timeIntervalSince(start)
        record.stampOutputs(layout)
        try store.put(record)
        return StageResult(outcome: outcome, record: record, reused: false)
    }
}
