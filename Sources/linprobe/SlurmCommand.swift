import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeExtract

/// `linprobe slurm <pipeline> [overrides] --shards N [--partition P] [--time T] [--cpus-per-task C]
/// [--mem M] [--account A] [--dry-run]`: the pipeline as dependent Slurm jobs.
struct SlurmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm",
        abstract: "Submit the pipeline to Slurm: sharded extraction as job arrays, then dependent jobs.",
        discussion: """
            Writes sbatch scripts under <workdir>/slurm/<pipeline>/ and submits them with sbatch: per split a job \
            array of N extraction shards (extract --split S --shard I/N) and a merge job (extract --shards N) \
            after it; then train-svm as a job array over (layer × class chunk) whose pieces one more train-svm \
            job assembles into results.json, train-linear and knn as one job each (whichever stages the \
            pipeline runs), and report after them. Prints each job's id and the command to follow them. Submitting \
            again submits only what is missing: shards, merges and stages the manifest shows complete are left \
            out, and jobs of the last submission still in the queue are waited on, not submitted twice. Needs \
            sbatch and squeue; the work folder, the data and this executable must be on a file system every \
            node sees.
            """)

    @OptionGroup var arguments: PipelineArguments

    @Option(help: "Extraction shards per split (array tasks).")
    var shards: Int

    @Option(help: "How the parts are merged: 'virtual' (HDF5 virtual dataset) or 'copy'.")
    var merge: String = MergeMode.virtual.rawValue

    @Option(help: "Slurm partition (sbatch --partition).")
    var partition: String?

    @Option(help: "Time limit of each job (sbatch --time, e.g. 4:00:00).")
    var time: String?

    @Option(name: .customLong("cpus-per-task"), help: "CPUs per job and array task; the jobs use that many threads.")
    var cpusPerTask: Int?

    @Option(help: "Memory per job (sbatch --mem, e.g. 16G).")
    var mem: String?

    @Option(help: "Account to charge (sbatch --account).")
    var account: String?

    @Option(
        name: .customLong("svm-class-chunks"),
        help:
            "train-svm as a job array over (layer × class chunk): class chunks per layer (default: one per 5 classes).")
    var svmClassChunks: Int?

    @Flag(name: .customLong("dry-run"), help: "Write and print the scripts; submit nothing.")
    var dryRun = false

    func validate() throws {
        if shards < 1 { throw ValidationError("--shards must be at least 1, got \(shards)") }
        if MergeMode(rawValue: merge) == nil {
            throw ValidationError("--merge must be 'virtual' or 'copy', got '\(merge)'")
        }
        if let cpusPerTask, cpusPerTask < 1 { throw ValidationError("--cpus-per-task must be at least 1") }
        if let svmClassChunks, svmClassChunks < 1 { throw ValidationError("--svm-class-chunks must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            let cwd = FileManager.default.currentDirectoryPath
            let workdir = Paths.absolute(arguments.workdir, relativeTo: cwd)
            var given = [arguments.pipeline] + arguments.overrides
            if let configs = arguments.configs { given += ["--configs", Paths.absolute(configs, relativeTo: cwd)] }
            let plan = try SlurmPlan.make(
                config: config, pipelineArguments: given, workdir: workdir, shards: shards,
                mergeMode: MergeMode(rawValue: merge) ?? .virtual, svmClassChunks: svmClassChunks)
            let submitter = SlurmSubmitter(
                plan: plan, layout: WorkdirLayout(workdir), executable: Linprobe.executablePath,
                workingDirectory: cwd,
                resources: SlurmResources(
                    partition: partition, time: time, cpusPerTask: cpusPerTask, mem: mem, account: account),
                note: { Console.note($0) })
            if dryRun {
                let scripts = try submitter.writeScripts()
                for job in plan.jobs {
                    let path = scripts[job.name] ?? job.name
                    let state = job.done ? "complete, would not be submitted" : "would be submitted"
                    Console.result("# \(path) (\(state))")
                    Console.result((try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
                }
                return
            }
            let rows = try submitter.submit()
            for row in rows { Console.result("\(row.name)\t\(row.id ?? "-")\t\(row.status)") }
            let ids = rows.compactMap(\.id)
            if ids.isEmpty {
                Console.note("nothing to submit: every stage of \(config.name) is complete in \(workdir)")
            } else {
                Console.note(
                    "follow: squeue -j \(ids.joined(separator: ",")) — logs in \(Paths.join(submitter.folder, "logs"))")
            }
        }
    }
}
