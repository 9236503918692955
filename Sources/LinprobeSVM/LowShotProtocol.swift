import CLinprobeSVMKernels
import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// VISSL's low-shot SVM benchmark (`tools/train_svm_low_shot.py`) for one layer.
///
/// For every sample index s and k: VOC07 — per class, k positive and (C−1)·k absent rows drawn
/// without replacement from the training store (difficult rows never drawn); Places205 — k rows
/// per class drawn, one-vs-rest over all drawn rows. Sampling is seeded (`SEED_VALUE`, s, k,
/// class) and the drawn rows are recorded. Every cost is trained without CV and tested on the
/// full test set (difficult dropped); per (s, k, cost) the mAP over classes.
///
/// Two cost rules are reported side by side: VISSL's (per k, the cost with the best mean *test*
/// mAP over samples — comparable with published numbers, but selected on the test set) and an
/// honest one (per class, the cost with the best k-fold CV AP on the low-shot training rows).
enum LowShotProtocol {
    struct ClassSample {
        let cls: Int
        let rows: [Int]
        let labels: [Int8]
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
        let test = ctx.test
        let isVOC = s.lowShotDataset == .voc
        let trainTargets = try train.targets()
        let testTargets = try test.targets()
        let width = train.targetLayout.width
        let numClasses: Int
        if isVOC {
            numClasses = width
        } else {
            let maxLabel = max(trainTargets.max() ?? -1, testTargets.max() ?? -1)
            numClasses = max(Int(maxLabel) + 1, train.numClasses)
        }
        let classes = s.classList.isEmpty ? Array(0..<numClasses) : s.classList
        if let bad = classes.first(where: { $0 >= numClasses }) {
            throw LinprobeError.config("SVM.cls_list: class \(bad) does not exist (the store has \(numClasses) classes)")
        }

        // Row pools per class.
        var positives = [[Int]](repeating: [], count: numClasses)
        var negatives = [[Int]](repeating: [], count: numClasses)
        for r in 0..<train.count {
            if isVOC {
                for c in 0..<width {
                    let t = trainTargets[r * width + c]
                    if t == 1 { positives[c].append(r) } else if t == 0 { negatives[c].append(r) }
                }
            } else {
                let t = Int(trainTargets[r])
                if t >= 0 && t < numClasses { positives[t].append(r) }
            }
        }
        // Feasible k values (VISSL skips k above the smallest class for Places; VOC would fail).
        var kValues: [Int] = []
        for k in s.lowShotKValues {
            var blocker: String? = nil
            for c in (isVOC ? classes : Array(0..<numClasses)) {
                if positives[c].count < k { blocker = "class \(c) has \(positives[c].count) positive training rows"; break }
                if isVOC && negatives[c].count < (width - 1) * k {
                    blocker = "class \(c) has \(negatives[c].count) absent training rows, \((width - 1) * k) needed"
                    break
                }
            }
            if let blocker { warn("k = \(k) skipped: \(blocker)") } else { kValues.append(k) }
        }
        guard !kValues.isEmpty else {
            throw LinprobeError(.incompatible, "\(train.path): no low-shot k value can be sampled (\(warnings.joined(separator: "; ")))")
        }

        // Draws, recorded.
        func draw(sample: Int, k: Int) -> [ClassSample] {
            var out: [ClassSample] = []
            if isVOC {
                for c in classes {
                    var rng = SolverRandom(seed: mixSeed([s.seed, 0x4C53_0001, UInt64(sample), UInt64(k), UInt64(c)]))
                    let pos = pick(positives[c], k, &rng)
                    let neg = pick(negatives[c], (width - 1) * k, &rng)
                    let rows = (pos + neg).sorted()
                    let posSet = Set(pos)
                    out.append(ClassSample(cls: c, rows: rows, labels: rows.map { posSet.contains($0) ? 1 : -1 }))
                }
            } else {
                var all: [(Int, Int)] = []
                for c in 0..<numClasses {
                    var rng = SolverRandom(seed: mixSeed([s.seed, 0x4C53_0002, UInt64(sample), UInt64(k), UInt64(c)]))
                    all += pick(positives[c], k, &rng).map { ($0, c) }
                }
                all.sort { $0.0 < $1.0 }
                let rows = all.map(\.0)
                for c in classes {
                    out.append(ClassSample(cls: c, rows: rows, labels: all.map { $0.1 == c ? 1 : -1 }))
                }
            }
            return out
        }
        var draws: [String: [ClassSample]] = [:]
        var drawsRecord: [String: JSONValue] = [:]
        for sample in s.lowShotSampleIndices {
            for k in kValues {
                let d = draw(sample: sample, k: k)
                draws["\(sample)/\(k)"] = d
                let rows = isVOC ? d.map { JSONValue.array($0.rows.map { .int(Int64($0)) }) } : [JSONValue.array(d.first.map { $0.rows.map { .int(Int64($0)) } } ?? [])]
                drawsRecord["sample\(sample)_k\(k)"] = .array(rows)
            }
        }
        let drawsData = Data((try JSONValue.object([
            "rule": .string(isVOC ? "per class: k rows with target 1 and (C-1)k rows with target 0, without replacement" : "per class: k rows of that class, without replacement"),
            "seed": .int(Int64(bitPattern: s.seed)),
            "classes": .array(classes.map { .int(Int64($0)) }),
            "rows": .object(drawsRecord),
        ]).prettyText()).utf8)
        try Files.writeAtomically(drawsData, to: ctx.path("low_shot_samples.json"))

