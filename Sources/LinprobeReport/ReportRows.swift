import Foundation
import LinprobeCore

/// The rows of one result, the chosen hyper-parameters in words, and the notes that say what a
/// column means.
extension ReportBuilder {
    /// Collects a result's rows (method, metric and value; layer, run, dataset, split from the placement).
    struct RowSink {
        let placed: Placed
        var rows: [ReportRow] = []
        var notes: [String] = []

        mutating func row(_ method: String, _ metric: String, _ value: Double?, _ hyper: String? = nil) {
            let r = placed.result
            rows.append(
                ReportRow(
                    run: placed.run, dataset: placed.dataset, split: placed.split, layer: r.layer,
                    method: method + placed.tag,
                    metric: metric, value: value ?? .nan, fingerprint: r.fingerprint, hyperparameters: hyper))
        }
    }

    static func rowsAndNotes(_ p: Placed) -> ([ReportRow], [String]) {
        var sink = RowSink(placed: p)
        switch p.result.content {
        case .svm(let doc):
            let warnings = doc.warnings
            if let first = warnings.first {
                sink.notes.append(
                    "\(family(p.result)) \(p.result.layer)\(p.tag): \(warnings.count) "
                        + "warning\(warnings.count == 1 ? "" : "s") in \(p.result.path), the first: \(first)")
            }
            if doc.protocolKind.isLowShot { lowShotRows(doc, into: &sink) } else { svmRows(doc, into: &sink) }
        case .linear(let doc, _):
            linearRows(doc, into: &sink)
        case .knn(let doc):
            knnRows(doc, into: &sink)
        }
        return (sink.rows, sink.notes)
    }

    static func svmRows(_ doc: SVMResultsDocument, into sink: inout RowSink) {
        sink.row(svmMethod, "mAP", doc.metrics?.mAP ?? doc.value, svmHyperparameters(doc))
        sink.row(svmMethod, "mAP_11point", doc.metrics?.mAP11Point)
        if let d = doc.metricDefinition { sink.notes.append("svm mAP: \(d).") }
        sink.notes.append(
            "svm mAP_11point: the VOC07 11-point interpolated AP over the same scores, mean over classes ×100 "
                + "(some papers report this one).")
        if let d = doc.cvMetric {
            sink.notes.append("svm cost selection: first cost with the best cross-validation AP (\(d)).")
        }
    }

    static func lowShotRows(_ doc: SVMResultsDocument, into sink: inout RowSink) {
        var visslCosts: [String] = []
        for entry in doc.resultsByK ?? [] {
            let k = entry.k
            sink.row(lowShotVISSLMethod, "mAP k=\(k)", entry.visslRule?.mean)
            sink.row(lowShotCVMethod, "mAP k=\(k)", entry.cvRule.mean)
            if let c = entry.visslRule?.cost { visslCosts.append("k=\(k): C \(number(c))") }
            if let note = entry.cvRule.note { sink.notes.append("\(lowShotCVMethod) k=\(k): \(note).") }
        }
        let tag = sink.placed.tag
        if let vissl = sink.rows.firstIndex(where: { $0.method == lowShotVISSLMethod + tag }),
            let cv = sink.rows.firstIndex(where: { $0.method == lowShotCVMethod + tag })
        {
            let samples = doc.sampleIndices?.count ?? 0
            sink.rows[vissl].hyperparameters =
                visslCosts.joined(separator: ", ") + " (mean over \(samples) sample\(samples == 1 ? "" : "s"))"
            let folds = doc.settings["cross_val_folds"]?.intValue.map { "\($0)-fold" } ?? "k-fold"
            sink.rows[cv].hyperparameters = "C per class by \(folds) CV on the low-shot training rows"
        }
        if let rules = doc.selectionRules {
            sink.notes.append("\(lowShotVISSLMethod): \(rules.visslRule).")
            sink.notes.append("\(lowShotCVMethod): \(rules.cvRule).")
        }
    }

    static func linearRows(_ doc: LinearResultsDocument, into sink: inout RowSink) {
        let method = doc.headType.rawValue
        let metric = doc.metric.rawValue
        sink.row(method, metric, doc.value, linearHyperparameters(doc))
        for key in doc.metrics.values.keys.filter({ $0 != metric }).sorted(by: naturalLess) {
            sink.row(method, key, doc.metrics[key])
        }
        if doc.metric == .mAP {
            sink.notes.append(
                "\(method) mAP: test mAP (VOC all-points AP over non-difficult rows, mean over classes) ×100 after the "
                    + "last epoch.")
        } else {
            sink.notes.append(
                "\(method) \(metric): test accuracy ×100 after the last epoch (VISSL's reported number); the best "
                    + "epoch beside the hyper-parameters is chosen on the test split and only informational.")
        }
    }

