import ArgumentParser
import Foundation
import LinprobeCore

/// `linprobe config <pipeline> [+GROUP=NAME ...] [overrides] [--json | --explain]`: prints the
/// composed configuration.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract:
            "Print a pipeline's composed configuration (defaults, the base, the overlays, then the overrides).",
        discussion: """
            YAML under a root config: key by default (it loads back unchanged); --json prints the \
            canonical JSON that fingerprints are computed from; --explain prints each value with the \
            file and line (or the override) it came from. VISSL keys Linprobe does not use are listed \
            once on stderr.
            """)

    @OptionGroup var arguments: PipelineArguments

    @Flag(help: "Print canonical JSON (sorted keys, compact) instead of YAML.")
    var json = false

    @Flag(help: "Print each value with the file and line, the override, or the default it came from.")
    var explain = false

    func validate() throws {
        if json && explain { throw ValidationError("--json and --explain print different things; give one") }
    }

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            if json {
                Console.result(config.jsonText)
            } else if explain {
                FileHandle.standardOutput.write(Data(config.explainText.utf8))
            } else {
                FileHandle.standardOutput.write(Data(config.yamlText.utf8))
            }
        }
    }
}
