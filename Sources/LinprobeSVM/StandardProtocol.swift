import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// VISSL's VOC07 SVM protocol for one layer (`SVMTrainer.train` + `test`):
/// per class and cost, k-fold stratified CV scored by scikit-learn's AP; the first cost with the
/// best mean CV AP is refit on every training row; test AP with VISSL's all-points AP.
///
/// Only the chosen cost is refit: VISSL also refits (and pickles) every other cost, which never
/// enters a reported number.
///
/// Phases: `ClassProblems` → `CrossValidation` → `CostChoice` → `Refit` → `StandardTest` →
/// `StandardResults`. Every fit is recorded in the layer's fit log (`FitLog`) as it finishes; a
/// rerun does only the fits the log does not vouch for.
enum StandardProtocol {
    static func run(_ ctx: LayerContext) throws -> SVMResultsDocument {
        let journal = LayerJournal(ctx)
        let problems = try ClassProblems(ctx, journal: journal)
        let log = try FitLog(path: ctx.file("fits.log"), fresh: ctx.settings.forceRetrain)
        try absorbPieces(ctx, into: log)
        let modelsFolder = ctx.file("models")
        if ctx.settings.forceRetrain { try? FileManager.default.removeItem(atPath: modelsFolder) }
        try Paths.ensureDirectory(modelsFolder)
        let solver = try SolverSetup(ctx, rows: problems.rows)
        let blasBefore = BLAS.threads
        defer { BLAS.setThreads(blasBefore) }

        try CrossValidation.run(problems, log: log, solver: solver, ctx: ctx, journal: journal)
        let choice = CostChoice(problems, log: log, settings: ctx.settings, journal: journal)
        let weights = try Refit.run(
            problems, choice: choice, log: log, modelsFolder: modelsFolder, solver: solver, ctx: ctx, journal: journal)
        solver.release()
        let models = try StandardTest.writeModels(weights, problems: problems, ctx: ctx)
        let test = try StandardTest.run(weights, ctx: ctx, journal: journal)

        let results = StandardResults(
            ctx: ctx, problems: problems, choice: choice, log: log, test: test, models: models, solver: solver,
            journal: journal)
        let document = try results.document()
        try document.write(to: ctx.resultsPath)
        return document
    }

    static func cvKey(_ c: Int, _ k: Int, _ f: Int) -> String { "cv/c\(c)/k\(k)/f\(f)" }
    static func refitKey(_ c: Int, _ k: Int) -> String { "fit/c\(c)/k\(k)" }

    /// Seed of the layer's visiting order (`SweepOrder` over all training rows): every CV fit and
    /// refit visits its rows in the order of this one sequence of permutations. A fit's result
    /// does not depend on which other fits ran with it (see `DualCD`, `LockstepGram`), so a
    /// resumed run reproduces an uninterrupted one.
    static func orderSeed(_ s: SVMSettings) -> UInt64 { mixSeed([s.seed, 0x5356_4d03]) }
}

// MARK: - Problems

/// One class's training problem: labels ±1 (difficult and absent rows are negatives) and folds.
struct ClassProblem {
    let index: Int
    let name: String
    let labels: [Int8]
    let positives: Int
    let difficult: Int
    /// Test fold of each row; nil when stratification is impossible.
    let folds: [Int]?
}

/// The classes to train and their problems; a class without training positives is skipped.
struct ClassProblems {
    /// Every requested class, in order.
    let classes: [Int]
    /// The trainable ones, in class order.
    let problems: [ClassProblem]
    /// Skipped classes and why.
    let skipped: [Int: String]
    /// Training rows.
    let rows: Int
    /// Target columns.
    let width: Int

    init(classes: [Int], problems: [ClassProblem], skipped: [Int: String], rows: Int, width: Int) {
        self.classes = classes
        self.problems = problems
        self.skipped = skipped
        self.rows = rows
        self.width = width
    }

