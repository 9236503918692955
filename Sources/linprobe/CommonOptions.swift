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
