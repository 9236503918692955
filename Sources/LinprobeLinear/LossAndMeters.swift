import Foundation
import LinprobeCore

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
    static func crossEntropy(
        logits: UnsafePointer<Float>, n: Int, classes: Int, labels: [Int32], rows: UnsafeBufferPointer<Int>,
        ignoreIndex: Int, temperature: Float, topK: [Int], dLogits: UnsafeMutablePointer<Float>?
    ) -> LossResult {
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
    static func bceLogits(
        logits: UnsafePointer<Float>, n: Int, classes: Int, labels: [Int8], rows: UnsafeBufferPointer<Int>,
        dLogits: UnsafeMutablePointer<Float>?
    ) -> LossResult {
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

/// VISSL's `mean_ap_meter`: per class, VOC all-points interpolated AP over the rows whose target
/// is not −1, through `get_precision_recall` like the SVM benchmark — so it is Core's
/// `AveragePrecision.vocAllPoints` (one ranking, one tie order: among equal scores the later row
/// first). Classes without positives are skipped; mAP is the mean over the others (0 when none).
enum MeanAP {
    static func compute(scores: [Float], targets: [Int8], classes: Int) -> (mAP: Double, perClass: [Double?]) {
        let n = classes > 0 ? scores.count / classes : 0
        var perClass: [Double?] = []
        for c in 0..<classes {
            var s: [Double] = [], positive: [Bool] = []
            for r in 0..<n where targets[r * classes + c] != -1 {
                s.append(Double(scores[r * classes + c]))
                positive.append(targets[r * classes + c] > 0)
            }
            perClass.append(AveragePrecision.vocAllPoints(scores: s, positive: positive))
        }
        let valid = perClass.compactMap { $0 }
        return (valid.isEmpty ? 0 : valid.reduce(0, +) / Double(valid.count), perClass)
    }
}

/// VISSL reports meters as `100 × round(value, 6)`.
func visslPercent(_ fraction: Double) -> Double {
    100 * (fraction * 1e6).rounded() / 1e6
}