    init(_ ctx: LayerContext, journal: LayerJournal) throws {
        let s = ctx.settings
        let train = ctx.train
        let width = train.targetLayout.width
        self.width = width
        let targets = try train.targets()
        let classes = s.classList.isEmpty ? Array(0..<width) : s.classList
        self.classes = classes
        if let bad = classes.first(where: { $0 >= width }) {
            throw LinprobeError.config(
                "SVM.cls_list: class \(bad) does not exist (the store has \(width) classes, 0…\(width - 1))")
        }
        rows = train.count
        var problems: [ClassProblem] = []
        var skipped: [Int: String] = [:]
        for c in classes {
            let name = ctx.className(c, in: train)
            if let problem = Self.problem(c, name: name, targets: targets, width: width, ctx: ctx, journal: journal) {
                problems.append(problem)
            } else {
                let reason = "no positive training rows"
                skipped[c] = reason
                journal.warn("class \(c) (\(name)) skipped: \(reason)")
            }
        }
        self.problems = problems
        self.skipped = skipped
    }

    /// Class `c`'s problem, or nil without positives. Warns when CV is impossible or degenerate.
    private static func problem(
        _ c: Int, name: String, targets: [Int64], width: Int, ctx: LayerContext, journal: LayerJournal
    ) -> ClassProblem? {
        let n = ctx.train.count
        let folds = ctx.settings.crossValidationFolds
        var y = [Int8](repeating: -1, count: n)
        var pos = 0, diff = 0
        for r in 0..<n {
            let t = targets[r * width + c]
            if t == 1 { y[r] = 1; pos += 1 } else if t == -1 { diff += 1 }
        }
        if pos == 0 { return nil }
        let testFolds = StratifiedKFold.testFolds(labels: y, folds: folds)
        if testFolds == nil {
            journal.warn(
                "class \(c) (\(name)): too few rows for \(folds)-fold CV; CV AP undefined, the first cost is used "
                    + "(VISSL's argmax over NaN)")
        } else if pos < folds {
            journal.warn(
                "class \(c) (\(name)) has \(pos) positive training row(s), fewer than \(folds) folds: folds without "
                    + "positives score AP 0 and a fold whose training part has no positive cannot be fit (CV AP "
                    + "undefined, as scikit-learn's NaN)")
        }
        return ClassProblem(index: c, name: name, labels: y, positives: pos, difficult: diff, folds: testFolds)
    }
}

/// The solver layout of a layer and its trainer, built on first use (a resumed run whose fits are
/// all in the log never loads the features).
final class SolverSetup {
    let layout: SolverLayout
    /// The refits train on every row: dense when that is the cheaper layout for them.
    let refitDense: Bool
    private let ctx: LayerContext
    private var trainer: SVMTrainer?

    init(_ ctx: LayerContext, rows n: Int) throws {
        self.ctx = ctx
        let s = ctx.settings
        let dim = try ctx.train.layer(ctx.layer).dim
        // CV fits train on (k−1)/k of the rows, all over the layer's one matrix (`LockstepGram`,
        // whose state — decision values, α and a flag per fit and row — counts against the budget).
        let cvRows = n - n / max(s.crossValidationFolds, 1)
        let classes = s.classList.isEmpty ? ctx.train.targetLayout.width : s.classList.count
        let fits = classes * max(s.crossValidationFolds, 1) * s.costs.count
        let chosen =
            ctx.layout
            ?? SVMTrainer.chooseLayout(
                rows: n, trainingRows: cvRows, dim: dim, gramBudgetBytes: ctx.gramBudgetBytes,
                stateBytes: fits * n * LockstepGram.bytesPerFitAndRow)
        // The converged solver reads the rows themselves (see `DensePrimalKernel`): no Gram matrix.
        layout = s.solver == .converged ? .dense : chosen
        refitDense =
            ctx.layout == nil && chosen == .gram
            && SVMTrainer.chooseLayout(rows: n, dim: dim, gramBudgetBytes: .max) == .dense
    }

    func makeTrainer() throws -> SVMTrainer {
        if let trainer { return trainer }
        let features = try FeatureMatrix(reader: ctx.train, layer: ctx.layer, normalize: ctx.settings.normalize)
        let t = SVMTrainer(features: features, settings: ctx.settings, layout: layout, blasThreads: ctx.threads)
        trainer = t
        return t
    }

    /// Frees the features (and Gram matrix) before the test.
    func release() { trainer = nil }
}

// MARK: - Cross-validation

