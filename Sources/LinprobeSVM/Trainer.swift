import CLinprobeSVMKernels
import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// How the solver sees the training rows (both give the same numbers to rounding).
public enum SolverLayout: String, Sendable, Codable {
    /// Precomputed normalised Gram matrix, shared by every fit of a layer: an update costs O(N)
    /// and a visit O(1). Chosen when the rows are not many more than the dimensions and the
    /// N×N float32 matrix fits the memory budget.
    case gram
    /// liblinear's layout: explicit weights over the float32 rows, O(D) per visit and update.
    case dense
}

/// The result of one fit.
struct FitResult {
    var outcome: FitOutcome
    /// Dual variables, one per training row.
    var alpha: [Double]
    /// Decision values of the requested rows.
    var margins: [Double]
    /// w (D entries) followed by the bias weight, when requested.
    var weights: [Double]?
}

/// Fits one-vs-rest SVMs on rows of one layer: per-sample costs C·(2 for positives, 1 for
/// negatives), the bias as an extra constant feature, the solver of `DualCD`.
final class SVMTrainer: @unchecked Sendable {
    let features: FeatureMatrix
    let gram: GramMatrix?
    let settings: SVMSettings

    var layout: SolverLayout { gram == nil ? .dense : .gram }
    var bias: Double { settings.interceptScaling }

    /// Picks the layout: Gram when N ≤ 2·D and the Gram matrix fits `gramBudgetBytes`.
    static func chooseLayout(rows: Int, dim: Int, gramBudgetBytes: Int) -> SolverLayout {
        rows <= 2 * dim && GramMatrix.bytes(count: rows) <= gramBudgetBytes ? .gram : .dense
    }

    init(features: FeatureMatrix, settings: SVMSettings, layout: SolverLayout, blasThreads: Int) {
        self.features = features
        self.settings = settings
        if layout == .gram {
            let before = BLAS.threads
            BLAS.setThreads(blasThreads)
            gram = GramMatrix(features: features, bias: settings.interceptScaling)
            BLAS.setThreads(before)
        } else {
            gram = nil
        }
    }

    /// A trainer over a subset of rows of `parent`'s Gram matrix (low-shot sets), or dense.
    init(parent: SVMTrainer, rows: [Int]) {
        features = parent.features
        settings = parent.settings
        gram = parent.gram.map { GramMatrix(parent: $0, rows: rows) }
    }

    /// Fits on `rows` (indices into the trainer's row space: the feature rows, or the rows of a
    /// subset Gram matrix) with labels ±1 and returns the decision values of `scoreRows`.
    /// `featureRows` maps the trainer's row space to feature rows (identity when nil).
    func fit(
        rows: [Int], labels: [Int8], cost: Double, seed: UInt64, scoreRows: [Int],
        featureRows: [Int]? = nil, wantWeights: Bool = false
    ) -> FitResult {
        let n = rows.count
        var alpha = [Double](repeating: 0, count: n)
        let rows32 = rows.map { Int32($0) }
        let costs = labels.map { $0 > 0 ? cost * settings.positiveClassWeight : cost * settings.negativeClassWeight }
        let parameters = DualCDParameters(
            loss: settings.loss, tolerance: settings.tolerance, maxIterations: settings.maxIterations, seed: seed)
        var outcome = FitOutcome(iterations: 0, converged: true)
        var margins = [Double](repeating: 0, count: scoreRows.count)
        var weights: [Double]? = nil
        if let gram {
            let values = UnsafeMutableBufferPointer<Double>.allocate(capacity: gram.count)
            values.initialize(repeating: 0)
            defer { values.deallocate() }
            var kernel = GramKernel(gram: gram, values: values)
            rows32.withUnsafeBufferPointer { r in
                labels.withUnsafeBufferPointer { l in
                    costs.withUnsafeBufferPointer { c in
                        alpha.withUnsafeMutableBufferPointer { a in
                            outcome = DualCD.solve(kernel: &kernel, rows: r, labels: l, costs: c, alpha: a, parameters: parameters)
                        }
                    }
                }
            }
            for (k, r) in scoreRows.enumerated() { margins[k] = values[r] }
            if wantWeights {
                weights = weightsFromDual(rows: rows.map { featureRows?[$0] ?? $0 }, labels: labels, alpha: alpha)
            }
        } else {
            let d = features.dim
            let w = UnsafeMutableBufferPointer<Double>.allocate(capacity: d + 1)
            w.initialize(repeating: 0)
            defer { w.deallocate() }
            var kernel = DenseKernel(features: features, weights: w, bias: bias)
            let mapped = featureRows.map { map in rows.map { Int32(map[$0]) } } ?? rows32
            mapped.withUnsafeBufferPointer { r in
                labels.withUnsafeBufferPointer { l in
                    costs.withUnsafeBufferPointer { c in
                        alpha.withUnsafeMutableBufferPointer { a in
                            outcome = DualCD.solve(kernel: &kernel, rows: r, labels: l, costs: c, alpha: a, parameters: parameters)
                        }
                    }
                }
            }
            for (k, r) in scoreRows.enumerated() { margins[k] = kernel.margin(featureRows?[r] ?? r) }
            if wantWeights { weights = Array(w) }
        }
        return FitResult(outcome: outcome, alpha: alpha, margins: margins, weights: weights)
    }

    /// w = Σ α_i y_i x̃_i over feature rows, and the bias weight Σ α_i y_i · bias.
    func weightsFromDual(rows: [Int], labels: [Int8], alpha: [Double]) -> [Double] {
        let d = features.dim
        var w = [Double](repeating: 0, count: d + 1)
        var b = 0.0
        w.withUnsafeMutableBufferPointer { p in
            for (k, r) in rows.enumerated() where alpha[k] != 0 {
                let c = alpha[k] * Double(labels[k])
                lp_axpy_f32_f64(c * features.scale[r], features.row(r), p.baseAddress!, d)
                b += c * bias
            }
        }
        w[d] = b
        return w
    }
}

/// Scores rows of a store's layer with linear models, streaming the rows in blocks.
enum Scoring {
    /// `models[m]` holds D weights then the bias weight; returns `scores[m][row]`.
    static func score(
        reader: FeatureStoreReader, layer: String, models: [[Double]], normalize: Bool, bias: Double, threads: Int
    ) throws -> [[Double]] {
        let n = reader.count
        let block = 512
        let blocks = (n + block - 1) / block
        let out = Locked([[Double]](repeating: [Double](repeating: 0, count: n), count: models.count))
        // Reading is serial (HDF5); scoring of a block is spread over the models.
        for b in 0..<blocks {
            let range = (b * block)..<min(n, (b + 1) * block)
            let m = try FeatureMatrix(reader: reader, layer: layer, rows: Array(range), normalize: normalize)
            let partial = Locked([[Double]](repeating: [], count: models.count))
            try Parallel.forEach(count: models.count, threads: threads) { k in
                let w = models[k]
                let d = m.dim
                precondition(w.count == d + 1)
                var s = [Double](repeating: 0, count: range.count)
                w.withUnsafeBufferPointer { wp in
                    for r in 0..<range.count {
                        s[r] = m.scale[r] * lp_dot_f32_f64(m.row(r), wp.baseAddress!, d) + wp[d] * bias
                    }
                }
                partial.withLock { $0[k] = s }
            }
            let p = partial.withLock { $0 }
            out.withLock { o in
                for k in 0..<models.count { o[k].replaceSubrange(range, with: p[k]) }
            }
        }
        return out.withLock { $0 }
    }
}
