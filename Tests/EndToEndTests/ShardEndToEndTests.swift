import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Sharded extraction through the built binary: shards merged (virtual or copied) give the
/// unsharded store bit for bit; a missing part is one line; `linprobe slurm` writes its scripts;
/// and, where a one-node Slurm can be brought up (root with apt, as in CI), the demo through it.
@Suite("extract --shard / --shards and linprobe slurm")
struct ShardEndToEndTests {
    static let root = repositoryRoot.path
    /// The demo with fewer epochs (as in RunEndToEndTests), run from the repository root.
    static let demo = ["demo", "config.OPTIMIZER.num_epochs=4", "config.OPTIMIZER.param_schedulers.lr.milestones=[2]"]

    func linprobe(_ arguments: [String]) throws -> ProcessResult {
        try runProcess(linprobeBinary(), arguments, currentDirectory: Self.root)
    }

    func extract(_ workdir: String, _ extra: [String]) throws -> ProcessResult {
        try linprobe(["extract"] + Self.demo + ["--workdir", workdir] + extra)
    }

    /// The split stores of a work folder, by split name.
    static func stores(_ workdir: String) throws -> [String: String] {
        let features = workdir + "/features"
        var out: [String: String] = [:]
        for fp in try FileManager.default.contentsOfDirectory(atPath: features) {
            for split in ["train", "test"] where FileManager.default.fileExists(atPath: "\(features)/\(fp)/\(split).h5")
            {
                out[split] = "\(features)/\(fp)/\(split).h5"
            }
        }
        return out
    }

    /// Every dataset of a store, features as bit patterns.
    static func contents(_ path: String) throws -> [String] {
        let r = try FeatureStoreReader(path: path)
        var out = try r.layers.map { try r.readLayer($0.name).map { String($0.bitPattern) }.joined(separator: ",") }
        out.append(try r.targets().map(String.init).joined(separator: ","))
        out.append(try r.indices().map(String.init).joined(separator: ","))
        out.append(try r.imagePaths().joined(separator: ","))
        out.append(try r.unreadableRows().map(String.init).joined(separator: ","))
        return out + [r.fingerprint]
    }

    @Test("three shards merged (virtual and copy) are bit-identical to an unsharded extraction")
    func shardsMergeToTheUnshardedStore() throws {
        let dir = try TemporaryDirectory()
        let whole = dir.file("whole")
        let unsharded = try extract(whole, [])
        #expect(unsharded.status == 0, "\(unsharded.stderr)")
        for mode in ["virtual", "copy"] {
            let work = dir.file(mode)
            for i in 0..<3 {
                let r = try extract(work, ["--shard", "\(i)/3"])
                #expect(r.status == 0, "\(r.stderr)")
                #expect(r.stdout.contains("/parts/train-\(i)-of-3.h5") && r.stdout.contains("/parts/test-\(i)-of-3.h5"))
            }
            let merged = try extract(work, ["--shards", "3", "--merge", mode])
            #expect(merged.status == 0, "\(merged.stderr)")
            let expected = try Self.stores(whole)
            let got = try Self.stores(work)
            #expect(got.keys.sorted() == ["test", "train"])
            for (split, path) in expected {
                #expect(try Self.contents(try #require(got[split])) == (try Self.contents(path)), "\(mode) \(split)")
            }
            // The merged store is recorded under the unsharded fingerprint: a rerun reuses it.
            let again = try extract(work, [])
            #expect(again.status == 0 && again.stderr.contains("reused"), "\(again.stderr)")
        }
    }

