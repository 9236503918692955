import ArgumentParser
import Foundation
import LinprobeCore

/// The arguments every pipeline-driven subcommand takes:
/// `linprobe <stage> <pipeline> [config.A.B=value ...] [--workdir DIR]`.
struct PipelineArguments: ParsableArguments {
    @Argument(help: "A pipeline file, or the name of one under pipelines/ (e.g. voc07_svm).")
    var pipeline: String

    @Argument(help: "Overrides in VISSL's spelling: config.A.B=value (A.B=value also accepted).")
    var overrides: [String] = []

    @Option(help: "Folder holding manifest.json and every artifact.")
    var workdir: String = "runs"

    /// The effective configuration, its notes and ignored VISSL keys said on stderr.
    func load() throws -> PipelineConfig {
        let config = try PipelineConfig.load(pipeline: pipeline, overrides: overrides)
        for note in config.notes { Console.note(note) }
        if let note = config.ignoredKeysNote { Console.note(note) }
        return config
    }
}

/// The options of the training stages (`train-svm`, `train-linear`).
struct TrainingOptions: ParsableArguments {
    @Option(help: "Training feature store (.h5); default: the store of this pipeline's extraction.")
    var features: String?

    @Option(help: "Test feature store (.h5).")
    var testFeatures: String?

    @Option(help: "Compute threads (default: LINPROBE.THREADS, 0 = all cores).")
    var threads: Int?

    @Flag(help: "Train again even when a finished run with the same fingerprint exists.")
    var force = false

    func validate() throws {
        if let threads, threads < 0 { throw ValidationError("--threads must be ≥ 0") }
    }

    /// Loads the pipeline, finds the stores and runs `stage` through `body`, printing its lines.
    func run(_ stage: String, _ arguments: PipelineArguments,
             _ body: (PipelineConfig, StagePair) throws -> TrainingStageOutcome) throws {
        try reportingErrors {
            let config = try arguments.load()
            let stores = try resolveStores(config: config, workdir: arguments.workdir, features: features, testFeatures: testFeatures, stage: stage)
            let outcome = try body(config, stores)
            if outcome.reused { Console.note("\(stage): reusing the finished run \(outcome.directory)") }
            for line in outcome.lines { Console.result(line) }
        }
    }
}

/// Standard error output for diagnostics and progress; stdout is kept for results and paths.
enum Console {
    static func error(_ message: String) {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }

    static func result(_ message: String) {
        FileHandle.standardOutput.write(Data("\(message)\n".utf8))
    }
}

/// Runs a subcommand body and turns any failure into one line on stderr and the documented
/// exit code (64 for configuration and usage errors, 1 for runtime failures).
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as LinprobeError {
        Console.error(oneLine(error))
        throw ExitCode(error.exitCode)
    } catch {
        Console.error(oneLine(error))
        throw ExitCode(1)
    }
}
