import Foundation
import LinprobeCore

/// Turns the results of train-svm and train-linear into a `ReportDocument`: the flat rows, the
/// chosen hyper-parameters in words, the charts and the protocol block. Everything is read from
/// the results (and the feature stores they name, when still present); nothing is invented, and
/// the same inputs give the same document.
public enum ReportBuilder {
    /// Method names in the report.
    public static let svmMethod = "svm"
    public static let lowShotVISSLMethod = "svm-low-shot (VISSL rule)"
    public static let lowShotCVMethod = "svm-low-shot (CV rule)"

    /// Where the run label and the dataset name come from when the stores do not say.
    public struct Context: Sendable {
        /// The run's label; nil = the pipeline's name and the weights' file name.
        public var label: String?
        /// The pipeline's name (for the default label).
        public var pipeline: String?
        /// Weights and dataset names to use when a result's feature store is not found.
        public var fallbackWeights: String?
        public var fallbackDataset: String?

        public init(label: String? = nil, pipeline: String? = nil, fallbackWeights: String? = nil, fallbackDataset: String? = nil) {
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
    public static func build(resultsDirectories folders: [String], title: String, context: Context = Context()) throws
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
        let train: StoreInfo?
        let test: StoreInfo?
        /// Suffix that tells apart two results of the same run, dataset, layer and method.
        var tag = ""
    }

    static func build(results: [LoadedResult], title: String, context: Context) -> ReportDocument {
        var cache: [String: StoreInfo?] = [:]
        var placed: [Placed] = results.map { r in
            let train = ResultsLoader.store(r.trainFeatures, near: r, cache: &cache)
            let test = ResultsLoader.store(r.testFeatures, near: r, cache: &cache)
            let dataset = test?.datasetName ?? train?.datasetName ?? context.fallbackDataset ?? "dataset"
            let split: String
            if r.kind == .linear, let s = r.json["split"]?.stringValue, !s.isEmpty {
                split = s
            } else {
                split = test.map { $0.split.isEmpty ? "test" : $0.split } ?? "test"
            }
            let run: String
            if let label = context.label, !label.isEmpty {
                run = label
            } else {
                let parts = [context.pipeline, train?.weightsName ?? context.fallbackWeights].compactMap { $0 }.filter { !$0.isEmpty }
                run = parts.isEmpty ? "run" : parts.joined(separator: " · ")
            }
            return Placed(result: r, run: run, dataset: dataset, split: split, train: train, test: test)
        }
        // Two results that would fill the same cells (e.g. two SVM runs with other costs) are told
        // apart by their fingerprint.
        struct Slot: Hashable { var run, dataset, split, layer, family: String }
        var fingerprints: [Slot: Set<String>] = [:]
        for p in placed {
            fingerprints[Slot(run: p.run, dataset: p.dataset, split: p.split, layer: p.result.layer, family: family(p.result)), default: []]
                .insert(p.result.fingerprint)
        }
        for i in placed.indices {
            let p = placed[i]
            if fingerprints[Slot(run: p.run, dataset: p.dataset, split: p.split, layer: p.result.layer, family: family(p.result))]!.count > 1 {
                placed[i].tag = " [\(p.result.fingerprint.prefix(8))]"
            }
        }

        var rows: [ReportRow] = []
        var notes: [String] = []
        for p in placed {
            let (r, n) = rowsAndNotes(p)
            rows.append(contentsOf: r)
            notes.append(contentsOf: n)
        }
        rows.sort(by: rowLess)

        var charts: [ReportChart] = []
        let runs = orderedUnique(placed.map(\.run)).sorted()
        for run in runs {
            let mine = placed.filter { $0.run == run }
            charts.append(contentsOf: layerCharts(rows.filter { $0.run == run }, run: run))
            charts.append(contentsOf: svmCharts(mine, run: run))
            charts.append(contentsOf: linearCharts(mine, run: run))
        }
        charts = combineCharts(charts)

        var protocolRuns: [String: JSONValue] = [:]
        for run in runs {
            let (block, storeNotes) = protocolBlock(placed.filter { $0.run == run })
            protocolRuns[run] = block
            notes.append(contentsOf: storeNotes)
        }
        let protocolInfo: JSONValue = [
            "report": ["tool": "linprobe", "version": .string(LinprobeVersion.string)],
            "runs": .object(protocolRuns),
        ]
        return ReportDocument(title: title, rows: rows, charts: charts, protocolInfo: protocolInfo, notes: orderedUnique(notes))
    }

