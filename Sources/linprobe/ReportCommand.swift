import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeReport

/// `linprobe report <pipeline> [overrides] [--results DIR ...] [--merge REPORT.json ...] [--out DIR]`.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: StageKind.report.name,
        abstract:
            "Gather SVM, linear-head and kNN results into report.md, report.json and a self-contained report.html.",
        discussion: """
            Without --results, reads the pipeline's latest finished train-svm, train-linear and knn runs from \
            <workdir>/manifest.json. --results takes results folders (svm/<fp>, linear/<fp>, knn/<fp>, or one \
            layer/head folder). --merge adds the rows and charts of other runs' report.json (e.g. other checkpoints) for a \
            comparison. Writes <workdir>/reports/<pipeline>/report.{md,json,html} unless --out says otherwise; \
            prints the table and the paths on stdout.
            """)

    @OptionGroup var arguments: PipelineArguments

    @Option(
        name: .customLong("results"),
        help: "A results folder (svm/<fp>, linear/<fp>, knn/<fp>, a layer or head folder); repeatable.")
    var results: [String] = []

    @Option(name: .customLong("merge"), help: "Another run's report.json to compare with; repeatable.")
    var merge: [String] = []

    @Option(help: "Label of this run in a comparison (default: pipeline name · weights file name).")
    var label: String?

    @Option(help: "Output folder (default: <workdir>/reports/<pipeline name>).")
    var out: String?

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            let outputs = try Self.execute(
                config: config, layout: arguments.layout, resultsDirectories: results.isEmpty ? nil : results,
                merge: merge, label: label, outputDirectory: out)
            Console.result(outputs.markdown)
            for path in outputs.files { Console.result("report: \(path)") }
        }
    }

    /// Builds the report under the manifest; its remarks go to stderr.
    static func execute(
        config: PipelineConfig, layout: WorkdirLayout, resultsDirectories: [String]?,
        merge: [String] = [], label: String? = nil, outputDirectory: String? = nil
    ) throws -> ReportOutputs {
        let stage = try ReportStage(
            config: config, layout: layout, resultsDirectories: resultsDirectories, merge: merge,
            label: label, outputDirectory: outputDirectory)
        let result = try StageRunner(layout: layout, note: { Console.note($0) }).execute(stage)
        for message in result.outcome.messages { Console.note("report: \(message)") }
        return result.outcome
    }
}
