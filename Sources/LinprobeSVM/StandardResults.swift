import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

// MARK: - Refit

/// The chosen cost of each class refit on every training row; each model is kept in
/// `models/cls<c>_cost<k>.npy` and recorded (with its checksum) in the fit log.
enum Refit {
    /// The weights (D + 1 values) of every problem's chosen model, in problem order.
    static func run(
        _ problems: ClassProblems, choice: CostChoice, log: FitLog, modelsFolder: String, solver: SolverSetup,
        ctx: LayerContext, journal: LayerJournal
    ) throws -> [[Double]] {
        let dim = try ctx.train.layer(ctx.layer).dim
        var weights: [Int: [Double]] = [:]
        var todo: [Int] = []
        for (p, problem) in problems.problems.enumerated() {
            let key = StandardProtocol.refitKey(problem.index, choice.cost(of: problem.index))
            if let w = reusable(log.record(key), modelsFolder: modelsFolder, dim: dim) {
                weights[p] = w
            } else {
                todo.append(p)
            }
        }
        if !todo.isEmpty {
            let fitted = try fit(
                todo, problems: problems, choice: choice, log: log, modelsFolder: modelsFolder, solver: solver,
                ctx: ctx, journal: journal)
            weights.merge(fitted) { _, new in new }
        }
        return try problems.problems.indices.map { p in
            guard let w = weights[p] else {
                throw LinprobeError(.corruptInput, "\(log.path): no model for class \(problems.problems[p].index)")
            }
            return w
        }
    }

    /// The weights of a logged refit when the record is usable, its model file has the recorded
    /// checksum and holds D + 1 float64 weights; nil otherwise (the class is refit).
    static func reusable(_ json: JSONValue?, modelsFolder: String, dim: Int) -> [Double]? {
        guard let record = RefitRecord(json) else { return nil }
        let path = Paths.join(modelsFolder, record.model)
        guard (try? Fingerprint.sha256(ofFile: path)) == record.sha256, let array = try? NPYArray.read(path: path),
            array.dtype == "<f8", array.shape == [1, dim + 1], case .floats(let values) = array.values
        else { return nil }
        return values
    }

    /// Refits the listed problems as batches, one per thread (every refit uses all rows). A
    /// problem's result does not depend on its batch, so neither does it on the thread count.
    static func fit(
        _ todo: [Int], problems: ClassProblems, choice: CostChoice, log: FitLog, modelsFolder: String,
        solver: SolverSetup, ctx: LayerContext, journal: LayerJournal
    ) throws -> [Int: [Double]] {
        let trainer = try solver.makeTrainer()
        BLAS.setThreads(1)
        let done = Locked(0)
        let out = Locked([Int: [Double]]())
        let all = problems.problems
        let settings = ctx.settings
        let progress = ctx.progress
        let refitDense = solver.refitDense
        let rows = Array(0..<problems.rows)
        // Over the Gram matrix when that is the refits' cheaper layout (N ≤ 2·D); dense otherwise.
        if let gram = trainer.gram, settings.solver == .vissl, !refitDense {
            try journal.time("refit") {
                try lockstep(
                    todo, rows: rows, trainer: trainer, gram: gram, all: all, choice: choice, log: log,
                    modelsFolder: modelsFolder, ctx: ctx, into: out)
            }
            return out.withLock { $0 }
        }
        let batches = max(1, min(ctx.threads, todo.count))
        let chunks = (0..<batches).map { b in stride(from: b, to: todo.count, by: batches).map { todo[$0] } }
        try journal.time("refit") {
            try Parallel.forEach(count: chunks.count, threads: ctx.threads) { b in
                let chunk = chunks[b]
                let problems = chunk.map { (all[$0].labels, settings.costs[choice.cost(of: all[$0].index)]) }
                let results = trainer.fitBatch(
                    rows: rows, problems: problems, seed: StandardProtocol.orderSeed(settings), scoreRows: [],
                    wantWeights: true, forceDense: refitDense)
                for (p, result) in zip(chunk, results) {
                    let problem = all[p]
                    let w = try save(
                        result, problem: problem, cost: choice.cost(of: problem.index), log: log,
                        modelsFolder: modelsFolder)
                    out.withLock { $0[p] = w }
                    let d = done.withLock {
                        $0 += 1; return $0
                    }
                    progress("refit", d, todo.count)
                }
            }
        }
        return out.withLock { $0 }
    }

