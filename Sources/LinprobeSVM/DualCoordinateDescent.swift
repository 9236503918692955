import CLinprobeSVMKernels
import Foundation
import LinprobeCore

/// The loss of the linear SVM, as scikit-learn's `LinearSVC(loss=...)` names it.
public enum SVMLoss: String, Sendable, Codable {
    /// L2-loss: Σ C_i·max(0, 1 − y_i wᵀx_i)² (liblinear `L2R_L2LOSS_SVC_DUAL`, VISSL's default).
    case squaredHinge = "squared_hinge"
    /// L1-loss: Σ C_i·max(0, 1 − y_i wᵀx_i) (liblinear `L2R_L1LOSS_SVC_DUAL`).
    case hinge
}

/// What the solver needs from the training data, for a batch of problems that share the
/// training rows: the current decision value of a row under problem `p`'s weights and a rank-one
/// update of those (implicit) weights. Two implementations solve identical problems:
/// `GramKernel` (precomputed normalised Gram matrix, O(1) per visit, O(n) per update) and
/// `DenseKernel` (explicit weights over float32 rows, O(D) per visit).
///
/// A batch visits a row for every problem in turn, so the row's data (a feature row or a Gram
/// row) is fetched from memory once per visit instead of once per problem; the problems' own
/// state (weights or decision values) stays in cache.
protocol DualKernel {
    /// Current decision value of problem `p` at `row` (bias feature included).
    func margin(_ row: Int, _ p: Int) -> Double
    /// w_p ← w_p + delta·x̃_row.
    mutating func add(_ row: Int, _ p: Int, _ delta: Double)
    /// ‖x̃_row‖² (bias feature included).
    func squaredNorm(_ row: Int) -> Double
    /// Called once a row has been visited for every problem (a kernel that defers updates may
    /// apply them here).
    mutating func endVisit()
    /// Applies every deferred update; the solver calls it before it returns.
    mutating func flush()
}

extension DualKernel {
    @inline(__always) mutating func endVisit() {}
    mutating func flush() {}
}

/// How a fit ended.
public struct FitOutcome: Sendable, Equatable, Codable {
    /// Outer iterations run (liblinear's `#iter`, scikit-learn's `n_iter_`).
    public var iterations: Int
    /// True when the projected-gradient gap fell to `tol` with every variable active; false when
    /// `max_iter` stopped it (scikit-learn's `ConvergenceWarning`).
    public var converged: Bool
}

/// Settings of one dual coordinate-descent fit.
public struct DualCDParameters: Sendable {
    public var loss: SVMLoss
    /// Stopping tolerance on the projected-gradient gap (`tol`).
    public var tolerance: Double
    public var maxIterations: Int
    /// Seed of the random visiting order.
    public var seed: UInt64
    /// The rows the order permutes (see `SweepOrder`); nil: the batch's own rows.
    public var universe: Int?

    public init(
        loss: SVMLoss = .squaredHinge, tolerance: Double = 1e-4, maxIterations: Int = 2000, seed: UInt64 = 0,
        universe: Int? = nil
    ) {
        self.loss = loss
        self.tolerance = tolerance
        self.maxIterations = maxIterations
        self.seed = seed
        self.universe = universe
    }
}

/// The visiting order of the solver's outer iterations: one uniformly random permutation of a
/// universe of rows 0..<count per iteration, each drawn from the previous one by Fisher–Yates with
/// the seed's generator. A problem visits its own active rows in the order of their universe ids;
/// the restriction of a uniform permutation to a subset is a uniform permutation of the subset, so
/// each problem sees liblinear's visiting distribution whatever the universe. Problems whose
/// rows are different subsets of one universe (the CV folds of every class of a layer) then visit
/// shared rows in the same order, which is what lets `LockstepGram` serve them from one read.
struct SweepOrder {
    let count: Int
    private var rng: SolverRandom
    private let storage: UnsafeMutablePointer<Int>

    init(seed: UInt64, count: Int) {
        self.count = count
        rng = SolverRandom(seed: seed)
        storage = .allocate(capacity: max(count, 1))
        for i in 0..<count { storage[i] = i }
    }

    func deallocate() { storage.deallocate() }

    /// The current permutation.
    var order: UnsafePointer<Int> { UnsafePointer(storage) }

