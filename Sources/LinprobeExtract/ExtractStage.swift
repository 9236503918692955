import Foundation
import LinprobeBLAS
import LinprobeCheckpoint
import LinprobeCodecs
import LinprobeCore
import LinprobeData
import LinprobeHDF5
import LinprobeStore
import LinprobeTrunk

/// How to run the stage (command-line choices; the pipeline's settings are in the plans).
public struct ExtractOptions: Sendable {
    /// Folder holding `manifest.json`, the weights-hash cache and `features/`.
    public var workdir: String
    /// Trunk threads; nil = `LINPROBE.THREADS` (0 = every core).
    public var threads: Int?
    /// Decode workers; nil = `DATA.NUM_DATALOADER_WORKERS` when the pipeline sets it (at most one
    /// per core), else `ExtractStage.defaultDecodeWorkers`.
    public var decodeWorkers: Int?
    /// Stop at the first unreadable image; nil = `LINPROBE.STRICT_IMAGES`.
    public var strict: Bool?
    /// Re-extract even when the manifest has a complete store (replaces it and any partial one).
    public var force: Bool
    /// Seconds between flushes of the store (how much work a SIGKILL can lose).
    public var flushInterval: TimeInterval
    /// How progress is shown; nil = a bar on a terminal, periodic lines in a log
    /// (`ProgressReporter.defaultMode`).
    public var progress: ProgressReporter.Mode?
    /// Polled between batches; true stops cleanly (SIGINT/SIGTERM), keeping the rows so far.
    public var shouldStop: @Sendable () -> Bool
    /// Diagnostics (notes, warnings, summaries) — stderr in the CLI.
    public var note: @Sendable (String) -> Void

    public init(
        workdir: String, threads: Int? = nil, decodeWorkers: Int? = nil, strict: Bool? = nil, force: Bool = false,
        flushInterval: TimeInterval = 5, progress: ProgressReporter.Mode? = nil,
        shouldStop: @escaping @Sendable () -> Bool = { false },
        note: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    ) {
        self.workdir = workdir
        self.threads = threads
        self.decodeWorkers = decodeWorkers
        self.strict = strict
        self.force = force
        self.flushInterval = flushInterval
        self.progress = progress
        self.shouldStop = shouldStop
        self.note = note
    }
}

/// What the stage did for one split.
public struct ExtractSplitResult: Sendable {
    public let split: DatasetSplit
    public let fingerprint: String
    /// The store, inside the work folder as given (`<workdir>/features/<fp>/<split>.h5`).
    public let storePath: String
    public let relativeStorePath: String
    /// True when a complete store with this fingerprint existed and no work was done.
    public let reused: Bool
    /// The watermark a partial store was resumed from (nil when started fresh or reused).
    public let resumedFromRow: Int?
    /// Rows of the store.
    public let rows: Int
    /// Rows flagged unreadable in the store (all runs).
    public let unreadableRows: Int
    /// This run's streaming figures (nil when reused).
    public let stream: StreamReport?
}

/// The `extract` stage: for every configured split, one feature store with every tap of the
/// pool-op map, made once per fingerprint, streamed and resumable.
public enum ExtractStage {
    public static let stageName = StageKind.extract.name

    /// Decode workers when not chosen: two on any machine with at least two cores — enough to
    /// keep the trunk fed on VISSL's transforms (decoding is ~5–10 % of a ResNet-50 image's
    /// work) while the trunk's own threads overlap them — and one on a single core.
    /// Measured in `Benchmarks/extract` (see its README).
    public static func defaultDecodeWorkers(cores: Int) -> Int { cores >= 2 ? 2 : 1 }

    /// Plans every configured split from `config` and runs them (see `run(plans:…)`).
    public static func run(config: PipelineConfig, options: ExtractOptions) throws -> [ExtractSplitResult] {
        let plans = try ExtractPlanner.plan(config: config, workdir: options.workdir)
        let strict = try options.strict ?? config.node("LINPROBE.STRICT_IMAGES").bool()
        let configuredThreads = try config.node("LINPROBE.THREADS").int()
        var options = options
        if options.decodeWorkers == nil, config.isExplicit("DATA.NUM_DATALOADER_WORKERS") {
            // VISSL's per-GPU dataloader processes; more decode threads than cores only add memory.
            let asked = try config.node("DATA.NUM_DATALOADER_WORKERS").int()
            options.decodeWorkers = min(asked, ProcessInfo.processInfo.activeProcessorCount)
        }
        return try run(
            plans: plans, pipeline: config.name, options: options, strict: strict, configuredThreads: configuredThreads)
    }