    /// The refits over the layer's Gram matrix (`LockstepGram`, one group per class, all rows):
    /// the classes' problems share every row, so each block of Gram rows serves all of them.
    private static func lockstep(
        _ todo: [Int], rows: [Int], trainer: SVMTrainer, gram: GramMatrix, all: [ClassProblem], choice: CostChoice,
        log: FitLog,
        modelsFolder: String, ctx: LayerContext, into out: Locked<[Int: [Double]]>
    ) throws {
        let s = ctx.settings
        let groups = todo.map { p in
            LockstepGroup(
                rows: rows, labels: all[p].labels, costs: [s.costs[choice.cost(of: all[p].index)]], scoreRows: [])
        }
        let parameters = LockstepParameters(
            loss: s.loss, tolerance: s.tolerance, maxIterations: s.maxIterations, seed: StandardProtocol.orderSeed(s),
            positiveClassWeight: s.positiveClassWeight, negativeClassWeight: s.negativeClassWeight)
        let solved = LockstepGram.solve(gram: gram, groups: groups, parameters: parameters, threads: ctx.threads)
        for (i, p) in todo.enumerated() {
            let problem = all[p]
            let result = solved[i][0]
            let fit = FitResult(
                outcome: result.outcome, alpha: result.alpha, margins: [],
                weights: trainer.weightsFromDual(rows: rows, labels: problem.labels, alpha: result.alpha))
            let w = try save(
                fit, problem: problem, cost: choice.cost(of: problem.index), log: log, modelsFolder: modelsFolder)
            out.withLock { $0[p] = w }
            ctx.progress("refit", i + 1, todo.count)
        }
    }

    /// Writes a refit's model file and log record; returns its weights.
    private static func save(
        _ result: FitResult, problem: ClassProblem, cost k: Int, log: FitLog, modelsFolder: String
    ) throws -> [Double] {
        guard let w = result.weights else {
            throw LinprobeError(.numerical, "\(log.path): the refit of class \(problem.index) returned no weights")
        }
        let file = "cls\(problem.index)_cost\(k).npy"
        let data = NPYWriter.float64(w, shape: [1, w.count])
        try AtomicFile.write(data, to: Paths.join(modelsFolder, file))
        let record = RefitRecord(
            iterations: result.outcome.iterations, converged: result.outcome.converged, model: file,
            sha256: Fingerprint.sha256(data))
        try log.append(record.json(key: StandardProtocol.refitKey(problem.index, k)))
        return w
    }
}

// MARK: - Test

/// The chosen models saved together, and the test scores of every trained class.
enum StandardTest {
    struct Scores {
        /// `scores[p][row]` for problem p.
        let scores: [[Double]]
        let targets: [Int64]
    }

    /// `models.npy`: one row per trained class (D weights, then the bias weight); its SHA-256.
    static func writeModels(_ weights: [[Double]], problems: ClassProblems, ctx: LayerContext) throws -> String {
        let dim = try ctx.train.layer(ctx.layer).dim
        let data = NPYWriter.float64(weights.flatMap { $0 }, shape: [weights.count, dim + 1])
        try AtomicFile.write(data, to: ctx.file("models.npy"))
        return Fingerprint.sha256(data)
    }

    static func run(_ weights: [[Double]], ctx: LayerContext, journal: LayerJournal) throws -> Scores {
        try journal.time("test") {
            ctx.progress("test", 0, 1)
            let s = ctx.settings
            let scores = try Scoring.score(
                reader: ctx.test, layer: ctx.layer, models: weights, normalize: s.normalize, bias: s.interceptScaling,
                threads: ctx.threads)
            return Scores(scores: scores, targets: try ctx.test.targets())
        }
    }
}

// MARK: - Results

/// The VOC07 results document of a layer: per-class records with every fit, test AP, mAP.
struct StandardResults {
    let ctx: LayerContext
    let problems: ClassProblems
    let choice: CostChoice
    let log: FitLog
    let test: StandardTest.Scores
    /// SHA-256 of `models.npy`.
    let models: String
    let solver: SolverSetup
    let journal: LayerJournal

    /// What the per-class pass collects.
    struct Summary {
        var classes: [SVMResultsDocument.ClassRecord] = []
        var perClass: [String: Double?] = [:]
        var perClass11: [String: Double?] = [:]
        var chosen: [String: SVMResultsDocument.ChosenCost] = [:]
        var aps: [Double] = []
        var aps11: [Double] = []
        var fits = 0
        var notConverged = 0
    }

