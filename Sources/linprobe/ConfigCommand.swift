import ArgumentParser
import Foundation
import LinprobeCore

/// `linprobe config <pipeline> [overrides] [--json]`: prints the effective configuration.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print a pipeline's effective configuration (defaults, then the file, then the overrides).",
        discussion: """
            YAML under a root config: key by default (it loads back unchanged); --json prints the \
            canonical JSON that fingerprints are computed from. VISSL keys Linprobe does not use \
            are listed once on stderr.
            """)

    @OptionGroup var arguments: PipelineArguments

    @Flag(help: "Print canonical JSON (sorted keys, compact) instead of YAML.")
    var json = false

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            if json {
                Console.result(config.jsonText)
            } else {
                FileHandle.standardOutput.write(Data(config.yamlText.utf8))
            }
        }
    }
}