    /// Runs planned splits in order: reuse a complete store (manifest + file), resume a partial
    /// one from its watermark, or extract from scratch; one manifest record per split.
    public static func run(
        plans: [ExtractSplitPlan], pipeline: String?, options: ExtractOptions, strict: Bool,
        configuredThreads: Int = 0, shard: ShardSpec? = nil
    ) throws -> [ExtractSplitResult] {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = max(1, options.threads ?? (configuredThreads > 0 ? configuredThreads : cores))
        let workers = options.decodeWorkers ?? defaultDecodeWorkers(cores: cores)
        let runner = StageRunner(layout: WorkdirLayout(options.workdir), force: options.force, note: options.note)
        var trunkCache: (any TrunkNetwork)? = nil
        func trunk(for plan: ExtractSplitPlan) throws -> any TrunkNetwork {
            if let trunkCache { return trunkCache }
            let weights = try TrunkWeights.load(
                plan.weightsInit, architecture: plan.architecture, randomSeed: plan.seed64)
            for note in weights.notes { options.note("note: weights: \(note)") }
            let built = try plan.architecture.build(
                weights: weights, options: try plan.trunkRun.options(threads: threads))
            trunkCache = built
            return built
        }

        var results: [ExtractSplitResult] = []
        let layout = WorkdirLayout(options.workdir)
        for plan in plans {
            let rows = try shard.map { try ShardRows(spec: $0, plan: plan) }
            let finalPath = rows.map { layout.path($0.artifact(plan)) } ?? plan.storePath(workdir: options.workdir)
            let stage = ExtractSplitStage(
                split: plan, pipeline: pipeline,
                job: SplitJob(
                    plan: plan, finalPath: finalPath, options: options, strict: strict, threads: threads,
                    decodeWorkers: workers, shard: rows),
                trunk: { try trunk(for: plan) })
            let result = try runner.execute(
                stage, progress: ProgressReporter(stage: StageKind.extract.name, mode: options.progress))
            let resumedFrom = result.outcome?.resumedFrom
            let stream = result.outcome?.stream
            // Whether reused or just written: open it as a reader would, and account for it.
            let reader: FeatureStoreReader
            do {
                reader = try FeatureStoreReader(path: finalPath)
            } catch {
                throw LinprobeError(
                    .corruptInput,
                    "\(oneLine(error)) — the manifest records it as complete; rerun with --force to extract it again")
            }
            guard reader.fingerprint == plan.fingerprint else {
                throw LinprobeError(
                    .incompatible,
                    "\(finalPath): holds features with fingerprint \(reader.fingerprint), not \(plan.fingerprint); rerun with --force to replace it"
                )
            }
            let flagged = try reader.unreadableRows()
            let firstRow = stage.job.rows.lowerBound
            if result.reused {
                options.note(
                    "reused \(finalPath): \(reader.count) rows, made \(result.record.finished ?? result.record.started) (same fingerprint \(plan.fingerprint); --force extracts again)"
                )
                if !flagged.isEmpty {
                    let first = plan.listing.samples[(firstRow + flagged[0]) / plan.views].relativePath
                    if strict {
                        throw LinprobeError(
                            .corruptInput,
                            "\(finalPath): was extracted with \(flagged.count) unreadable image(s) replaced by a gray image (first: \(first)); --strict refuses it — fix the images and rerun with --force"
                        )
                    }
                    options.note(
                        "warning: \(flagged.count) row(s) of \(finalPath) hold VISSL's gray image in place of an unreadable image (first: \(first))"
                    )
                }
            } else {
                summarizeUnreadable(
                    flagged: flagged.map { firstRow + $0 }, thisRun: stream?.unreadable ?? [], plan: plan,
                    note: options.note)
            }
            results.append(
                ExtractSplitResult(
                    split: plan.split, fingerprint: plan.fingerprint, storePath: finalPath,
                    relativeStorePath: rows.map { layout.relativePath($0.artifact(plan)) } ?? plan.relativeStorePath,
                    reused: result.reused, resumedFromRow: resumedFrom, rows: reader.count,
                    unreadableRows: flagged.count,
                    stream: stream))
        }
        return results
    }

