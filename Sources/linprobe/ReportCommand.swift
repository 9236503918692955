import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeReport

/// `linprobe report <pipeline> [overrides] [--results DIR ...] [--merge REPORT.json ...] [--out DIR]`.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Gather SVM and linear-head results into report.md, report.json and a self-contained report.html.",
        discussion: """
            Without --results, reads the pipeline's latest finished train-svm and train-linear runs from \
            <workdir>/manifest.json. --results takes results folders (svm/<fp>, linear/<fp>, or one layer/head \
            folder). --merge adds the rows and charts of other runs' report.json (e.g. other checkpoints) for a \
            comparison. Writes <workdir>/reports/<pipeline>/report.{md,json,html} unless --out says otherwise; \
            prints the table and the paths on stdout.
            """)

    @OptionGroup var arguments: PipelineArguments

    @Option(name: .customLong("results"), help: "A results folder (svm/<fp>, linear/<fp>, a layer or head folder); repeatable.")
    var results: [String] = []

    @Option(name: .customLong("merge"), help: "Another run's report.json to compare with; repeatable.")
    var merge: [String] = []

    @Option(help: "Label of this run in a comparison (default: pipeline name · weights file name).")
    var label: String?

    @Option(help: "Output folder (default: <workdir>/reports/<pipeline name>).")
    var out: String?

    func run() throws {
        try reportingErrors {
            let config = try PipelineConfig.load(pipeline: arguments.pipeline, overrides: arguments.overrides)
            for note in config.notes { Console.note(note) }
            if let note = config.ignoredKeysNote { Console.note(note) }
            let outputs = try ReportStage.run(
                config: config, workdir: arguments.workdir, resultsDirectories: results.isEmpty ? nil : results, merge: merge,
                label: label, outputDirectory: out)
            for message in outputs.messages { Console.note(message) }
            Console.result(outputs.markdown)
            Console.result("report: \(outputs.htmlPath)")
            Console.result("report: \(outputs.jsonPath)")
            Console.result("report: \(outputs.markdownPath)")
        }
    }
}