    /// A shard killed part-way resumes from its watermark to the part an uninterrupted shard makes.
    @Test("a killed shard resumes to the same part store")
    func killedShardResumes() throws {
        let dir = try TemporaryDirectory()
        let data = dir.file("data")
        for i in 0..<72 {
            let folder = "\(data)/\(i % 3 == 0 ? "x" : "y")"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let source = fixturePath("images/files/" + (i % 2 == 0 ? "photo_500x375.jpg" : "photo_375x500.jpg"))
            try FileManager.default.copyItem(atPath: source, toPath: String(format: "%@/img%03d.jpg", folder, i))
        }
        // conv1 unpooled at 64×64 is 256 KiB per row: 8-row chunks, so the watermark moves often.
        let text = extractionPipelineText(
            root: data, transforms: #"[{name: Resize, size: 72}, {name: CenterCrop, size: 64}, {name: ToTensor}]"#,
            batch: 2, poolMap: #"[["conv1", ["Identity", []]], ["res5avg", ["Identity", []]]]"#)
        let file = dir.file("p.yaml")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let args = ["extract", file, "--shard", "1/2", "--threads", "2", "--flush-seconds", "0", "--workdir"]
        let clean = try runProcess(linprobeBinary(), args + [dir.file("clean")])
        #expect(clean.status == 0, "\(clean.stderr)")
        let cleanPart = clean.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(cleanPart.hasSuffix("/parts/test-1-of-2.h5"))
        let partial = cleanPart.replacingOccurrences(of: dir.file("clean"), with: dir.file("work")) + ".partial"

        let process = Process()
        process.executableURL = URL(fileURLWithPath: linprobeBinary())
        process.arguments = args + [dir.file("work")]
        process.environment = childEnvironment()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var killed = false
        for _ in 0..<20_000 {
            if let size = try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? Int, size > 5 << 20 {
                kill(process.processIdentifier, SIGKILL)
                killed = true
                break
            }
            if !process.isRunning { break }
            usleep(1000)
        }
        process.waitUntilExit()
        try #require(killed && process.terminationReason == .uncaughtSignal, "the shard ended before it was killed")
        let resumed = try runProcess(linprobeBinary(), args + [dir.file("work")])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let line = try #require(resumed.stderr.split(separator: "\n").first { $0.hasPrefix("resuming ") })
        let row = Int(line.split(separator: " ")[4]) ?? -1
        #expect(row > 0 && row < 36 && row % 8 == 0, "\(line)")
        let part = resumed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try Self.contents(part) == (try Self.contents(cleanPart)))
        #expect(try FeatureStoreReader(path: part).indices().first == 36)
    }

