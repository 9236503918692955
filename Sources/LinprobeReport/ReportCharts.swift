import Foundation
import LinprobeCore

/// The report's charts: metric per layer, SVM cross-validation and low-shot curves, linear heads'
/// test metric per epoch.
extension ReportBuilder {
    static let primaryMetrics = ["mAP", "top_1"]

    /// Metric per layer for each method (SVM and linear heads; low-shot has its own chart).
    static func layerCharts(_ rows: [ReportRow], run: String) -> [ReportChart] {
        var charts: [ReportChart] = []
        for dataset in orderedUnique(rows.map(\.dataset)).sorted() {
            for metric in primaryMetrics {
                let mine = rows.filter {
                    $0.dataset == dataset && $0.metric == metric && !$0.method.hasPrefix("svm-low-shot")
                        && $0.value.isFinite
                }
                guard !mine.isEmpty else { continue }
                let layers = orderedUnique(mine.map(\.layer)).sorted(by: naturalLess)
                let series = orderedUnique(mine.map(\.method)).map { method in
                    ReportChart.Series(
                        name: method,
                        points: mine.filter { $0.method == method }.compactMap { row in
                            layers.firstIndex(of: row.layer).map { ReportChart.Point(Double($0), row.value) }
                        }.sorted { $0.x < $1.x })
                }
                charts.append(
                    ReportChart(
                        title: "\(metricLabel(metric)) per layer", dataset: dataset, xLabel: "layer",
                        yLabel: "\(metricLabel(metric)) (%)", categories: layers, series: series,
                        id: "layers/\(metric)", run: run))
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
        let svm = svmDocuments(placed, lowShot: false)
        for dataset in orderedUnique(svm.map(\.0.dataset)).sorted() {
            let series = svm.filter { $0.0.dataset == dataset }
                .map { p, doc in ReportChart.Series(name: p.result.layer + p.tag, points: meanCVAP(doc)) }
            charts.append(
                ReportChart(
                    title: "SVM: mean cross-validation AP against cost", dataset: dataset, xLabel: "cost C (log scale)",
                    yLabel: "mean CV AP over classes (%)", logX: true, series: series, id: "svm-cv", run: run))
        }
        let lowShot = svmDocuments(placed, lowShot: true)
        for dataset in orderedUnique(lowShot.map(\.0.dataset)).sorted() {
            let mine = lowShot.filter { $0.0.dataset == dataset }
            charts.append(lowShotByK(mine, dataset: dataset, run: run))
            for (p, doc) in mine { charts.append(lowShotByCost(p, doc, dataset: dataset, run: run)) }
        }
        return charts
    }

    /// The SVM results of one kind with their placement, in natural layer order.
    static func svmDocuments(_ placed: [Placed], lowShot: Bool) -> [(Placed, SVMResultsDocument)] {
        placed.compactMap { p -> (Placed, SVMResultsDocument)? in
            guard case .svm(let doc) = p.result.content, doc.protocolKind.isLowShot == lowShot else { return nil }
            return (p, doc)
        }.sorted { naturalLess($0.0.result.layer + $0.0.tag, $1.0.result.layer + $1.0.tag) }
    }

    /// Low-shot mean test mAP against k under both rules, two series per layer.
    static func lowShotByK(_ mine: [(Placed, SVMResultsDocument)], dataset: String, run: String) -> ReportChart {
        var series: [ReportChart.Series] = []
        for (p, doc) in mine {
            let rules: [(String, (SVMResultsDocument.LowShotResult) -> Double?)] = [
                ("VISSL rule", { $0.visslRule?.mean }), ("CV rule", { $0.cvRule.mean }),
            ]
            for (name, mean) in rules {
                let points = (doc.resultsByK ?? []).compactMap { e in mean(e).map { ReportChart.Point(Double(e.k), $0) }
                }
                series.append(ReportChart.Series(name: "\(p.result.layer)\(p.tag) \(name)", points: points))
            }
        }
        return ReportChart(
            title: "SVM low-shot: mean test mAP against k", dataset: dataset,
            xLabel: "k (positives per class, log scale)",
            yLabel: "mAP (%)", logX: true, series: series, id: "svm-low-shot-k", run: run)
    }

    /// One layer's low-shot mean test mAP against cost, a series per k.
    static func lowShotByCost(_ p: Placed, _ doc: SVMResultsDocument, dataset: String, run: String) -> ReportChart {
        let series = (doc.resultsByK ?? []).map { e in
            let points = e.perCost.compactMap { c -> ReportChart.Point? in
                guard let cost = c.cost, let mean = c.mean else { return nil }
                return ReportChart.Point(cost, mean)
            }
            return ReportChart.Series(name: "k=\(e.k)", points: points)
        }
        let name = "\(p.result.layer)\(p.tag)"
        return ReportChart(
            title: "SVM low-shot \(name): mean test mAP against cost (VISSL's rule picks the best)", dataset: dataset,
            xLabel: "cost C (log scale)", yLabel: "mean test mAP over samples (%)", logX: true, series: series,
            id: "svm-low-shot-cost/\(name)", run: run)
    }

    /// Mean over classes of the CV AP (×100) at each cost, over the classes whose CV AP is defined
    /// at every cost (so every point averages the same classes).
    static func meanCVAP(_ doc: SVMResultsDocument) -> [ReportChart.Point] {
        let costs = doc.costs
        var sums = [Double](repeating: 0, count: costs.count)
        var n = 0
        for c in doc.classes ?? [] where c.status == .trained {
            let values = (c.cvAP ?? []).compactMap { $0 }
            guard c.cvAP?.count == costs.count, values.count == costs.count else { continue }
            for i in values.indices { sums[i] += values[i] }
            n += 1
        }
        guard n > 0 else { return [] }
        return costs.indices.map { ReportChart.Point(costs[$0], sums[$0] / Double(n) * 100) }
    }

    /// Linear heads: the test metric (top-1, or mAP for multi-label) per epoch, one series per head.
    static func linearCharts(_ placed: [Placed], run: String) -> [ReportChart] {
        let linear = placed.compactMap { p -> (Placed, LinearResultsDocument, LinearMetricsDocument)? in
            guard case .linear(let doc, let epochs?) = p.result.content else { return nil }
            return (p, doc, epochs)
        }
        var charts: [ReportChart] = []
        for dataset in orderedUnique(linear.map(\.0.dataset)).sorted() {
            let mine = linear.filter { $0.0.dataset == dataset }
            for metric in orderedUnique(mine.map(\.1.metric.rawValue)).sorted() {
                let series = mine.filter { $0.1.metric.rawValue == metric }
                    .sorted { naturalLess($0.0.result.layer + $0.0.tag, $1.0.result.layer + $1.0.tag) }
                    .map { p, doc, history in
                        let points = history.epochs.compactMap { e in
                            e.test?[metric].map { ReportChart.Point(Double(e.epoch), $0) }
                        }
                        return ReportChart.Series(
                            name: "\(doc.head) (\(doc.headType.rawValue))\(p.tag)", points: points)
                    }
                charts.append(
                    ReportChart(
                        title: "Linear heads: test \(metricLabel(metric)) per epoch", dataset: dataset, xLabel: "epoch",
                        yLabel: "test \(metricLabel(metric)) (%)", series: series, id: "linear-epochs/\(metric)",
                        run: run))
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
}
