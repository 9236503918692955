import Foundation
import LinprobeCore
import LinprobeData
import LinprobeHDF5
import LinprobeStore

/// One shard's rows of a split: shard `spec` of the split's rows, cut on whole batches (see
/// `ShardSpec.rowRange`), extracted into its own part store.
public struct ShardRows: Sendable, Equatable {
    /// The part store's root attribute recording the shard (JSON `{index, count, first_row, …}`).
    public static let attribute = "shard"

    public let spec: ShardSpec
    public let rows: Range<Int>

    public init(spec: ShardSpec, rows: Range<Int>) {
        self.spec = spec
        self.rows = rows
    }

    /// The rows of shard `spec` of `plan`'s split.
    public init(spec: ShardSpec, plan: ExtractSplitPlan) throws {
        self.spec = spec
        self.rows = try spec.rowRange(
            rows: plan.rowCount, unit: ShardSpec.unit(batch: plan.effectiveBatchSize, views: plan.views))
    }

    /// Every shard of `plan`'s split when it is cut in `count`.
    public static func all(_ count: Int, plan: ExtractSplitPlan) throws -> [ShardRows] {
        try (0..<count).map { try ShardRows(spec: ShardSpec(index: $0, count: count), plan: plan) }
    }

    public func artifact(_ plan: ExtractSplitPlan) -> WorkdirLayout.Artifact {
        .featurePart(fingerprint: plan.fingerprint, split: plan.split.fileName, index: spec.index, count: spec.count)
    }

    /// The part's manifest key: a fingerprint of the split's and the shard.
    public func fingerprint(_ plan: ExtractSplitPlan) -> String { Fingerprint.short(parameters(plan)) }

    /// The part's manifest parameters.
    public func parameters(_ plan: ExtractSplitPlan) -> JSONValue {
        ["part_of": .string(plan.fingerprint), "shard": json(rowsTotal: plan.rowCount)]
    }

    /// What the part store records in its `shard` attribute.
    public func json(rowsTotal: Int) -> JSONValue {
        [
            "index": .int(Int64(spec.index)), "count": .int(Int64(spec.count)),
            "first_row": .int(Int64(rows.lowerBound)), "end_row": .int(Int64(rows.upperBound)),
            "rows_total": .int(Int64(rowsTotal)),
        ]
    }
}

/// How `extract --shards N` merges the parts into the split's store.
public enum MergeMode: String, Sendable, CaseIterable {
    /// An HDF5 virtual dataset over the parts (no copy; the parts must stay beside it).
    case virtual
    /// One self-contained store, the parts' rows copied in.
    case copy
}

extension ExtractStage {
    /// Extracts shard `shard` of every configured split into its part store (`extract --shard I/N`).
    public static func runShard(
        config: PipelineConfig, shard: ShardSpec, options: ExtractOptions, split: DatasetSplit? = nil
    ) throws -> [ExtractSplitResult] {
        let plans = try ExtractPlanner.plan(config: config, workdir: options.workdir).only(split)
        let strict = try options.strict ?? config.node("LINPROBE.STRICT_IMAGES").bool()
        let configuredThreads = try config.node("LINPROBE.THREADS").int()
        return try run(
            plans: plans, pipeline: config.name, options: options, strict: strict, configuredThreads: configuredThreads,
            shard: shard)
    }

    /// Merges the `count` complete parts of every configured split into the split's store
    /// (`extract --shards N`), recorded in the manifest under the split's own fingerprint.
    public static func merge(
        config: PipelineConfig, count: Int, mode: MergeMode, options: ExtractOptions, split: DatasetSplit? = nil
    ) throws -> [ExtractSplitResult] {
        let plans = try ExtractPlanner.plan(config: config, workdir: options.workdir).only(split)
        let layout = WorkdirLayout(options.workdir)
        let runner = StageRunner(layout: layout, force: options.force, note: options.note)
        return try plans.map { plan in
            let stage = MergeSplitStage(
                split: plan, pipeline: config.name, parts: try ShardRows.all(count, plan: plan), mode: mode,
                layout: layout, command: "linprobe extract \(config.name)")
            let result = try runner.execute(
                stage, progress: ProgressReporter(stage: StageKind.extract.name, mode: options.progress))
            let path = plan.storePath(workdir: options.workdir)
            let reader = try FeatureStoreReader(path: path)
            guard reader.fingerprint == plan.fingerprint else {
                throw LinprobeError(
                    .incompatible,
                    "\(path): holds features with fingerprint \(reader.fingerprint), not \(plan.fingerprint); rerun with --force to replace it"
                )
            }
            options.note(
                result.reused
                    ? "reused \(path): \(reader.count) rows (same fingerprint \(plan.fingerprint); --force merges again)"
                    : "merged \(count) part(s) of \(plan.split.fileName) (\(mode.rawValue)) → \(path)")
            return ExtractSplitResult(
                split: plan.split, fingerprint: plan.fingerprint, storePath: path,
                relativeStorePath: plan.relativeStorePath, reused: result.reused, resumedFromRow: nil,
                rows: reader.count, unreadableRows: try reader.unreadableRows().count, stream: nil)
        }
    }
}