    /// The manifest record's inputs: the weights file hash and the dataset listing digest.
    static func inputs(_ plan: ExtractSplitPlan) -> JSONValue {
        [
            "weights_sha256": plan.weightsSHA256.map { .string($0) } ?? .string("random:\(plan.seed)"),
            "weights_path": .string(plan.weightsInit.paramsFile),
            "listing_sha256": plan.fingerprintValue["dataset"]?["listing_sha256"] ?? .null,
            "dataset_root": .string(plan.listing.root),
        ]
    }

    /// The end-of-split summary of unreadable images: count, the first five with reasons.
    static func summarizeUnreadable(
        flagged: [Int], thisRun: [UnreadableRecord], plan: ExtractSplitPlan,
        note: (String) -> Void
    ) {
        guard !flagged.isEmpty else { return }
        let reasons = Dictionary(thisRun.map { ($0.row, $0.reason) }, uniquingKeysWith: { a, _ in a })
        let samples = Set(flagged.map { $0 / plan.views })
        let shown = flagged.prefix(5).map { row -> String in
            let path = plan.listing.samples[row / plan.views].relativePath
            return "\(path) (\(reasons[row] ?? "recorded by an earlier, interrupted run"))"
        }
        let what = plan.views > 1 ? "\(samples.count) image(s) (\(flagged.count) rows)" : "\(flagged.count) image(s)"
        note(
            "warning: \(plan.split.fileName): \(what) of \(plan.listing.count) could not be read and were replaced by VISSL's gray \(plan.grayImageSize)×\(plan.grayImageSize) image, flagged in /unreadable: "
                + shown.joined(separator: ", ") + (flagged.count > 5 ? ", …" : "")
                + " (--strict makes this an error; after fixing the files, --force extracts again)")
    }
}

/// One split's extraction: settle what is on disk, then stream.
struct SplitJob {
    let plan: ExtractSplitPlan
    let finalPath: String
    let options: ExtractOptions
    let strict: Bool
    let threads: Int
    let decodeWorkers: Int
    /// One shard's rows (`extract --shard I/N`), written to its part store; nil = the whole split.
    var shard: ShardRows? = nil

    var partialPath: String { finalPath + StoreLayout.partialSuffix }
    /// The rows this job extracts, in the split's row numbers.
    var rows: Range<Int> { shard?.rows ?? 0..<plan.rowCount }
    var rowCount: Int { rows.count }

    struct Outcome {
        var message: String?
        var resumedFrom: Int?
        var stream: StreamReport?
    }