    @Test("a missing or incomplete part is refused in one line naming it")
    func missingPartIsOneLine() throws {
        let dir = try TemporaryDirectory()
        let work = dir.file("w")
        for i in [0, 2] { #expect(try extract(work, ["--split", "TEST", "--shard", "\(i)/3"]).status == 0) }
        let merged = try extract(work, ["--split", "TEST", "--shards", "3"])
        #expect(merged.status == 1)
        let lines = merged.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        #expect(lines.count == 1)
        #expect(lines.first?.contains("parts/test-1-of-3.h5: part 1/3 is missing") == true, "\(merged.stderr)")
        #expect(lines.first?.contains("--split TEST --shard 1/3") == true)
        let tooMany = try extract(work, ["--split", "TEST", "--shard", "0/4"])
        #expect(tooMany.status == 64 && tooMany.stderr.contains("use at most 3 shards"), "\(tooMany.stderr)")
    }

    @Test("linprobe slurm --dry-run writes one script per job and submits nothing")
    func dryRunWritesTheScripts() throws {
        let dir = try TemporaryDirectory()
        let work = dir.file("w")
        let r = try linprobe(
            ["slurm"] + Self.demo + [
                "--workdir", work, "--shards", "3", "--partition", "cpu", "--cpus-per-task", "4", "--dry-run",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let names = [
            "extract-train", "merge-train", "extract-test", "merge-test", "svm-pieces", "train-svm", "train-linear",
            "knn",
            "report",
        ]
        for name in names {
            #expect(FileManager.default.fileExists(atPath: "\(work)/slurm/demo/\(name).sbatch"), "\(name)")
        }
        let extract = try String(contentsOfFile: "\(work)/slurm/demo/extract-train.sbatch", encoding: .utf8)
        #expect(extract.contains("#SBATCH --array=0-2\n"))
        #expect(extract.contains("#SBATCH --partition=cpu\n#SBATCH --cpus-per-task=4\n"))
        #expect(
            extract.contains(
                "--split TRAIN --shard \"${SLURM_ARRAY_TASK_ID}\"'/3' --threads \"${SLURM_CPUS_PER_TASK}\""))
        #expect(r.stdout.contains("merge-test.sbatch (would be submitted)"))
        #expect(!FileManager.default.fileExists(atPath: "\(work)/slurm/demo/jobs.json"))
        // train-svm as an array over 3 layers × 2 class chunks (10 classes), then the assembling job.
        let pieces = try String(contentsOfFile: "\(work)/slurm/demo/svm-pieces.sbatch", encoding: .utf8)
        #expect(pieces.contains("#SBATCH --array=0-5\n"))
        #expect(pieces.contains("train-svm demo"))
        #expect(pieces.contains("--piece \"${SLURM_ARRAY_TASK_ID}\" --class-chunks 2"))
    }

    /// Root with apt-get (CI): scripts/slurm-local.sh can install and start a one-node Slurm.
    static let canRunSlurm =
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/apt-get")
        && ProcessInfo.processInfo.environment["LINPROBE_SKIP_SLURM"] == nil

    @Test(
        "linprobe slurm demo --shards 3 on a local one-node Slurm gives the unsharded stores and table",
        .enabled(
            if: canRunSlurm, "needs root and apt-get to bring up a local Slurm (scripts/slurm-local.sh up); skipped"),
        .timeLimit(.minutes(20)))
    func demoThroughLocalSlurm() throws {
        let wasUp = try runProcess("/bin/bash", ["-c", "pgrep -x slurmctld >/dev/null"]).status == 0
        let up = try runProcess("/bin/bash", ["scripts/slurm-local.sh", "up"], currentDirectory: Self.root)
        try #require(up.status == 0, "\(up.stdout)\(up.stderr)")
        defer {
            if !wasUp {
                _ = try? runProcess("/bin/bash", ["scripts/slurm-local.sh", "down"], currentDirectory: Self.root)
            }
        }
        let dir = try TemporaryDirectory()
        let work = dir.file("slurm")
        let submitted = try linprobe(["slurm"] + Self.demo + ["--workdir", work, "--shards", "3"])
        try #require(submitted.status == 0, "\(submitted.stderr)")
        let ids = submitted.stdout.split(separator: "\n").compactMap { $0.split(separator: "\t").dropFirst().first }
        #expect(ids.count == 9)
        let deadline = Date().addingTimeInterval(900)
        while Date() < deadline {
            let queue = try runProcess("/usr/bin/env", ["squeue", "--noheader", "--jobs", ids.joined(separator: ",")])
            if queue.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { break }
            usleep(2_000_000)
        }
        let report = work + "/reports/demo/report.md"
        try #require(FileManager.default.fileExists(atPath: report), "no report; see \(work)/slurm/demo/logs")

        let whole = dir.file("whole")
        let unsharded = try linprobe(["run"] + Self.demo + ["--workdir", whole])
        #expect(unsharded.status == 0, "\(unsharded.stderr)")
        let expected = try Self.stores(whole)
        for (split, path) in try Self.stores(work) {
            #expect(try Self.contents(path) == (try Self.contents(try #require(expected[split]))), "\(split)")
        }
        let table = { (path: String) throws -> String in
            try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "## Protocol")[0]
        }
        #expect(try table(report) == (try table(whole + "/reports/demo/report.md")))
        // Everything is complete: a second submission submits nothing.
        let again = try linprobe(["slurm"] + Self.demo + ["--workdir", work, "--shards", "3"])
        #expect(again.status == 0 && again.stderr.contains("nothing to submit"), "\(again.stdout)\(again.stderr)")
    }
}