    static func family(_ r: LoadedResult) -> String {
        switch r.kind {
        case .svm: return "svm"
        case .svmLowShot: return "svm-low-shot"
        case .linear: return "linear:" + (r.json["head_type"]?.stringValue ?? "")
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
        return 5
    }

    static func metricRank(_ m: String) -> Int {
        switch m {
        case "mAP": return 0
        case "mAP_11point": return 1
        case "top_1": return 2
        default: return m.hasPrefix("mAP k=") ? 0 : m.hasPrefix("top_") ? 3 : 4
        }
    }

    // MARK: - Rows

    static func rowsAndNotes(_ p: Placed) -> ([ReportRow], [String]) {
        let r = p.result
        let j = r.json
        var rows: [ReportRow] = []
        var notes: [String] = []
        func row(_ method: String, _ metric: String, _ value: Double?, _ hyper: String? = nil) {
            rows.append(ReportRow(run: p.run, dataset: p.dataset, split: p.split, layer: r.layer, method: method + p.tag,
                                  metric: metric, value: value ?? .nan, fingerprint: r.fingerprint, hyperparameters: hyper))
        }
        let warnings = j["warnings"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if !warnings.isEmpty {
            notes.append("\(family(r)) \(r.layer)\(p.tag): \(warnings.count) warning\(warnings.count == 1 ? "" : "s") in \(r.path), the first: \(warnings[0])")
        }
        switch r.kind {
        case .svm:
            row(svmMethod, "mAP", j["metrics"]?["mAP"]?.doubleValue ?? j["value"]?.doubleValue, svmHyperparameters(j))
            row(svmMethod, "mAP_11point", j["metrics"]?["mAP_11point"]?.doubleValue)
            if let d = j["metric_definition"]?.stringValue { notes.append("svm mAP: \(d).") }
            notes.append("svm mAP_11point: the VOC07 11-point interpolated AP over the same scores, mean over classes ×100 (some papers report this one).")
            if let d = j["cv_metric"]?.stringValue { notes.append("svm cost selection: first cost with the best cross-validation AP (\(d)).") }
        case .svmLowShot:
            var visslCosts: [String] = []
            for entry in j["results_by_k"]?.arrayValue ?? [] {
                guard let k = entry["k"]?.intValue else { continue }
                let vissl = entry["vissl_rule"]
                row(lowShotVISSLMethod, "mAP k=\(k)", vissl?["mean"]?.doubleValue)
                row(lowShotCVMethod, "mAP k=\(k)", entry["cv_rule"]?["mean"]?.doubleValue)
                if let c = vissl?["cost"]?.doubleValue { visslCosts.append("k=\(k): C \(number(c))") }
                if let note = entry["cv_rule"]?["note"]?.stringValue { notes.append("\(lowShotCVMethod) k=\(k): \(note).") }
            }
            let samples = j["sample_inds"]?.arrayValue?.count ?? 0
            if var first = rows.firstIndex(where: { $0.method == lowShotVISSLMethod + p.tag }) {
                rows[first].hyperparameters = visslCosts.joined(separator: ", ") + " (mean over \(samples) sample\(samples == 1 ? "" : "s"))"
                first = rows.firstIndex(where: { $0.method == lowShotCVMethod + p.tag })!
                let folds = j["settings"]?["cross_val_folds"]?.intValue.map { "\($0)-fold" } ?? "k-fold"
                rows[first].hyperparameters = "C per class by \(folds) CV on the low-shot training rows"
            }
            if let rules = j["selection_rules"] {
                if let v = rules["vissl_rule"]?.stringValue { notes.append("\(lowShotVISSLMethod): \(v).") }
                if let v = rules["cv_rule"]?.stringValue { notes.append("\(lowShotCVMethod): \(v).") }
            }
        case .linear:
            let method = j["head_type"]?.stringValue ?? "linear"
            let metric = j["metric"]?.stringValue ?? "top_1"
            row(method, metric, j["value"]?.doubleValue, linearHyperparameters(j))
            let others = (j["metrics"]?.objectValue ?? [:]).filter { $0.key != metric && $0.key != "loss" }
            for key in others.keys.sorted(by: naturalLess) {
                row(method, key, others[key]?.doubleValue)
            }
            if metric == "mAP" {
                notes.append("\(method) mAP: test mAP (VOC all-points AP over non-difficult rows, mean over classes) ×100 after the last epoch.")
            } else {
                notes.append("\(method) \(metric): test accuracy ×100 after the last epoch (VISSL's reported number); the best epoch beside the hyper-parameters is chosen on the test split and only informational.")
            }
        }
        return (rows, notes)
    }

    /// `C 0.1 ×3, 1 ×17 of 11 costs, 3-fold CV`, plus skipped classes and unconverged fits.
    static func svmHyperparameters(_ j: JSONValue) -> String {
        var counts: [Double: Int] = [:]
        var skipped = 0
        for c in j["classes"]?.arrayValue ?? [] {
            if c["status"]?.stringValue == "skipped" { skipped += 1; continue }
            if let cost = c["chosen_cost"]?.doubleValue { counts[cost, default: 0] += 1 }
        }
        var parts: [String] = []
        let chosen = counts.keys.sorted().map { "\(number($0)) ×\(counts[$0]!)" }.joined(separator: ", ")
        let costs = j["costs"]?.arrayValue?.count ?? 0
        let folds = j["settings"]?["cross_val_folds"]?.intValue
        parts.append("C \(chosen.isEmpty ? "–" : chosen) of \(costs) cost\(costs == 1 ? "" : "s")" + (folds.map { ", \($0)-fold CV" } ?? ""))
        if skipped > 0 { parts.append("\(skipped) class\(skipped == 1 ? "" : "es") skipped") }
        if let n = j["convergence"]?["not_converged"]?.intValue, n > 0, let fits = j["convergence"]?["fits"]?.intValue {
            parts.append("\(n)/\(fits) fits stopped at max_iter")
        }
        return parts.joined(separator: "; ")
    }

    /// `lr multistep 0.01, 0.001 at 8; 28 epochs, batch 256, momentum 0.9 nesterov, wd 0.0005; best …`.
    static func linearHyperparameters(_ j: JSONValue) -> String {
        let h = j["hyper_parameters"]
        var parts: [String] = []
        if let lr = h?["lr"] { parts.append("lr " + scheduleText(lr)) }
        var training: [String] = []
        if let e = j["epochs"]?.intValue { training.append("\(e) epoch\(e == 1 ? "" : "s")") }
        if let b = h?["batch_size"]?.intValue { training.append("batch \(b)") }
        if let o = h?["optimizer"] {
            if let m = o["momentum"]?.doubleValue {
                training.append("momentum \(number(m))" + (o["nesterov"] == .bool(true) ? " nesterov" : ""))
            }
            if let wd = o["weight_decay"]?.doubleValue { training.append("wd \(number(wd))") }
        }
        if !training.isEmpty { parts.append(training.joined(separator: ", ")) }
        if let best = j["best_test"], let e = best["epoch"]?.intValue, let v = best["value"]?.doubleValue {
            parts.append("best test \(j["metric"]?.stringValue ?? "value") \(formatValue(v)) at epoch \(e)")
        }
        return parts.joined(separator: "; ")
    }

    static func scheduleText(_ s: JSONValue) -> String {
        let name = s["name"]?.stringValue ?? "?"
        switch name {
        case "constant":
            return "\(number(s["value"]?.doubleValue ?? .nan)) constant"
        case "multistep":
            let values = (s["values"]?.arrayValue ?? []).compactMap(\.doubleValue).map(number).joined(separator: ", ")
            let milestones = (s["milestones"]?.arrayValue ?? []).compactMap(\.intValue).map(String.init).joined(separator: ", ")
            return "multistep \(values)" + (milestones.isEmpty ? "" : " at epochs \(milestones)")
        case "step":
            return "step " + (s["values"]?.arrayValue ?? []).compactMap(\.doubleValue).map(number).joined(separator: ", ")
        case "cosine", "linear":
            return "\(name) \(number(s["start_value"]?.doubleValue ?? .nan)) → \(number(s["end_value"]?.doubleValue ?? .nan))"
        case "composite":
            return "composite (" + (s["schedulers"]?.arrayValue ?? []).map(scheduleText).joined(separator: " then ") + ")"
        default:
            return name
        }
    }

    /// A hyper-parameter value: shortest form that reads back exactly (`0.1`, `1000`, `1e-05`).
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return "–" }
        if v == v.rounded(), abs(v) < 1e9 { return String(Int64(v)) }
        return "\(v)"
    }