    /// The next iteration's permutation.
    mutating func advance() {
        for i in 0..<count {
            let j = i + rng.int(below: count - i)
            let t = storage[i]; storage[i] = storage[j]; storage[j] = t
        }
    }
}

/// Dual coordinate descent for the L2-regularised linear SVM (Hsieh et al., ICML 2008, Alg. 3),
/// the method behind liblinear's `-s 1`/`-s 3` and scikit-learn's `LinearSVC(dual=True)`:
///
///     min_α ½ αᵀ(Q + D)α − eᵀα,  0 ≤ α_i ≤ U_i,   Q_ij = y_i y_j x̃_iᵀx̃_j
///
/// with D_ii = 1/(2C_i), U_i = ∞ for the squared hinge, D_ii = 0, U_i = C_i for the hinge.
/// C_i is the cost times the sample's class weight. Each outer iteration visits the active
/// variables in a fresh random order; variables at a bound whose gradient points outward beyond
/// the previous iteration's extreme projected gradients are shrunk (skipped) until the
/// projected-gradient gap falls below `tol`, then the full set is checked again.
///
/// Batched: P problems over the same training rows (different labels and/or costs) are solved
/// together. Each outer iteration takes the next permutation of a `SweepOrder` (over the rows, or
/// over a larger universe the rows are part of: every training row of the layer); every problem
/// visits its own active rows in that order (the restriction of a uniform permutation to a subset
/// is a uniform permutation of the subset, so each problem sees liblinear's visiting
/// distribution) and keeps its own shrinking, stopping test and iteration count. The
/// permutations depend only on the seed, never on the other problems, so a problem's iterates —
/// and its result — are the same whichever problems share its batch (a batch of one included),
/// and the same as `LockstepGram` gives it.
enum DualCD {
    /// One problem of a batch: labels ±1 and per-sample costs (one per training row), and the
    /// dual variables (≥ 0; the starting point, consistent with the kernel's state for this
    /// problem), which receive the solution.
    struct Problem {
        var labels: UnsafeBufferPointer<Int8>
        var costs: UnsafeBufferPointer<Double>
        var alpha: UnsafeMutableBufferPointer<Double>
    }

    /// Runs the solver on every problem; returns one outcome per problem. `ids` gives each row's
    /// id in the order's universe (`parameters.universe` rows; nil: the rows themselves, in order).
    static func solve<K: DualKernel>(
        kernel: inout K, rows: UnsafeBufferPointer<Int32>, ids: [Int]? = nil, problems: [Problem],
        parameters p: DualCDParameters
    ) -> [FitOutcome] {
        let n = rows.count
        let count = problems.count
        for q in problems {
            precondition(q.labels.count == n && q.costs.count == n && q.alpha.count == n, "dual CD buffers disagree")
        }
        if n == 0 || count == 0 { return Array(repeating: FitOutcome(iterations: 0, converged: true), count: count) }
        let universe = p.universe ?? n
        let work = Workspace(kernel: kernel, rows: rows, ids: ids, universe: universe, problems: problems, loss: p.loss)
        defer { work.deallocate() }
        var state = BatchState(problems: problems, rows: n)
        var order = SweepOrder(seed: p.seed, count: universe)
        defer { order.deallocate() }
        var sweeps = 0
        while !state.running.isEmpty && sweeps < p.maxIterations {
            state.beginSweep()
            order.advance()
            sweep(kernel: &kernel, rows: rows, order: order, work: work, state: &state)
            sweeps += 1
            state.endSweep(sweeps, work: work, tolerance: p.tolerance)
        }
        kernel.flush()
        return state.outcomes
    }

    /// One outer iteration: every row in the shuffled order, for every running problem in turn.
    @inline(__always)
    private static func sweep<K: DualKernel>(
        kernel: inout K, rows: UnsafeBufferPointer<Int32>, order: SweepOrder, work: Workspace,
        state: inout BatchState
    ) {
        let n = work.n
        let running = state.running
        for s in 0..<order.count {
            let i = work.local[order.order[s]]
            if i < 0 { continue }
            let row = Int(rows[i])
            for q in running {
                let at = q * n + i
                if !work.active[at] { continue }
                let yi = Double(state.labels[q][i])
                let a = state.alphas[q][i]
                let g = yi * kernel.margin(row, q) - 1 + a * work.diag[at]
                guard let updated = state.rules[q].visit(alpha: a, gradient: g, upper: work.upper[at], qd: work.qd[at])
                else {
                    work.active[at] = false
                    continue
                }
                state.alphas[q][i] = updated
                let d = (updated - a) * yi
                if d != 0 { kernel.add(row, q, d) }
            }
            kernel.endVisit()
        }
    }

