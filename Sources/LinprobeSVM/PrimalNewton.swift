import CLinprobeSVMKernels
import Foundation

/// The `converged` solver (`SVM.solver: converged`): the optimum of the same objective as the
/// `vissl` solver (`DualCD`), to a stated tolerance, instead of a fit truncated at `max_iter`.
///
///     min_w f(w) = ½‖w‖² + Σ_i C_i·max(0, 1 − y_i wᵀx̃_i)²
///
/// with x̃ the normalised row plus the bias feature (the bias weight is regularised, as in
/// liblinear) and C_i the cost times the class weight. Newton's method for the squared hinge in
/// the kernel form of Chapelle (2007, "Training a support vector machine in the primal", §4),
/// with the exact line search of Keerthi & DeCoste (2005) along each step:
///
/// - w = Σ_i β_i x̃_i over the training rows, decision values o = K̃β (K̃ the Gram matrix with
///   the bias², as the `vissl` solver's), violators I = {i : y_i o_i < 1};
/// - the Newton point β̂ solves (K̃_II + Λ_I) β̂_I = y_I with Λ_ii = 1/(2C_i), β̂ = 0 off I
///   (conjugate gradients, warm-started from β_I, to a residual that tightens as f converges);
/// - β moves to the exact minimiser of f along β̂ − β (f is a convex piecewise quadratic there).
///
/// Stopping (liblinear's TRON test, scikit-learn's `LinearSVC(dual=False)`): the primal gradient
/// ∇f(w) = w − 2Σ_{i∈I} C_i y_i (1 − y_i o_i) x̃_i = Σ_i (β_i − γ_i) x̃_i falls to `tolerance`·‖∇f(0)‖ (the cold start's gradient, so the test
/// does not depend on the starting point). `iterations` counts Newton steps; a fit that reaches
/// `maxIterations` steps stops unconverged, and so does one whose step at the tightest forcing
/// is no descent direction (it cannot move at float64 precision; further steps would repeat it).
///
/// At the optimum β_i = 2C_i·y_i·max(0, 1 − y_i o_i), i.e. β = α∘y with α the dual optimum of
/// `DualCD`, which is what `FitResult.alpha` reports.
enum PrimalNewton {
    struct Parameters {
        /// ‖∇f(w)‖ ≤ tolerance·‖∇f(0)‖.
        var tolerance: Double
        var maxIterations: Int
        /// Conjugate-gradient steps allowed per Newton step.
        var maxCGIterations: Int = 10_000
    }

    /// The smallest CG forcing (relative residual) a Newton step asks for.
    static let minimumForcing = 1e-15

    /// One problem over the fit's n training rows: labels ±1 and per-row costs C_i.
    struct Problem {
        var labels: [Int8]
        var costs: [Double]
    }

    /// The iterate: coefficients β and decision values o = K̃β, both over the training rows.
    struct State {
        var beta: [Double]
        var values: [Double]

        static func zero(_ n: Int) -> State {
            State(beta: [Double](repeating: 0, count: n), values: [Double](repeating: 0, count: n))
        }
    }

    /// Minimises f from `state` (β and K̃β consistent); returns how the fit ended.
    static func solve<K: PrimalKernel>(
        kernel: K, problem: Problem, state: inout State, parameters: Parameters
    ) -> FitOutcome {
        let n = problem.labels.count
        precondition(problem.costs.count == n && state.beta.count == n && state.values.count == n)
        if n == 0 { return FitOutcome(iterations: 0, converged: true) }
        let y = problem.labels.map { Double($0) }
        let c = problem.costs
        // ‖∇f(0)‖² = γ₀ᵀK̃γ₀ with γ₀ = 2C∘y.
        let gamma0 = (0..<n).map { 2 * c[$0] * y[$0] }
        let g0 = kernel.norm(sources: Array(0..<n), x: gamma0)
        let target = parameters.tolerance * g0
        var gradient = gradientNorm(kernel, y: y, c: c, state: state)
        var iterations = 0
        var forcing = 0.1
        while gradient > target {
            if iterations >= parameters.maxIterations { return FitOutcome(iterations: iterations, converged: false) }
            iterations += 1
            forcing = min(forcing, max(0.1 * gradient / max(g0, .leastNormalMagnitude), minimumForcing))
            let descended = step(kernel, y: y, c: c, state: &state, forcing: forcing, parameters: parameters)
            if !descended {
                // At the tightest forcing the step is a fixed point (same state, same forcing, same
                // CG): every further step would repeat it, so stop here unconverged instead of
                // repeating it until `maxIterations` (seen: a 9,216-d CV fit at 1.5× the
                // tolerance, ~2,000 identical steps of 105 CG iterations each).
                if forcing <= minimumForcing { return FitOutcome(iterations: iterations, converged: false) }
                forcing = max(forcing * 1e-3, minimumForcing)
            }
            gradient = gradientNorm(kernel, y: y, c: c, state: state)
        }
        return FitOutcome(iterations: iterations, converged: true)
    }