    func run(trunk: () throws -> any TrunkNetwork, progress: ProgressReporter) throws -> Outcome {
        let fm = FileManager.default
        if options.force {
            for p in [finalPath, partialPath] where fm.fileExists(atPath: p) {
                do { try fm.removeItem(atPath: p) } catch {
                    throw LinprobeError(.io, "\(p): cannot remove it for --force: \(oneLine(error))")
                }
            }
        } else if fm.fileExists(atPath: finalPath) {
            // A finished store the manifest does not know (manifest removed, store copied in).
            if let adopted = try adoptExisting() { return adopted }
        }

        var writer: FeatureStoreWriter? = nil
        var resumedFrom: Int? = nil
        if !options.force {
            do {
                writer = try FeatureStoreWriter.resume(finalPath: finalPath, fingerprint: plan.fingerprint)
            } catch let error as LinprobeError where error.code == .incompatible {
                throw LinprobeError(
                    .incompatible,
                    "\(partialPath): a partial store that this run cannot resume is in the way (\(error.message)); move it aside, or rerun with --force to replace it"
                )
            } catch {
                options.note("note: \(partialPath) cannot be resumed (\(oneLine(error))); starting this split over")
                try? fm.removeItem(atPath: partialPath)
            }
            if let w = writer {
                guard w.rowsWritten <= rowCount, w.layers.map(\.name) == plan.layers.map(\.name) else {
                    throw LinprobeError(
                        .incompatible,
                        "\(partialPath): holds \(w.rowsWritten) rows of layers \(w.layers.map(\.name)), which does not fit this plan (\(rowCount) rows of \(plan.layers.map(\.name))); move it aside or rerun with --force"
                    )
                }
                resumedFrom = w.rowsWritten
                options.note("resuming \(partialPath) at row \(w.rowsWritten) of \(rowCount)")
            }
        }

        let trunk = try trunk()
        let outputs = try plan.poolMap.outputs(
            architecture: plan.architecture, inputHeight: plan.inputHeight, inputWidth: plan.inputWidth)
        let extractor = try trunk.extractor(
            outputs: outputs, inputHeight: plan.inputHeight, inputWidth: plan.inputWidth,
            options: try plan.trunkRun.options(threads: threads))
        guard extractor.outputs.map(\.shapeCHW) == plan.layers.map(\.shapeCHW) else {
            throw LinprobeError(
                .shapeMismatch,
                "the trunk gives pooled shapes \(extractor.outputs.map(\.shapeCHW)), the plan expects \(plan.layers.map(\.shapeCHW))"
            )
        }
        let store: FeatureStoreWriter
        if let writer {
            store = writer
        } else {
            store = try FeatureStoreWriter(
                creating: finalPath, layers: plan.layers, targetLayout: targetLayout(plan.listing.targets),
                metadata: metadata(trunk: trunk, extractor: extractor), dtype: plan.dtype, deflate: plan.deflate,
                chunkRows: chunkRows())
            if let shard { try store.setRootAttribute(ShardRows.attribute, json: shard.json(rowsTotal: plan.rowCount)) }
        }

        let startRow = store.rowsWritten
        let settings = StreamSettings(
            batchSize: plan.effectiveBatchSize, decodeWorkers: decodeWorkers, readAhead: 1,
            flushInterval: options.flushInterval, strict: strict, maxImagePixels: plan.maxImagePixels)
        let remaining = rowCount - startRow
        progress.begin(plan.split.fileName, total: remaining, unit: plan.views > 1 ? "rows" : "images")
        let engine = ExtractionEngine(
            listing: plan.listing, views: plan.views, pipeline: plan.transforms, grayImageSize: plan.grayImageSize,
            seed: plan.seed64, model: extractor, writer: store, settings: settings, rows: rows,
            shouldStop: options.shouldStop,
            progress: { n in progress.advance(by: n) })
        // This run's entry in the provenance's `runs` goes in before any row, so even a run that
        // is killed leaves a trace (from_row, threads); it is completed when the run ends.
        var runs = previousRuns(store)
        let started = Manifest.now()
        func entry(_ report: StreamReport?) -> JSONValue {
            runEntry(started: started, fromRow: startRow, toRow: store.rowsAppended, report: report)
        }
        runs.append(entry(nil))
        try store.setRootAttribute("provenance", json: provenance(trunk: trunk, extractor: extractor, runs: runs))
        var report: StreamReport
        do {
            report = try engine.run(from: startRow)
        } catch {
            progress.finish()
            // Keep every whole chunk appended so far, and say where the rows are.
            runs[runs.count - 1] = entry(nil)
            try? store.setRootAttribute("provenance", json: provenance(trunk: trunk, extractor: extractor, runs: runs))
            try? store.flush()
            let kept = store.rowsWritten
            store.abandon()  // here, not wherever the last reference to the engine happens to go
            switch error {
            case StreamStop.unreadable(let record, _):
                let full = plan.listing.samples[record.sampleIndex].path
                throw LinprobeError(
                    .corruptInput,
                    "\(full): unreadable image (\(record.reason)); strict mode stops at the first one — \(kept) of \(rowCount) rows kept in \(partialPath); fix or replace the file and rerun to resume (without --strict VISSL's gray image is stored and the row flagged)"
                )
            case StreamStop.interrupted:
                throw LinprobeError(
                    .interrupted,
                    "interrupted: \(kept) of \(rowCount) rows of \(plan.split.fileName) kept in \(partialPath); rerun the same command to resume"
                )
            default:
                if let e = error as? LinprobeError {
                    throw LinprobeError(
                        e.code,
                        "\(e.message) (\(kept) of \(rowCount) rows kept in \(partialPath); rerun to resume)")
                }
                throw LinprobeError(
                    .io, "\(oneLine(error)) (\(kept) of \(rowCount) rows kept in \(partialPath); rerun to resume)")
            }
        }
        progress.finish()
        runs[runs.count - 1] = entry(report)
        try store.setRootAttribute("provenance", json: provenance(trunk: trunk, extractor: extractor, runs: runs))
        try store.finish()
        let rate = String(format: "%.1f", report.rowsPerSecond)
        options.note(
            "extracted \(report.rows) \(plan.views > 1 ? "rows" : "images") of \(plan.split.fileName) in \(String(format: "%.1f", report.seconds)) s (\(rate)/s, \(threads) trunk thread(s), \(decodeWorkers) decode worker(s)) → \(finalPath)"
        )
        return Outcome(message: resumedFrom.map { "resumed at row \($0)" }, resumedFrom: resumedFrom, stream: report)
    }