    // MARK: - Charts

    static let primaryMetrics = ["mAP", "top_1"]

    /// Metric per layer for each method (SVM and linear heads; low-shot has its own chart).
    static func layerCharts(_ rows: [ReportRow], run: String) -> [ReportChart] {
        var charts: [ReportChart] = []
        for dataset in orderedUnique(rows.map(\.dataset)).sorted() {
            for metric in primaryMetrics {
                let mine = rows.filter {
                    $0.dataset == dataset && $0.metric == metric && !$0.method.hasPrefix("svm-low-shot") && $0.value.isFinite
                }
                guard !mine.isEmpty else { continue }
                let layers = orderedUnique(mine.map(\.layer)).sorted(by: naturalLess)
                let series = orderedUnique(mine.map(\.method)).map { method in
                    ReportChart.Series(name: method, points: mine.filter { $0.method == method }.map {
                        ReportChart.Point(Double(layers.firstIndex(of: $0.layer)!), $0.value)
                    }.sorted { $0.x < $1.x })
                }
                charts.append(ReportChart(
                    title: "\(metricLabel(metric)) per layer", dataset: dataset, xLabel: "layer", yLabel: "\(metricLabel(metric)) (%)",
                    categories: layers, series: series, id: "layers/\(metric)", run: run))
            }
        }
        return charts
    }