    /// One Newton step with exact line search; false when the (inexact) Newton direction was
    /// not a descent direction (the state is unchanged then).
    private static func step<K: PrimalKernel>(
        _ kernel: K, y: [Double], c: [Double], state: inout State, forcing: Double, parameters: Parameters
    ) -> Bool {
        let n = y.count
        let violators = (0..<n).filter { y[$0] * state.values[$0] < 1 }
        var x = violators.map { state.beta[$0] }
        if !violators.isEmpty {
            let block = kernel.block(violators)
            let lambda = violators.map { 0.5 / c[$0] }
            let b = violators.map { y[$0] }
            conjugateGradient(
                block: block, lambda: lambda, b: b, x: &x, forcing: forcing, maxIterations: parameters.maxCGIterations)
        }
        // Newton point β̂ and its decision values; direction d = β̂ − β.
        var direction = [Double](repeating: 0, count: n)
        for i in 0..<n { direction[i] = -state.beta[i] }
        for (k, i) in violators.enumerated() { direction[i] += x[k] }
        let newValues = kernel.multiply(sources: violators, x: x, targets: Array(0..<n))
        let change = (0..<n).map { newValues[$0] - state.values[$0] }
        guard let t = LineSearch.minimiser(y: y, c: c, values: state.values, direction: direction, change: change)
        else { return false }
        if abs(t - 1) <= 1e-12 {
            // The Newton point itself (its decision values computed afresh, no drift).
            var beta = [Double](repeating: 0, count: n)
            for (k, i) in violators.enumerated() { beta[i] = x[k] }
            state = State(beta: beta, values: newValues)
        } else {
            for i in 0..<n {
                state.beta[i] += t * direction[i]
                state.values[i] += t * change[i]
            }
        }
        return true
    }

    /// ‖∇f(w)‖ = ‖Σ_i δ_i x̃_i‖, δ_i = β_i − 2C_i y_i max(0, 1 − y_i o_i).
    static func gradientNorm<K: PrimalKernel>(_ kernel: K, y: [Double], c: [Double], state: State) -> Double {
        var rows: [Int] = []
        var delta: [Double] = []
        for i in 0..<y.count {
            let slack = max(0, 1 - y[i] * state.values[i])
            let d = state.beta[i] - 2 * c[i] * y[i] * slack
            if d != 0 { rows.append(i); delta.append(d) }
        }
        return rows.isEmpty ? 0 : kernel.norm(sources: rows, x: delta)
    }

    /// Conjugate gradients on (B + Λ)x = b from the given x, until ‖r‖ ≤ forcing·‖b‖.
    private static func conjugateGradient(
        block: any PrimalBlock, lambda: [Double], b: [Double], x: inout [Double], forcing: Double, maxIterations: Int
    ) {
        let m = b.count
        var product = [Double](repeating: 0, count: m)
        func apply(_ v: [Double], into out: inout [Double]) {
            block.apply(v, into: &out)
            for k in 0..<m { out[k] += lambda[k] * v[k] }
        }
        apply(x, into: &product)
        var r = (0..<m).map { b[$0] - product[$0] }
        var rr = dot(r, r)
        let stop = forcing * forcing * dot(b, b)
        var p = r
        var iterations = 0
        while rr > stop && iterations < maxIterations {
            apply(p, into: &product)
            let pq = dot(p, product)
            if !(pq > 0) { break }
            let a = rr / pq
            for k in 0..<m {
                x[k] += a * p[k]
                r[k] -= a * product[k]
            }
            let next = dot(r, r)
            let beta = next / rr
            rr = next
            for k in 0..<m { p[k] = r[k] + beta * p[k] }
            iterations += 1
        }
    }

    @inline(__always) static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for k in 0..<a.count { s += a[k] * b[k] }
        return s
    }
}

