import Foundation
import LinprobeCore

/// Turns the results of train-svm and train-linear into a `ReportDocument`: the flat rows, the
/// chosen hyper-parameters in words, the charts and the protocol block. Everything is read from
/// the results documents — stores are never opened: what the stores were (trunk, weights,
/// transforms, pool ops, dataset) is what the results recorded in `feature_provenance`. Nothing is
/// invented, and the same inputs give the same document.
public enum ReportBuilder {
    /// Method names in the report.
    public static let svmMethod = "svm"
    public static let lowShotVISSLMethod = "svm-low-shot (VISSL rule)"
    public static let lowShotCVMethod = "svm-low-shot (CV rule)"
    public static let knnMethod = "knn"
    public static let knnDINOMethod = "knn (DINO)"

    /// Where the run label and the dataset name come from when the results do not say.
    public struct Context: Sendable {
        /// The run's label; nil = the pipeline's name and the weights' name.
        public var label: String?
        /// The pipeline's name (for the default label).
        public var pipeline: String?
        /// Weights and dataset names to use when a result did not record its stores' provenance.
        public var fallbackWeights: String?
        public var fallbackDataset: String?

        public init(
            label: String? = nil, pipeline: String? = nil, fallbackWeights: String? = nil,
            fallbackDataset: String? = nil
        ) {
            self.label = label
            self.pipeline = pipeline
            self.fallbackWeights = fallbackWeights
            self.fallbackDataset = fallbackDataset
        }
    }

    /// The results.json files found in `folders` (layer/head folders, `svm/<fp>`, `linear/<fp>`,
    /// `svm`, `linear`, or results.json files), sorted.
    public static func resultFiles(in folders: [String]) throws -> [String] {
        try ResultsLoader.resultFiles(in: folders)
    }

    /// Builds the document of the results in `folders`.
    public static func build(
        resultsDirectories folders: [String], title: String, context: Context = Context()
    ) throws
        -> ReportDocument
    {
        let files = try ResultsLoader.resultFiles(in: folders)
        let results = try files.map(ResultsLoader.load)
        return build(results: results, title: title, context: context)
    }

    // MARK: - Assembly

    /// One result placed in the report: its run, dataset and split.
    struct Placed {
        let result: LoadedResult
        let run: String
        let dataset: String
        let split: String
        /// Suffix that tells apart two results of the same run, dataset, layer and method.
        var tag = ""
    }

    static func build(results: [LoadedResult], title: String, context: Context) -> ReportDocument {
        let placed = tagged(sharingProvenance(results).map { place($0, context: context) })
        var rows: [ReportRow] = []
        var notes: [String] = []
        for p in placed {
            let (r, n) = rowsAndNotes(p)
            rows.append(contentsOf: r)
            notes.append(contentsOf: n)
        }
        rows.sort(by: rowLess)

        var charts: [ReportChart] = []
        var protocolInfo = ReportProtocol()
        for run in orderedUnique(placed.map(\.run)).sorted() {
            let mine = placed.filter { $0.run == run }
            charts.append(contentsOf: layerCharts(rows.filter { $0.run == run }, run: run))
            charts.append(contentsOf: svmCharts(mine, run: run))
            charts.append(contentsOf: linearCharts(mine, run: run))
            let (block, storeNotes) = protocolBlock(mine)
            protocolInfo.runs[run] = block
            notes.append(contentsOf: storeNotes)
        }
        return ReportDocument(
            title: title, rows: rows, charts: combineCharts(charts), protocolInfo: protocolInfo,
            notes: orderedUnique(notes))
    }

    /// Stores are content-addressed: a result that did not record a store's provenance (format 1)
    /// takes what another result of the report recorded for the same store fingerprint, so that a
    /// work folder with results of both formats (one stage rerun after an upgrade) is one run.
    static func sharingProvenance(_ results: [LoadedResult]) -> [LoadedResult] {
        var known: [String: FeatureProvenance] = [:]
        for ref in results.flatMap({ [$0.trainFeatures, $0.testFeatures] }) where !ref.fingerprint.isEmpty {
            if let provenance = ref.provenance, known[ref.fingerprint] == nil { known[ref.fingerprint] = provenance }
        }
        func filled(_ ref: FeatureReference) -> FeatureReference {
            var ref = ref
            if ref.provenance == nil { ref.provenance = known[ref.fingerprint] }
            return ref
        }
        return results.map { r in
            LoadedResult(
                kind: r.kind, path: r.path, content: r.content, layer: r.layer, fingerprint: r.fingerprint,
                trainFeatures: filled(r.trainFeatures), testFeatures: filled(r.testFeatures))
        }
    }