    /// A complete store at the final path: reuse it if it is this plan's, else refuse to touch it.
    private func adoptExisting() throws -> Outcome? {
        let reader: FeatureStoreReader
        do {
            reader = try FeatureStoreReader(path: finalPath, allowIncomplete: true)
        } catch {
            throw LinprobeError(
                .incompatible,
                "\(finalPath): a file that is not a feature store this Linprobe reads is in the way (\(oneLine(error))); move it aside, or rerun with --force to replace it"
            )
        }
        guard reader.formatVersion == Int(StoreLayout.formatVersion) else {
            throw LinprobeError(
                .incompatible,
                "\(finalPath): a feature store of format version \(reader.formatVersion) is in the way (this Linprobe writes version \(StoreLayout.formatVersion)); move it aside, or rerun with --force to replace it"
            )
        }
        guard reader.fingerprint == plan.fingerprint, reader.isComplete, reader.count == rowCount,
            try shard == nil || reader.attribute(ShardRows.attribute) != nil
        else {
            throw LinprobeError(
                .incompatible,
                "\(finalPath): a feature store made from other inputs (fingerprint \(reader.fingerprint.isEmpty ? "none" : reader.fingerprint), \(reader.isComplete ? "complete" : "incomplete"), \(reader.count) rows) is in the way; move it aside, or rerun with --force to replace it"
            )
        }
        options.note(
            "found a complete store for fingerprint \(plan.fingerprint) at \(finalPath) that the manifest did not list; using it"
        )
        return Outcome(message: "adopted an existing complete store", resumedFrom: nil, stream: nil)
    }

    /// Rows per HDF5 chunk: the store's default rounded to a multiple of the batch size, so a
    /// watermark (always chunk-aligned) is also a batch boundary and a resumed run forms exactly
    /// the batches an uninterrupted run forms.
    private func chunkRows() -> Int {
        let base = FeatureStoreWriter.defaultChunkRows(layers: plan.layers, dtype: plan.dtype)
        let batch = plan.effectiveBatchSize
        return batch * max(1, base / batch)
    }

    private func targetLayout(_ targets: DatasetTargets) -> TargetLayout {
        if case .multiLabel(let c, _) = targets { return .multiLabel(classes: c) }
        return .singleLabel
    }

    private func metadata(trunk: any TrunkNetwork, extractor: any TrunkExtractor) -> StoreMetadata {
        StoreMetadata(
            fingerprint: plan.fingerprint, split: plan.split.fileName, numClasses: plan.listing.numClasses,
            classNames: plan.listing.classNames, trunk: plan.architecture.provenance, weights: weightsAttribute(),
            transforms: plan.transforms.description, poolOps: plan.poolMap.provenance,
            provenance: provenance(trunk: trunk, extractor: extractor, runs: []),
            trainViews: plan.views)
    }

    private func weightsAttribute() -> JSONValue {
        if let sha = plan.weightsSHA256 {
            return [
                "path": .string(plan.weightsInit.paramsFile), "sha256": .string(sha), "init": "checkpoint",
                "settings": plan.weightsInit.provenance,
            ]
        }
        return [
            "path": "", "sha256": .null, "init": "random", "seed": .int(Int64(plan.seed)),
            "scheme": .string(TrunkWeights.randomScheme(for: plan.architecture)),
        ]
    }

