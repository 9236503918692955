import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeExtract

/// The arguments every pipeline-driven subcommand takes:
/// `linprobe <stage> <pipeline | config=PATH> [+GROUP=NAME ...] [config.A.B=value ...] [--configs DIR] [--workdir DIR]`.
struct PipelineArguments: ParsableArguments {
    @Argument(
        help:
            "A pipeline file, the name of one under pipelines/ (e.g. voc07_svm), or VISSL's config=PATH (read in --configs, as Hydra does)."
    )
    var pipeline: String

    @Argument(
        help:
            "Overlays +GROUP=NAME (GROUP/NAME.yaml beside the pipeline; +config/…/GROUP=NAME in --configs), merged in order (mappings merge, lists are replaced); then overrides config.A.B=value (A.B=value too; +config.NEW.KEY=value adds a key)."
    )
    var overrides: [String] = []

    @Option(
        help:
            "VISSL's configs folder (the one holding config/) for config=PATH and +config/… (default: $LINPROBE_VISSL_CONFIGS)."
    )
    var configs: String?

    @Option(help: "Folder holding manifest.json and every artifact.")
    var workdir: String = "runs"

    /// The work folder's layout.
    var layout: WorkdirLayout { WorkdirLayout(workdir) }

    /// The composed configuration, its notes and ignored VISSL keys said on stderr.
    func load() throws -> PipelineConfig {
        let config = try PipelineConfig.load(pipeline: pipeline, overrides: overrides, configs: configs)
        for note in config.notes { Console.note(note) }
        if let note = config.ignoredKeysNote { Console.note(note) }
        return config
    }
}

/// `--threads N` for every command that computes: N threads, 0 = every core; absent = the
/// pipeline's `LINPROBE.THREADS` (whose 0 also means every core).
struct ThreadOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Compute threads (0 = every core; default: LINPROBE.THREADS).")
    var threads: Int?

    /// More threads than this many per core only add memory (each holds its own buffers).
    static let maximumPerCore = 4

    func validate() throws {
        guard let threads else { return }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if threads < 0 { throw ValidationError("--threads must be 0 (every core) or a positive count, got \(threads)") }
        if threads > Self.maximumPerCore * cores {
            throw ValidationError(
                "--threads \(threads) is more than \(Self.maximumPerCore) per core on this machine's \(cores) core(s); use 0 for every core"
            )
        }
    }

    /// The thread count to use: the option, else `LINPROBE.THREADS`; 0 means every core.
    func resolved(_ config: PipelineConfig) throws -> Int {
        let asked = try threads ?? config.node("LINPROBE.THREADS").int()
        return asked > 0 ? asked : ProcessInfo.processInfo.activeProcessorCount
    }
}

/// The options of the stages that read stores (`train-svm`, `train-linear`, `knn`).
struct TrainingOptions: ParsableArguments {
    @Option(help: "Training feature store (.h5); default: the store of this pipeline's extraction or import.")
    var features: String?

    @Option(help: "Test feature store (.h5).")
    var testFeatures: String?

    @OptionGroup var threading: ThreadOptions

    @Flag(help: "Train again even when a finished run with the same fingerprint exists.")
    var force = false

    /// The stores a training stage reads: `--features`/`--test-features`, or the pipeline's.
    func stores(_ config: PipelineConfig, _ layout: WorkdirLayout, for stage: StageKind) throws -> TrainingStores {
        try TrainingStores.resolve(
            config: config, layout: layout, features: features, testFeatures: testFeatures,
            stage: stage)
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

/// Runs (or reuses) a stage under the manifest; when it was reused, `reused(outcome)` is said on stderr.
func executeStage<S: PipelineStage>(
    _ stage: S, layout: WorkdirLayout, force: Bool = false, reused: (S.Outcome) -> String
) throws -> S.Outcome {
    let result = try StageRunner(layout: layout, force: force, note: { Console.note($0) }).execute(stage)
    if result.reused { Console.note(reused(result.outcome)) }
    return result.outcome
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
