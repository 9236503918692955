import Foundation

/// The three average-precision definitions the protocol uses. Peers and papers mix them up, so
/// results name which one each number is.
public enum AveragePrecision {
    /// scikit-learn's `average_precision_score` (what VISSL's cross-validation scores with):
    /// the step-wise sum Σ (R_n − R_{n−1})·P_n over distinct score thresholds, so tied scores form
    /// one threshold and their order never matters. No positives → 0 (scikit-learn warns).
    public static func sklearn(scores: [Double], positive: [Bool]) -> Double {
        precondition(scores.count == positive.count)
        let n = scores.count
        if n == 0 { return 0 }
        let order = (0..<n).sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        let totalPositives = positive.reduce(0) { $0 + ($1 ? 1 : 0) }
        if totalPositives == 0 { return 0 }
        var tp = 0, seen = 0
        var ap = 0.0
        var previousRecall = 0.0
        var k = 0
        while k < n {
            // Consume one group of equal scores (one threshold).
            let value = scores[order[k]]
            while k < n && scores[order[k]] == value {
                if positive[order[k]] { tp += 1 }
                seen += 1
                k += 1
            }
            let recall = Double(tp) / Double(totalPositives)
            let precision = Double(tp) / Double(seen)
            ap += (recall - previousRecall) * precision
            previousRecall = recall
        }
        return max(0, ap)
    }

    /// The ranking VISSL's `get_precision_recall` uses: score descending (numpy `argsort` reversed).
    /// numpy's default sort leaves the order of tied scores to the implementation (it differs
    /// between CPUs); Linprobe fixes it to what a stable ascending sort reversed gives — among
    /// equal scores, the later row first — and documents that as its one deviation.
    public static func vocRanking(_ scores: [Double]) -> [Int] {
        let ascending = (0..<scores.count).sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        return ascending.reversed()
    }

    /// Cumulative precision and recall along the VOC ranking (nil without positives).
    public static func curve(scores: [Double], positive: [Bool]) -> (precision: [Double], recall: [Double])? {
        let total = positive.reduce(0) { $0 + ($1 ? 1 : 0) }
        guard total > 0 else { return nil }
        var precision: [Double] = []
        var recall: [Double] = []
        precision.reserveCapacity(scores.count)
        recall.reserveCapacity(scores.count)
        var tp = 0.0, fp = 0.0
        for i in vocRanking(scores) {
            if positive[i] { tp += 1 } else { fp += 1 }
            precision.append(tp / (tp + fp))
            recall.append(tp / Double(total))
        }
        return (precision, recall)
    }

    /// VISSL's test metric (`vissl/utils/svm_utils/evaluate.py`, VOC2010+ "all points"):
    /// the precision envelope (running maximum from the right) integrated over recall steps.
    /// Returns nil when there are no positives (VISSL would produce NaN).
    public static func vocAllPoints(scores: [Double], positive: [Bool]) -> Double? {
        precondition(scores.count == positive.count)
        guard let (p, r) = curve(scores: scores, positive: positive) else { return nil }
        var mrec = [0.0] + r + [1.0]
        var mpre = [0.0] + p + [0.0]
        var i = mpre.count - 2
        while i >= 0 {
            mpre[i] = max(mpre[i], mpre[i + 1])
            i -= 1
        }
        var ap = 0.0
        for i in 1..<mrec.count where mrec[i] != mrec[i - 1] {
            ap += (mrec[i] - mrec[i - 1]) * mpre[i]
        }
        mrec.removeAll()
        return ap
    }

    /// The VOC2007 devkit's 11-point interpolated AP on the same ranking: the mean over
    /// t ∈ {0, 0.1, …, 1} of the best precision at recall ≥ t (0 when unreached). The thresholds are
    /// computed as the devkit's `np.arange(0, 1.1, 0.1)` does (k·0.1, so 0.30000000000000004).
    public static func vocElevenPoint(scores: [Double], positive: [Bool]) -> Double? {
        precondition(scores.count == positive.count)
        guard let (p, r) = curve(scores: scores, positive: positive) else { return nil }
        var ap = 0.0
        for step in 0...10 {
            let t = Double(step) * 0.1
            var best = 0.0
            for k in 0..<r.count where r[k] >= t { best = max(best, p[k]) }
            ap += best / 11
        }
        return ap
    }
}
