import Foundation
import LinprobeCore

/// Where a report's inputs come from: the manifest's latest training runs, the pipeline's names
/// for what the results do not record, and other runs' report.json (for --merge).
extension ReportStage {
    /// `LINPROBE.REPORT.TITLE`, else `Linprobe report: <pipeline>`.
    static func title(_ config: PipelineConfig) -> String {
        let configured = (try? config.node("LINPROBE.REPORT.TITLE").stringIfPresent()) ?? nil
        return configured.flatMap { $0.isEmpty ? nil : $0 } ?? "Linprobe report: \(config.name)"
    }

    /// The results folders of the pipeline's latest complete train-svm and train-linear records in
    /// the manifest whose outputs still exist (at most one folder set per stage).
    public static func latestResults(layout: WorkdirLayout, pipeline: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: layout.path(.manifest)) else { return [] }
        let manifest = try ManifestStore(layout: layout).read()
        var folders: [String] = []
        for stage in [StageKind.trainSVM, .trainLinear, .knn] {
            let records = manifest.records.values
                .filter { $0.stage == stage.name && $0.pipeline == pipeline && $0.status == .complete }
                .sorted { ($0.finished ?? $0.started, $0.key) > ($1.finished ?? $1.started, $1.key) }
            for record in records {
                let outputs = record.outputs.map(layout.resolve)
                if !outputs.isEmpty && outputs.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
                    folders.append(
                        contentsOf: outputs.map { Paths.lastComponent($0) == "results.json" ? Paths.parent($0) : $0 })
                    break
                }
            }
        }
        return folders
    }

    /// The one-line error when the manifest holds no results of the pipeline: which stage to run.
    static func nothingFound(config: PipelineConfig, layout: WorkdirLayout) -> LinprobeError {
        let name = config.name
        let manifest = try? ManifestStore(layout: layout).read()
        let featureStages = [StageKind.extract.name, StageKind.importFeatures.name]
        let extracted =
            manifest?.records.values.contains {
                featureStages.contains($0.stage) && $0.pipeline == name && $0.status == .complete
            } ?? false
        var stages: [StageKind] = []
        let wanted = (try? config.node("LINPROBE.STAGES").strings()) ?? []
        if wanted.contains(StageKind.trainSVM.name) || (wanted.isEmpty && config.isExplicit("SVM")) {
            stages.append(.trainSVM)
        }
        if wanted.contains(StageKind.trainLinear.name) || (wanted.isEmpty && config.isExplicit("MODEL.HEAD.PARAMS")) {
            stages.append(.trainLinear)
        }
        if wanted.contains(StageKind.knn.name) || (wanted.isEmpty && StageSelection.wantsKNN(config)) {
            stages.append(.knn)
        }
        if stages.isEmpty { stages = [.trainSVM, .trainLinear] }
        let train = stages.map { "'linprobe \($0.name) \(name)'" }.joined(separator: " or ")
        let manifestPath = layout.path(.manifest)
        if !extracted {
            let first = ((try? StageSelection.imports(config)) ?? false) ? "import-features" : "extract"
            return LinprobeError(
                .missingInput,
                "report: no results of pipeline '\(name)' in \(manifestPath); run 'linprobe \(first) \(name)' first, "
                    + "then \(train) (or pass --results DIR)")
        }
        return LinprobeError(
            .missingInput,
            "report: no finished train-svm, train-linear or knn results of pipeline '\(name)' in \(manifestPath); "
                + "run \(train) first (or pass --results DIR)")
    }

    /// The weights' file name in the pipeline, for results that do not record their stores.
    static func weightsName(_ config: PipelineConfig) -> String? {
        guard let file = (try? config.node("MODEL.WEIGHTS_INIT.PARAMS_FILE").stringIfPresent()) ?? nil, !file.isEmpty
        else {
            return nil
        }
        return Paths.lastComponent(file)
    }

    /// The test dataset's name in the pipeline, for results that do not record their stores: named
    /// as `FeatureProvenance.datasetName` names a store's (its first data path, else its first
    /// catalog name).
    static func datasetName(_ config: PipelineConfig) -> String? {
        if let paths = try? config.node("DATA.TEST.DATA_PATHS").strings(), let first = paths.first, !first.isEmpty,
            let name = FeatureProvenance.name(fromPath: first)
        {
            return name
        }
        if let names = try? config.node("DATA.TEST.DATASET_NAMES").strings(), let first = names.first, !first.isEmpty {
            return first
        }
        return nil
    }

    // MARK: - Reading a report back (for --merge)

    /// Reads a report.json written by `linprobe report` (format version 1 or 2); errors name the
    /// file and the field.
    public static func readReport(_ path: String) throws -> ReportDocument {
        let data = try DocumentFile.read(path, what: "report to merge")
        let header = DocumentFile.header(data)
        guard header?.format == ReportDocument.format else {
            throw LinprobeError(
                .incompatible, "\(path): not a Linprobe report.json (format is not '\(ReportDocument.format)')")
        }
        guard let version = header?.formatVersion, ReportDocument.readableVersions.contains(version) else {
            let found = header?.formatVersion.map(String.init) ?? "?"
            throw LinprobeError(
                .incompatible, "\(path): report format version \(found) is not supported (reads 1 and 2)")
        }
        var document = try DocumentFile.decode(
            ReportDocument.self, from: data, path: path, rerun: "regenerate it with 'linprobe report'")
        let fallback = document.title.isEmpty ? path : document.title
        for i in document.rows.indices where document.rows[i].run.isEmpty { document.rows[i].run = fallback }
        return document
    }
}
