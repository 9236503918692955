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
    /// The feature row of each of the trainer's rows when they are a subset (nil: the same).
    let rowMap: [Int]?

    var layout: SolverLayout { gram == nil ? .dense : .gram }
    /// Pending updates per problem of the Gram layout's lazy kernel (`GramKernel`); 1 applies
    /// every update at once. Any value gives the same iterates bit for bit.
    var gramBlock = GramKernel.defaultBlock
    var bias: Double { settings.interceptScaling }

    /// Picks the layout of a fit over `trainingRows` rows (the decision values kept by the Gram
    /// layout): Gram when `trainingRows` ≤ 2·D and the matrices fit `gramBudgetBytes` (the layer's
    /// `rows`² matrix plus `copies` per-fold copies of `rows` × `trainingRows`, plus `stateBytes`).
    ///
    /// The rule is the measured cost of the fits that dominate a run (large costs, where almost
    /// every visit updates): Gram costs one `trainingRows`-long f32→f64 axpy per update (visits
    /// are O(1)), dense a D-long dot per visit plus a D-long axpy per update. On the VOC07-sized
    /// benchmark (Benchmarks/svm, 2,048-d, 3,340 training rows per fold, AVX2) both measured
    /// ≈ 0.06 µs per element and update, so the element counts decide; at small costs, where
    /// few visits update, Gram only gains. (Measured before the Gram layout's lazy updates made
    /// its updates ≈ 2× cheaper per element; the rule is kept, since moving a layer to the other
    /// layout changes its results to rounding.)
    static func chooseLayout(
        rows: Int, trainingRows: Int? = nil, dim: Int, gramBudgetBytes: Int, copies: Int = 0, stateBytes: Int = 0
    ) -> SolverLayout {
        let m = trainingRows ?? rows
        let bytes = GramMatrix.bytes(count: rows) + copies * rows * m * MemoryLayout<Float>.size + stateBytes
        return m <= 2 * dim && bytes <= gramBudgetBytes ? .gram : .dense
    }

    init(features: FeatureMatrix, settings: SVMSettings, layout: SolverLayout, blasThreads: Int) {
        self.features = features
        self.settings = settings
        rowMap = nil
        if layout == .gram {
            let before = BLAS.threads
            BLAS.setThreads(blasThreads)
            gram = GramMatrix(features: features, bias: settings.interceptScaling)
            BLAS.setThreads(before)
        } else {
            gram = nil
        }
    }

    /// A trainer over a subset of rows of `parent`'s Gram matrix (low-shot sets, CV folds), or
    /// dense. With `columns`, only the first `columns` of `rows` can be trained on (the others
    /// can be scored).
    init(parent: SVMTrainer, rows: [Int], columns: Int? = nil) {
        features = parent.features
        settings = parent.settings
        gramBlock = parent.gramBlock
        rowMap = rows.map { parent.rowMap?[$0] ?? $0 }
        gram = parent.gram.map { GramMatrix(parent: $0, rows: rows, columns: columns) }
    }

    /// Fits on `rows` (indices into the trainer's row space: the feature rows, or the rows of a
    /// subset Gram matrix) with labels ±1 and returns the decision values of `scoreRows`.
    /// `featureRows` maps the trainer's row space to feature rows (identity when nil).
    /// The same as `fitBatch` with one problem: a fit gives the same result alone or batched.
    func fit(
        rows: [Int], labels: [Int8], cost: Double, seed: UInt64, scoreRows: [Int],
        featureRows: [Int]? = nil, wantWeights: Bool = false
    ) -> FitResult {
        fitBatch(
            rows: rows, problems: [(labels, cost)], seed: seed, scoreRows: scoreRows,
            featureRows: featureRows, wantWeights: wantWeights)[0]
    }

    /// Fits several problems over the same training rows at once (`DualCD`'s batch: each row's
    /// data is read once per visit for all problems). `problems[p]` gives labels ±1 (one per
    /// row) and the cost; returns one result per problem, each identical to what a batch of that
    /// problem alone with the same seed gives.
    /// `order` places the rows in a larger visiting-order universe (`SweepOrder`): their ids in it
    /// and its size (nil: the rows alone).
    func fitBatch(
        rows: [Int], problems: [(labels: [Int8], cost: Double)], seed: UInt64, scoreRows: [Int],
        featureRows: [Int]? = nil, wantWeights: Bool = false, forceDense: Bool = false,
        order: (ids: [Int], universe: Int)? = nil
    ) -> [FitResult] {
        if settings.solver == .converged {
            return fitBatchConverged(
                rows: rows, problems: problems, scoreRows: scoreRows, featureRows: featureRows,
                wantWeights: wantWeights)
        }
        let n = rows.count
        let count = problems.count
        if count == 0 { return [] }
        let alpha = UnsafeMutablePointer<Double>.allocate(capacity: max(n * count, 1))
        alpha.initialize(repeating: 0, count: n * count)
        let costs = UnsafeMutablePointer<Double>.allocate(capacity: max(n * count, 1))
        let labels = UnsafeMutablePointer<Int8>.allocate(capacity: max(n * count, 1))
        defer { alpha.deallocate(); costs.deallocate(); labels.deallocate() }
        var solverProblems: [DualCD.Problem] = []
        for (q, problem) in problems.enumerated() {
            precondition(problem.labels.count == n, "labels and rows disagree")
            let base = q * n
            for i in 0..<n {
                let y = problem.labels[i]
                labels[base + i] = y
                costs[base + i] =
                    y > 0 ? problem.cost * settings.positiveClassWeight : problem.cost * settings.negativeClassWeight
            }
            solverProblems.append(
                DualCD.Problem(
                    labels: UnsafeBufferPointer(start: labels + base, count: n),
                    costs: UnsafeBufferPointer(start: costs + base, count: n),
                    alpha: UnsafeMutableBufferPointer(start: alpha + base, count: n)))
        }
        let parameters = DualCDParameters(
            loss: settings.loss, tolerance: settings.tolerance, maxIterations: settings.maxIterations, seed: seed,
            universe: order?.universe)
        var outcomes: [FitOutcome] = []
        var margins = [[Double]](repeating: [Double](repeating: 0, count: scoreRows.count), count: count)
        var weights = [[Double]?](repeating: nil, count: count)
        if let gram, !forceDense {
            let m = gram.columns
            precondition(rows.allSatisfy { $0 < m }, "training rows outside the Gram matrix's columns")
            let values = UnsafeMutablePointer<Double>.allocate(capacity: max(m * count, 1))
            values.initialize(repeating: 0, count: m * count)
            defer { values.deallocate() }
            var kernel = GramKernel(gram: gram, values: values, problems: count, block: gramBlock)
            defer { kernel.deallocate() }
            let rows32 = rows.map { Int32($0) }
            outcomes = rows32.withUnsafeBufferPointer { r in
                DualCD.solve(
                    kernel: &kernel, rows: r, ids: order?.ids, problems: solverProblems, parameters: parameters)
            }
            // Rows beyond the stored columns (a truncated matrix's held-out rows): Σ_i K̃[r, i]·α_i·y_i.
            let coefficients = UnsafeMutablePointer<Double>.allocate(capacity: max(m, 1))
            defer { coefficients.deallocate() }
            for q in 0..<count {
                if scoreRows.contains(where: { $0 >= m }) {
                    coefficients.initialize(repeating: 0, count: m)
                    for (i, r) in rows.enumerated() {
                        coefficients[r] += alpha[q * n + i] * Double(problems[q].labels[i])
                    }
                }
                for (k, r) in scoreRows.enumerated() {
                    margins[q][k] = r < m ? values[q * m + r] : lp_dot_f32_f64(gram.row(r), coefficients, m)
                }
            }
            if wantWeights {
                let mapped = rows.map { featureRows?[$0] ?? $0 }
                for q in 0..<count {
                    weights[q] = weightsFromDual(
                        rows: mapped, labels: problems[q].labels,
                        alpha: Array(UnsafeBufferPointer(start: alpha + q * n, count: n)))
                }
            }
        } else {
            let d = features.dim
            let w = UnsafeMutablePointer<Double>.allocate(capacity: (d + 1) * count)
            w.initialize(repeating: 0, count: (d + 1) * count)
            defer { w.deallocate() }
            var kernel = DenseKernel(features: features, weights: w, bias: bias)
            let mapped = featureRows.map { map in rows.map { Int32(map[$0]) } } ?? rows.map { Int32($0) }
            outcomes = mapped.withUnsafeBufferPointer { r in
                DualCD.solve(
                    kernel: &kernel, rows: r, ids: order?.ids, problems: solverProblems, parameters: parameters)
            }
            for q in 0..<count {
                for (k, r) in scoreRows.enumerated() { margins[q][k] = kernel.margin(featureRows?[r] ?? r, q) }
                if wantWeights { weights[q] = Array(UnsafeBufferPointer(start: w + q * (d + 1), count: d + 1)) }
            }
        }
        return (0..<count).map { q in
            FitResult(
                outcome: outcomes[q], alpha: Array(UnsafeBufferPointer(start: alpha + q * n, count: n)),
                margins: margins[q], weights: weights[q])
        }
    }

    /// w = Σ α_i y_i x̃_i over feature rows, and the bias weight Σ α_i y_i · bias.
    func weightsFromDual(rows: [Int], labels: [Int8], alpha: [Double]) -> [Double] {
        let d = features.dim
        var w = [Double](repeating: 0, count: d + 1)
        var b = 0.0
        w.withUnsafeMutableBufferPointer { p in
            guard let target = p.baseAddress else { return }
            for (k, r) in rows.enumerated() where alpha[k] != 0 {
                let c = alpha[k] * Double(labels[k])
                lp_axpy_f32_f64(c * features.scale[r], features.row(r), target, d)
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
                    guard let weights = wp.baseAddress else { return }
                    for r in 0..<range.count {
                        s[r] = m.scale[r] * lp_dot_f32_f64(m.row(r), weights, d) + wp[d] * bias
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
