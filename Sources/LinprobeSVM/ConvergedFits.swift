import Foundation

/// `SVM.solver: converged`: the trainer's fits through `PrimalNewton` instead of `DualCD`.
extension SVMTrainer {
    /// The same contract as `fitBatch`: one result per problem (labels ±1 per row, cost), decision
    /// values of `scoreRows`, weights on request. The problems are solved one after another in
    /// increasing cost; a problem whose labels equal the previous one's starts from that
    /// optimum (the cost path of one (class, fold)), any other from zero. `alpha` is the dual
    /// solution β∘y; `iterations` counts Newton steps. Every product comes from the float32 rows
    /// with float64 accumulation, whatever the layout (see `DensePrimalKernel`).
    func fitBatchConverged(
        rows: [Int], problems: [(labels: [Int8], cost: Double)], scoreRows: [Int], featureRows: [Int]?,
        wantWeights: Bool
    ) -> [FitResult] {
        let toFeature = { (r: Int) in featureRows?[r] ?? self.rowMap?[r] ?? r }
        let kernel = DensePrimalKernel(features: features, rows: rows.map(toFeature), bias: settings.interceptScaling)
        let scored = scoreRows.map(toFeature)
        return solvePath(kernel: kernel, problems: problems).map { problem, outcome, state in
            let support = state.beta.indices.filter { state.beta[$0] != 0 }
            let x = support.map { state.beta[$0] }
            let margins = kernel.score(sources: support, x: x, featureRows: scored)
            let alpha = zip(state.beta, problem.labels).map { $0 * Double($1) }
            let weights = wantWeights ? kernel.weights(sources: support, x: x) : nil
            return FitResult(outcome: outcome, alpha: alpha, margins: margins, weights: weights)
        }
    }

    /// Solves every problem (in increasing cost, warm-started along equal labels); returns them in
    /// the given order with their outcomes and optima.
    private func solvePath(
        kernel: DensePrimalKernel, problems: [(labels: [Int8], cost: Double)]
    ) -> [(PrimalNewton.Problem, FitOutcome, PrimalNewton.State)] {
        let order = problems.indices.sorted { (problems[$0].cost, $0) < (problems[$1].cost, $1) }
        let parameters = PrimalNewton.Parameters(
            tolerance: settings.convergedTolerance, maxIterations: settings.maxIterations)
        var out = [(PrimalNewton.Problem, FitOutcome, PrimalNewton.State)?](repeating: nil, count: problems.count)
        var previous: (labels: [Int8], state: PrimalNewton.State)?
        for q in order {
            let labels = problems[q].labels
            let costs = labels.map {
                problems[q].cost * ($0 > 0 ? settings.positiveClassWeight : settings.negativeClassWeight)
            }
            let problem = PrimalNewton.Problem(labels: labels, costs: costs)
            var state =
                previous.flatMap { $0.labels == labels ? $0.state : nil } ?? PrimalNewton.State.zero(labels.count)
            let outcome = PrimalNewton.solve(kernel: kernel, problem: problem, state: &state, parameters: parameters)
            out[q] = (problem, outcome, state)
            previous = (labels, state)
        }
        return out.compactMap { $0 }
    }
}