/// Per class, cost and fold: train on the other folds, score the held-out fold with
/// scikit-learn's AP. The costs of one (class, fold) are solved as one batch.
enum CrossValidation {
    /// The CV fits still to do for one (class, fold).
    struct Task {
        let problem: Int
        let fold: Int
        let costs: [Int]
    }

    /// The fits the log does not vouch for, largest costs first (they iterate most) for an even load.
    static func pending(_ problems: ClassProblems, log: FitLog, settings s: SVMSettings) -> [Task] {
        var tasks: [Task] = []
        for (p, problem) in problems.problems.enumerated() where problem.folds != nil {
            for f in 0..<s.crossValidationFolds {
                let missing = (0..<s.costs.count).filter {
                    CVFitRecord(log.record(StandardProtocol.cvKey(problem.index, $0, f))) == nil
                }
                if !missing.isEmpty { tasks.append(Task(problem: p, fold: f, costs: missing)) }
            }
        }
        let costs = s.costs
        tasks.sort { a, b in
            let ca = a.costs.map { costs[$0] }.max() ?? 0, cb = b.costs.map { costs[$0] }.max() ?? 0
            return ca != cb ? ca > cb : a.costs.count > b.costs.count
        }
        return tasks
    }

    static func run(
        _ problems: ClassProblems, log: FitLog, solver: SolverSetup, ctx: LayerContext, journal: LayerJournal
    ) throws {
        let tasks = pending(problems, log: log, settings: ctx.settings)
        if tasks.isEmpty { return }
        let trainer = try journal.time("load_and_gram") { try solver.makeTrainer() }
        BLAS.setThreads(1)
        if let gram = trainer.gram, ctx.settings.solver == .vissl {
            try journal.time("cross_validation") {
                try lockstep(tasks, problems: problems, gram: gram, log: log, ctx: ctx)
            }
            return
        }
        let done = Locked(0)
        let total = tasks.reduce(0) { $0 + $1.costs.count }
        let all = problems.problems
        let settings = ctx.settings
        let progress = ctx.progress
        try journal.time("cross_validation") {
            try Parallel.forEach(count: tasks.count, threads: ctx.threads) { i in
                let task = tasks[i]
                let records = fits(
                    trainer: trainer, problem: all[task.problem], costIndices: task.costs, fold: task.fold,
                    settings: settings)
                for record in records { try log.append(record) }
                let d = done.withLock {
                    $0 += records.count; return $0
                }
                progress("cross-validation", d, total)
            }
        }
    }

    /// The training and held-out rows of fold `f`.
    static func split(_ folds: [Int], fold f: Int) -> (train: [Int], heldOut: [Int]) {
        var train: [Int] = [], heldOut: [Int] = []
        for r in 0..<folds.count {
            if folds[r] == f { heldOut.append(r) } else { train.append(r) }
        }
        return (train, heldOut)
    }

    /// The note of a fold whose training part has one label (scikit-learn cannot fit it), or nil.
    static func unfittable(_ labels: [Int8]) -> String? {
        labels.contains(1) && labels.contains(-1)
            ? nil : "training part of the fold has one label only; scikit-learn cannot fit it (NaN score)"
    }

    /// The log record of one CV fit from its held-out decision values.
    static func record(_ problem: ClassProblem, heldOut: [Int], margins: [Double], outcome: FitOutcome) -> CVFitRecord {
        let positive = heldOut.map { problem.labels[$0] > 0 }
        let ap = AveragePrecision.sklearn(scores: margins, positive: positive)
        return CVFitRecord(ap: ap, iterations: outcome.iterations, converged: outcome.converged)
    }

