import Foundation

/// scikit-learn's `StratifiedKFold(n_splits, shuffle=False)` split, which VISSL gets from
/// `cross_val_score(cv=3)`: labels are numbered in order of first appearance; per-fold counts
/// per label come from dealing the label-sorted rows round-robin over the folds; then each
/// label's rows, in row order, fill fold 0, 1, … in contiguous blocks of those counts.
public enum StratifiedKFold {
    /// The test fold of every row, or nil when every label has fewer rows than `folds`
    /// (scikit-learn raises then).
    public static func testFolds<L: Hashable>(labels: [L], folds: Int) -> [Int]? {
        precondition(folds >= 2)
        var codeOf: [L: Int] = [:]
        var encoded = [Int](repeating: 0, count: labels.count)
        for (i, l) in labels.enumerated() {
            if let c = codeOf[l] {
                encoded[i] = c
            } else {
                let c = codeOf.count
                codeOf[l] = c
                encoded[i] = c
            }
        }
        let classes = codeOf.count
        var counts = [Int](repeating: 0, count: classes)
        for c in encoded { counts[c] += 1 }
        if counts.allSatisfy({ folds > $0 }) { return nil }
        // Round-robin over the sorted codes: position p of the sorted list goes to fold p % folds.
        var allocation = [[Int]](repeating: [Int](repeating: 0, count: classes), count: folds)
        var position = 0
        for c in 0..<classes {
            for _ in 0..<counts[c] {
                allocation[position % folds][c] += 1
                position += 1
            }
        }
        var result = [Int](repeating: 0, count: labels.count)
        var fold = [Int](repeating: 0, count: classes)
        var usedInFold = [Int](repeating: 0, count: classes)
        for (i, c) in encoded.enumerated() {
            while usedInFold[c] >= allocation[fold[c]][c] {
                fold[c] += 1
                usedInFold[c] = 0
            }
            result[i] = fold[c]
            usedInFold[c] += 1
        }
        return result
    }

    /// True when scikit-learn would warn that the least populated label has fewer rows than folds.
    public static func isUnderpopulated<L: Hashable>(labels: [L], folds: Int) -> Bool {
        var counts: [L: Int] = [:]
        for l in labels { counts[l, default: 0] += 1 }
        return (counts.values.min() ?? 0) < folds
    }
}
