import Foundation
import LinprobeCore
import LinprobeData

/// The Slurm resources asked for every job of a submission (absent = the cluster's defaults).
public struct SlurmResources: Sendable, Equatable {
    public var partition: String?
    public var time: String?
    public var cpusPerTask: Int?
    public var mem: String?
    public var account: String?

    public init(
        partition: String? = nil, time: String? = nil, cpusPerTask: Int? = nil, mem: String? = nil,
        account: String? = nil
    ) {
        self.partition = partition
        self.time = time
        self.cpusPerTask = cpusPerTask
        self.mem = mem
        self.account = account
    }

    /// `#SBATCH` lines.
    var directives: [String] {
        var lines: [String] = []
        if let partition { lines.append("#SBATCH --partition=\(partition)") }
        if let time { lines.append("#SBATCH --time=\(time)") }
        if let cpusPerTask { lines.append("#SBATCH --cpus-per-task=\(cpusPerTask)") }
        if let mem { lines.append("#SBATCH --mem=\(mem)") }
        if let account { lines.append("#SBATCH --account=\(account)") }
        return lines
    }
}

/// One sbatch job of a submission: a script, the jobs it waits for (`afterok`), and whether its
/// artifact is already complete (then it is not submitted again).
public struct SlurmJob: Sendable, Equatable {
    /// Unique within the submission: `extract-train`, `merge-train`, `train-svm`, …
    public var name: String
    /// Array task ids (`--array`), nil for a single job.
    public var array: [Int]?
    public var dependsOn: [String]
    /// The linprobe arguments after the executable (`${SLURM_ARRAY_TASK_ID}` expands in arrays).
    public var arguments: [String]
    public var done: Bool
}

/// What `linprobe slurm` submits for a pipeline: per split, a job array over the extraction shards
/// and a merge job after it; then one job per training stage after the merges, and the report last.
/// Jobs whose artifacts the manifest already shows complete are left out (resubmission after a
/// failure submits only what is missing), and so are array tasks whose part is complete.
public struct SlurmPlan: Sendable {
    public var pipeline: String
    public var jobs: [SlurmJob]

    /// Plans the jobs. `pipelineArguments` are the pipeline, overlays, overrides and `--configs` as
    /// given; `workdir` should be absolute (the jobs run wherever Slurm starts them).
    public static func make(
        config: PipelineConfig, pipelineArguments: [String], workdir: String, shards: Int, mergeMode: MergeMode,
        svmClassChunks: Int? = nil
    ) throws -> SlurmPlan {
        let layout = WorkdirLayout(workdir)
        let store = ManifestStore(layout: layout)
        let manifest = try store.read()
        let stages = try StageSelection(config: config)
        guard stages.contains(.extract) else {
            throw LinprobeError.config(
                "\(config.name): linprobe slurm shards extraction; this pipeline does not extract (it imports its features or LINPROBE.STAGES leaves extract out)"
            )
        }
        let plans = try ExtractPlanner.plan(config: config, workdir: workdir)
        let common = pipelineArguments + ["--workdir", workdir]
        var jobs: [SlurmJob] = []
        // Complete, and every output still there (a virtual store's parts among them).
        func complete(_ fingerprint: String) throws -> Bool {
            guard let r = try store.completeRecord(stage: StageKind.extract.name, fingerprint: fingerprint) else {
                return false
            }
            return r.changedOutputs(layout).isEmpty
        }
        for plan in plans {
            let split = plan.split.rawValue.lowercased()
            let parts = try ShardRows.all(shards, plan: plan)
            let merged = try complete(plan.fingerprint)
            let missing = try parts.filter { try !complete($0.fingerprint(plan)) }.map(\.spec.index)
            jobs.append(
                SlurmJob(
                    name: "extract-\(split)", array: missing, dependsOn: [],
                    arguments: ["extract"] + common + [
                        "--split", plan.split.rawValue, "--shard", "${SLURM_ARRAY_TASK_ID}/\(shards)",
                    ],
                    done: merged || missing.isEmpty))
            jobs.append(
                SlurmJob(
                    name: "merge-\(split)", array: nil, dependsOn: ["extract-\(split)"],
                    arguments: ["extract"] + common + [
                        "--split", plan.split.rawValue, "--shards", String(shards), "--merge", mergeMode.rawValue,
                        // Submitted only when the merged store is missing or stale (a part made again).
                        "--force",
                    ],
                    done: merged))
        }
        let merges = jobs.filter { $0.name.hasPrefix("merge-") }.map(\.name)
        let fingerprints = Dictionary(plans.map { ($0.split, $0.fingerprint) }, uniquingKeysWith: { a, _ in a })
        var training: [String] = []
        for stage in stages.stages where [.trainSVM, .trainLinear, .knn].contains(stage) {
            let done = trained(stage, manifest: manifest, pipeline: config.name, fingerprints: fingerprints)
            var after = merges
            if stage == .trainSVM, let pieces = try svmPieces(config, plans: plans, chunks: svmClassChunks) {
                jobs.append(
                    SlurmJob(
                        name: "svm-pieces", array: Array(0..<pieces.count), dependsOn: merges,
                        arguments: [stage.name] + common + [
                            "--piece", "${SLURM_ARRAY_TASK_ID}", "--class-chunks", String(pieces.chunks),
                        ], done: done))
                after = ["svm-pieces"]
            }
            jobs.append(
                SlurmJob(name: stage.name, array: nil, dependsOn: after, arguments: [stage.name] + common, done: done))
            training.append(stage.name)
        }
        if stages.contains(.report) {
            let upstream = jobs.contains { !$0.done }
            let report = layout.path(.reportFile(pipeline: config.name, name: "report.json"))
            jobs.append(
                SlurmJob(
                    name: StageKind.report.name, array: nil, dependsOn: training,
                    arguments: [StageKind.report.name] + common,
                    done: !upstream && FileManager.default.fileExists(atPath: report)))
        }
        return SlurmPlan(pipeline: config.name, jobs: jobs)
    }