    /// Every pending CV fit of the layer at once over its Gram matrix (`LockstepGram`: all
    /// (class, fold) groups visit the layer's shared order, so each block of Gram rows is read once
    /// for all of them); the records are logged as the groups' results come back.
    static func lockstep(
        _ tasks: [Task], problems: ClassProblems, gram: GramMatrix, log: FitLog, ctx: LayerContext
    ) throws {
        let s = ctx.settings
        let all = problems.problems
        var groups: [LockstepGroup] = []
        var owners: [(task: Task, heldOut: [Int])] = []
        var total = 0
        for task in tasks {
            guard let folds = all[task.problem].folds else { continue }
            let (train, heldOut) = split(folds, fold: task.fold)
            let labels = train.map { all[task.problem].labels[$0] }
            total += task.costs.count
            if let note = unfittable(labels) {
                for k in task.costs {
                    try log.append(
                        CVFitRecord(unfittable: note).json(
                            key: StandardProtocol.cvKey(all[task.problem].index, k, task.fold)))
                }
                continue
            }
            groups.append(
                LockstepGroup(rows: train, labels: labels, costs: task.costs.map { s.costs[$0] }, scoreRows: heldOut))
            owners.append((task, heldOut))
        }
        let parameters = LockstepParameters(
            loss: s.loss, tolerance: s.tolerance, maxIterations: s.maxIterations, seed: StandardProtocol.orderSeed(s),
            positiveClassWeight: s.positiveClassWeight, negativeClassWeight: s.negativeClassWeight)
        let solved = LockstepGram.solve(gram: gram, groups: groups, parameters: parameters, threads: ctx.threads)
        var done = total - groups.reduce(0) { $0 + $1.costs.count }
        for (g, results) in solved.enumerated() {
            let (task, heldOut) = owners[g]
            let problem = all[task.problem]
            for (k, result) in zip(task.costs, results) {
                let entry = record(problem, heldOut: heldOut, margins: result.margins, outcome: result.outcome)
                try log.append(entry.json(key: StandardProtocol.cvKey(problem.index, k, task.fold)))
            }
            done += results.count
            ctx.progress("cross-validation", done, total)
        }
    }

    /// The CV fits of one (class, fold) for the listed costs, solved as one batch: train on the
    /// other folds, score the held-out fold with scikit-learn's AP. One log record per cost.
    static func fits(
        trainer: SVMTrainer, problem: ClassProblem, costIndices: [Int], fold f: Int, settings s: SVMSettings
    ) -> [JSONValue] {
        guard let folds = problem.folds else { return [] }
        let (trainRows, heldOut) = split(folds, fold: f)
        let labels = trainRows.map { problem.labels[$0] }
        if let note = unfittable(labels) {
            return costIndices.map { k in
                CVFitRecord(unfittable: note).json(key: StandardProtocol.cvKey(problem.index, k, f))
            }
        }
        let problems = costIndices.map { (labels: labels, cost: s.costs[$0]) }
        let results = trainer.fitBatch(
            rows: trainRows, problems: problems, seed: StandardProtocol.orderSeed(s), scoreRows: heldOut,
            order: (trainRows, folds.count))
        return zip(costIndices, results).map { k, result in
            record(problem, heldOut: heldOut, margins: result.margins, outcome: result.outcome)
                .json(key: StandardProtocol.cvKey(problem.index, k, f))
        }
    }
}

// MARK: - Cost choice

/// Per class: the mean CV AP of every cost over the folds, and the first cost with the best mean
/// (NaN first, as numpy's argmax).
struct CostChoice {
    private(set) var means: [Int: [Double?]] = [:]
    private(set) var folds: [Int: [[Double?]]] = [:]
    private var chosen: [Int: Int] = [:]

    init(_ problems: ClassProblems, log: FitLog, settings s: SVMSettings, journal: LayerJournal) {
        for problem in problems.problems {
            var means: [Double?] = []
            var perFold: [[Double?]] = []
            for k in 0..<s.costs.count {
                let aps: [Double?] =
                    problem.folds == nil
                    ? Array(repeating: nil, count: s.crossValidationFolds)
                    : (0..<s.crossValidationFolds).map {
                        CVFitRecord(log.record(StandardProtocol.cvKey(problem.index, k, $0)))?.ap
                    }
                perFold.append(aps)
                means.append(meanIfDefined(aps))
            }
            self.means[problem.index] = means
            folds[problem.index] = perFold
            chosen[problem.index] = numpyArgmax(means)
            if means.allSatisfy({ $0 == nil }) && problem.folds != nil {
                journal.warn(
                    "class \(problem.index) (\(problem.name)): CV AP undefined for every cost; the first cost "
                        + "(\(s.costs[0])) is used, as VISSL's argmax over NaN does")
            }
        }
    }

    /// The chosen cost index of class `c`.
    func cost(of c: Int) -> Int { chosen[c] ?? 0 }
}