        let log = try FitLog(path: ctx.path("fits.log"), fresh: s.forceRetrain)
        let testInfo = try test.layer(ctx.layer)

        // Work units: (sample, k, class); each trains every cost (+ CV fits for the honest rule).
        struct Unit { let sample: Int; let k: Int; let cls: Int }
        var units: [Unit] = []
        for sample in s.lowShotSampleIndices {
            for k in kValues {
                for c in classes where log.record(unitKey(sample, k, c)) == nil { units.append(Unit(sample: sample, k: k, cls: c)) }
            }
        }
        var timings: [String: JSONValue] = [:]
        var layoutUsed = "none"
        if !units.isEmpty {
            let t0 = Date()
            // Training rows: every row for VOC (samples differ per class); for Places the union of draws.
            var union = Set<Int>()
            if !isVOC {
                for d in draws.values { if let first = d.first { union.formUnion(first.rows) } }
            }
            let featureRows: [Int]? = isVOC ? nil : union.sorted()
            let features = try FeatureMatrix(reader: train, layer: ctx.layer, rows: featureRows, normalize: s.normalize)
            var localIndex: [Int: Int] = [:]
            if let featureRows { for (i, r) in featureRows.enumerated() { localIndex[r] = i } }
            let testFeatures = try FeatureMatrix(reader: test, layer: ctx.layer, normalize: s.normalize)
            let layout = ctx.layout ?? SVMTrainer.chooseLayout(rows: features.count, dim: features.dim, gramBudgetBytes: ctx.gramBudgetBytes)
            layoutUsed = layout.rawValue
            let trainer = SVMTrainer(features: features, settings: s, layout: layout, blasThreads: ctx.threads)
            let cross: CrossGram? = layout == .gram && GramMatrix.bytes(count: max(features.count, testFeatures.count)) <= ctx.gramBudgetBytes
                ? CrossGram(train: features, test: testFeatures, bias: s.interceptScaling, blasThreads: ctx.threads) : nil
            timings["load_and_gram_seconds"] = .double(Date().timeIntervalSince(t0))
            let blasBefore = BLAS.threads
            BLAS.setThreads(1)
            defer { BLAS.setThreads(blasBefore) }
            let t1 = Date()
            let done = Locked(0)
            let total = units.count
            let todo = units
            let allDraws = draws
            let rowMap = localIndex
            let layer = ctx.layer
            let progress = ctx.progress
            try Parallel.forEach(count: todo.count, threads: ctx.threads) { i in
                let u = todo[i]
                guard let cs = allDraws["\(u.sample)/\(u.k)"]?.first(where: { $0.cls == u.cls }) else { return }
                let rows = featureRows == nil ? cs.rows : cs.rows.map { rowMap[$0]! }
                let record = trainUnit(
                    trainer: trainer, rows: rows, labels: cs.labels, cross: cross, testFeatures: testFeatures,
                    testTargets: testTargets, isVOC: isVOC, width: width, cls: u.cls, settings: s,
                    key: unitKey(u.sample, u.k, u.cls), seedParts: [UInt64(u.sample), UInt64(u.k), UInt64(u.cls)])
                try log.append(record)
                let d = done.withLock { $0 += 1; return $0 }
                progress?(SVMProgress(layer: layer, phase: "low-shot", done: d, total: total))
            }
            timings["fits_seconds"] = .double(Date().timeIntervalSince(t1))
            _ = testInfo
        }