    static func metricLabel(_ metric: String) -> String {
        switch metric {
        case "top_1": return "top-1 accuracy"
        case "top_5": return "top-5 accuracy"
        default: return metric
        }
    }

    /// SVM mean CV AP against cost (one series per layer), low-shot mAP against k, and per layer
    /// the low-shot mean test mAP against cost (what VISSL's rule selects from).
    static func svmCharts(_ placed: [Placed], run: String) -> [ReportChart] {
        var charts: [ReportChart] = []
        let svm = placed.filter { $0.result.kind == .svm }
        for dataset in orderedUnique(svm.map(\.dataset)).sorted() {
            let series = svm.filter { $0.dataset == dataset }.sorted { naturalLess($0.result.layer + $0.tag, $1.result.layer + $1.tag) }
                .map { p in ReportChart.Series(name: p.result.layer + p.tag, points: meanCVAP(p.result.json)) }
            charts.append(ReportChart(
                title: "SVM: mean cross-validation AP against cost", dataset: dataset, xLabel: "cost C (log scale)",
                yLabel: "mean CV AP over classes (%)", logX: true, series: series, id: "svm-cv", run: run))
        }
        let lowShot = placed.filter { $0.result.kind == .svmLowShot }
        for dataset in orderedUnique(lowShot.map(\.dataset)).sorted() {
            let mine = lowShot.filter { $0.dataset == dataset }.sorted { naturalLess($0.result.layer + $0.tag, $1.result.layer + $1.tag) }
            var byK: [ReportChart.Series] = []
            for p in mine {
                for (rule, name) in [("vissl_rule", "VISSL rule"), ("cv_rule", "CV rule")] {
                    let points = (p.result.json["results_by_k"]?.arrayValue ?? []).compactMap { e -> ReportChart.Point? in
                        guard let k = e["k"]?.doubleValue, let v = e[rule]?["mean"]?.doubleValue else { return nil }
                        return ReportChart.Point(k, v)
                    }
                    byK.append(ReportChart.Series(name: "\(p.result.layer)\(p.tag) \(name)", points: points))
                }
            }
            charts.append(ReportChart(
                title: "SVM low-shot: mean test mAP against k", dataset: dataset, xLabel: "k (positives per class, log scale)",
                yLabel: "mAP (%)", logX: true, series: byK, id: "svm-low-shot-k", run: run))
            for p in mine {
                let series = (p.result.json["results_by_k"]?.arrayValue ?? []).compactMap { e -> ReportChart.Series? in
                    guard let k = e["k"]?.intValue else { return nil }
                    let points = (e["per_cost"]?.arrayValue ?? []).compactMap { c -> ReportChart.Point? in
                        guard let cost = c["cost"]?.doubleValue, let m = c["mean"]?.doubleValue else { return nil }
                        return ReportChart.Point(cost, m)
                    }
                    return ReportChart.Series(name: "k=\(k)", points: points)
                }
                charts.append(ReportChart(
                    title: "SVM low-shot \(p.result.layer)\(p.tag): mean test mAP against cost (VISSL's rule picks the best)",
                    dataset: dataset, xLabel: "cost C (log scale)", yLabel: "mean test mAP over samples (%)", logX: true,
                    series: series, id: "svm-low-shot-cost/\(p.result.layer)\(p.tag)", run: run))
            }
        }
        return charts
    }