    /// Per problem × row: 1/(2C_i) (or 0), the upper bound, Q_ii + D_ii and the active flag,
    /// problem-major so a problem's state is contiguous; and each universe id's row (−1: none).
    private struct Workspace {
        let n: Int
        let diag: UnsafeMutablePointer<Double>
        let upper: UnsafeMutablePointer<Double>
        let qd: UnsafeMutablePointer<Double>
        let active: UnsafeMutablePointer<Bool>
        let local: UnsafeMutablePointer<Int>

        init<K: DualKernel>(
            kernel: K, rows: UnsafeBufferPointer<Int32>, ids: [Int]?, universe: Int, problems: [Problem],
            loss: SVMLoss
        ) {
            let rowCount = rows.count
            precondition(
                ids.map { $0.count == rowCount } ?? (universe == rowCount), "visiting-order ids and rows disagree")
            n = rowCount
            let total = n * problems.count
            diag = .allocate(capacity: total)
            upper = .allocate(capacity: total)
            qd = .allocate(capacity: total)
            active = .allocate(capacity: total)
            let slots = UnsafeMutablePointer<Int>.allocate(capacity: max(universe, 1))
            slots.initialize(repeating: -1, count: max(universe, 1))
            var norms = [Double](repeating: 0, count: n)
            for i in 0..<n {
                norms[i] = kernel.squaredNorm(Int(rows[i]))
                let id = ids?[i] ?? i
                precondition(id >= 0 && id < universe && slots[id] < 0, "visiting-order ids out of range or repeated")
                slots[id] = i
            }
            local = slots
            for (q, problem) in problems.enumerated() {
                let base = q * n
                for i in 0..<n {
                    switch loss {
                    case .squaredHinge:
                        diag[base + i] = 0.5 / problem.costs[i]
                        upper[base + i] = .infinity
                    case .hinge:
                        diag[base + i] = 0
                        upper[base + i] = problem.costs[i]
                    }
                    qd[base + i] = diag[base + i] + norms[i]
                    active[base + i] = true
                }
            }
        }

        func deallocate() {
            diag.deallocate(); upper.deallocate(); qd.deallocate(); active.deallocate(); local.deallocate()
        }
    }

    /// Each problem's labels, dual variables, shrinking rule and outcome, and which are running.
    private struct BatchState {
        let n: Int
        let labels: [UnsafeBufferPointer<Int8>]
        let alphas: [UnsafeMutableBufferPointer<Double>]
        var rules: [ShrinkingRule]
        var outcomes: [FitOutcome]
        var running: [Int]

        init(problems: [Problem], rows n: Int) {
            let count = problems.count
            self.n = n
            labels = problems.map(\.labels)
            alphas = problems.map(\.alpha)
            rules = Array(repeating: ShrinkingRule(rows: n), count: count)
            outcomes = Array(repeating: FitOutcome(iterations: 0, converged: false), count: count)
            running = Array(0..<count)
        }

        mutating func beginSweep() {
            for q in running { rules[q].beginSweep() }
        }

        /// Each running problem's stopping test (`ShrinkingRule.endSweep`).
        mutating func endSweep(_ sweeps: Int, work: Workspace, tolerance: Double) {
            var stillRunning: [Int] = []
            stillRunning.reserveCapacity(running.count)
            for q in running {
                outcomes[q].iterations = sweeps
                switch rules[q].endSweep(tolerance: tolerance, rows: n) {
                case .converged:
                    outcomes[q].converged = true
                    continue
                case .reactivate:
                    for i in 0..<n { work.active[q * n + i] = true }
                case .continue:
                    break
                }
                stillRunning.append(q)
            }
            running = stillRunning
        }
    }
}