        // Aggregation (VISSL's aggregate_stats) and the honest rule.
        let costs = s.costs
        var perK: [JSONValue] = []
        var headline: Double? = nil
        var fits = 0, notConverged = 0
        for k in kValues {
            // mAP per (sample, cost) and per sample with CV-chosen costs.
            var mapBySample: [[Double?]] = []
            var honestBySample: [Double?] = []
            var honestUndefined = false
            for sample in s.lowShotSampleIndices {
                var sums = [Double](repeating: 0, count: costs.count)
                var counts = [Int](repeating: 0, count: costs.count)
                var honestSum = 0.0, honestCount = 0
                for c in classes {
                    guard let rec = log.record(unitKey(sample, k, c)) else { continue }
                    fits += rec["fits"]?.intValue.map(Int.init) ?? 0
                    notConverged += rec["not_converged"]?.intValue.map(Int.init) ?? 0
                    let aps = rec["test_ap"]?.arrayValue ?? []
                    for (j, v) in aps.enumerated() where j < costs.count {
                        if let d = v.doubleValue { sums[j] += d; counts[j] += 1 }
                    }
                    if let h = rec["honest_test_ap"]?.doubleValue {
                        honestSum += h; honestCount += 1
                    } else if rec["honest_test_ap"] == .null && rec["cv_defined"] == .bool(false) {
                        honestUndefined = true
                    }
                }
                mapBySample.append((0..<costs.count).map { counts[$0] > 0 ? sums[$0] / Double(counts[$0]) : nil })
                honestBySample.append(honestCount > 0 && !honestUndefined ? honestSum / Double(honestCount) : nil)
            }
            func stats(_ values: [Double]) -> (mean: Double, min: Double, max: Double, std: Double) {
                let mean = values.reduce(0, +) / Double(values.count)
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
                return (mean, values.min()!, values.max()!, variance.squareRoot())
            }
            var meanByCost: [Double?] = []
            var costStats: [JSONValue] = []
            for j in 0..<costs.count {
                let vals = mapBySample.compactMap { $0[j] }
                if vals.count == mapBySample.count, !vals.isEmpty {
                    let st = stats(vals)
                    meanByCost.append(st.mean)
                    costStats.append(["cost": .double(costs[j]), "mean": .double(st.mean * 100), "min": .double(st.min * 100),
                                      "max": .double(st.max * 100), "std": .double(st.std * 100)])
                } else {
                    meanByCost.append(nil)
                    costStats.append(["cost": .double(costs[j]), "mean": .null])
                }
            }
            var visslRule: JSONValue = .null
            if meanByCost.contains(where: { $0 != nil }) {
                let j = numpyArgmax(meanByCost.map { $0 ?? -Double.infinity })
                let vals = mapBySample.map { $0[j]! }
                let st = stats(vals)
                visslRule = ["cost": .double(costs[j]), "mean": .double(st.mean * 100), "min": .double(st.min * 100),
                             "max": .double(st.max * 100), "std": .double(st.std * 100)]
                if s.lowShotSelection == .vissl { headline = st.mean * 100 }
            }
            var honestRule: JSONValue = ["mean": .null, "note": .string("CV needs at least \(s.crossValidationFolds) positives per class (k ≥ folds)")]
            let honestVals = honestBySample.compactMap { $0 }
            if honestVals.count == honestBySample.count, !honestVals.isEmpty {
                let st = stats(honestVals)
                honestRule = ["mean": .double(st.mean * 100), "min": .double(st.min * 100), "max": .double(st.max * 100), "std": .double(st.std * 100)]
                if s.lowShotSelection == .cv { headline = st.mean * 100 }
            }
            perK.append([
                "k": .int(Int64(k)),
                "vissl_rule": visslRule,
                "cv_rule": honestRule,
                "per_cost": .array(costStats),
                "per_sample_map": .array(mapBySample.map { .array($0.map { JSONValue.number($0.map { $0 * 100 }) }) }),
            ])
        }
        if notConverged > 0 {
            warn("\(notConverged) of \(fits) fits stopped at max_iter = \(s.maxIterations) without converging")
        }
        var perClass: [String: JSONValue] = [:]
        for c in classes {
            var byK: [String: JSONValue] = [:]
            for k in kValues {
                let vals: [JSONValue] = s.lowShotSampleIndices.map { log.record(unitKey($0, k, c))?["test_ap"] ?? .null }
                byK["k=\(k)"] = .array(vals)
            }
            perClass[ctx.className(c, in: train)] = .object(byK)
        }
        timings["total_seconds"] = .double(Date().timeIntervalSince(started))
        var provenance = ctx.provenance
        if case .object(var o) = provenance {
            o["solver_layout"] = .string(layoutUsed)
            o["timings"] = .object(timings)
            provenance = .object(o)
        }
        let largestK = kValues.max()!
        let results: JSONValue = [
            "format": "linprobe.svm.results",
            "format_version": 1,
            "method": "svm",
            "protocol": .string(isVOC ? "voc07_low_shot" : "places205_low_shot"),
            "layer": .string(ctx.layer),
            "metric": .string("mAP@k=\(largestK) (\(s.lowShotSelection == .vissl ? "VISSL rule: cost chosen by best mean test mAP" : "cost chosen by CV on the low-shot training rows"))"),
            "value": .number(headline),
            "unit": "percent",
            "selection_rules": [
                "vissl_rule": "per k, the cost with the highest mean test mAP over samples (VISSL's aggregate_stats; selected on the test set, comparable with published numbers)",
                "cv_rule": "per class, the first cost with the best mean k-fold CV AP (scikit-learn AP) on the low-shot training rows; test mAP of those costs",
            ],
            "headline_rule": .string(s.lowShotSelection.rawValue),
            "k_values": .array(kValues.map { .int(Int64($0)) }),
            "sample_inds": .array(s.lowShotSampleIndices.map { .int(Int64($0)) }),
            "costs": .array(costs.map { .double($0) }),
            "results_by_k": .array(perK),
            "per_class_test_ap_by_k": .object(perClass),
            "samples_file": "low_shot_samples.json",
            "convergence": ["fits": .int(Int64(fits)), "not_converged": .int(Int64(notConverged))],
            "fingerprint": .string(ctx.fingerprint),
            "features": [
                "train": ["path": .string(train.path), "fingerprint": .string(train.fingerprint), "rows": .int(Int64(train.count))],
                "test": ["path": .string(test.path), "fingerprint": .string(test.fingerprint), "rows": .int(Int64(test.count))],
            ],
            "settings": s.fingerprintJSON,
            "warnings": .array(warnings.map { .string($0) }),
            "provenance": provenance,
        ]
        let resultsPath = ctx.path("results.json")
        try Files.writeAtomically(Data((try results.prettyText() + "\n").utf8), to: resultsPath)
        return SVMLayerOutcome(layer: ctx.layer, resultsPath: resultsPath, value: headline, metric: "low-shot mAP", warnings: warnings)
    }