    func document() throws -> SVMResultsDocument {
        let s = ctx.settings
        var summary = Summary()
        var problemIndex: [Int: Int] = [:]
        for (p, problem) in problems.problems.enumerated() { problemIndex[problem.index] = p }
        for c in problems.classes {
            try add(class: c, problem: problemIndex[c], to: &summary)
        }
        if summary.notConverged > 0 {
            journal.warn(s.notConvergedWarning(summary.notConverged, of: summary.fits) + "; see fits[].converged")
        }
        let mAP = summary.aps.isEmpty ? nil : summary.aps.reduce(0, +) / Double(summary.aps.count) * 100
        let mAP11 = summary.aps11.isEmpty ? nil : summary.aps11.reduce(0, +) / Double(summary.aps11.count) * 100
        var provenance = ctx.provenance
        provenance.solverLayout = solver.layout.rawValue
        provenance.refitLayout = solver.refitDense ? SolverLayout.dense.rawValue : solver.layout.rawValue
        provenance.timings = journal.finalTimings()
        var doc = SVMResultsDocument(
            protocolKind: .voc07, layer: ctx.layer, metric: "mAP", value: finite(mAP), costs: s.costs,
            convergence: .init(fits: summary.fits, notConverged: summary.notConverged), fingerprint: ctx.fingerprint,
            features: ctx.features, featureProvenance: ctx.featureProvenance, settings: s.fingerprintJSON,
            warnings: journal.warnings, provenance: provenance)
        doc.metricDefinition =
            "mean over classes of VISSL's all-points interpolated VOC AP (difficult rows dropped), x100"
        doc.metrics = .init(mAP: finite(mAP), mAP11Point: finite(mAP11), classesInMean: summary.aps.count)
        doc.perClass = summary.perClass
        doc.perClass11Point = summary.perClass11
        doc.chosenHyperparameters = summary.chosen
        doc.cvMetric = "scikit-learn average_precision (step-wise, ties grouped) on decision values, mean over folds"
        doc.classes = summary.classes
        doc.models = .init(
            file: "models.npy", sha256: models, classes: problems.problems.map(\.index),
            layout: "row per class: D weights then the bias weight; score = s*(w.x) + intercept_scaling*w[D], "
                + "s = 1/(||x||+1e-5) when normalize")
        return doc
    }

    /// Adds class `c` (trained as problem `p`, or skipped) to the summary.
    private func add(class c: Int, problem p: Int?, to summary: inout Summary) throws {
        let name = ctx.className(c, in: ctx.train)
        guard let p else {
            summary.classes.append(.init(skipped: c, name: name, reason: problems.skipped[c] ?? ""))
            summary.perClass.updateValue(nil, forKey: name)
            return
        }
        let problem = problems.problems[p]
        let eval = TestEvaluation(scores: test.scores[p], targets: test.targets, width: problems.width, column: c)
        if eval.allPoints == nil {
            journal.warn(
                "class \(c) (\(name)) has no positive test rows: test AP undefined (VISSL would report NaN); "
                    + "excluded from mAP")
        }
        if let a = eval.allPoints { summary.aps.append(a) }
        if let a = eval.elevenPoint { summary.aps11.append(a) }
        let k = choice.cost(of: c)
        let cost = ctx.settings.costs[k]
        var record = SVMResultsDocument.ClassRecord(trained: c, name: name)
        record.trainPositives = problem.positives
        record.trainNegatives = problems.rows - problem.positives - problem.difficult
        record.trainDifficultAsNegative = problem.difficult
        record.testPositives = eval.positives
        record.testNegatives = eval.negatives
        record.testDifficultDropped = eval.difficult
        record.cvAP = (choice.means[c] ?? []).map(finite)
        record.cvAPFolds = (choice.folds[c] ?? []).map { $0.map(finite) }
        record.chosenCost = cost
        record.chosenCostIndex = k
        record.testAP = finite(eval.allPoints)
        record.testAP11Point = finite(eval.elevenPoint)
        record.fits = try fits(class: c, chosen: k, summary: &summary)
        summary.classes.append(record)
        summary.perClass.updateValue(finite(eval.allPoints.map { $0 * 100 }), forKey: name)
        summary.perClass11.updateValue(finite(eval.elevenPoint.map { $0 * 100 }), forKey: name)
        summary.chosen[name] = .init(C: cost)
    }

    /// Every CV fit of class `c` in the log, then its refit; counts fits and non-converged ones.
    private func fits(class c: Int, chosen k: Int, summary: inout Summary) throws -> [SVMResultsDocument.Fit] {
        let s = ctx.settings
        var fits: [SVMResultsDocument.Fit] = []
        for kk in 0..<s.costs.count {
            for f in 0..<s.crossValidationFolds {
                guard let rec = CVFitRecord(log.record(StandardProtocol.cvKey(c, kk, f))) else { continue }
                summary.fits += 1
                if rec.converged != true && rec.iterations != nil && rec.note == nil { summary.notConverged += 1 }
                fits.append(
                    .init(
                        cost: s.costs[kk], fold: .index(f), iterations: rec.iterations,
                        converged: rec.converged, ap: rec.ap, note: rec.note))
            }
        }
        guard let refit = RefitRecord(log.record(StandardProtocol.refitKey(c, k))) else {
            throw LinprobeError(.corruptInput, "\(log.path): no usable refit record for class \(c)")
        }
        summary.fits += 1
        if !refit.converged { summary.notConverged += 1 }
        fits.append(.init(cost: s.costs[k], fold: .all, iterations: refit.iterations, converged: refit.converged))
        return fits
    }
}
