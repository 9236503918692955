import Foundation
import LinprobeCore

/// The job ids of a pipeline's last submission (`<workdir>/slurm/<pipeline>/jobs.json`), so a
/// second `linprobe slurm` waits on jobs still queued instead of submitting them twice.
public struct SlurmJobsDocument: Codable, Sendable, Equatable {
    public static let formatName = "linprobe.slurm-jobs"
    public var format: String = Self.formatName
    public var pipeline: String
    public var submitted: String
    /// Job name → Slurm job id (an array's id for an array).
    public var jobs: [String: String]

    public init(pipeline: String, submitted: String, jobs: [String: String]) {
        self.pipeline = pipeline
        self.submitted = submitted
        self.jobs = jobs
    }
}

/// Writes a plan's scripts and submits the missing jobs with `sbatch --parsable`, chaining them by
/// `--dependency=afterok`. Needs only `sbatch` and `squeue` on the PATH.
public struct SlurmSubmitter {
    public let plan: SlurmPlan
    public let layout: WorkdirLayout
    public let executable: String
    public let workingDirectory: String
    public let resources: SlurmResources
    public let note: (String) -> Void

    public init(
        plan: SlurmPlan, layout: WorkdirLayout, executable: String, workingDirectory: String,
        resources: SlurmResources, note: @escaping (String) -> Void
    ) {
        self.plan = plan
        self.layout = layout
        self.executable = executable
        self.workingDirectory = workingDirectory
        self.resources = resources
        self.note = note
    }

    public var folder: String { layout.path(.slurmFolder(pipeline: plan.pipeline)) }
    var jobsFile: String { layout.path(.slurmFile(pipeline: plan.pipeline, name: "jobs.json")) }

    /// Each job's script path, written (every job, done or not, so the folder shows the whole plan).
    public func writeScripts() throws -> [String: String] {
        let logs = Paths.join(folder, "logs")
        try Paths.ensureDirectory(logs)
        var paths: [String: String] = [:]
        for job in plan.jobs {
            let path = layout.path(.slurmFile(pipeline: plan.pipeline, name: "\(job.name).sbatch"))
            let text = plan.script(
                job, executable: executable, workingDirectory: workingDirectory, logFolder: logs, resources: resources)
            try AtomicFile.write(text, to: path)
            paths[job.name] = path
        }
        return paths
    }

    /// Submits what is missing; returns (job name, id, how) per job in plan order.
    public func submit() throws -> [(name: String, id: String?, status: String)] {
        let scripts = try writeScripts()
        let previous =
            (try? JSONDecoder().decode(SlurmJobsDocument.self, from: Data(contentsOf: URL(fileURLWithPath: jobsFile))))?
            .jobs ?? [:]
        let active = previous.isEmpty ? [] : try activeJobs()
        var ids: [String: String] = [:]
        var rows: [(name: String, id: String?, status: String)] = []
        for job in plan.jobs {
            if job.done {
                rows.append((job.name, nil, "complete, not submitted"))
                continue
            }
            if let old = previous[job.name], active.contains(old) {
                ids[job.name] = old
                rows.append((job.name, old, "still queued or running"))
                continue
            }
            var arguments = ["--parsable"]
            let after = job.dependsOn.compactMap { ids[$0] }
            if !after.isEmpty { arguments.append("--dependency=afterok:" + after.joined(separator: ":")) }
            let output = try Self.command("sbatch", arguments + [scripts[job.name] ?? ""])
            let id = String(output.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !id.isEmpty, id.allSatisfy(\.isNumber) else {
                throw LinprobeError(.io, "sbatch \(scripts[job.name] ?? job.name): unexpected answer '\(output)'")
            }
            ids[job.name] = id
            rows.append((job.name, id, job.array.map { "submitted, array \(SlurmPlan.arraySpec($0))" } ?? "submitted"))
        }
        let document = SlurmJobsDocument(pipeline: plan.pipeline, submitted: Manifest.now(), jobs: ids)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(document), to: jobsFile)
        return rows
    }

    /// Job ids `squeue` lists (array jobs by their array id), less jobs that can never start
    /// because a job they wait for failed (those are submitted again).
    func activeJobs() throws -> Set<String> {
        let text = try Self.command("squeue", ["--noheader", "--format=%F %r"])
        return Set(
            text.split(whereSeparator: \.isNewline).compactMap { line in
                let fields = line.split(separator: " ")
                guard let id = fields.first, !line.contains("DependencyNeverSatisfied") else { return nil }
                return String(id)
            })
    }

    /// Runs a Slurm client command; its stdout, or one line with its stderr when it fails.
    public static func command(_ name: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [name] + arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw LinprobeError(
                .missingInput, "\(name): cannot run it (\(oneLine(error))); is Slurm's client installed?")
        }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            let why = String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let reason =
                process.terminationStatus == 127
                ? "not found on the PATH (install Slurm's client, or scripts/slurm-local.sh up)" : why
            throw LinprobeError(
                .io, "\(name) \(arguments.joined(separator: " ")): \(reason.split(separator: "\n").first ?? "")")
        }
        return text
    }
}
