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
enum StandardProtocol {
    struct ClassProblem {
        let index: Int
        let name: String
        let labels: [Int8]
        let positives: Int
        let difficult: Int
        /// Test fold of each row; nil when stratification is impossible.
        let folds: [Int]?
    }

    /// The CV fits still to do for one (class, fold): its costs are solved as one batch (they
    /// share the training rows and labels).
    struct CVTask {
        let problem: Int
        let fold: Int
        let costs: [Int]
    }

    static func run(_ ctx: LayerContext) throws -> SVMLayerOutcome {
        let started = Date()
        let s = ctx.settings
        var warnings: [String] = []
        func warn(_ message: String) {
            warnings.append(message)
            ctx.warn?("\(ctx.layer): \(message)")
        }
        let train = ctx.train
        let width = train.targetLayout.width
        let targets = try train.targets()
        let classes = s.classList.isEmpty ? Array(0..<width) : s.classList
        if let bad = classes.first(where: { $0 >= width }) {
            throw LinprobeError.config("SVM.cls_list: class \(bad) does not exist (the store has \(width) classes, 0…\(width - 1))")
        }
        let n = train.count

        // Problems per class: difficult (−1) and absent (0) are both negatives in training.
        var problems: [ClassProblem] = []
        var skipped: [Int: String] = [:]
        for c in classes {
            var y = [Int8](repeating: -1, count: n)
            var pos = 0, diff = 0
            for r in 0..<n {
                let t = targets[r * width + c]
                if t == 1 { y[r] = 1; pos += 1 } else if t == -1 { diff += 1 }
            }
            let name = ctx.className(c, in: train)
            if pos == 0 {
                let reason = "no positive training rows"
                skipped[c] = reason
                warn("class \(c) (\(name)) skipped: \(reason)")
                continue
            }
            let folds = StratifiedKFold.testFolds(labels: y, folds: s.crossValidationFolds)
            if folds == nil {
                warn("class \(c) (\(name)): too few rows for \(s.crossValidationFolds)-fold CV; CV AP undefined, the first cost is used (VISSL's argmax over NaN)")
            } else if pos < s.crossValidationFolds {
                warn("class \(c) (\(name)) has \(pos) positive training row(s), fewer than \(s.crossValidationFolds) folds: folds without positives score AP 0 and a fold whose training part has no positive cannot be fit (CV AP undefined, as scikit-learn's NaN)")
            }
            problems.append(ClassProblem(index: c, name: name, labels: y, positives: pos, difficult: diff, folds: folds))
        }

        let log = try FitLog(path: ctx.path("fits.log"), fresh: s.forceRetrain)
        let modelsDir = ctx.path("models")
        if s.forceRetrain { try? FileManager.default.removeItem(atPath: modelsDir) }
        try Files.ensureDirectory(modelsDir)

        // The work still to do (a resumed run skips every fit in the log).
        var cvTasks: [CVTask] = []
        for (p, problem) in problems.enumerated() where problem.folds != nil {
            for f in 0..<s.crossValidationFolds {
                let missing = (0..<s.costs.count).filter { log.record(cvKey(problem.index, $0, f)) == nil }
                if !missing.isEmpty { cvTasks.append(CVTask(problem: p, fold: f, costs: missing)) }
            }
        }
        // Batches with the largest costs first (they iterate most) for an even load.
        cvTasks.sort { a, b in
            let ca = a.costs.map { s.costs[$0] }.max()!, cb = b.costs.map { s.costs[$0] }.max()!
            return ca != cb ? ca > cb : a.costs.count > b.costs.count
        }

        var trainer: SVMTrainer? = nil
        let layerDim = try train.layer(ctx.layer).dim
        // CV fits train on (k−1)/k of the rows (a per-fold Gram copy each, one per thread).
        let cvRows = n - n / max(s.crossValidationFolds, 1)
        let layout = ctx.layout ?? SVMTrainer.chooseLayout(
            rows: n, trainingRows: cvRows, dim: layerDim, gramBudgetBytes: ctx.gramBudgetBytes, copies: ctx.threads)
        // The refits train on every row: dense when that is the cheaper layout for them.
        let refitDense = ctx.layout == nil && layout == .gram
            && SVMTrainer.chooseLayout(rows: n, dim: layerDim, gramBudgetBytes: .max) == .dense
        func ensureTrainer() throws -> SVMTrainer {
            if let trainer { return trainer }
            let f = try FeatureMatrix(reader: train, layer: ctx.layer, normalize: s.normalize)
            let t = SVMTrainer(features: f, settings: s, layout: layout, blasThreads: ctx.threads)
            trainer = t
            return t
        }
        let blasBefore = BLAS.threads
        defer { BLAS.setThreads(blasBefore) }

        var timings: [String: JSONValue] = [:]
        if !cvTasks.isEmpty {
            let t0 = Date()
            let tr = try ensureTrainer()
            timings["load_and_gram_seconds"] = .double(Date().timeIntervalSince(t0))
            BLAS.setThreads(1)
            let t1 = Date()
            let done = Locked(0)
            let total = cvTasks.reduce(0) { $0 + $1.costs.count }
            let tasks = cvTasks
            let problemsCopy = problems
            let settings = s
            let layer = ctx.layer
            let progress = ctx.progress
            try Parallel.forEach(count: tasks.count, threads: ctx.threads) { i in
                let task = tasks[i]
                let problem = problemsCopy[task.problem]
                let records = cvFits(trainer: tr, problem: problem, costIndices: task.costs, fold: task.fold, settings: settings)
                for record in records { try log.append(record) }
                let d = done.withLock { $0 += records.count; return $0 }
                progress?(SVMProgress(layer: layer, phase: "cross-validation", done: d, total: total))
            }
            timings["cross_validation_seconds"] = .double(Date().timeIntervalSince(t1))
        }

        // Cost selection: mean over folds, first maximum (NaN first, as numpy's argmax).
        var cvMeans: [Int: [Double?]] = [:]
        var cvFolds: [Int: [[Double?]]] = [:]
        var chosen: [Int: Int] = [:]
        for problem in problems {
            var means: [Double?] = []
            var perFold: [[Double?]] = []
            for k in 0..<s.costs.count {
                var aps: [Double?] = []
                if problem.folds != nil {
                    for f in 0..<s.crossValidationFolds {
                        aps.append(log.record(cvKey(problem.index, k, f))?["ap"]?.doubleValue)
                    }
                } else {
                    aps = Array(repeating: nil, count: s.crossValidationFolds)
                }
                perFold.append(aps)
                means.append(aps.contains { $0 == nil } ? nil : aps.map { $0! }.reduce(0, +) / Double(aps.count))
            }
            cvMeans[problem.index] = means
            cvFolds[problem.index] = perFold
            chosen[problem.index] = numpyArgmax(means)
            if means.allSatisfy({ $0 == nil }) && problem.folds != nil {
                warn("class \(problem.index) (\(problem.name)): CV AP undefined for every cost; the first cost (\(s.costs[0])) is used, as VISSL's argmax over NaN does")
            }
        }

        // Refit the chosen cost of each class on every training row.
        var refitTodo: [Int] = []
        for (p, problem) in problems.enumerated() {
            let key = refitKey(problem.index, chosen[problem.index]!)
            if let rec = log.record(key), let file = rec["model"]?.stringValue, let sum = rec["sha256"]?.stringValue,
                (try? Fingerprint.sha256(ofFile: (modelsDir as NSString).appendingPathComponent(file))) == sum
            {
                continue
            }
            refitTodo.append(p)
        }
        if !refitTodo.isEmpty {
            let tr = try ensureTrainer()
            BLAS.setThreads(1)
            let t2 = Date()
            let done = Locked(0)
            let problemsCopy = problems
            let chosenCopy = chosen
            let settings = s
            let layer = ctx.layer
            let progress = ctx.progress
            let rows = Array(0..<n)
            // Every refit uses all rows: the classes are solved as batches (one per thread). A
            // problem's result does not depend on its batch, so neither does it on the thread count.
            let batches = max(1, min(ctx.threads, refitTodo.count))
            let chunks = (0..<batches).map { b in stride(from: b, to: refitTodo.count, by: batches).map { refitTodo[$0] } }
            let total = refitTodo.count
            try Parallel.forEach(count: chunks.count, threads: ctx.threads) { b in
                let chunk = chunks[b]
                let results = tr.fitBatch(
                    rows: rows, problems: chunk.map { (problemsCopy[$0].labels, settings.costs[chosenCopy[problemsCopy[$0].index]!]) },
                    seed: refitSeed(settings), scoreRows: [], wantWeights: true, forceDense: refitDense)
                for (p, result) in zip(chunk, results) {
                    let problem = problemsCopy[p]
                    let k = chosenCopy[problem.index]!
                    let w = result.weights!
                    let file = "cls\(problem.index)_cost\(k).npy"
                    let data = Files.npy(rows: 1, cols: w.count, values: w)
                    try Files.writeAtomically(data, to: (modelsDir as NSString).appendingPathComponent(file))
                    try log.append([
                        "key": .string(refitKey(problem.index, k)),
                        "iterations": .int(Int64(result.outcome.iterations)),
                        "converged": .bool(result.outcome.converged),
                        "model": .string(file),
                        "sha256": .string(Fingerprint.sha256(data)),
                    ])
                    let d = done.withLock { $0 += 1; return $0 }
                    progress?(SVMProgress(layer: layer, phase: "refit", done: d, total: total))
                }
            }
            timings["refit_seconds"] = .double(Date().timeIntervalSince(t2))
        }
        trainer = nil

        // Chosen models → models.npy; test.
        let dim = try train.layer(ctx.layer).dim
        var modelRows: [Double] = []
        var weights: [[Double]] = []
        for problem in problems {
            let rec = log.record(refitKey(problem.index, chosen[problem.index]!))!
            let (_, cols, values) = try Files.readNpy((modelsDir as NSString).appendingPathComponent(rec["model"]!.stringValue!))
            guard cols == dim + 1 else { throw LinprobeError(.corruptInput, "\(modelsDir): model of class \(problem.index) has \(cols) values, expected \(dim + 1)") }
            weights.append(values)
            modelRows.append(contentsOf: values)
        }
        let modelsData = Files.npy(rows: weights.count, cols: dim + 1, values: modelRows)
        try Files.writeAtomically(modelsData, to: ctx.path("models.npy"))

        let t3 = Date()
        ctx.progress?(SVMProgress(layer: ctx.layer, phase: "test", done: 0, total: 1))
        let scores = try Scoring.score(
            reader: ctx.test, layer: ctx.layer, models: weights, normalize: s.normalize, bias: s.interceptScaling, threads: ctx.threads)
        let testTargets = try ctx.test.targets()
        timings["test_seconds"] = .double(Date().timeIntervalSince(t3))

        // Results.
        var classRecords: [JSONValue] = []
        var perClass: [String: JSONValue] = [:]
        var perClass11: [String: JSONValue] = [:]
        var chosenHyper: [String: JSONValue] = [:]
        var aps: [Double] = []
        var aps11: [Double] = []
        var fitsTotal = 0, fitsNotConverged = 0
        var problemIndex: [Int: Int] = [:]
        for (p, problem) in problems.enumerated() { problemIndex[problem.index] = p }
        for c in classes {
            let name = ctx.className(c, in: train)
            guard let p = problemIndex[c] else {
                classRecords.append(["index": .int(Int64(c)), "name": .string(name), "status": "skipped", "reason": .string(skipped[c] ?? "")])
                perClass[name] = .null
                continue
            }
            let problem = problems[p]
            let eval = TestEvaluation(scores: scores[p], targets: testTargets, width: width, column: c)
            if eval.allPoints == nil {
                warn("class \(c) (\(name)) has no positive test rows: test AP undefined (VISSL would report NaN); excluded from mAP")
            }
            if let a = eval.allPoints { aps.append(a) }
            if let a = eval.elevenPoint { aps11.append(a) }
            let k = chosen[c]!
            var fits: [JSONValue] = []
            for kk in 0..<s.costs.count {
                for f in 0..<s.crossValidationFolds {
                    guard let rec = log.record(cvKey(c, kk, f)) else { continue }
                    fitsTotal += 1
                    let conv = rec["converged"] == .bool(true)
                    if !conv && rec["iterations"] != nil && rec["note"] == nil { fitsNotConverged += 1 }
                    var o: [String: JSONValue] = ["cost": .double(s.costs[kk]), "fold": .int(Int64(f))]
                    for field in ["iterations", "converged", "ap", "note"] where rec[field] != nil { o[field] = rec[field]! }
                    fits.append(.object(o))
                }
            }
            let refit = log.record(refitKey(c, k))!
            fitsTotal += 1
            if refit["converged"] != .bool(true) { fitsNotConverged += 1 }
            fits.append([
                "cost": .double(s.costs[k]), "fold": "all", "iterations": refit["iterations"]!, "converged": refit["converged"]!,
            ])
            classRecords.append([
                "index": .int(Int64(c)), "name": .string(name), "status": "trained",
                "train_positives": .int(Int64(problem.positives)),
                "train_negatives": .int(Int64(n - problem.positives - problem.difficult)),
                "train_difficult_as_negative": .int(Int64(problem.difficult)),
                "test_positives": .int(Int64(eval.positives)), "test_negatives": .int(Int64(eval.negatives)),
                "test_difficult_dropped": .int(Int64(eval.difficult)),
                "cv_ap": .array(cvMeans[c]!.map { JSONValue.number($0) }),
                "cv_ap_folds": .array(cvFolds[c]!.map { .array($0.map { JSONValue.number($0) }) }),
                "chosen_cost": .double(s.costs[k]), "chosen_cost_index": .int(Int64(k)),
                "test_ap": .number(eval.allPoints), "test_ap_11point": .number(eval.elevenPoint),
                "fits": .array(fits),
            ])
            perClass[name] = .number(eval.allPoints.map { $0 * 100 })
            perClass11[name] = .number(eval.elevenPoint.map { $0 * 100 })
            chosenHyper[name] = ["C": .double(s.costs[k])]
        }
        if fitsNotConverged > 0 {
            warn("\(fitsNotConverged) of \(fitsTotal) fits stopped at max_iter = \(s.maxIterations) without converging (scikit-learn's ConvergenceWarning); see fits[].converged")
        }
        let mAP = aps.isEmpty ? nil : aps.reduce(0, +) / Double(aps.count) * 100
        let mAP11 = aps11.isEmpty ? nil : aps11.reduce(0, +) / Double(aps11.count) * 100
        timings["total_seconds"] = .double(Date().timeIntervalSince(started))
        var provenance = ctx.provenance
        if case .object(var o) = provenance {
            o["solver_layout"] = .string(layout.rawValue)
            o["refit_layout"] = .string(refitDense ? SolverLayout.dense.rawValue : layout.rawValue)
            o["timings"] = .object(timings)
            provenance = .object(o)
        }
        let results: JSONValue = [
            "format": "linprobe.svm.results",
            "format_version": 1,
            "method": "svm",
            "protocol": "voc07",
            "layer": .string(ctx.layer),
            "metric": "mAP",
            "metric_definition": "mean over classes of VISSL's all-points interpolated VOC AP (difficult rows dropped), x100",
            "value": .number(mAP),
            "unit": "percent",
            "metrics": [
                "mAP": .number(mAP),
                "mAP_11point": .number(mAP11),
                "classes_in_mean": .int(Int64(aps.count)),
            ],
            "per_class": .object(perClass),
            "per_class_11point": .object(perClass11),
            "chosen_hyperparameters": .object(chosenHyper),
            "costs": .array(s.costs.map { .double($0) }),
            "cv_metric": "scikit-learn average_precision (step-wise, ties grouped) on decision values, mean over folds",
            "classes": .array(classRecords),
            "convergence": ["fits": .int(Int64(fitsTotal)), "not_converged": .int(Int64(fitsNotConverged))],
            "models": [
                "file": "models.npy",
                "sha256": .string(Fingerprint.sha256(modelsData)),
                "classes": .array(problems.map { .int(Int64($0.index)) }),
                "layout": "row per class: D weights then the bias weight; score = s*(w.x) + intercept_scaling*w[D], s = 1/(||x||+1e-5) when normalize",
            ],
            "fingerprint": .string(ctx.fingerprint),
            "features": [
                "train": ["path": .string(ctx.train.path), "fingerprint": .string(ctx.train.fingerprint), "rows": .int(Int64(n))],
                "test": ["path": .string(ctx.test.path), "fingerprint": .string(ctx.test.fingerprint), "rows": .int(Int64(ctx.test.count))],
            ],
            "settings": s.fingerprintJSON,
            "warnings": .array(warnings.map { .string($0) }),
            "provenance": provenance,
        ]
        let resultsPath = ctx.path("results.json")
        try Files.writeAtomically(Data((try results.prettyText() + "\n").utf8), to: resultsPath)
        return SVMLayerOutcome(layer: ctx.layer, resultsPath: resultsPath, value: mAP, metric: "mAP", warnings: warnings)
    }

