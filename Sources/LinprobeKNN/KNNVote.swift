import Dispatch
import Foundation
import LinprobeCore

/// The weighted vote of VISSL's `knn_utils` (and DINO's `eval_knn`): neighbour j of a test row
/// weighs exp(s_j / σ), a class scores the sum of its neighbours' weights, and the classes are
/// ranked by score. Here the weights are exp((s_j − s_1) / σ) — every weight of a row divided by
/// the same exp(s_1 / σ), so the ranking is VISSL's while large similarities (unnormalised
/// features, s / σ > 88) do not overflow float32 as they do in VISSL. Equal scores rank the lower
/// class index first (what a stable sort gives; see the fidelity notes in `README.md`).
enum KNNVote {
    /// How many leading predictions count as top-5 at `k`: VISSL counts 5 (none when there are
    /// fewer than 5 classes); DINO narrows to min(5, k).
    static func top5Columns(_ protocolKind: KNNSettings.ProtocolKind, k: Int, numClasses: Int) -> Int {
        switch protocolKind {
        case .vissl: return numClasses >= 5 ? 5 : 0
        case .dino: return min(5, k)
        }
    }

    /// Top-1 / top-5 for every k of `ks`, single-label targets (`testTargets`: one per test row).
    static func singleLabel(
        _ nb: Neighbours, classes: [Int32], testTargets: [Int64], ks: [Int], temperature: Double,
        numClasses: Int, protocolKind: KNNSettings.ProtocolKind, threads: Int
    ) -> [KNNResultsDocument.KResult] {
        let order = ks.sorted()
        let parts = max(1, min(threads, nb.queries))
        let counts = Counts(parts: parts, ks: order.count)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            var scores = [Double](repeating: 0, count: max(1, numClasses))
            var seen = [Bool](repeating: false, count: max(1, numClasses))
            var touched: [Int] = []
            let lo = nb.queries * part / parts
            let hi = nb.queries * (part + 1) / parts
            for q in lo..<hi {
                var used = 0
                let best = Double(nb.similarities[q * nb.k])
                for (i, k) in order.enumerated() {
                    while used < k {
                        let c = Int(classes[q * nb.k + used])
                        if c >= 0 && c < numClasses {
                            if !seen[c] {
                                seen[c] = true
                                touched.append(c)
                            }
                            scores[c] += exp((Double(nb.similarities[q * nb.k + used]) - best) / temperature)
                        }
                        used += 1
                    }
                    let rank = Self.rank(of: testTargets[q], scores: scores, touched: touched, numClasses: numClasses)
                    let top5 = top5Columns(protocolKind, k: k, numClasses: numClasses)
                    counts.add(part: part, k: i, top1: rank == 0, top5: rank.map { $0 < top5 } ?? false)
                }
                for c in touched {
                    scores[c] = 0
                    seen[c] = false
                }
                touched.removeAll(keepingCapacity: true)
            }
        }
        let total = max(1, nb.queries)
        return ks.map { k in
            let i = order.firstIndex(of: k) ?? 0
            let (c1, c5) = counts.total(k: i)
            return KNNResultsDocument.KResult(
                k: k, top1: Double(c1) * 100 / Double(total), top5: Double(c5) * 100 / Double(total),
                correctTop1: c1, correctTop5: c5)
        }
    }

    /// The 0-based place of class `t` when classes are sorted by score, descending, lower index
    /// first among equals; nil when `t` is not a class of the vote (never correct, as in VISSL).
    static func rank(of target: Int64, scores: [Double], touched: [Int], numClasses: Int) -> Int? {
        guard target >= 0, target < Int64(numClasses) else { return nil }
        let t = Int(target)
        let st = scores[t]
        var rank = 0
        if st > 0 {
            for c in touched where scores[c] > st || (scores[c] == st && c < t) { rank += 1 }
        } else {
            // Every class with a positive score comes first, then the zero-score classes below t.
            var positiveBelow = 0
            for c in touched where scores[c] > 0 {
                rank += 1
                if c < t { positiveBelow += 1 }
            }
            rank += t - positiveBelow
        }
        return rank
    }

    /// mAP (VOC all-points AP over the test rows not marked difficult, mean over classes with a
    /// positive) for every k of `ks`, multi-label targets (`testTargets`: `queries × width`).
    static func multiLabel(
        _ nb: Neighbours, labels: NeighbourLabels, testTargets: [Int64], width: Int, ks: [Int],
        temperature: Double, threads: Int
    ) -> [KNNResultsDocument.KResult] {
        ks.map { k in
            var scores = [Double](repeating: 0, count: nb.queries * width)
            scores.withUnsafeMutableBufferPointer { out in
                let box = UncheckedScores(out)
                let parts = max(1, min(threads, nb.queries))
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    for q in (nb.queries * part / parts)..<(nb.queries * (part + 1) / parts) {
                        let best = Double(nb.similarities[q * nb.k])
                        for j in 0..<min(k, nb.k) {
                            let slot = Int(labels.slotRow[q * nb.k + j])
                            guard slot >= 0 else { continue }
                            let w = exp((Double(nb.similarities[q * nb.k + j]) - best) / temperature)
                            for c in labels.positives[slot] where Int(c) < width { box.buffer[q * width + Int(c)] += w }
                        }
                    }
                }
            }
            var perClass: [Double?] = []
            for c in 0..<width {
                let rows = (0..<nb.queries).filter { testTargets[$0 * width + c] != -1 }
                let ap = AveragePrecision.vocAllPoints(
                    scores: rows.map { scores[$0 * width + c] }, positive: rows.map { testTargets[$0 * width + c] == 1 }
                )
                perClass.append(ap.map { $0 * 100 })
            }
            let defined = perClass.compactMap { $0 }
            let mAP = defined.isEmpty ? nil : defined.reduce(0, +) / Double(defined.count)
            return KNNResultsDocument.KResult(k: k, mAP: mAP, perClassAP: perClass)
        }
    }
}

/// Per-thread counts of correct predictions, one pair per k, summed at the end (deterministic).
/// Raw memory: each thread writes only its own part's entries.
private final class Counts: @unchecked Sendable {
    private let top1: UnsafeMutablePointer<Int>
    private let top5: UnsafeMutablePointer<Int>
    private let ks: Int
    private let parts: Int

    init(parts: Int, ks: Int) {
        self.ks = ks
        self.parts = parts
        top1 = .allocate(capacity: parts * ks)
        top5 = .allocate(capacity: parts * ks)
        top1.initialize(repeating: 0, count: parts * ks)
        top5.initialize(repeating: 0, count: parts * ks)
    }

    deinit {
        top1.deallocate()
        top5.deallocate()
    }

    func add(part: Int, k: Int, top1 correct1: Bool, top5 correct5: Bool) {
        if correct1 { top1[part * ks + k] += 1 }
        if correct5 { top5[part * ks + k] += 1 }
    }

    func total(k: Int) -> (Int, Int) {
        var a = 0
        var b = 0
        for p in 0..<parts {
            a += top1[p * ks + k]
            b += top5[p * ks + k]
        }
        return (a, b)
    }
}

private struct UncheckedScores: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<Double>
    init(_ buffer: UnsafeMutableBufferPointer<Double>) { self.buffer = buffer }
}
