import Foundation
import LinprobeCore

/// What a report run wrote (or found already written).
public struct ReportOutputs: Sendable {
    public var markdownPath: String
    public var jsonPath: String
    public var htmlPath: String
    /// The markdown text (the CLI prints it).
    public var markdown: String
    public var document: ReportDocument
    /// The results.json files the report was built from.
    public var resultFiles: [String]
    /// One-line remarks for stderr (merged runs left out, an unchanged report kept, …).
    public var messages: [String]
    /// True when the three files already held exactly this report and nothing was rewritten.
    public var unchanged: Bool

    /// The folder holding the three files.
    public var directory: String { Paths.parent(htmlPath) }
    /// report.html, report.json, report.md: the order the CLI prints them in.
    public var files: [String] { [htmlPath, jsonPath, markdownPath] }
}

/// The `report` stage: results of train-svm / train-linear (and other runs' report.json) into
/// `report.md`, `report.json` and a self-contained `report.html`, run through `StageRunner` like
/// every stage (lock, reuse, manifest record).
///
/// The plan's fingerprint covers the results files' and merged reports' SHA-256s and the
/// parameters (title, label, pipeline, output folder, fallback names, tool version); the outputs
/// are the three files. Building a report takes milliseconds, so `reuse` builds it again and
/// compares: files are rewritten only when their bytes change (a hand-edited or damaged file is
/// restored), and an identical rerun says "unchanged".
///
/// ```swift
/// let stage = try ReportStage(config: config, layout: WorkdirLayout(workdir), resultsDirectories: dirs)
/// let result = try StageRunner(layout: stage.layout).execute(stage)   // result.outcome: ReportOutputs
/// ```
public struct ReportStage: PipelineStage {
    public let plan: StagePlan
    public let layout: WorkdirLayout
    /// The results.json files the report reads (sorted) and the reports it merges.
    public let resultFiles: [String]
    public let merge: [String]
    /// The report's title and the folder of its three files.
    public let title: String
    public let outputDirectory: String
    let context: ReportBuilder.Context

    /// Plans the report of a pipeline: finds its results, hashes them and the reports to merge.
    ///
    /// - Parameters:
    ///   - config: the pipeline (its name names the report folder and the default run label;
    ///     `LINPROBE.REPORT.TITLE` the title).
    ///   - layout: the work folder (its manifest finds the results, records the report).
    ///   - resultsDirectories: results folders (`svm/<fp>`, `linear/<fp>`, layer/head folders,
    ///     results.json files); nil or empty = the pipeline's latest complete train-svm /
    ///     train-linear records in the manifest.
    ///   - merge: other runs' report.json whose rows and charts join this report.
    ///   - label: this run's label (default: pipeline name · weights name).
    ///   - outputDirectory: default `<workdir>/reports/<pipeline name>`.
    public init(
        config: PipelineConfig, layout: WorkdirLayout, resultsDirectories: [String]? = nil, merge: [String] = [],
        label: String? = nil, outputDirectory: String? = nil
    ) throws {
        let folders: [String]
        if let resultsDirectories, !resultsDirectories.isEmpty {
            folders = resultsDirectories
        } else {
            folders = try Self.latestResults(layout: layout, pipeline: config.name)
            if folders.isEmpty { throw Self.nothingFound(config: config, layout: layout) }
        }
        self.layout = layout
        self.resultFiles = try ResultsLoader.resultFiles(in: folders)
        self.merge = merge
        self.title = Self.title(config)
        self.context = ReportBuilder.Context(
            label: label, pipeline: config.name, fallbackWeights: Self.weightsName(config),
            fallbackDataset: Self.datasetName(config))
        let outputs: [String]
        if let outputDirectory {
            let folder = Paths.standardized(outputDirectory)
            self.outputDirectory = folder
            outputs = ReportRenderer.fileNames.map { layout.relative(Paths.join(folder, $0)) }
        } else {
            self.outputDirectory = layout.path(.reportFolder(pipeline: config.name))
            outputs = ReportRenderer.fileNames.map { layout.relativePath(.reportFile(pipeline: config.name, name: $0)) }
        }
        let inputs = try Self.inputs(results: resultFiles, merge: merge, layout: layout)
        let parameters: JSONValue = [
            "title": .string(title), "label": label.map { .string($0) } ?? .null, "pipeline": .string(config.name),
            "output": .string(self.outputDirectory), "version": .string(LinprobeVersion.string),
            "fallback_weights": context.fallbackWeights.map { .string($0) } ?? .null,
            "fallback_dataset": context.fallbackDataset.map { .string($0) } ?? .null,
        ]
        let fingerprint = Fingerprint.short(
            ["stage": .string(StageKind.report.name), "inputs": inputs, "parameters": parameters])
        plan = StagePlan(
            kind: .report, fingerprint: fingerprint, inputs: inputs, parameters: parameters, outputs: outputs,
            pipeline: config.name)
    }