/// The merge of a split's parts as a pipeline stage: the split's fingerprint and store, so every
/// later stage finds it as it finds an unsharded extraction. A virtual store lists its parts as
/// outputs too, so their size and modification time are stamped and checked with it.
struct MergeSplitStage: PipelineStage {
    let split: ExtractSplitPlan
    let pipeline: String?
    let parts: [ShardRows]
    let mode: MergeMode
    let layout: WorkdirLayout
    /// The extraction command, for the messages that say how to make a missing part.
    let command: String

    var plan: StagePlan {
        let partOutputs = mode == .virtual ? parts.map { layout.relativePath($0.artifact(split)) } : []
        return StagePlan(
            kind: .extract, fingerprint: split.fingerprint, inputs: ExtractStage.inputs(split),
            parameters: split.fingerprintValue, outputs: [split.relativeStorePath] + partOutputs, pipeline: pipeline)
    }

    func run(_ context: StageContext) throws -> String {
        let readers = try parts.map { try checkedPart($0) }
        let target = layout.path(.featureStore(fingerprint: split.fingerprint, split: split.split.fileName))
        let merger = StoreMerger(
            target: target, parts: readers,
            partFiles: parts.map { WorkdirLayout.partFile(split.split.fileName, $0.spec.index, $0.spec.count) },
            deflate: split.deflate)
        switch mode {
        case .virtual: try merger.writeVirtual()
        case .copy: try merger.writeCopy()
        }
        return "merged \(parts.count) part(s) (\(mode.rawValue))"
    }

    func reuse(_ context: StageContext, record: ManifestRecord) throws -> String { "reused" }

    func manifestMessage(_ outcome: String) -> String? { outcome }

    /// A part that exists, is complete and belongs to this split and shard; otherwise one line
    /// naming the part and the command that makes it.
    private func checkedPart(_ part: ShardRows) throws -> FeatureStoreReader {
        let path = layout.path(part.artifact(split))
        let make = "run '\(command) --split \(split.split.rawValue) --shard \(part.spec)'"
        let fm = FileManager.default
        guard fm.fileExists(atPath: path) else {
            if fm.fileExists(atPath: path + StoreLayout.partialSuffix) {
                throw LinprobeError(
                    .missingInput,
                    "\(path + StoreLayout.partialSuffix): part \(part.spec) is incomplete; \(make) to finish it")
            }
            throw LinprobeError(.missingInput, "\(path): part \(part.spec) is missing; \(make) first")
        }
        let reader: FeatureStoreReader
        do { reader = try FeatureStoreReader(path: path) } catch {
            throw LinprobeError(
                .incompatible, "\(path): part \(part.spec) cannot be used (\(oneLine(error))); \(make) --force")
        }
        let recorded = try reader.jsonAttribute(ShardRows.attribute)
        guard reader.fingerprint == split.fingerprint, recorded == part.json(rowsTotal: split.rowCount),
            reader.count == part.rows.count, reader.layers.map(\.name) == split.layers.map(\.name)
        else {
            throw LinprobeError(
                .incompatible,
                "\(path): part \(part.spec) does not match this extraction (fingerprint \(reader.fingerprint), \(reader.count) rows, shard \(recorded.canonicalText); expected \(split.fingerprint), rows \(part.rows)); \(make) --force"
            )
        }
        return reader
    }
}

extension [ExtractSplitPlan] {
    /// The plan of `split` only (nil = every plan); a split the pipeline does not configure is an error.
    public func only(_ split: DatasetSplit?) throws -> [ExtractSplitPlan] {
        guard let split else { return self }
        let chosen = filter { $0.split == split }
        guard !chosen.isEmpty else {
            throw LinprobeError.config(
                "--split \(split.rawValue): DATA.\(split.rawValue) has no dataset configured in this pipeline")
        }
        return chosen
    }
}