    /// Mean over classes of the CV AP (×100) at each cost, over the classes whose CV AP is defined
    /// at every cost (so every point averages the same classes).
    static func meanCVAP(_ j: JSONValue) -> [ReportChart.Point] {
        let costs = (j["costs"]?.arrayValue ?? []).compactMap(\.doubleValue)
        var sums = [Double](repeating: 0, count: costs.count)
        var n = 0
        for c in j["classes"]?.arrayValue ?? [] where c["status"]?.stringValue == "trained" {
            guard let cv = c["cv_ap"]?.arrayValue, cv.count == costs.count else { continue }
            let values = cv.compactMap(\.doubleValue)
            guard values.count == costs.count else { continue }
            for i in values.indices { sums[i] += values[i] }
            n += 1
        }
        guard n > 0 else { return [] }
        return costs.indices.map { ReportChart.Point(costs[$0], sums[$0] / Double(n) * 100) }
    }

    /// Linear heads: the test metric (top-1, or mAP for multi-label) per epoch, one series per head.
    static func linearCharts(_ placed: [Placed], run: String) -> [ReportChart] {
        var charts: [ReportChart] = []
        let linear = placed.filter { $0.result.kind == .linear && $0.result.linearEpochs != nil }
        for dataset in orderedUnique(linear.map(\.dataset)).sorted() {
            let mine = linear.filter { $0.dataset == dataset }
            for metric in orderedUnique(mine.compactMap { $0.result.json["metric"]?.stringValue }).sorted() {
                let series = mine.filter { $0.result.json["metric"]?.stringValue == metric }
                    .sorted { naturalLess($0.result.layer + $0.tag, $1.result.layer + $1.tag) }
                    .map { p in
                        let points = (p.result.linearEpochs ?? []).compactMap { e -> ReportChart.Point? in
                            guard let epoch = e["epoch"]?.doubleValue, let v = e["test"]?[metric]?.doubleValue else { return nil }
                            return ReportChart.Point(epoch, v)
                        }
                        let head = p.result.json["head"]?.stringValue ?? p.result.layer
                        return ReportChart.Series(name: "\(head) (\(p.result.json["head_type"]?.stringValue ?? "?"))\(p.tag)", points: points)
                    }
                charts.append(ReportChart(
                    title: "Linear heads: test \(metricLabel(metric)) per epoch", dataset: dataset, xLabel: "epoch",
                    yLabel: "test \(metricLabel(metric)) (%)", series: series, id: "linear-epochs/\(metric)", run: run))
            }
        }
        return charts
    }