    /// The run, dataset and split of a result: from the stores' provenance the results recorded,
    /// else from the pipeline.
    static func place(_ r: LoadedResult, context: Context) -> Placed {
        let train = r.trainFeatures.provenance
        let test = r.testFeatures.provenance
        let dataset = test?.datasetName ?? train?.datasetName ?? context.fallbackDataset ?? "dataset"
        var split = test?.split.flatMap { $0.isEmpty ? nil : $0 } ?? "test"
        if case .linear(let doc, _) = r.content, !doc.split.isEmpty { split = doc.split }
        let run: String
        if let label = context.label, !label.isEmpty {
            run = label
        } else {
            let parts = [context.pipeline, train?.weightsName ?? context.fallbackWeights].compactMap { $0 }
                .filter { !$0.isEmpty }
            run = parts.isEmpty ? "run" : parts.joined(separator: " · ")
        }
        return Placed(result: r, run: run, dataset: dataset, split: split)
    }

    /// Two results that would fill the same cells (e.g. two SVM runs with other costs) are told
    /// apart by their fingerprint.
    static func tagged(_ placed: [Placed]) -> [Placed] {
        struct Slot: Hashable { var run, dataset, split, layer, family: String }
        func slot(_ p: Placed) -> Slot {
            Slot(run: p.run, dataset: p.dataset, split: p.split, layer: p.result.layer, family: family(p.result))
        }
        var fingerprints: [Slot: Set<String>] = [:]
        for p in placed { fingerprints[slot(p), default: []].insert(p.result.fingerprint) }
        return placed.map { p in
            var p = p
            if (fingerprints[slot(p)]?.count ?? 0) > 1 { p.tag = " [\(p.result.fingerprint.prefix(8))]" }
            return p
        }
    }

    static func family(_ r: LoadedResult) -> String {
        switch r.content {
        case .svm(let doc): return doc.protocolKind.isLowShot ? "svm-low-shot" : "svm"
        case .linear(let doc, _): return "linear:" + doc.headType.rawValue
        case .knn(let doc): return "knn:" + doc.protocolKind.rawValue
        }
    }

    /// Rows sorted by run, dataset, split, method, metric, layer (layers in natural order).
    static func rowLess(_ a: ReportRow, _ b: ReportRow) -> Bool {
        if a.run != b.run { return a.run < b.run }
        if a.dataset != b.dataset { return a.dataset < b.dataset }
        if a.split != b.split { return a.split < b.split }
        if methodRank(a.method) != methodRank(b.method) { return methodRank(a.method) < methodRank(b.method) }
        if a.method != b.method { return a.method < b.method }
        if metricRank(a.metric) != metricRank(b.metric) { return metricRank(a.metric) < metricRank(b.metric) }
        if a.metric != b.metric { return naturalLess(a.metric, b.metric) }
        if a.layer != b.layer { return naturalLess(a.layer, b.layer) }
        return a.fingerprint < b.fingerprint
    }

    static func methodRank(_ m: String) -> Int {
        if m.hasPrefix(lowShotVISSLMethod) { return 1 }
        if m.hasPrefix(lowShotCVMethod) { return 2 }
        if m.hasPrefix(svmMethod) { return 0 }
        if m.hasPrefix("eval_mlp") { return 3 }
        if m.hasPrefix("mlp") { return 4 }
        if m.hasPrefix(knnMethod) { return 5 }
        return 6
    }

    static func metricRank(_ m: String) -> Int {
        switch m {
        case "mAP": return 0
        case "mAP_11point": return 1
        case "top_1": return 2
        default: return m.hasPrefix("mAP k=") ? 0 : m.hasPrefix("top_") ? 3 : 4
        }
    }

    /// A hyper-parameter value: shortest form that reads back exactly (`0.1`, `1000`, `1e-05`).
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return "–" }
        if v == v.rounded(), abs(v) < 1e9 { return String(Int64(v)) }
        return "\(v)"
    }
}
