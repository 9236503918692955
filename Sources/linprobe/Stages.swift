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

/// What a training stage produced (or found already done).
struct TrainingStageOutcome {
    var directory: String
    var reused: Bool
    /// One line per layer or head: name, metric, value, results path.
    var lines: [String]
}

/// `train-svm` over a store pair: `<workdir>/svm/<fp>/<layer>/results.json`.
func runSVMStage(config: PipelineConfig, workdir: String, stores: TrainingStores, threads: Int?, force: Bool) throws -> TrainingStageOutcome {
    var settings = try SVMSettings(config: config.root)
    if let threads, threads > 0 { settings.threads = threads }
    if force { settings.forceRetrain = true }
    let fingerprint = SVMStage.fingerprint(trainFingerprint: stores.train.fingerprint, testFingerprint: stores.test.fingerprint, settings: settings)
    let progress = StageProgress(stage: "train-svm")
    return try runTrainingStage(
        "train-svm", folder: "svm", fingerprint: fingerprint, parameters: settings.fingerprintJSON,
        config: config, workdir: workdir, stores: stores, force: force, valueFormat: "%.2f"
    ) {
        try SVMStage.run(
            train: stores.train.path, test: stores.test.path, settings: settings,
            outputDirectory: (workdir as NSString).appendingPathComponent("svm"),
            progress: { p in progress.update(label: "\(p.layer) \(p.phase)", done: p.done, total: p.total, unit: "fits") },
            warn: { Console.note("train-svm: warning: \($0)") })
        progress.finish()
        return nil
    }
}

/// Runs a training stage under the manifest (inputs: the two stores) into `<workdir>/<folder>/<fp>`
/// and summarises it — whether it ran or was reused — from its `results.json` files, one line per
/// layer or head: name, method, metric and value, results path.
private func runTrainingStage(
    _ stage: String, folder: String, fingerprint: String, parameters: JSONValue, config: PipelineConfig, workdir: String,
    stores: TrainingStores, force: Bool, valueFormat: String, body: @escaping () throws -> String?
) throws -> TrainingStageOutcome {
    let relative = "\(folder)/\(fingerprint)"
    let directory = (workdir as NSString).appendingPathComponent(relative)
    let stage = ClosureStage(
        plan: StagePlan(
            kind: StageKind(rawValue: stage) ?? .report, fingerprint: fingerprint,
            inputs: ["train_features": .string(stores.train.fingerprint), "test_features": .string(stores.test.fingerprint),
                     "train_path": .string(stores.train.path), "test_path": .string(stores.test.path)],
            parameters: parameters, outputs: [relative], pipeline: config.name),
        body: body)
    let outcome = try StageRunner(layout: WorkdirLayout(workdir), force: force, note: { Console.note($0) }).execute(stage)
    var lines: [String] = []
    for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
        let path = ((directory as NSString).appendingPathComponent(name) as NSString).appendingPathComponent("results.json")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
        guard let json = try? JSONValue.parse(text) else {
            throw LinprobeError(.corruptInput, "\(path): not valid JSON; run \(stage) again with --force")
        }
        let method = json["head_type"]?.stringValue ?? json["method"]?.stringValue ?? folder
        let value = json["value"]?.doubleValue.map { String(format: valueFormat, $0) } ?? "n/a"
        lines.append("\(name)\t\(method)\t\(json["metric"]?.stringValue ?? "?") \(value)\t\(path)")
    }
    return TrainingStageOutcome(directory: directory, reused: outcome.reused, lines: lines)
}

/// One progress line at a time on stderr (only on a terminal): a new line whenever the label
/// changes.
final class StageProgress: @unchecked Sendable {
    private let stage: String
    private let lock = NSLock()
    private var line: ProgressReporter?
    private var label = ""
    private var done = 0

    init(stage: String) { self.stage = stage }

    func update(label newLabel: String, done newDone: Int, total: Int, unit: String) {
        lock.lock()
        defer { lock.unlock() }
        if line == nil || newLabel != label {
            line?.finish()
            line = ProgressReporter(stage: stage)
            line?.begin(newLabel, total: total, unit: unit)
            label = newLabel
            done = 0
        }
        if newDone > done {
            line?.advance(by: newDone - done)
            done = newDone
        }
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        line?.finish()
        line = nil
    }
}

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

/// A stage given by its plan and a body (temporary, until every stage module conforms itself).
struct ClosureStage: PipelineStage {
    let plan: StagePlan
    let body: () throws -> String?

    func run(_ context: StageContext) throws -> String? { try body() }
    func reuse(_ context: StageContext, record: ManifestRecord) throws -> String? { record.message }
    func manifestMessage(_ outcome: String?) -> String? { outcome }
}