/// liblinear's per-problem rule in `solve_l2r_l1l2_svc`, shared by `DualCD` and `LockstepGram`:
/// the shrinking bounds (the previous sweep's extreme projected gradients), the visit of one
/// variable, and the stopping test at the end of a sweep. (`LockstepGram` keeps each field in an
/// array and visits with `lp_lockstep_visit`, this `visit` for eight problems per vector; its
/// tests compare the two solvers bit for bit.)
struct ShrinkingRule {
    /// The problem's rows that are not shrunk.
    private(set) var active: Int
    private(set) var maxOld = Double.infinity, minOld = -Double.infinity
    private(set) var maxNew = 0.0, minNew = 0.0

    init(rows: Int) { active = rows }

    /// A rule in a given state (the lockstep solver keeps each field in an array of its own).
    init(active: Int, maxOld: Double, minOld: Double, maxNew: Double, minNew: Double) {
        self.active = active
        self.maxOld = maxOld
        self.minOld = minOld
        self.maxNew = maxNew
        self.minNew = minNew
    }

    mutating func beginSweep() {
        maxNew = -.infinity
        minNew = .infinity
    }

    /// The visit of a variable at α = `a` with gradient `g`, upper bound `upper` and
    /// Q_ii + D_ii = `qd`: nil when the variable is shrunk now (the caller marks its row
    /// inactive); otherwise its new value (`a` itself when the projected gradient is ~0).
    @inline(__always)
    mutating func visit(alpha a: Double, gradient g: Double, upper: Double, qd: Double) -> Double? {
        var pg = 0.0
        if a == 0 {
            if g > maxOld {
                active -= 1
                return nil
            } else if g < 0 {
                pg = g
            }
        } else if a == upper {
            if g < minOld {
                active -= 1
                return nil
            } else if g > 0 {
                pg = g
            }
        } else {
            pg = g
        }
        if pg > maxNew { maxNew = pg }
        if pg < minNew { minNew = pg }
        if abs(pg) <= 1e-12 { return a }
        return min(max(a - g / qd, 0), upper)
    }

    enum SweepEnd { case converged, reactivate, `continue` }

    /// The stopping test of a problem with `rows` rows: converged when the projected-gradient gap
    /// is within `tolerance` with every row active; with some shrunk, all are reactivated (the
    /// caller marks them) and checked again. Otherwise the bounds follow this sweep's extremes.
    mutating func endSweep(tolerance: Double, rows: Int) -> SweepEnd {
        if maxNew - minNew <= tolerance {
            if active == rows { return .converged }
            active = rows
            maxOld = .infinity
            minOld = -.infinity
            return .reactivate
        }
        maxOld = maxNew <= 0 ? .infinity : maxNew
        minOld = minNew >= 0 ? -.infinity : minNew
        return .continue
    }
}

/// The solver's visiting order (liblinear uses a Mersenne twister seeded by scikit-learn's
/// `random_state`; the optimum does not depend on the order, only the path to it does).
typealias SolverRandom = Xoshiro256

/// Mixes identifiers into one 64-bit seed (order-sensitive), so each fit's seed depends only on
/// what it is, never on the order in which threads ran it.
func mixSeed(_ parts: [UInt64]) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for p in parts {
        var z = p &+ 0x9E37_79B9_7F4A_7C15 &+ h
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        h = z ^ (z >> 31)
    }
    return h
}

// MARK: - Kernels

/// Decision values maintained over the stored columns of a precomputed matrix K̃ (normalised
/// Gram plus bias²): u_p = K̃·(α_p∘y_p), one vector of `gram.columns` entries per problem (every
/// row of a full matrix, so the held-out rows' values come for free; the training rows of a
/// truncated one). A visit reads u_p[row]; an update adds δ·K̃[row, :] to u_p.
///
/// Updates are lazy: each problem keeps up to `block` pending updates (row, δ), in the order they
/// were made. A visit's decision value is u_p[row] followed by the pending terms δ_k·K̃[row, r_k]
/// (K̃ is symmetric), and a flush — when some problem has `block` pending, and at the end —
/// applies the pending rows to every element of every u_p, reading u once per block instead of
/// once per update (the eager axpy was bound by moving u through the caches). Both apply the
/// terms as fused multiply-adds in the order of the updates, as the eager axpys do one after
/// another, so the iterates are bit-identical to eager updates (`block` 1, tested).
struct GramKernel: DualKernel {
    let gram: GramMatrix
    /// Decision values, problem-major: `values[p * gram.columns + row]`.
    let values: UnsafeMutablePointer<Double>
    /// Pending updates per problem before a flush (1: every update applied at once).
    let block: Int
    private let problems: Int
    /// Per problem: the number of pending updates, their rows and coefficients (`block` slots each).
    private let pendingCount: UnsafeMutablePointer<Int>
    private let pendingRow: UnsafeMutablePointer<Int32>
    private let pendingDelta: UnsafeMutablePointer<Double>
    private var full = false