    /// The SHA-256 of every results file and merged report, by path (relative to the work folder
    /// when inside it).
    static func inputs(results: [String], merge: [String], layout: WorkdirLayout) throws -> JSONValue {
        var hashes: [String: JSONValue] = [:]
        for file in results { hashes[layout.relative(file)] = .string(try Fingerprint.sha256(ofFile: file)) }
        var merged: [String: JSONValue] = [:]
        for path in merge {
            guard FileManager.default.fileExists(atPath: path) else {
                throw LinprobeError(
                    .missingInput,
                    "\(path): no such report to merge (pass the report.json written by an earlier 'linprobe report')")
            }
            merged[layout.relative(path)] = .string(try Fingerprint.sha256(ofFile: path))
        }
        return ["results": .object(hashes), "merge": .object(merged)]
    }

    // MARK: - PipelineStage

    public func run(_ context: StageContext) throws -> ReportOutputs {
        try writeReport(context)
    }

    /// A complete record with this fingerprint: the same results, merges and parameters. The
    /// report is built again (cheap and deterministic) and the files are kept when they match.
    public func reuse(_ context: StageContext, record: ManifestRecord) throws -> ReportOutputs {
        try writeReport(context)
    }

    /// A damaged or edited report file is fine: reuse writes every file whose bytes differ.
    public func outputsChanged(_ context: StageContext, changes: [String]) throws {}

    public func manifestMessage(_ outcome: ReportOutputs) -> String? {
        outcome.unchanged ? "unchanged: the files already held this report" : nil
    }

    /// Builds the document, then writes each file whose bytes differ from what it holds.
    func writeReport(_ context: StageContext) throws -> ReportOutputs {
        context.progress.begin("results", total: resultFiles.count + merge.count, unit: "files")
        let (document, messages) = try buildDocument(progress: context.progress)
        context.progress.finish()
        let paths = ReportRenderer.fileNames.map { Paths.join(outputDirectory, $0) }
        let texts = try ReportRenderer.texts(document)
        var unchanged = true
        for (path, text) in zip(paths, texts) where FileManager.default.contents(atPath: path) != Data(text.utf8) {
            try AtomicFile.write(text, to: path)
            unchanged = false
        }
        var outputs = ReportOutputs(
            markdownPath: paths[0], jsonPath: paths[1], htmlPath: paths[2], markdown: texts[0], document: document,
            resultFiles: resultFiles, messages: messages, unchanged: unchanged)
        if unchanged { outputs.messages.append("unchanged (same results, same report); kept \(outputDirectory)") }
        return outputs
    }

    /// This run's document, with the merged reports' rows and charts (a merged run whose label is
    /// already present is left out, and said).
    func buildDocument(progress: ProgressReporter) throws -> (ReportDocument, [String]) {
        var results: [LoadedResult] = []
        for file in resultFiles {
            results.append(try ResultsLoader.load(file))
            progress.advance()
        }
        let document = ReportBuilder.build(results: results, title: title, context: context)
        guard !merge.isEmpty else { return (document, []) }
        var documents = [document]
        var messages: [String] = []
        var present = Set(document.rows.map(\.run))
        for path in merge {
            var other = try Self.readReport(path)
            progress.advance()
            let runs = orderedUnique(other.rows.map(\.run))
            let repeated = runs.filter { present.contains($0) }
            if !repeated.isEmpty {
                let names = repeated.map { "'\($0)'" }.joined(separator: ", ")
                messages.append(
                    "\(path): run\(repeated.count == 1 ? "" : "s") \(names) already in the report; those rows are "
                        + "left out (give runs distinct names with --label)")
                other.rows.removeAll { repeated.contains($0.run) }
                other.charts.removeAll { repeated.contains($0.run) }
                for run in repeated { other.protocolInfo.runs.removeValue(forKey: run) }
            }
            present.formUnion(runs)
            if !other.rows.isEmpty { documents.append(other) }
        }
        return (ReportDocument.merged(documents, title: title), messages)
    }

    // MARK: - One call for the CLI

    /// Plans the report and runs it through `StageRunner` (lock, reuse, manifest record) in the
    /// work folder `workdir`.
    public static func run(
        config: PipelineConfig, workdir: String, resultsDirectories: [String]? = nil, merge: [String] = [],
        label: String? = nil, outputDirectory: String? = nil, force: Bool = false,
        note: @escaping @Sendable (String) -> Void = { _ in }
    ) throws -> ReportOutputs {
        let layout = WorkdirLayout(workdir)
        let stage = try ReportStage(
            config: config, layout: layout, resultsDirectories: resultsDirectories, merge: merge, label: label,
            outputDirectory: outputDirectory)
        return try StageRunner(layout: layout, force: force, note: note).execute(stage).outcome
    }
}