/// The exact minimiser of f(β + t·d) over t > 0 (Keerthi & DeCoste 2005, §3): f is convex and
/// piecewise quadratic in t, its derivative continuous, piecewise linear and non-decreasing, with
/// a kink where a row enters or leaves the violators.
enum LineSearch {
    /// `values` = K̃β, `change` = K̃d over the training rows. Nil when d is not a descent direction.
    static func minimiser(
        y: [Double], c: [Double], values: [Double], direction d: [Double], change: [Double]
    )
        -> Double?
    {
        let n = y.count
        // f'(t) = oᵀd + t·dᵀΔo − 2Σ_{active} C_i b_i (a_i − t b_i), a_i = 1 − y_i o_i, b_i = y_i Δo_i.
        var derivative = PrimalNewton.dot(values, d)
        var slope = PrimalNewton.dot(change, d)
        var kinks: [(t: Double, row: Int)] = []
        for i in 0..<n {
            let a = 1 - y[i] * values[i]
            let b = y[i] * change[i]
            if a > 0 || (a == 0 && b < 0) {
                derivative -= 2 * c[i] * b * a
                slope += 2 * c[i] * b * b
            }
            if b != 0 {
                let t = a / b
                if t > 0 { kinks.append((t, i)) }
            }
        }
        if !(derivative < 0) { return nil }
        kinks.sort { $0.t < $1.t }
        var at = 0.0
        for kink in kinks {
            if slope > 0 && derivative + slope * (kink.t - at) >= 0 { return at - derivative / slope }
            derivative += slope * (kink.t - at)
            at = kink.t
            let b = y[kink.row] * change[kink.row]
            // b > 0: the row leaves the violators at t (a > 0); b < 0: it enters (a < 0).
            slope += (b > 0 ? -2 : 2) * c[kink.row] * b * b
        }
        return slope > 0 ? at - derivative / slope : nil
    }
}

// MARK: - Kernel

/// What `PrimalNewton` needs from the training data: products with K̃ (normalised Gram plus
/// bias²) between rows of the fit, addressed by position 0..<n in the fit's training rows.
protocol PrimalKernel {
    /// out[t] = Σ_k K̃[targets[t], sources[k]]·x[k].
    func multiply(sources: [Int], x: [Double], targets: [Int]) -> [Double]
    /// ‖Σ_k x[k]·x̃_{sources[k]}‖.
    func norm(sources: [Int], x: [Double]) -> Double
    /// The operator v ↦ K̃[rows, rows]·v, used many times (conjugate gradients).
    func block(_ rows: [Int]) -> any PrimalBlock
}

protocol PrimalBlock {
    func apply(_ v: [Double], into out: inout [Double])
}

/// Decision values, gradients and scores from the float32 feature rows (scaled by the
/// normalisation, plus the bias feature) with float64 accumulation, through
/// w = Σ_k x_k·x̃_{source k}: O((|S| + |T|)·D) per product, exact to float64 rounding.
///
/// Not the float32 Gram matrix, even where the `vissl` solver uses it: its rounding (~1e-7
/// relative per entry) perturbs the problem by more than the smallest eigenvalues of
/// K̃_II + Λ at large costs (Λ = 1/(2C) = 2.5e-4 for positives at C = 1000), so Newton points
/// computed from it stall short of the exact optimum (measured on the fixtures: 2,000 steps
/// without reaching 1e-6 at C = 1000, decision values off by ~1e-4 relative).
struct DensePrimalKernel: PrimalKernel {
    let features: FeatureMatrix
    /// Feature row of each training position.
    let rows: [Int]
    let bias: Double
    func multiply(sources: [Int], x: [Double], targets: [Int]) -> [Double] {
        score(sources: sources, x: x, featureRows: targets.map { rows[$0] })
    }

    func norm(sources: [Int], x: [Double]) -> Double {
        weights(sources: sources, x: x).reduce(0) { $0 + $1 * $1 }.squareRoot()
    }

    /// Decision values of any feature rows under w = Σ_k x_k·x̃_{rows[sources[k]]}.
    func score(sources: [Int], x: [Double], featureRows: [Int]) -> [Double] {
        weights(sources: sources, x: x).withUnsafeBufferPointer { wp in
            guard let w = wp.baseAddress else { return [] }
            let d = features.dim
            return featureRows.map { r in features.scale[r] * lp_dot_f32_f64(features.row(r), w, d) + w[d] * bias }
        }
    }

    /// D weights then the bias weight.
    func weights(sources: [Int], x: [Double]) -> [Double] {
        let d = features.dim
        var w = [Double](repeating: 0, count: d + 1)
        var b = 0.0
        w.withUnsafeMutableBufferPointer { wp in
            guard let target = wp.baseAddress else { return }
            for (k, source) in sources.enumerated() where x[k] != 0 {
                let r = rows[source]
                lp_axpy_f32_f64(x[k] * features.scale[r], features.row(r), target, d)
                b += x[k] * bias
            }
        }
        w[d] = b
        return w
    }

    func block(_ positions: [Int]) -> any PrimalBlock {
        DenseBlock(kernel: self, positions: positions)
    }
}

/// K̃[rows, rows] from the float32 rows: two passes per product.
struct DenseBlock: PrimalBlock {
    let kernel: DensePrimalKernel
    let positions: [Int]

    func apply(_ v: [Double], into out: inout [Double]) {
        let product = kernel.multiply(sources: positions, x: v, targets: positions)
        for k in 0..<product.count { out[k] = product[k] }
    }
}
