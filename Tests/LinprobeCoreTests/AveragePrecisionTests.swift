import Foundation
import LinprobeCore
import Testing

/// Pins the one VOC ranking (among equal scores, the later row first) and the values of the three
/// AP definitions on hand-computed cases. The expected numbers are worked out below from
/// VISSL's formula (`vissl/utils/svm_utils/evaluate.py`: `get_precision_recall` ranks by
/// `np.argsort(scores)[::-1]`, taken here with a stable sort, then `calculate_ap`: the precision
/// envelope from the right integrated over the recall steps) and from scikit-learn's
/// `average_precision_score` (Σ (R_n − R_{n−1})·P_n over distinct score thresholds).
@Suite("AveragePrecision: VOC tie order and values")
struct AveragePrecisionTests {
    @Test("the VOC ranking is score descending, the later row first among equal scores")
    func ranking() {
        // Stable ascending argsort of [0.5, 0.9, 0.5, 0.5] is [0, 2, 3, 1]; reversed: [1, 3, 2, 0].
        #expect(AveragePrecision.vocRanking([0.5, 0.9, 0.5, 0.5]) == [1, 3, 2, 0])
        #expect(AveragePrecision.vocRanking([3, 2, 1]) == [0, 1, 2])
        #expect(AveragePrecision.vocRanking([]) == [])
    }

    @Test("two tied rows, the positive first in row order: VOC 0.5 (the other order would give 1), sklearn 0.5")
    func twoTiedRows() throws {
        let scores = [0.5, 0.5]
        let positive = [true, false]
        // VOC ranking [1, 0]: row 1 (negative) then row 0 (positive).
        //   P = [0/1, 1/2], R = [0, 1]; mrec = [0, 0, 1, 1], mpre = [0, 0, 0.5, 0]
        //   envelope from the right: mpre = [0.5, 0.5, 0.5, 0]; recall steps: i = 2 (0 → 1): 1 · 0.5
        //   AP = 0.5. (Row order [0, 1] would give P = [1, 0.5], R = [1, 1], AP = 1 · 1 = 1.)
        // sklearn: one threshold (0.5) holding both rows: R = 1, P = 1/2 → AP = 1 · 0.5 = 0.5.
        let voc = try #require(AveragePrecision.vocAllPoints(scores: scores, positive: positive))
        #expect(voc == 0.5)
        #expect(AveragePrecision.sklearn(scores: scores, positive: positive) == 0.5)
        // Swapping the rows puts the positive last in row order, i.e. first in the ranking.
        #expect(AveragePrecision.vocAllPoints(scores: scores, positive: [false, true]) == 1)
        #expect(AveragePrecision.sklearn(scores: scores, positive: [false, true]) == 0.5)
    }

    @Test("three tied rows around a positive: VOC 0.4 (the other order would give 0.45), sklearn 0.325")
    func threeTiedRows() throws {
        let scores = [0.9, 0.4, 0.4, 0.4, 0.1]
        let positive = [false, true, false, false, true]
        // VOC ranking [0, 3, 2, 1, 4] → labels F F F T T, 2 positives:
        //   P = [0, 0, 0, 1/4, 2/5], R = [0, 0, 0, 1/2, 1]
        //   mrec = [0, 0, 0, 0, 1/2, 1, 1], mpre = [0, 0, 0, 0, 1/4, 2/5, 0]
        //   envelope: [2/5, 2/5, 2/5, 2/5, 2/5, 2/5, 0]
        //   steps: i = 4: (1/2 − 0) · 2/5 = 0.2; i = 5: (1 − 1/2) · 2/5 = 0.2 → AP = 0.4
        // Row order [0, 1, 2, 3, 4] → F T F F T: P = [0, 1/2, 1/3, 1/4, 2/5], R = [0, 1/2, 1/2, 1/2, 1],
        //   envelope at R = 1/2 is 1/2 → AP = 1/2 · 1/2 + 1/2 · 2/5 = 0.45 (not what VISSL's ranking gives).
        // sklearn thresholds 0.9 (R 0, P 0/1), 0.4 (R 1/2, P 1/4), 0.1 (R 1, P 2/5):
        //   AP = 0 · 0 + 1/2 · 1/4 + 1/2 · 2/5 = 0.125 + 0.2 = 0.325
        let voc = try #require(AveragePrecision.vocAllPoints(scores: scores, positive: positive))
        #expect(abs(voc - 0.4) < 1e-15)
        #expect(abs(voc - 0.45) > 0.04)
        #expect(abs(AveragePrecision.sklearn(scores: scores, positive: positive) - 0.325) < 1e-15)
        // The curve behind it, in the VOC ranking.
        let curve = try #require(AveragePrecision.curve(scores: scores, positive: positive))
        #expect(curve.precision == [0, 0, 0, 0.25, 0.4])
        #expect(curve.recall == [0, 0, 0, 0.5, 1])
    }

    @Test("without ties the definitions agree: 5/6")
    func noTies() throws {
        // Ranking [0, 1, 2] → T F T, 2 positives: P = [1, 1/2, 2/3], R = [1/2, 1/2, 1]
        //   mrec = [0, 1/2, 1/2, 1, 1], envelope mpre = [1, 1, 2/3, 2/3, 0]
        //   AP = 1/2 · 1 + 1/2 · 2/3 = 5/6.  sklearn: 1/2 · 1 + 0 · 1/2 + 1/2 · 2/3 = 5/6.
        let scores = [0.8, 0.6, 0.3]
        let positive = [true, false, true]
        let voc = try #require(AveragePrecision.vocAllPoints(scores: scores, positive: positive))
        #expect(abs(voc - 5.0 / 6) < 1e-15)
        #expect(abs(AveragePrecision.sklearn(scores: scores, positive: positive) - 5.0 / 6) < 1e-15)
    }

    @Test("no positives: no VOC AP, sklearn 0")
    func noPositives() {
        #expect(AveragePrecision.vocAllPoints(scores: [0.3, 0.2], positive: [false, false]) == nil)
        #expect(AveragePrecision.vocElevenPoint(scores: [0.3, 0.2], positive: [false, false]) == nil)
        #expect(AveragePrecision.sklearn(scores: [0.3, 0.2], positive: [false, false]) == 0)
    }
}
