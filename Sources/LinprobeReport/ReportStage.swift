import Foundation
import LinprobeCore

/// What a report run wrote.
public struct ReportOutputs: Sendable {
    public var markdownPath: String
    public var jsonPath: String
    public var htmlPath: String
    /// The markdown text (the CLI prints it).
    public var markdown: String
    public var document: ReportDocument
    /// The results.json files the report was built from.
    public var resultFiles: [String]
    /// One-line remarks for stderr (merged runs left out, a finished report reused, …).
    public var messages: [String]
    /// True when the manifest held a complete report of the same inputs and nothing was rewritten.
    public var reused: Bool
}

/// The `report` stage: results of train-svm / train-linear (and other runs' report.json) into
/// `report.md`, `report.json` and a self-contained `report.html`.
public enum ReportStage {
    public static let stageName = "report"

    /// `<workdir>/reports/<pipeline>`.
    public static func defaultOutputDirectory(workdir: String, pipeline: String) -> String {
        ((workdir as NSString).appendingPathComponent("reports") as NSString).appendingPathComponent(pipeline)
    }

    /// The results folders of the pipeline's latest complete train-svm and train-linear records in
    /// `<workdir>/manifest.json` whose outputs still exist (at most one folder set per stage).
    public static func latestResults(workdir: String, pipeline: String) throws -> [String] {
        let manifestPath = (workdir as NSString).appendingPathComponent("manifest.json")
        guard FileManager.default.fileExists(atPath: manifestPath) else { return [] }
        let manifest = try ManifestStore(workdir: workdir).read()
        var folders: [String] = []
        for stage in ["train-svm", "train-linear"] {
            let records = manifest.records.values
                .filter { $0.stage == stage && $0.pipeline == pipeline && $0.status == .complete }
                .sorted { ($0.finished ?? $0.started, $0.key) > ($1.finished ?? $1.started, $1.key) }
            for record in records {
                let outputs = record.outputs.map { resolve($0, in: workdir) }
                if !outputs.isEmpty && outputs.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
                    folders.append(contentsOf: outputs.map { ($0 as NSString).lastPathComponent == "results.json" ? ($0 as NSString).deletingLastPathComponent : $0 })
                    break
                }
            }
        }
        return folders
    }

    static func resolve(_ path: String, in workdir: String) -> String {
        path.hasPrefix("/") ? path : (workdir as NSString).appendingPathComponent(path)
    }

    /// Builds and writes the report of a pipeline.
    ///
    /// - Parameters:
    ///   - config: the pipeline (its name names the report folder and the default run label;
    ///     `LINPROBE.REPORT.TITLE` the title).
    ///   - resultsDirectories: results folders (`svm/<fp>`, `linear/<fp>`, layer/head folders);
    ///     nil = the pipeline's latest complete train-svm / train-linear records in the manifest.
    ///   - merge: other runs' report.json whose rows and charts join this report.
    ///   - label: this run's label (default: pipeline name · weights file name).
    ///   - outputDirectory: default `<workdir>/reports/<pipeline name>`.
    public static func run(
        config: PipelineConfig, workdir: String, resultsDirectories: [String]? = nil, merge: [String] = [],
        label: String? = nil, outputDirectory: String? = nil
    ) throws -> ReportOutputs {
        let folders: [String]
        if let resultsDirectories, !resultsDirectories.isEmpty {
            folders = resultsDirectories
        } else {
            folders = try latestResults(workdir: workdir, pipeline: config.name)
            if folders.isEmpty { throw nothingFound(config: config, workdir: workdir) }
        }
        let files = try ReportBuilder.resultFiles(in: folders)
        let configuredTitle = (try? config.node("LINPROBE.REPORT.TITLE").stringIfPresent()) ?? nil
        let title = configuredTitle.flatMap { $0.isEmpty ? nil : $0 } ?? "Linprobe report: \(config.name)"
        let context = ReportBuilder.Context(
            label: label, pipeline: config.name, fallbackWeights: weightsName(config), fallbackDataset: datasetName(config))
        let outDir = outputDirectory ?? defaultOutputDirectory(workdir: workdir, pipeline: config.name)

        // The inputs that determine the report (for the manifest's record).
        var inputs: [String: JSONValue] = [:]
        for f in files { inputs[f] = .string(try Fingerprint.sha256(ofFile: f)) }
        var merged: [String: JSONValue] = [:]
        for m in merge {
            guard FileManager.default.fileExists(atPath: m) else {
                throw LinprobeError(.missingInput, "\(m): no such report to merge (pass the report.json written by an earlier 'linprobe report')")
            }
            merged[m] = .string(try Fingerprint.sha256(ofFile: m))
        }
        let parameters: JSONValue = [
            "title": .string(title), "label": label.map { .string($0) } ?? .null, "pipeline": .string(config.name),
            "output": .string(URL(fileURLWithPath: outDir).standardizedFileURL.path), "version": .string(LinprobeVersion.string),
            "fallback_weights": context.fallbackWeights.map { .string($0) } ?? .null,
            "fallback_dataset": context.fallbackDataset.map { .string($0) } ?? .null,
        ]
        let fingerprint = Fingerprint.short(["stage": "report", "results": .object(inputs), "merge": .object(merged), "parameters": parameters])

        var outputs: ReportOutputs? = nil
        let body: () throws -> String? = {
            outputs = try write(files: files, merge: merge, title: title, context: context, outDir: outDir)
            return nil
        }
        // A work folder with a manifest records the report (so `run` can skip an unchanged one);
        // a report of explicit results elsewhere does not create a work folder.
        let manifestPath = (workdir as NSString).appendingPathComponent("manifest.json")
        if FileManager.default.fileExists(atPath: manifestPath) {
            let names = ["report.md", "report.json", "report.html"].map { (outDir as NSString).appendingPathComponent($0) }
            let outcome = try runStage(
                stageName, fingerprint: fingerprint, manifest: ManifestStore(workdir: workdir),
                inputs: ["results": .object(inputs), "merge": .object(merged)], parameters: parameters,
                outputs: names.map { relative($0, to: workdir) }, pipeline: config.name, body: body)
            if outcome.wasReused {
                let doc = try readReport(names[1])
                let md = try String(contentsOfFile: names[0], encoding: .utf8)
                return ReportOutputs(
                    markdownPath: names[0], jsonPath: names[1], htmlPath: names[2], markdown: md, document: doc, resultFiles: files,
                    messages: ["report: unchanged since the last report of the same results; kept \(outDir)"], reused: true)
            }
        } else {
            _ = try body()
        }
        return outputs!
    }

    private static func write(files: [String], merge: [String], title: String, context: ReportBuilder.Context, outDir: String) throws
        -> ReportOutputs
    {
        let results = try files.map(ResultsLoader.load)
        var document = ReportBuilder.build(results: results, title: title, context: context)
        var messages: [String] = []
        if !merge.isEmpty {
            var documents = [document]
            var present = Set(document.rows.map(\.run))
            for path in merge {
                var other = try readReport(path)
                let runs = orderedUnique(other.rows.map(\.run))
                let repeated = runs.filter { present.contains($0) }
                if !repeated.isEmpty {
                    messages.append("report: \(path): run\(repeated.count == 1 ? "" : "s") \(repeated.map { "'\($0)'" }.joined(separator: ", ")) already in the report; those rows are left out (give runs distinct names with --label)")
                    other.rows.removeAll { repeated.contains($0.run) }
                    other.charts.removeAll { repeated.contains($0.run) }
                    if case .object(var o) = other.protocolInfo, case .object(var r)? = o["runs"] {
                        for run in repeated { r.removeValue(forKey: run) }
                        o["runs"] = .object(r)
                        other.protocolInfo = .object(o)
                    }
                }
                present.formUnion(runs)
                if !other.rows.isEmpty { documents.append(other) }
            }
            document = ReportDocument.merged(documents, title: title)
        }
        let paths = try ReportRenderer.write(document, to: outDir)
        return ReportOutputs(
            markdownPath: paths[0], jsonPath: paths[1], htmlPath: paths[2], markdown: ReportRenderer.markdown(document),
            document: document, resultFiles: files, messages: messages, reused: false)
    }

    private static func relative(_ path: String, to workdir: String) -> String {
        let p = URL(fileURLWithPath: path).standardizedFileURL.path
        let w = URL(fileURLWithPath: workdir).standardizedFileURL.path
        return p.hasPrefix(w + "/") ? String(p.dropFirst(w.count + 1)) : p
    }

    /// The one-line error when the manifest holds no results of the pipeline: which stage to run.
    static func nothingFound(config: PipelineConfig, workdir: String) -> LinprobeError {
        let name = config.name
        let manifest = try? ManifestStore(workdir: workdir).read()
        let extracted = manifest?.records.values.contains { $0.stage == "extract" && $0.pipeline == name && $0.status == .complete } ?? false
        var stages: [String] = []
        let wanted = (try? config.node("LINPROBE.STAGES").strings()) ?? []
        if wanted.contains("train-svm") || (wanted.isEmpty && config.isExplicit("SVM")) { stages.append("train-svm") }
        if wanted.contains("train-linear") || (wanted.isEmpty && config.isExplicit("MODEL.HEAD.PARAMS")) { stages.append("train-linear") }
        if stages.isEmpty { stages = ["train-svm", "train-linear"] }
        let train = stages.map { "'linprobe \($0) \(name)'" }.joined(separator: " or ")
        let where_ = "\((workdir as NSString).appendingPathComponent("manifest.json"))"
        if !extracted {
            return LinprobeError(.missingInput, "report: no results of pipeline '\(name)' in \(where_); run 'linprobe extract \(name)' first, then \(train) (or pass --results DIR)")
        }
        return LinprobeError(.missingInput, "report: no finished train-svm or train-linear results of pipeline '\(name)' in \(where_); run \(train) first (or pass --results DIR)")
    }

    static func weightsName(_ config: PipelineConfig) -> String? {
        guard let file = (try? config.node("MODEL.WEIGHTS_INIT.PARAMS_FILE").stringIfPresent()) ?? nil, !file.isEmpty else { return nil }
        return (file as NSString).lastPathComponent
    }

    static func datasetName(_ config: PipelineConfig) -> String? {
        if let names = try? config.node("DATA.TEST.DATASET_NAMES").strings(), let first = names.first, !first.isEmpty { return first }
        if let paths = try? config.node("DATA.TEST.DATA_PATHS").strings(), let first = paths.first, !first.isEmpty {
            return (first as NSString).lastPathComponent
        }
        return nil
    }

    // MARK: - Reading a report back (for --merge)

    /// Reads a report.json written by `linprobe report`; errors name the file.
    public static func readReport(_ path: String) throws -> ReportDocument {
        let json = try ResultsLoader.readJSON(path, what: "report to merge")
        guard json["format"]?.stringValue == "linprobe.report" else {
            throw LinprobeError(.incompatible, "\(path): not a Linprobe report.json (format is not 'linprobe.report')")
        }
        guard let version = json["format_version"]?.intValue, version == 1 else {
            throw LinprobeError(.incompatible, "\(path): report format version \(json["format_version"]?.intValue.map(String.init) ?? "?") is not supported (reads 1)")
        }
        func bad(_ what: String) -> LinprobeError {
            LinprobeError(.corruptInput, "\(path): \(what); regenerate it with 'linprobe report'")
        }
        guard let rowList = json["rows"]?.arrayValue else { throw bad("field 'rows' is missing") }
        var rows: [ReportRow] = []
        for (i, r) in rowList.enumerated() {
            func s(_ key: String) throws -> String {
                guard let v = r[key]?.stringValue else { throw bad("rows[\(i)].\(key) is missing or not a string") }
                return v
            }
            let value: Double
            if let v = r["value"]?.doubleValue { value = v } else if r["value"] == .null { value = .nan } else {
                throw bad("rows[\(i)].value is missing or not a number")
            }
            rows.append(ReportRow(
                run: r["run"]?.stringValue ?? json["title"]?.stringValue ?? path, dataset: try s("dataset"), split: try s("split"),
                layer: try s("layer"), method: try s("method"), metric: try s("metric"), value: value,
                fingerprint: try s("fingerprint"), hyperparameters: r["hyperparameters"]?.stringValue))
        }
        var charts: [ReportChart] = []
        for (i, c) in (json["charts"]?.arrayValue ?? []).enumerated() {
            guard let title = c["title"]?.stringValue, let dataset = c["dataset"]?.stringValue, let id = c["id"]?.stringValue,
                let series = c["series"]?.arrayValue
            else { throw bad("charts[\(i)] lacks title, dataset, id or series") }
            let parsed = try series.enumerated().map { (k, s) -> ReportChart.Series in
                guard let name = s["name"]?.stringValue, let points = s["points"]?.arrayValue else {
                    throw bad("charts[\(i)].series[\(k)] lacks name or points")
                }
                return ReportChart.Series(name: name, points: points.compactMap { p in
                    guard let xy = p.arrayValue, xy.count == 2 else { return nil }
                    return ReportChart.Point(xy[0].doubleValue ?? .nan, xy[1].doubleValue ?? .nan)
                })
            }
            charts.append(ReportChart(
                title: title, dataset: dataset, xLabel: c["x_label"]?.stringValue ?? "", yLabel: c["y_label"]?.stringValue ?? "",
                logX: c["log_x"] == .bool(true), categories: c["categories"]?.arrayValue?.compactMap(\.stringValue), series: parsed,
                id: id, run: c["run"]?.stringValue ?? ""))
        }
        return ReportDocument(
            title: json["title"]?.stringValue ?? "", rows: rows, charts: charts, protocolInfo: json["protocol"] ?? .object([:]),
            notes: json["notes"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}