    static func unitKey(_ sample: Int, _ k: Int, _ c: Int) -> String { "ls/s\(sample)/k\(k)/c\(c)" }

    /// `count` distinct elements of `pool`, uniformly (partial Fisher–Yates).
    static func pick(_ pool: [Int], _ count: Int, _ rng: inout SolverRandom) -> [Int] {
        var p = pool
        for i in 0..<count {
            let j = i + rng.int(below: p.count - i)
            p.swapAt(i, j)
        }
        return Array(p[0..<count])
    }

    /// Trains every cost for one (sample, k, class), tests each on the full test set, and runs
    /// the CV of the honest rule.
    static func trainUnit(
        trainer: SVMTrainer, rows: [Int], labels: [Int8], cross: CrossGram?, testFeatures: FeatureMatrix,
        testTargets: [Int64], isVOC: Bool, width: Int, cls: Int, settings s: SVMSettings, key: String, seedParts: [UInt64]
    ) -> JSONValue {
        // Subset Gram for this class's rows (VOC: rows differ per class).
        let local = trainer.gram != nil ? SVMTrainer(parent: trainer, rows: rows) : trainer
        let localRows = trainer.gram != nil ? Array(0..<rows.count) : rows
        var testAP: [JSONValue] = []
        var fits = 0, notConverged = 0
        var apByCost: [Double?] = []
        // Every cost in one batch (same rows and labels; see DualCD).
        let batch = local.fitBatch(
            rows: localRows, problems: s.costs.map { (labels, $0) }, seed: mixSeed([s.seed, 0x4C53_0013] + seedParts), scoreRows: [])
        for result in batch {
            fits += 1
            if !result.outcome.converged { notConverged += 1 }
            let scores: [Double]
            if let cross {
                scores = cross.scores(trainRows: rows, labels: labels, alpha: result.alpha)
            } else {
                let w = trainer.weightsFromDual(rows: rows, labels: labels, alpha: result.alpha)
                scores = scoreInMemory(testFeatures, w, bias: s.interceptScaling)
            }
            let eval = isVOC
                ? TestEvaluation(scores: scores, targets: testTargets, width: width, column: cls)
                : TestEvaluation(scores: scores, singleLabelTargets: testTargets, positiveClass: cls)
            apByCost.append(eval.allPoints)
            testAP.append(.number(eval.allPoints))
        }
        // Honest rule: k-fold CV on the low-shot rows.
        let positivesCount = labels.filter { $0 > 0 }.count
        var cvMeans: [Double?] = []
        var cvDefined = positivesCount >= s.crossValidationFolds
        if cvDefined, let folds = StratifiedKFold.testFolds(labels: labels, folds: s.crossValidationFolds) {
            // Per fold, every cost in one batch.
            var aps = [[Double]](repeating: [], count: s.costs.count)
            var undefined = false
            for f in 0..<s.crossValidationFolds {
                var tr: [Int] = [], ho: [Int] = []
                for i in 0..<labels.count { if folds[i] == f { ho.append(i) } else { tr.append(i) } }
                let trLabels = tr.map { labels[$0] }
                if !trLabels.contains(1) || !trLabels.contains(-1) { undefined = true; break }
                let results = local.fitBatch(
                    rows: tr.map { localRows[$0] }, problems: s.costs.map { (trLabels, $0) },
                    seed: mixSeed([s.seed, 0x4C53_0014] + seedParts + [UInt64(f)]), scoreRows: ho.map { localRows[$0] })
                let positive = ho.map { labels[$0] > 0 }
                for (j, result) in results.enumerated() {
                    fits += 1
                    if !result.outcome.converged { notConverged += 1 }
                    aps[j].append(AveragePrecision.sklearn(scores: result.margins, positive: positive))
                }
            }
            for j in 0..<s.costs.count {
                cvMeans.append(undefined ? nil : aps[j].reduce(0, +) / Double(aps[j].count))
            }
        } else {
            cvDefined = false
        }
        var record: [String: JSONValue] = [
            "key": .string(key),
            "test_ap": .array(testAP),
            "fits": .int(Int64(fits)),
            "not_converged": .int(Int64(notConverged)),
            "cv_defined": .bool(cvDefined),
        ]
        if cvDefined {
            let j = numpyArgmax(cvMeans)
            record["cv_ap"] = .array(cvMeans.map { JSONValue.number($0) })
            record["cv_chosen_cost_index"] = .int(Int64(j))
            record["honest_test_ap"] = .number(apByCost[j])
        } else {
            record["honest_test_ap"] = .null
        }
        return .object(record)
    }