    static func cvKey(_ c: Int, _ k: Int, _ f: Int) -> String { "cv/c\(c)/k\(k)/f\(f)" }
    static func refitKey(_ c: Int, _ k: Int) -> String { "fit/c\(c)/k\(k)" }

    /// Seed of the CV batch of one (class, fold): the visiting order of every cost's fit. Costs
    /// of a batch share it; a fit's result does not depend on which other costs are batched
    /// with it (see `DualCD`), so a resumed run reproduces an uninterrupted one.
    static func cvSeed(_ s: SVMSettings, _ c: Int, fold: Int) -> UInt64 {
        mixSeed([s.seed, 0x5356_4d01, UInt64(bitPattern: Int64(c)), UInt64(bitPattern: Int64(fold))])
    }

    /// Seed of the refits on all training rows (shared by every class, for the same reason).
    static func refitSeed(_ s: SVMSettings) -> UInt64 { mixSeed([s.seed, 0x5356_4d02]) }

    /// The CV fits of one (class, fold) for the listed costs, solved as one batch: train on the
    /// other folds, score the held-out fold with scikit-learn's AP. One log record per cost.
    static func cvFits(trainer: SVMTrainer, problem: ClassProblem, costIndices: [Int], fold f: Int, settings s: SVMSettings) -> [JSONValue] {
        let folds = problem.folds!
        var trainRows: [Int] = []
        var heldOut: [Int] = []
        for r in 0..<folds.count {
            if folds[r] == f { heldOut.append(r) } else { trainRows.append(r) }
        }
        let labels = trainRows.map { problem.labels[$0] }
        if !labels.contains(1) || !labels.contains(-1) {
            return costIndices.map { k in
                ["key": .string(cvKey(problem.index, k, f)), "ap": .null,
                 "note": "training part of the fold has one label only; scikit-learn cannot fit it (NaN score)"]
            }
        }
        let results: [FitResult]
        let problems = costIndices.map { (labels: labels, cost: s.costs[$0]) }
        if trainer.gram != nil {
            // The fold's own Gram matrix, training rows first and only their columns: an update
            // touches the training rows' values only (2/3 of the work of the full matrix).
            let m = trainRows.count
            let local = SVMTrainer(parent: trainer, rows: trainRows + heldOut, columns: m)
            results = local.fitBatch(
                rows: Array(0..<m), problems: problems, seed: cvSeed(s, problem.index, fold: f), scoreRows: Array(m..<folds.count))
        } else {
            results = trainer.fitBatch(rows: trainRows, problems: problems, seed: cvSeed(s, problem.index, fold: f), scoreRows: heldOut)
        }
        let positive = heldOut.map { problem.labels[$0] > 0 }
        return zip(costIndices, results).map { k, result in
            let ap = AveragePrecision.sklearn(scores: result.margins, positive: positive)
            return [
                "key": .string(cvKey(problem.index, k, f)), "ap": .double(ap), "iterations": .int(Int64(result.outcome.iterations)),
                "converged": .bool(result.outcome.converged),
            ]
        }
    }
}
