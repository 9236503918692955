import CLinprobeSVMKernels
import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// The fits of the low-shot protocol, one unit per (sample, k, class): every cost trained on the
/// drawn rows and tested on the full test set, and the k-fold CV of the honest rule. Each unit is
/// one record of the fit log.
enum LowShotFits {
    struct Unit {
        let sample: Int
        let k: Int
        let cls: Int
    }

    /// The units the log does not vouch for, in (sample, k, class) order.
    static func pending(_ sampling: LowShotSampling, log: FitLog, costs: Int) -> [Unit] {
        var units: [Unit] = []
        for sample in sampling.sampleIndices {
            for k in sampling.kValues {
                for c in sampling.classes
                where LowShotUnitRecord(log.record(LowShotProtocol.unitKey(sample, k, c)), costs: costs) == nil {
                    units.append(Unit(sample: sample, k: k, cls: c))
                }
            }
        }
        return units
    }

    /// Runs the pending units; returns the solver layout used (`none` when nothing was left).
    static func run(
        _ sampling: LowShotSampling, log: FitLog, ctx: LayerContext, journal: LayerJournal
    ) throws -> String {
        let units = pending(sampling, log: log, costs: ctx.settings.costs.count)
        if units.isEmpty { return "none" }
        let setup = try journal.time("load_and_gram") { try Setup(sampling, ctx: ctx) }
        let blasBefore = BLAS.threads
        BLAS.setThreads(1)
        defer { BLAS.setThreads(blasBefore) }
        let done = Locked(0)
        let settings = ctx.settings
        let progress = ctx.progress
        try journal.time("fits") {
            try Parallel.forEach(count: units.count, threads: ctx.threads) { i in
                let u = units[i]
                guard let cs = sampling.draws["\(u.sample)/\(u.k)"]?.first(where: { $0.cls == u.cls }) else { return }
                let record = try setup.train(
                    cs, seedParts: [UInt64(u.sample), UInt64(u.k), UInt64(u.cls)],
                    sampling: sampling, settings: settings)
                try log.append(record.json(key: LowShotProtocol.unitKey(u.sample, u.k, u.cls)))
                let d = done.withLock {
                    $0 += 1; return $0
                }
                progress("low-shot", d, units.count)
            }
        }
        return setup.trainer.layout.rawValue
    }

    /// The features, trainer and (when it fits the budget) train × test kernel of a layer.
    struct Setup {
        let trainer: SVMTrainer
        let testFeatures: FeatureMatrix
        let cross: CrossGram?
        /// Feature row of each store row (Places: only the drawn rows are loaded); nil = identity.
        let localIndex: [Int: Int]?

        init(_ sampling: LowShotSampling, ctx: LayerContext) throws {
            let s = ctx.settings
            // Training rows: every row for VOC (samples differ per class); for Places the union of draws.
            var union = Set<Int>()
            if !sampling.isVOC {
                for d in sampling.draws.values { if let first = d.first { union.formUnion(first.rows) } }
            }
            let featureRows: [Int]? = sampling.isVOC ? nil : union.sorted()
            let features = try FeatureMatrix(
                reader: ctx.train, layer: ctx.layer, rows: featureRows, normalize: s.normalize)
            localIndex = featureRows.map { rows in
                Dictionary(uniqueKeysWithValues: rows.enumerated().map { ($1, $0) })
            }
            testFeatures = try FeatureMatrix(reader: ctx.test, layer: ctx.layer, normalize: s.normalize)
            // The converged solver reads the rows themselves (see `DensePrimalKernel`).
            let layout =
                s.solver == .converged
                ? .dense
                : ctx.layout
                    ?? SVMTrainer.chooseLayout(
                        rows: features.count, dim: features.dim, gramBudgetBytes: ctx.gramBudgetBytes)
            trainer = SVMTrainer(features: features, settings: s, layout: layout, blasThreads: ctx.threads)
            let crossFits = GramMatrix.bytes(count: max(features.count, testFeatures.count)) <= ctx.gramBudgetBytes
            cross =
                layout == .gram && crossFits
                ? CrossGram(train: features, test: testFeatures, bias: s.interceptScaling, blasThreads: ctx.threads)
                : nil
        }

        /// One unit: every cost on the drawn rows, tested; then the honest rule's CV.
        func train(
            _ cs: ClassSample, seedParts: [UInt64], sampling: LowShotSampling, settings s: SVMSettings
        ) throws -> LowShotUnitRecord {
            var rows = cs.rows
            if let localIndex {
                rows = cs.rows.compactMap { localIndex[$0] }
                guard rows.count == cs.rows.count else {
                    throw LinprobeError(
                        .corruptInput, "low-shot draw of class \(cs.cls) names rows that were not loaded")
                }
            }
            // Subset Gram for this class's rows (VOC: rows differ per class).
            let local = trainer.gram != nil ? SVMTrainer(parent: trainer, rows: rows) : trainer
            let localRows = trainer.gram != nil ? Array(0..<rows.count) : rows
            // Every cost in one batch (same rows and labels; see DualCD).
            let batch = local.fitBatch(
                rows: localRows, problems: s.costs.map { (cs.labels, $0) },
                seed: mixSeed([s.seed, 0x4C53_0013] + seedParts), scoreRows: [])
            var apByCost: [Double?] = []
            var fits = 0, notConverged = 0
            for result in batch {
                fits += 1
                if !result.outcome.converged { notConverged += 1 }
                apByCost.append(
                    testAP(result, rows: rows, labels: cs.labels, cls: cs.cls, sampling: sampling, settings: s))
            }
            let cv = HonestCV.run(trainer: local, rows: localRows, labels: cs.labels, seedParts: seedParts, settings: s)
            let j = cv.defined ? numpyArgmax(cv.means) : nil
            return LowShotUnitRecord(
                testAP: apByCost.map(finite), fits: fits + cv.fits, notConverged: notConverged + cv.notConverged,
                cvDefined: cv.defined, cvAP: cv.defined ? cv.means : nil, cvChosenCostIndex: j,
                honestTestAP: j.flatMap { apByCost[$0] })
        }