    /// Measured on a VOC07-sized fold (3,341 columns, 11 problems, AVX-512 Zen 4): 8, 16, 32 and 64
    /// pending updates cost 0.107, 0.091, 0.124 and 0.154 ns per element and update in the flush
    /// (eager axpy: 0.17–0.22); a larger block also makes every visit's margin longer.
    static let defaultBlock = 16

    /// Allocates the pending lists; `deallocate()` frees them.
    init(gram: GramMatrix, values: UnsafeMutablePointer<Double>, problems: Int, block: Int) {
        precondition(block >= 1 && gram.columns <= Int(Int32.max), "Gram kernel block or size out of range")
        self.gram = gram
        self.values = values
        self.block = block
        self.problems = problems
        pendingCount = .allocate(capacity: max(problems, 1))
        pendingCount.initialize(repeating: 0, count: max(problems, 1))
        pendingRow = .allocate(capacity: max(problems * block, 1))
        pendingDelta = .allocate(capacity: max(problems * block, 1))
    }

    func deallocate() {
        pendingCount.deallocate(); pendingRow.deallocate(); pendingDelta.deallocate()
    }

    @inline(__always) func margin(_ row: Int, _ p: Int) -> Double {
        let u = values[p * gram.columns + row]
        let count = pendingCount[p]
        if count == 0 { return u }
        return lp_gram_lazy_margin(u, gram.row(row), pendingRow + p * block, pendingDelta + p * block, count)
    }

    @inline(__always) mutating func add(_ row: Int, _ p: Int, _ delta: Double) {
        if block == 1 {
            lp_axpy_f32_f64(delta, gram.row(row), values + p * gram.columns, gram.columns)
            return
        }
        let count = pendingCount[p]
        pendingRow[p * block + count] = Int32(truncatingIfNeeded: row)
        pendingDelta[p * block + count] = delta
        pendingCount[p] = count + 1
        if count + 1 == block { full = true }
    }

    @inline(__always) mutating func endVisit() {
        if full { flush() }
    }

    mutating func flush() {
        if block == 1 { return }
        lp_gram_flush(gram.row(0), gram.columns, values, problems, pendingCount, pendingRow, pendingDelta, block)
        pendingCount.update(repeating: 0, count: problems)
        full = false
    }

    func squaredNorm(_ row: Int) -> Double { gram.diagonal[row] }
}

/// Explicit weights over float32 feature rows scaled by `scale[row]` (the L2 normalisation) plus
/// a constant bias feature, as liblinear keeps them; one weight vector per problem.
struct DenseKernel: DualKernel {
    let features: FeatureMatrix
    /// Weights, problem-major: problem p's `features.dim` entries followed by its bias weight at
    /// `weights + p * (dim + 1)`.
    let weights: UnsafeMutablePointer<Double>
    let bias: Double
    let scale: UnsafePointer<Double>

    init(features: FeatureMatrix, weights: UnsafeMutablePointer<Double>, bias: Double) {
        self.features = features
        self.weights = weights
        self.bias = bias
        scale = features.scalePointer
    }

    @inline(__always) func margin(_ row: Int, _ p: Int) -> Double {
        let d = features.dim
        let w = weights + p * (d + 1)
        return scale[row] * lp_dot_f32_f64(features.row(row), w, d) + w[d] * bias
    }

    @inline(__always) mutating func add(_ row: Int, _ p: Int, _ delta: Double) {
        let d = features.dim
        let w = weights + p * (d + 1)
        lp_axpy_f32_f64(delta * scale[row], features.row(row), w, d)
        w[d] += delta * bias
    }

    func squaredNorm(_ row: Int) -> Double { features.scaledSquaredNorm[row] + bias * bias }
}