    /// s·(w·x) + bias·w[D] for every row of an in-memory matrix (float64 accumulation).
    static func scoreInMemory(_ m: FeatureMatrix, _ w: [Double], bias: Double) -> [Double] {
        let d = m.dim
        return w.withUnsafeBufferPointer { wp in
            (0..<m.count).map { r in m.scale[r] * lp_dot_f32_f64(m.row(r), wp.baseAddress!, d) + wp[d] * bias }
        }
    }
}

/// K̃(train, test) = s_i s_t x_iᵀx_t + bias², stored train-major (one row per training row), so
/// the test scores of a dual solution are Σ_i α_i y_i K̃[i, :].
final class CrossGram: @unchecked Sendable {
    let trainCount: Int
    let testCount: Int
    private let storage: UnsafeMutableBufferPointer<Float>

    init(train: FeatureMatrix, test: FeatureMatrix, bias: Double, blasThreads: Int) {
        trainCount = train.count
        testCount = test.count
        storage = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(trainCount * testCount, 1))
        let before = BLAS.threads
        BLAS.setThreads(blasThreads)
        if trainCount > 0 && testCount > 0 {
            BLAS.sgemm(.none, .transpose, m: trainCount, n: testCount, k: train.dim, a: train.row(0), lda: train.dim,
                       b: test.row(0), ldb: test.dim, c: storage.baseAddress!, ldc: testCount)
        }
        BLAS.setThreads(before)
        let b2 = bias * bias
        for i in 0..<trainCount {
            let row = storage.baseAddress! + i * testCount
            let si = train.scale[i]
            for t in 0..<testCount { row[t] = Float(Double(row[t]) * si * test.scale[t] + b2) }
        }
    }

    deinit { storage.deallocate() }

    func scores(trainRows: [Int], labels: [Int8], alpha: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: testCount)
        out.withUnsafeMutableBufferPointer { o in
            for (k, r) in trainRows.enumerated() where alpha[k] != 0 {
                lp_axpy_f32_f64(alpha[k] * Double(labels[k]), storage.baseAddress! + r * testCount, o.baseAddress!, testCount)
            }
        }
        return out
    }
}
