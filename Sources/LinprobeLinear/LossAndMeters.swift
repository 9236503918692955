import Foundation

/// Labels of a split held in memory: one class per row (single-label) or `classes` values per row
/// in VOC encoding (1 present, 0 absent, −1 ignored). Small next to the features (1 or C bytes/row).
struct Labels {
    enum Storage {
        case single([Int32])
        case multi([Int8], classes: Int)
    }
    let storage: Storage
    let count: Int
}

/// The loss of one batch for one head: value, gradient wrt the logits and meter counts.
struct LossResult {
    var loss: Double
    /// Rows that carry a label (single-label) — the denominator of the mean and of accuracy.
    var labelled: Int
    /// Rows whose label is within the top-k, per configured k.
    var correct: [Int]
}

enum LossFunctions {
    /// Mean softmax cross-entropy over labelled rows (`ignoreIndex` rows contribute nothing), with
    /// the gradient `(softmax(z/T) − onehot) / (labelled·T)` written to `dLogits` when given.
    /// `rows` maps batch row → label row.
    static func crossEntropy(logits: UnsafePointer<Float>, n: Int, classes: Int, labels: [Int32], rows: UnsafeBufferPointer<Int>,
                             ignoreIndex: Int, temperature: Float, topK: [Int], dLogits: UnsafeMutablePointer<Float>?) -> LossResult {
        var labelled = 0
        for r in 0..<n where Int(labels[rows[r]]) != ignoreIndex { labelled += 1 }
        var correct = [Int](repeating: 0, count: topK.count)
        var total = 0.0
        let invT = 1 / temperature
        let scale: Float = labelled > 0 ? 1 / (Float(labelled) * temperature) : 0
        for r in 0..<n {
            let z = logits + r * classes
            let t = Int(labels[rows[r]])
            if t == ignoreIndex {
                if let dLogits { (dLogits + r * classes).update(repeating: 0, count: classes) }
                continue
            }
            var m = -Float.infinity
            for j in 0..<classes { m = max(m, z[j] * invT) }
            var sum: Float = 0
            for j in 0..<classes { sum += expf(z[j] * invT - m) }
            let logSum = logf(sum)
            total += Double(logSum + m - z[t] * invT)
            if let dLogits {
                let g = dLogits + r * classes
                for j in 0..<classes { g[j] = expf(z[j] * invT - m - logSum) * scale }
                g[t] -= scale
            }
            // Rank of the true class (ties broken towards the lower class index, as a stable sort).
            var rank = 0
            let zt = z[t]
            for j in 0..<classes where z[j] > zt || (z[j] == zt && j < t) { rank += 1 }
            for (i, k) in topK.enumerated() where rank < k { correct[i] += 1 }
        }
        return LossResult(loss: labelled > 0 ? total / Double(labelled) : 0, labelled: labelled, correct: correct)
    }

    /// VISSL's `bce_logits_multiple_output_single_target`: per class, BCE-with-logits summed over
    /// the rows whose target is not −1 and divided by their number (1 when none); summed over classes.
    static func bceLogits(logits: UnsafePointer<Float>, n: Int, classes: Int, labels: [Int8], rows: UnsafeBufferPointer<Int>,
                          dLogits: UnsafeMutablePointer<Float>?) -> LossResult {
        var perClass = [Int](repeating: 0, count: classes)
        for r in 0..<n {
            let base = rows[r] * classes
            for c in 0..<classes where labels[base + c] != -1 { perClass[c] += 1 }
        }
        var total = 0.0
        for r in 0..<n {
            let z = logits + r * classes
            let base = rows[r] * classes
            for c in 0..<classes {
                let t = labels[base + c]
                if t == -1 {
                    dLogits?[r * classes + c] = 0
                    continue
                }
                let denominator = Float(max(perClass[c], 1))
                let x = z[c]
                let y: Float = t == 1 ? 1 : 0
                total += Double((max(x, 0) - x * y + log1pf(expf(-abs(x)))) / denominator)
                if let dLogits {
                    let sigmoid = x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x))
                    dLogits[r * classes + c] = (sigmoid - y) / denominator
                }
            }
        }
        return LossResult(loss: total, labelled: n, correct: [])
    }
}

/// VISSL's `mean_ap_meter`: per class, VOC all-points interpolated AP over rows whose target is
/// not −1 (classes without positives are skipped); mAP is the mean over the other classes.
enum AveragePrecision {
    /// AP of one class (`targets` 1 positive, 0 negative; −1 rows already removed), or nil when
    /// there is no positive.
    static func ap(scores: [Float], targets: [Int8]) -> Double? {
        let positives = targets.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        guard positives > 0 else { return nil }
        // Descending by score; ties keep a fixed order (by row) so the result is reproducible.
        let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        var tp = 0.0, fp = 0.0
        var recall = [0.0], precision = [0.0]
        for i in order {
            if targets[i] > 0 { tp += 1 } else { fp += 1 }
            recall.append(tp / Double(positives))
            precision.append(tp / (tp + fp))
        }
        recall.append(1)
        precision.append(0)
        var i = precision.count - 2
        while i >= 0 {
            precision[i] = max(precision[i], precision[i + 1])
            i -= 1
        }
        var ap = 0.0
        for k in 1..<recall.count where recall[k] != recall[k - 1] {
            ap += (recall[k] - recall[k - 1]) * precision[k]
        }
        return ap
    }

    /// Mean AP over classes with positives; per-class values (nil where skipped).
    static func meanAP(scores: [Float], targets: [Int8], classes: Int) -> (mAP: Double, perClass: [Double?]) {
        let n = classes > 0 ? scores.count / classes : 0
        var perClass: [Double?] = []
        for c in 0..<classes {
            var s: [Float] = [], t: [Int8] = []
            for r in 0..<n where targets[r * classes + c] != -1 {
                s.append(scores[r * classes + c])
                t.append(targets[r * classes + c])
            }
            perClass.append(ap(scores: s, targets: t))
        }
        let valid = perClass.compactMap { $0 }
        return (valid.isEmpty ? 0 : valid.reduce(0, +) / Double(valid.count), perClass)
    }
}

/// VISSL reports meters as `100 × round(value, 6)`.
func visslPercent(_ fraction: Double) -> Double {
    100 * (fraction * 1e6).rounded() / 1e6
}
