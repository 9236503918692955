import Foundation
import LinprobeTestSupport
import Testing

/// The command line as users see it: every command's `--help` against a committed snapshot (so a
/// changed option, default or text is a reviewed change), and the shared option groups.
@Suite struct CommandLineTests {
    static let commands = [
        "", "config", "extract", "import-features", "export-features", "train-svm", "train-linear", "knn", "report",
        "run", "slurm", "inspect",
    ]

    /// `LINPROBE_UPDATE_SNAPSHOTS=1` rewrites the snapshots instead of comparing.
    @Test(arguments: commands) func helpMatchesItsSnapshot(_ command: String) throws {
        let arguments = (command.isEmpty ? [] : [command]) + ["--help"]
        let r = try runProcess(linprobeBinary(), arguments, environment: ["COLUMNS": "100"])
        #expect(r.status == 0, "\(r.stderr)")
        let name = command.isEmpty ? "linprobe" : command
        let snapshot = fixturePath("cli/help/\(name).txt")
        if ProcessInfo.processInfo.environment["LINPROBE_UPDATE_SNAPSHOTS"] == "1" {
            try r.stdout.write(toFile: snapshot, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOfFile: snapshot, encoding: .utf8)
        #expect(
            r.stdout == expected,
            "linprobe \(arguments.joined(separator: " ")) differs from \(snapshot); if intended, rerun with LINPROBE_UPDATE_SNAPSHOTS=1"
        )
    }

    @Test(arguments: ["extract", "run", "train-svm", "train-linear", "knn"]) func threadsOptionIsShared(
        _ command: String
    ) throws {
        let tmp = try TemporaryDirectory()
        for bad in ["-1", "100000"] {
            let r = try runProcess(linprobeBinary(), [command, "demo", "--threads", bad, "--workdir", tmp.path])
            #expect(r.status == 64, "\(command) --threads \(bad): \(r.stderr)")
            #expect(r.stderr.contains("--threads"), "\(r.stderr)")
        }
        let help = try runProcess(linprobeBinary(), [command, "--help"], environment: ["COLUMNS": "100"])
        #expect(help.stdout.contains("--threads <threads>"))
        #expect(help.stdout.contains("0 = every core"))
    }

    @Test func extractAcceptsThreadsZeroAsEveryCore() throws {
        let tmp = try TemporaryDirectory()
        let r = try runProcess(
            linprobeBinary(), ["extract", "demo", "--threads", "0", "--workdir", tmp.path],
            currentDirectory: repositoryRoot.path)
        #expect(r.status == 0, "\(r.stderr)")
        let cores = ProcessInfo.processInfo.activeProcessorCount
        #expect(r.stderr.contains("\(cores) trunk thread(s)"), "\(r.stderr)")
    }
}

@Suite struct DecodeWorkersOptionTests {
    /// `extract` and `run` share the streaming options (`run` extracts too).
    @Test(arguments: ["extract", "run"], ["-1", "100000"])
    func outOfRangeDecodeWorkersIsOneUsageLine(_ command: String, _ value: String) throws {
        let tmp = try TemporaryDirectory()
        let r = try runProcess(linprobeBinary(), [command, "demo", "--decode-workers", value, "--workdir", tmp.path])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("--decode-workers"), "\(r.stderr)")
        let flush = try runProcess(linprobeBinary(), [command, "demo", "--flush-seconds", "-1", "--workdir", tmp.path])
        #expect(flush.status == 64 && flush.stderr.contains("--flush-seconds"), "\(flush.stderr)")
    }
}

@Suite struct ForceOptionTests {
    /// `--force` trains again from epoch 0 (not a resume or a reuse of the finished run's files).
    @Test func trainLinearForceTrainsAgain() throws {
        let tmp = try TemporaryDirectory()
        let root = repositoryRoot.path
        let first = try runProcess(linprobeBinary(), ["run", "demo", "--workdir", tmp.path], currentDirectory: root)
        #expect(first.status == 0, "\(first.stderr)")
        let again = try runProcess(
            linprobeBinary(), ["train-linear", "demo", "--workdir", tmp.path], currentDirectory: root)
        #expect(again.stderr.contains("train-linear: unchanged, reused"), "\(again.stderr)")
        let forced = try runProcess(
            linprobeBinary(), ["train-linear", "demo", "--force", "--workdir", tmp.path], currentDirectory: root)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(!forced.stderr.contains("reused") && !forced.stderr.contains("resumed"), "\(forced.stderr)")
        // Same numbers as the first training: stdout lines (head, type, metric, path) are equal.
        #expect(forced.stdout == again.stdout)
    }
}

@Suite struct SpecialWeightsFileTests {
    /// PARAMS_FILE naming a FIFO or /dev/zero is one line, not a blocked open or an endless hash.
    @Test func weightsThatAreNotRegularFilesAreOneLine() throws {
        let tmp = try TemporaryDirectory()
        let fifo = tmp.file("weights.torch")
        #expect(mkfifo(fifo, 0o644) == 0)
        for weights in [fifo, "/dev/zero"] {
            let r = try runProcess(
                linprobeBinary(),
                ["extract", "demo", "config.MODEL.WEIGHTS_INIT.PARAMS_FILE=\(weights)", "--workdir", tmp.file("w")],
                currentDirectory: repositoryRoot.path)
            #expect(r.status != 0, "\(r.stderr)")
            #expect(r.stderr.contains("not a regular file"), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        }
    }
}

@Suite struct FlushSecondsDocumentationTests {
    /// The watermark advances by whole chunks only, so `--flush-seconds 0` cannot mean "a crash
    /// loses at most one batch": the help and the README state the real bound (up to one chunk
    /// of `chunk_rows` rows) instead of promising "at most this much work".
    @Test func helpAndReadmeStateTheChunkBound() throws {
        let help = try runProcess(linprobeBinary(), ["extract", "--help"], environment: ["COLUMNS": "100"])
        #expect(help.status == 0, "\(help.stderr)")
        let text = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let option = try #require(text.range(of: "--flush-seconds <flush-seconds> "))
        let description = String(text[option.upperBound...])
        #expect(!description.hasPrefix("Seconds between flushes of the store: a crash loses at most this much work"))
        #expect(description.contains("whole chunks only"), "\(description)")
        #expect(description.contains("up to one chunk of work even with 0"), "\(description)")
        let readme = try String(
            contentsOfFile: repositoryRoot.appendingPathComponent("README.md").path, encoding: .utf8)
        let flat = readme.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(
            flat.contains(
                "up to `chunk_rows` rows (a whole number of batches, at most 256 or one batch) even with `--flush-seconds 0`"
            ))
    }
}