    /// The train-svm job array's size and class chunks per layer: `chunks` (default: one per five
    /// classes) of each layer of the pool-op map; nil for the low-shot protocol (one process).
    static func svmPieces(
        _ config: PipelineConfig, plans: [ExtractSplitPlan], chunks: Int?
    ) throws -> (
        count: Int, chunks: Int
    )? {
        guard try !config.node("LINPROBE.SVM.LOW_SHOT").bool() else { return nil }
        let layers = try FeatureLayers.names(config: config).count
        guard layers > 0, let train = plans.first(where: { $0.split == .train }) else { return nil }
        let classes = max(1, train.listing.targets.width)
        let k = min(classes, max(1, chunks ?? classes / 5))
        return (layers * k, k)
    }

    /// Whether the manifest holds a complete run of a training stage for this pipeline on these stores.
    static func trained(
        _ stage: StageKind, manifest: Manifest, pipeline: String, fingerprints: [DatasetSplit: String]
    ) -> Bool {
        manifest.records.values.contains { r in
            r.stage == stage.name && r.status == .complete && r.pipeline == pipeline
                && r.inputs["train_features"]?.stringValue == fingerprints[.train]
                && r.inputs["test_features"]?.stringValue == fingerprints[.test]
        }
    }

    /// The sbatch script of `job`.
    public func script(
        _ job: SlurmJob, executable: String, workingDirectory: String, logFolder: String, resources: SlurmResources
    ) -> String {
        let threads = resources.cpusPerTask.map { _ in ["--threads", "${SLURM_CPUS_PER_TASK}"] } ?? []
        let command = ([executable] + job.arguments + threads).map(Self.shellWord).joined(separator: " ")
        let output = Paths.join(logFolder, job.array == nil ? "\(job.name)-%j.out" : "\(job.name)-%A_%a.out")
        var lines = [
            "#!/bin/bash", "#SBATCH --job-name=linprobe-\(pipeline)-\(job.name)", "#SBATCH --output=\(output)",
        ]
        if let array = job.array, !array.isEmpty { lines.append("#SBATCH --array=\(Self.arraySpec(array))") }
        lines += resources.directives
        lines += [
            "# linprobe slurm: \(job.name) of pipeline \(pipeline)"
                + (job.array == nil
                    ? ""
                    : job.name.hasPrefix("extract-") ? " (one task per shard)" : " (one task per layer × class chunk)"),
            "set -euo pipefail",
            "cd \(Self.shellWord(workingDirectory))",
            "exec \(command)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// `word` quoted for bash, leaving `${SLURM_…}` expansions live.
    static func shellWord(_ word: String) -> String {
        let plain = CharacterSet(
            charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:+,@%")
        if !word.isEmpty, word.unicodeScalars.allSatisfy({ plain.contains($0) }) { return word }
        let quoted = "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
        // A variable of Slurm's stays outside the quotes so the shell expands it.
        let live = quoted.replacingOccurrences(of: "${SLURM_ARRAY_TASK_ID}", with: "'\"${SLURM_ARRAY_TASK_ID}\"'")
            .replacingOccurrences(of: "${SLURM_CPUS_PER_TASK}", with: "'\"${SLURM_CPUS_PER_TASK}\"'")
            .replacingOccurrences(of: "'${SLURM_ARRAY_TASK_ID}'", with: "\"${SLURM_ARRAY_TASK_ID}\"")
        let head = live.hasPrefix("''\"") ? String(live.dropFirst(2)) : live
        return head.hasSuffix("\"''") && head.count > 2 ? String(head.dropLast(2)) : head
    }

    /// The `--array` value: `0-2`, or a list of the missing tasks.
    public static func arraySpec(_ tasks: [Int]) -> String {
        if let lo = tasks.first, let hi = tasks.last, tasks == Array(lo...hi) {
            return lo == hi ? "\(lo)" : "\(lo)-\(hi)"
        }
        return tasks.map(String.init).joined(separator: ",")
    }
}
