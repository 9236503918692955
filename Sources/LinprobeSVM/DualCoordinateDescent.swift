import CLinprobeSVMKernels
import Foundation

/// The loss of the linear SVM, as scikit-learn's `LinearSVC(loss=...)` names it.
public enum SVMLoss: String, Sendable, Codable {
    /// L2-loss: Σ C_i·max(0, 1 − y_i wᵀx_i)² (liblinear `L2R_L2LOSS_SVC_DUAL`, VISSL's default).
    case squaredHinge = "squared_hinge"
    /// L1-loss: Σ C_i·max(0, 1 − y_i wᵀx_i) (liblinear `L2R_L1LOSS_SVC_DUAL`).
    case hinge
}

/// What the solver needs from the training data: the current decision value of a row and a
/// rank-one update of the (implicit) weight vector. Two implementations solve identical
/// problems: `GramKernel` (precomputed normalised Gram matrix, O(1) per visit, O(n) per
/// update) and `DenseKernel` (explicit weights over float32 rows, O(D) per visit).
protocol DualKernel {
    /// Current decision value w·x̃_row (bias feature included).
    func margin(_ row: Int) -> Double
    /// w ← w + delta·x̃_row.
    mutating func add(_ row: Int, _ delta: Double)
    /// ‖x̃_row‖² (bias feature included).
    func squaredNorm(_ row: Int) -> Double
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

    public init(loss: SVMLoss = .squaredHinge, tolerance: Double = 1e-4, maxIterations: Int = 2000, seed: UInt64 = 0) {
        self.loss = loss
        self.tolerance = tolerance
        self.maxIterations = maxIterations
        self.seed = seed
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
/// the previous iteration's extreme projected gradients are shrunk (removed) until the
/// projected-gradient gap falls below `tol`, then the full set is checked again.
enum DualCD {
    /// Runs the solver. `alpha` (one entry per training row, ≥ 0) is the starting point and
    /// receives the solution; `kernel` must be consistent with it (w = Σ α_i y_i x̃_i).
    static func solve<K: DualKernel>(
        kernel: inout K, rows: UnsafeBufferPointer<Int32>, labels: UnsafeBufferPointer<Int8>,
        costs: UnsafeBufferPointer<Double>, alpha: UnsafeMutableBufferPointer<Double>,
        parameters p: DualCDParameters
    ) -> FitOutcome {
        let n = rows.count
        precondition(labels.count == n && costs.count == n && alpha.count == n, "dual CD buffers disagree")
        if n == 0 { return FitOutcome(iterations: 0, converged: true) }
        let diag = UnsafeMutableBufferPointer<Double>.allocate(capacity: n)
        let upper = UnsafeMutableBufferPointer<Double>.allocate(capacity: n)
        let qd = UnsafeMutableBufferPointer<Double>.allocate(capacity: n)
        let index = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
        defer {
            diag.deallocate(); upper.deallocate(); qd.deallocate(); index.deallocate()
        }
        for i in 0..<n {
            switch p.loss {
            case .squaredHinge:
                diag[i] = 0.5 / costs[i]
                upper[i] = .infinity
            case .hinge:
                diag[i] = 0
                upper[i] = costs[i]
            }
            qd[i] = diag[i] + kernel.squaredNorm(Int(rows[i]))
            index[i] = i
        }
        var rng = SolverRandom(seed: p.seed)
        var active = n
        var pgMaxOld = Double.infinity
        var pgMinOld = -Double.infinity
        var iteration = 0
        var converged = false
        while iteration < p.maxIterations {
            var pgMaxNew = -Double.infinity
            var pgMinNew = Double.infinity
            for i in 0..<active {
                let j = i + rng.below(active - i)
                index.swapAt(i, j)
            }
            var s = 0
            while s < active {
                let i = index[s]
                let row = Int(rows[i])
                let yi = Double(labels[i])
                let a = alpha[i]
                let g = yi * kernel.margin(row) - 1 + a * diag[i]
                var pg = 0.0
                if a == 0 {
                    if g > pgMaxOld {
                        active -= 1
                        index.swapAt(s, active)
                        continue
                    } else if g < 0 {
                        pg = g
                    }
                } else if a == upper[i] {
                    if g < pgMinOld {
                        active -= 1
                        index.swapAt(s, active)
                        continue
                    } else if g > 0 {
                        pg = g
                    }
                } else {
                    pg = g
                }
                pgMaxNew = max(pgMaxNew, pg)
                pgMinNew = min(pgMinNew, pg)
                if abs(pg) > 1e-12 {
                    let updated = min(max(a - g / qd[i], 0), upper[i])
                    alpha[i] = updated
                    let d = (updated - a) * yi
                    if d != 0 { kernel.add(row, d) }
                }
                s += 1
            }
            iteration += 1
            if pgMaxNew - pgMinNew <= p.tolerance {
                if active == n {
                    converged = true
                    break
                }
                active = n
                pgMaxOld = .infinity
                pgMinOld = -.infinity
                continue
            }
            pgMaxOld = pgMaxNew
            pgMinOld = pgMinNew
            if pgMaxOld <= 0 { pgMaxOld = .infinity }
            if pgMinOld >= 0 { pgMinOld = -.infinity }
        }
        return FitOutcome(iterations: iteration, converged: converged)
    }
}

/// xoshiro256** seeded through SplitMix64, with Lemire's unbiased bounded integers. The solver's
/// visiting order comes from here (liblinear uses a Mersenne twister seeded by scikit-learn's
/// `random_state`; the optimum does not depend on the order, only the path to it does).
struct SolverRandom {
    private var s0, s1, s2, s3: UInt64

    init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
    }

    mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in 0..<bound (bound ≥ 1).
    mutating func below(_ bound: Int) -> Int {
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }
}

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

/// Decision values maintained over every row of a precomputed matrix K̃ (normalised Gram plus
/// bias²): u = K̃·(α∘y). A visit reads u[row]; an update adds δ·K̃[row, :] to u, so after a fit u
/// also holds the decision values of rows that were not trained on (the held-out fold).
struct GramKernel: DualKernel {
    let gram: GramMatrix
    /// Decision values of every row of the Gram matrix (`gram.count`).
    let values: UnsafeMutableBufferPointer<Double>

    func margin(_ row: Int) -> Double { values[row] }

    mutating func add(_ row: Int, _ delta: Double) {
        lp_axpy_f32_f64(delta, gram.row(row), values.baseAddress!, gram.count)
    }

    func squaredNorm(_ row: Int) -> Double { gram.diagonal[row] }
}

/// Explicit weights over float32 feature rows scaled by `scale[row]` (the L2 normalisation) plus
/// a constant bias feature, as liblinear keeps them.
struct DenseKernel: DualKernel {
    let features: FeatureMatrix
    /// Weights, `features.dim` entries, followed by the bias weight.
    let weights: UnsafeMutableBufferPointer<Double>
    let bias: Double

    func margin(_ row: Int) -> Double {
        let d = features.dim
        return features.scale[row] * lp_dot_f32_f64(features.row(row), weights.baseAddress!, d) + weights[d] * bias
    }

    mutating func add(_ row: Int, _ delta: Double) {
        let d = features.dim
        lp_axpy_f32_f64(delta * features.scale[row], features.row(row), weights.baseAddress!, d)
        weights[d] += delta * bias
    }

    func squaredNorm(_ row: Int) -> Double { features.scaledSquaredNorm[row] + bias * bias }
}
