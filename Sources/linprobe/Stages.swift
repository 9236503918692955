import Foundation
import LinprobeCore
import LinprobeData
import LinprobeExtract
import LinprobeReport
import LinprobeLinear
import LinprobeStore
import LinprobeSVM

/// The stages as in-process calls shared by their subcommands and by `run`: each one is governed
/// by the manifest (an identical rerun is reused, an interrupted one resumes) and prints its
/// diagnostics to stderr.

/// What the report stage wrote (or found unchanged).
struct ReportStageOutcome {
    var directory: String
    var reused: Bool
    /// The markdown table, for stdout.
    var table: String
    /// report.html, report.json, report.md.
    var files: [String]
}

/// `report` over exactly the given results folders (what this run produced).
func runReportStage(config: PipelineConfig, workdir: String, resultsDirectories: [String]) throws -> ReportStageOutcome {
    let out = try ReportStage.run(config: config, workdir: workdir, resultsDirectories: resultsDirectories)
    for message in out.messages { Console.note("report: \(message)") }
    return ReportStageOutcome(
        directory: (out.htmlPath as NSString).deletingLastPathComponent, reused: out.reused, table: out.markdown,
        files: [out.htmlPath, out.jsonPath, out.markdownPath])
}