    /// The `runs` recorded in a (resumed) store's provenance.
    private func previousRuns(_ store: FeatureStoreWriter) -> [JSONValue] {
        guard let text = try? store.rootAttribute("provenance"), let old = try? JSONValue.parse(text) else { return [] }
        return old["runs"]?.arrayValue ?? []
    }

    /// One run's record: where it started, its settings, and (when it completed) its figures.
    private func runEntry(started: String, fromRow: Int, toRow: Int, report: StreamReport?) -> JSONValue {
        var run: [String: JSONValue] = [
            "started": .string(started), "from_row": .int(Int64(fromRow)), "to_row": .int(Int64(toRow)),
            "trunk_threads": .int(Int64(threads)), "decode_workers": .int(Int64(decodeWorkers)),
            "batch_size": .int(Int64(plan.batchSize)), "completed": .bool(report != nil),
        ]
        if let report {
            run["seconds"] = .double(report.seconds)
            run["rows_per_second"] = .double(report.rowsPerSecond)
            run["forward_seconds"] = .double(report.forwardSeconds)
            run["wait_for_decode_seconds"] = .double(report.waitSeconds)
            run["write_seconds"] = .double(report.writeSeconds)
        }
        return .object(run)
    }

    /// The store's `provenance`: versions, threads, weights, preprocessing, and one entry per run
    /// that wrote rows (a resumed store lists the interrupted runs and the resuming one).
    private func provenance(trunk: any TrunkNetwork, extractor: any TrunkExtractor, runs: [JSONValue]) -> JSONValue {
        return [
            "tool": .string("linprobe \(LinprobeVersion.string)"),
            "libraries": [
                "hdf5": .string(hdf5LibraryVersion()),
                "openblas": .string(BLAS.config),
                "openblas_core": .string(BLAS.coreName),
                "libjpeg_turbo": .string(CodecVersions.libjpegTurbo),
                "libpng": .string(CodecVersions.libpng),
            ],
            "threads": ["trunk": .int(Int64(threads)), "decode_workers": .int(Int64(decodeWorkers))],
            "trunk_engine": extractor.provenance,
            "trunk": plan.architecture.provenance,
            "weights": trunk.weightsProvenance,
            "transforms": plan.transforms.description,
            "input": [.int(Int64(plan.inputHeight)), .int(Int64(plan.inputWidth))],
            "pool_ops": plan.poolMap.provenance,
            "layers": .array(plan.layers.map { .string($0.name) }),
            "seed": .int(Int64(plan.seed)),
            "train_views": .int(Int64(plan.views)),
            "gray_image_size": .int(Int64(plan.grayImageSize)),
            "batch_size": .int(Int64(plan.batchSize)),
            "dataset": [
                "name": .string(plan.listing.settings.dataPaths.first ?? plan.listing.name),
                "source": .string(plan.listing.source.rawValue),
                "root": .string(plan.listing.root), "count": .int(Int64(plan.listing.count)),
                "settings": plan.listing.settings.description,
            ],
            "fingerprint": plan.fingerprintValue,
            "runs": .array(runs),
        ]
    }
}

/// One split's extraction as a pipeline stage: the manifest, lock and reuse are `StageRunner`'s;
/// the outcome is nil when a finished store was reused.
struct ExtractSplitStage: PipelineStage {
    let split: ExtractSplitPlan
    let pipeline: String?
    let job: SplitJob
    let trunk: () throws -> any TrunkNetwork

    var plan: StagePlan {
        if let shard = job.shard {
            return StagePlan(
                kind: .extract, fingerprint: shard.fingerprint(split), inputs: ExtractStage.inputs(split),
                parameters: shard.parameters(split),
                outputs: [WorkdirLayout(".").relativePath(shard.artifact(split))], pipeline: pipeline)
        }
        return StagePlan(
            kind: .extract, fingerprint: split.fingerprint, inputs: ExtractStage.inputs(split),
            parameters: split.fingerprintValue, outputs: [split.relativeStorePath], pipeline: pipeline)
    }

    func run(_ context: StageContext) throws -> SplitJob.Outcome? {
        let outcome = try job.run(trunk: trunk, progress: context.progress)
        context.progress.finish()
        return outcome
    }

    func reuse(_ context: StageContext, record: ManifestRecord) throws -> SplitJob.Outcome? { nil }

    func manifestMessage(_ outcome: SplitJob.Outcome?) -> String? { outcome?.message }
}