        /// The test AP of one fit (VOC: difficult dropped; Places: one-vs-rest).
        private func testAP(
            _ result: FitResult, rows: [Int], labels: [Int8], cls: Int, sampling: LowShotSampling,
            settings s: SVMSettings
        ) -> Double? {
            let scores: [Double]
            if let cross {
                scores = cross.scores(trainRows: rows, labels: labels, alpha: result.alpha)
            } else {
                let w = trainer.weightsFromDual(rows: rows, labels: labels, alpha: result.alpha)
                scores = LowShotFits.scoreInMemory(testFeatures, w, bias: s.interceptScaling)
            }
            let eval =
                sampling.isVOC
                ? TestEvaluation(scores: scores, targets: sampling.testTargets, width: sampling.width, column: cls)
                : TestEvaluation(scores: scores, singleLabelTargets: sampling.testTargets, positiveClass: cls)
            return eval.allPoints
        }
    }

    /// s·(w·x) + bias·w[D] for every row of an in-memory matrix (float64 accumulation).
    static func scoreInMemory(_ m: FeatureMatrix, _ w: [Double], bias: Double) -> [Double] {
        let d = m.dim
        return w.withUnsafeBufferPointer { wp in
            guard let base = wp.baseAddress else { return [Double](repeating: 0, count: m.count) }
            return (0..<m.count).map { r in m.scale[r] * lp_dot_f32_f64(m.row(r), base, d) + wp[d] * bias }
        }
    }
}

/// The honest rule's k-fold CV on a unit's low-shot rows (scikit-learn's AP per held-out fold).
enum HonestCV {
    struct Outcome {
        /// False when there are fewer positives than folds, or no stratified split.
        var defined: Bool
        /// Mean CV AP per cost (all nil when a fold's training part has one label).
        var means: [Double?]
        var fits: Int
        var notConverged: Int
    }

    static func run(
        trainer: SVMTrainer, rows: [Int], labels: [Int8], seedParts: [UInt64], settings s: SVMSettings
    )
        -> Outcome
    {
        var out = Outcome(defined: false, means: [], fits: 0, notConverged: 0)
        let positives = labels.filter { $0 > 0 }.count
        guard positives >= s.crossValidationFolds,
            let folds = StratifiedKFold.testFolds(labels: labels, folds: s.crossValidationFolds)
        else { return out }
        out.defined = true
        // Per fold, every cost in one batch.
        var aps = [[Double]](repeating: [], count: s.costs.count)
        var undefined = false
        for f in 0..<s.crossValidationFolds {
            var tr: [Int] = [], ho: [Int] = []
            for i in 0..<labels.count { if folds[i] == f { ho.append(i) } else { tr.append(i) } }
            let trLabels = tr.map { labels[$0] }
            if !trLabels.contains(1) || !trLabels.contains(-1) { undefined = true; break }
            let results = trainer.fitBatch(
                rows: tr.map { rows[$0] }, problems: s.costs.map { (trLabels, $0) },
                seed: mixSeed([s.seed, 0x4C53_0014] + seedParts + [UInt64(f)]), scoreRows: ho.map { rows[$0] })
            let positive = ho.map { labels[$0] > 0 }
            for (j, result) in results.enumerated() {
                out.fits += 1
                if !result.outcome.converged { out.notConverged += 1 }
                aps[j].append(AveragePrecision.sklearn(scores: result.margins, positive: positive))
            }
        }
        out.means = (0..<s.costs.count).map { j in undefined ? nil : aps[j].reduce(0, +) / Double(aps[j].count) }
        return out
    }
}

/// K̃(train, test) = s_i s_t x_iᵀx_t + bias², stored train-major (one row per training row), so
/// the test scores of a dual solution are Σ_i α_i y_i K̃[i, :].
final class CrossGram: @unchecked Sendable {
    let trainCount: Int
    let testCount: Int
    private let storage: UnsafeMutablePointer<Float>

    init(train: FeatureMatrix, test: FeatureMatrix, bias: Double, blasThreads: Int) {
        trainCount = train.count
        testCount = test.count
        storage = UnsafeMutablePointer<Float>.allocate(capacity: max(trainCount * testCount, 1))
        let before = BLAS.threads
        BLAS.setThreads(blasThreads)
        if trainCount > 0 && testCount > 0 {
            BLAS.sgemm(
                .none, .transpose, m: trainCount, n: testCount, k: train.dim, a: train.row(0), lda: train.dim,
                b: test.row(0), ldb: test.dim, c: storage, ldc: testCount)
        }
        BLAS.setThreads(before)
        let b2 = bias * bias
        for i in 0..<trainCount {
            let row = storage + i * testCount
            let si = train.scale[i]
            for t in 0..<testCount { row[t] = Float(Double(row[t]) * si * test.scale[t] + b2) }
        }
    }

    deinit { storage.deallocate() }

    func scores(trainRows: [Int], labels: [Int8], alpha: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: testCount)
        out.withUnsafeMutableBufferPointer { o in
            guard let target = o.baseAddress else { return }
            for (k, r) in trainRows.enumerated() where alpha[k] != 0 {
                lp_axpy_f32_f64(alpha[k] * Double(labels[k]), storage + r * testCount, target, testCount)
            }
        }
        return out
    }
}