    /// Charts with the same dataset and id become one (series named by run when runs differ).
    static func combineCharts(_ charts: [ReportChart]) -> [ReportChart] {
        struct Key: Hashable { var dataset, id: String }
        var groups: [Key: [ReportChart]] = [:]
        var order: [Key] = []
        for chart in charts {
            let key = Key(dataset: chart.dataset, id: chart.id)
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(chart)
        }
        return order.compactMap { groups[$0].flatMap(ReportChart.combined) }
    }

    // MARK: - Protocol

    /// The protocol block of one run: the feature stores (preprocessing, pool ops, trunk, weights,
    /// versions), the SVM settings and the linear heads' hyper-parameters, keyed by fingerprint.
    static func protocolBlock(_ placed: [Placed]) -> (JSONValue, [String]) {
        var features: [String: JSONValue] = [:]
        var svm: [String: JSONValue] = [:]
        var linear: [String: JSONValue] = [:]
        var notes: [String] = []
        for p in placed {
            for (ref, info) in [(p.result.trainFeatures, p.train), (p.result.testFeatures, p.test)] where !ref.fingerprint.isEmpty {
                if let info {
                    var o: [String: JSONValue] = [
                        "path": .string(info.path), "split": .string(info.split), "rows": .int(Int64(info.rows)),
                        "trunk": info.trunk, "weights": info.weights, "transforms": info.transforms, "pool_ops": info.poolOps,
                    ]
                    if case .object(var prov) = info.provenance {
                        prov.removeValue(forKey: "runs")
                        prov.removeValue(forKey: "fingerprint")
                        o["provenance"] = .object(prov)
                    }
                    features[ref.fingerprint] = .object(o)
                } else if features[ref.fingerprint] == nil {
                    features[ref.fingerprint] = ["path": ref.path.map { .string($0) } ?? .null, "found": false]
                    notes.append("features \(ref.fingerprint)\(ref.path.map { " (\($0))" } ?? ""): store not found with that fingerprint; its preprocessing, pool ops and weights are not in the protocol block.")
                }
            }
            let j = p.result.json
            let r = p.result
            switch r.kind {
            case .svm, .svmLowShot:
                var block = svm[r.fingerprint]?.objectValue ?? [:]
                for key in ["protocol", "metric_definition", "cv_metric", "costs", "settings", "selection_rules", "headline_rule",
                            "k_values", "sample_inds"] {
                    if let v = j[key] { block[key] = v }
                }
                if case .object(var prov) = j["provenance"] ?? .null {
                    prov.removeValue(forKey: "timings")
                    block["provenance"] = .object(prov)
                }
                block["train_features"] = .string(r.trainFeatures.fingerprint)
                block["test_features"] = .string(r.testFeatures.fingerprint)
                var layers = block["layers"]?.objectValue ?? [:]
                var layer: [String: JSONValue] = ["results": .string(r.path)]
                if let c = j["convergence"] { layer["convergence"] = c }
                if let m = j["metrics"]?["classes_in_mean"] { layer["classes_in_mean"] = m }
                layers[r.layer] = .object(layer)
                block["layers"] = .object(layers)
                svm[r.fingerprint] = .object(block)
            case .linear:
                var block = linear[r.fingerprint]?.objectValue ?? [:]
                if let h = j["hyper_parameters"] { block["hyper_parameters"] = h }
                if let prov = j["provenance"] { block["provenance"] = prov }
                block["train_features"] = .string(r.trainFeatures.fingerprint)
                block["test_features"] = .string(r.testFeatures.fingerprint)
                var heads = block["heads"]?.objectValue ?? [:]
                var head: [String: JSONValue] = ["results": .string(r.path), "layer": .string(r.layer)]
                for key in ["head_type", "head_spec", "epochs", "best_test"] { if let v = j[key] { head[key] = v } }
                heads[j["head"]?.stringValue ?? r.layer] = .object(head)
                block["heads"] = .object(heads)
                linear[r.fingerprint] = .object(block)
            }
        }
        var o: [String: JSONValue] = ["features": .object(features)]
        if !svm.isEmpty { o["svm"] = .object(svm) }
        if !linear.isEmpty { o["linear"] = .object(linear) }
        return (.object(o), notes)
    }
}