    static func knnRows(_ doc: KNNResultsDocument, into sink: inout RowSink) {
        let method = doc.protocolKind == .dino ? knnDINOMethod : knnMethod
        let hyper = knnHyperparameters(doc)
        for (i, r) in doc.results.enumerated() {
            if doc.metric == .mAP {
                sink.row(method, "mAP k=\(r.k)", r.mAP, i == 0 ? hyper : nil)
            } else {
                sink.row(method, "top_1 k=\(r.k)", r.top1, i == 0 ? hyper : nil)
                sink.row(method, "top_5 k=\(r.k)", r.top5)
            }
        }
        let whose = doc.protocolKind == .dino ? "DINO's eval_knn" : "VISSL's knn_utils"
        if doc.metric == .mAP {
            sink.notes.append(
                "\(method) mAP k=K: Linprobe's multi-label kNN with \(whose) weights — a class scores the weights of "
                    + "those of the K nearest training rows that have it — VOC all-points AP over non-difficult test "
                    + "rows, mean over classes ×100.")
        } else {
            sink.notes.append(
                "\(method) top_1 / top_5 k=K: test accuracy ×100 of \(whose) weighted vote over the K nearest training "
                    + "rows by inner product (each weighs exp(similarity / T)).")
        }
    }

    /// `T 0.07, L2-normalised, 1000 classes, 1281167 training rows`.
    static func knnHyperparameters(_ doc: KNNResultsDocument) -> String {
        let s = doc.settings
        return "T \(number(s.temperature)), \(s.l2Normalize ? "L2-normalised (cosine)" : "raw inner product"), "
            + "\(s.numClasses) classes, \(doc.trainRows) training rows"
    }

    /// `C 0.1 ×3, 1 ×17 of 11 costs, 3-fold CV`, plus skipped classes and unconverged fits.
    static func svmHyperparameters(_ doc: SVMResultsDocument) -> String {
        var counts: [Double: Int] = [:]
        var skipped = 0
        for c in doc.classes ?? [] {
            if c.status == .skipped {
                skipped += 1
            } else if let cost = c.chosenCost {
                counts[cost, default: 0] += 1
            }
        }
        var parts: [String] = []
        let chosen = counts.sorted { $0.key < $1.key }.map { "\(number($0.key)) ×\($0.value)" }.joined(separator: ", ")
        let costs = doc.costs.count
        let folds = doc.settings["cross_val_folds"]?.intValue
        parts.append(
            "C \(chosen.isEmpty ? "–" : chosen) of \(costs) cost\(costs == 1 ? "" : "s")"
                + (folds.map { ", \($0)-fold CV" } ?? ""))
        if skipped > 0 { parts.append("\(skipped) class\(skipped == 1 ? "" : "es") skipped") }
        let convergence = doc.convergence
        if convergence.notConverged > 0 {
            parts.append("\(convergence.notConverged)/\(convergence.fits) fits stopped at max_iter")
        }
        return parts.joined(separator: "; ")
    }

    /// `lr multistep 0.01, 0.001 at 8; 28 epochs, batch 256, momentum 0.9 nesterov, wd 0.0005; best …`.
    static func linearHyperparameters(_ doc: LinearResultsDocument) -> String {
        let h = doc.hyperParameters
        var parts: [String] = []
        if let lr = h["lr"] { parts.append("lr " + scheduleText(lr)) }
        var training = ["\(doc.epochs) epoch\(doc.epochs == 1 ? "" : "s")"]
        if let b = h["batch_size"]?.intValue { training.append("batch \(b)") }
        if let o = h["optimizer"] {
            if let m = o["momentum"]?.doubleValue {
                training.append("momentum \(number(m))" + (o["nesterov"] == .bool(true) ? " nesterov" : ""))
            }
            if let wd = o["weight_decay"]?.doubleValue { training.append("wd \(number(wd))") }
        }
        parts.append(training.joined(separator: ", "))
        if let best = doc.bestTest, let v = best.value {
            parts.append("best test \(doc.metric.rawValue) \(formatValue(v)) at epoch \(best.epoch)")
        }
        return parts.joined(separator: "; ")
    }

    /// A learning-rate schedule of the hyper-parameters (VISSL's `param_schedulers.lr`) in words.
    static func scheduleText(_ s: JSONValue) -> String {
        let name = s["name"]?.stringValue ?? "?"
        switch name {
        case "constant":
            return "\(number(s["value"]?.doubleValue ?? .nan)) constant"
        case "multistep":
            let values = (s["values"]?.arrayValue ?? []).compactMap(\.doubleValue).map(number).joined(separator: ", ")
            let milestones = (s["milestones"]?.arrayValue ?? []).compactMap(\.intValue).map(String.init)
                .joined(separator: ", ")
            return "multistep \(values)" + (milestones.isEmpty ? "" : " at epochs \(milestones)")
        case "step":
            return "step "
                + (s["values"]?.arrayValue ?? []).compactMap(\.doubleValue).map(number).joined(separator: ", ")
        case "cosine", "linear":
            let start = number(s["start_value"]?.doubleValue ?? .nan)
            return "\(name) \(start) → \(number(s["end_value"]?.doubleValue ?? .nan))"
        case "composite":
            return "composite (" + (s["schedulers"]?.arrayValue ?? []).map(scheduleText).joined(separator: " then ")
                + ")"
        default:
            return name
        }
    }
}
