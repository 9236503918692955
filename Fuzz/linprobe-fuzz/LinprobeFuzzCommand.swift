import ArgumentParser
import Foundation
import LinprobeFuzz

/// `make fuzz`: seeded mutation loops over Linprobe's parsers; exits 1 when one crashed, hung or
/// allocated past the limit (the inputs are in the findings folder).
@main
struct LinprobeFuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linprobe-fuzz",
        abstract: "Seeded mutation fuzzing of Linprobe's parsers (checkpoint, yaml, npy, store, image).")

    @Argument(help: "Targets to run (default: all).")
    var targets: [String] = []

    @Option(help: "Mutants per target (default: each target's own count).")
    var iterations: Int?

    @Option(help: "Seed of the mutation stream.")
    var seed: UInt64 = 1

    @Option(help: "Folder for inputs that crashed, hung or allocated past the limit.")
    var findings = "fuzz-findings"

    @Option(help: "Repository root (seed inputs are its test fixtures).")
    var root = FileManager.default.currentDirectoryPath

    @Option(help: "Seconds one input may take.")
    var timeout: UInt32 = 5

    @Option(help: "Address-space limit of the child parsing one input (MiB).")
    var memoryMB = 2048

    @Flag(help: "Print each target's ten most frequent rejection messages.")
    var reasons = false

    @Option(help: "Parse this one file in-process with the (single) target named, and print the outcome.")
    var replay: String?

    func run() throws {
        if let replay {
            guard targets.count == 1 else { throw ValidationError("--replay needs exactly one target") }
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: replay)))
            let copy = NSTemporaryDirectory() + "linprobe-fuzz-replay-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: copy) }
            do {
                try FuzzTarget.named(targets[0]).run(bytes, path: copy)
                print("parsed")
            } catch {
                print("rejected: \(error)")
            }
            return
        }
        let chosen = try (targets.isEmpty ? FuzzTarget.all.map(\.name) : targets).map { try FuzzTarget.named($0) }
        var runner = FuzzRunner(repositoryRoot: root, findingsFolder: findings)
        runner.seed = seed
        runner.timeoutSeconds = timeout
        runner.memoryLimitBytes = memoryMB << 20
        runner.collectReasons = reasons
        var failures = 0
        for target in chosen {
            let summary = try runner.run(target, iterations: iterations ?? target.defaultIterations)
            print(summary.line)
            for (text, n) in summary.reasons.sorted(by: { $0.value > $1.value }).prefix(10) {
                print("  \(n) × \(text)")
            }
            fflush(nil)
            failures += summary.failures
        }
        try? FileManager.default.removeItem(atPath: (findings as NSString).appendingPathComponent(".scratch"))
        if failures > 0 {
            print("\(failures) findings in \(findings)/")
            throw ExitCode(1)
        }
    }
}
