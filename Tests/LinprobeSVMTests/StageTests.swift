import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeSVM

/// A small separable-ish multi-label problem written with Linprobe's own store writer.
func makeToyStores(
    _ dir: TemporaryDirectory, rows: Int = 90, dim: Int = 12, classes: Int = 3,
    poison: ((Int, Int) -> Float?)? = nil
) throws -> (String, String) {
    func targets(_ n: Int, _ seed: UInt64) -> [Int64] {
        var g = SeededGenerator(seed: seed)
        return (0..<(n * classes)).map { _ in
            let u = Double(g.next() % 1000) / 1000
            return u < 0.3 ? 1 : (u < 0.35 ? -1 : 0)
        }
    }
    let trainTargets = targets(rows, 1)
    let testTargets = targets(rows, 2)
    func value(_ t: [Int64], _ seed: UInt64) -> (Int, Int) -> Float {
        { r, j in
            if let p = poison?(r, j) { return p }
            var g = SeededGenerator(seed: seed &+ UInt64(r * 1000 + j))
            let noise = Float(g.next() % 1000) / 1000
            let c = j % classes
            return noise + (t[r * classes + c] == 1 ? 1.5 : 0)
        }
    }
    let train = dir.file("train.h5"), test = dir.file("test.h5")
    try writeStore(
        train, rows: rows, dim: dim, targets: trainTargets, multiLabel: classes, value: value(trainTargets, 10),
        fingerprint: "toy-train")
    try writeStore(
        test, rows: rows, dim: dim, targets: testTargets, multiLabel: classes, value: value(testTargets, 20),
        fingerprint: "toy-test")
    return (train, test)
}

@Suite("SVM stage: layouts, resume, bad input, settings")
struct StageTests {
    @Test("Gram and dense layouts solve the same problem (same order → same iterates)")
    func layoutsAgree() throws {
        let dir = try TemporaryDirectory()
        let (train, _) = try makeToyStores(dir, rows: 120, dim: 40)
        let reader = try FeatureStoreReader(path: train)
        let features = try FeatureMatrix(reader: reader, layer: "feat", normalize: true)
        let settings = try visslSettings()
        let gram = SVMTrainer(features: features, settings: settings, layout: .gram, blasThreads: 1)
        let dense = SVMTrainer(features: features, settings: settings, layout: .dense, blasThreads: 1)
        let targets = try reader.targets()
        let labels: [Int8] = (0..<120).map { targets[$0 * 3] == 1 ? 1 : -1 }
        let rows = Array(0..<100)
        for cost in [0.01, 1.0, 100.0] {
            let a = gram.fit(
                rows: rows, labels: rows.map { labels[$0] }, cost: cost, seed: 7, scoreRows: Array(100..<120))
            let b = dense.fit(
                rows: rows, labels: rows.map { labels[$0] }, cost: cost, seed: 7, scoreRows: Array(100..<120))
            #expect(a.outcome.iterations == b.outcome.iterations, "C=\(cost)")
            try #require(a.margins.count == b.margins.count && a.margins.count == 20)
            for (x, y) in zip(a.margins, b.margins) {
                #expect(abs(x - y) <= max(1e-5, 1e-6 * cost) * max(1, abs(y)), "C=\(cost)")
            }
        }
    }

    @Test(
        "a batched fit equals the same fit alone: costs and classes batched, any batch composition",
        arguments: [SolverLayout.gram, .dense])
    func batchedEqualsAlone(_ layout: SolverLayout) throws {
        let dir = try TemporaryDirectory()
        let (train, _) = try makeToyStores(dir, rows: 120, dim: 40)
        let reader = try FeatureStoreReader(path: train)
        let features = try FeatureMatrix(reader: reader, layer: "feat", normalize: true)
        let settings = try visslSettings(["max_iter": 300])
        let trainer = SVMTrainer(features: features, settings: settings, layout: layout, blasThreads: 1)
        let targets = try reader.targets()
        let rows = Array(0..<90)
        let labels: [[Int8]] = (0..<3).map { c in rows.map { targets[$0 * 3 + c] == 1 ? 1 : -1 } }
        // Mixed classes and costs, including one that stops at max_iter and cheap ones that
        // converge in a few iterations (they leave the batch early).
        let problems: [(labels: [Int8], cost: Double)] = [
            (labels[0], 0.01), (labels[1], 1000), (labels[2], 1), (labels[0], 100),
        ]
        let batch = trainer.fitBatch(
            rows: rows, problems: problems, seed: 11, scoreRows: Array(90..<120), wantWeights: true)
        #expect(batch.contains { !$0.outcome.converged } && batch.contains { $0.outcome.converged })
        #expect(Set(batch.map(\.outcome.iterations)).count > 1)
        try #require(batch.count == problems.count)
        for (q, problem) in problems.enumerated() {
            let alone = trainer.fit(
                rows: rows, labels: problem.labels, cost: problem.cost, seed: 11, scoreRows: Array(90..<120),
                wantWeights: true)
            // Same visiting order, same arithmetic: identical bits.
            #expect(alone.outcome == batch[q].outcome, "problem \(q)")
            #expect(alone.alpha == batch[q].alpha, "problem \(q)")
            #expect(alone.margins == batch[q].margins, "problem \(q)")
            #expect(alone.weights == batch[q].weights, "problem \(q)")
        }
        // A sub-batch in another order gives the same results too.
        let sub = trainer.fitBatch(
            rows: rows, problems: [problems[3], problems[1]], seed: 11, scoreRows: Array(90..<120))
        #expect(sub[0].alpha == batch[3].alpha && sub[1].alpha == batch[1].alpha)
    }

    @Test("a CV fold's truncated Gram matrix gives the full matrix's iterates and held-out scores")
    func truncatedGram() throws {
        let dir = try TemporaryDirectory()
        let (train, _) = try makeToyStores(dir, rows: 120, dim: 40)
        let reader = try FeatureStoreReader(path: train)
        let features = try FeatureMatrix(reader: reader, layer: "feat", normalize: true)
        let settings = try visslSettings()
        let full = SVMTrainer(features: features, settings: settings, layout: .gram, blasThreads: 1)
        let targets = try reader.targets()
        let trainRows = (0..<120).filter { $0 % 3 != 1 }, heldOut = (0..<120).filter { $0 % 3 == 1 }
        let labels: [Int8] = trainRows.map { targets[$0 * 3] == 1 ? 1 : -1 }
        let local = SVMTrainer(parent: full, rows: trainRows + heldOut, columns: trainRows.count)
        let m = trainRows.count
        for cost in [0.1, 10.0] {
            let a = full.fit(rows: trainRows, labels: labels, cost: cost, seed: 5, scoreRows: heldOut)
            let b = local.fit(rows: Array(0..<m), labels: labels, cost: cost, seed: 5, scoreRows: Array(m..<120))
            #expect(a.outcome == b.outcome && a.alpha == b.alpha, "C=\(cost)")
            try #require(a.margins.count == b.margins.count && a.margins.count == heldOut.count)
            for (x, y) in zip(a.margins, b.margins) { #expect(abs(x - y) <= 1e-9 * max(1, abs(x)), "C=\(cost)") }
        }
    }

    @Test("hinge loss keeps 0 ≤ α ≤ C and non-convergence is reported, never hidden")
    func hingeAndNonConvergence() throws {
        let dir = try TemporaryDirectory()
        let (train, _) = try makeToyStores(dir, rows: 80, dim: 30)
        let reader = try FeatureStoreReader(path: train)
        let features = try FeatureMatrix(reader: reader, layer: "feat", normalize: true)
        var settings = try visslSettings(["loss": "hinge"])
        let targets = try reader.targets()
        let labels: [Int8] = (0..<80).map { targets[$0 * 3 + 1] == 1 ? 1 : -1 }
        let trainer = SVMTrainer(features: features, settings: settings, layout: .gram, blasThreads: 1)
        let fit = trainer.fit(rows: Array(0..<80), labels: labels, cost: 0.5, seed: 1, scoreRows: [])
        try #require(fit.alpha.count == labels.count)
        for (a, y) in zip(fit.alpha, labels) { #expect(a >= 0 && a <= 0.5 * (y > 0 ? 2 : 1) + 1e-12) }
        settings = try visslSettings(["max_iter": 2])
        let short = SVMTrainer(features: features, settings: settings, layout: .dense, blasThreads: 1)
        let stopped = short.fit(rows: Array(0..<80), labels: labels, cost: 1000, seed: 1, scoreRows: [])
        #expect(stopped.outcome == FitOutcome(iterations: 2, converged: false))
    }

    @Test("a killed run resumes from the fit log: torn lines are discarded, finished fits are not refit")
    func resume() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir)
        let settings = try visslSettings()
        let first = try runSVM(train: train, test: test, settings: settings, workdir: dir.path)
        let resultsPath = try #require(first.outcome.layers.first).resultsPath
        let original = try SVMResultsDocument.read(path: resultsPath)
        // Simulate a kill: drop the last 5 records, tear the one before, remove results.
        let logPath = Paths.join(Paths.parent(resultsPath), "fits.log")
        var lines = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n").map(String.init)
        let total = lines.count
        try #require(total > 6)
        lines.removeLast(5)
        let torn = lines.removeLast()
        let text = lines.joined(separator: "\n") + "\n" + torn.prefix(torn.count / 2)
        try text.write(toFile: logPath, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: resultsPath)
        // The manifest's record is complete, so the rerun is forced (as after a kill it would be `running`).
        let second = try runSVM(train: train, test: test, settings: settings, workdir: dir.path, force: true)
        #expect(!second.reused)
        #expect(second.outcome.fingerprint == first.outcome.fingerprint)
        let resumed = try SVMResultsDocument.read(path: resultsPath)
        #expect(resumed.classes == original.classes)
        #expect(resumed.value == original.value)
        // Only the 6 missing fits were appended: a refit of a logged fit would add a line.
        let after = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n").count
        #expect(after == total)
    }

    @Test("saved models re-run the test alone with the same APs")
    func retest() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir)
        let run = try runSVM(train: train, test: test, settings: try visslSettings(), workdir: dir.path, threads: 1)
        let results = try firstResults(run)
        let layerFolder = Paths.parent(try #require(run.outcome.layers.first).resultsPath)
        let again = try SVMStage.retest(layerDirectory: layerFolder, test: test)
        var checked = 0
        for c in try #require(results.classes) where c.status == .trained {
            #expect(again[c.index] == .some(c.testAP))
            checked += 1
        }
        #expect(checked > 0)
    }

    @Test("thread count does not change results")
    func threadIndependence() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir)
        let s = try visslSettings()
        let a = try firstResults(runSVM(train: train, test: test, settings: s, workdir: dir.file("a"), threads: 1))
        let b = try firstResults(runSVM(train: train, test: test, settings: s, workdir: dir.file("b"), threads: 2))
        #expect(a.classes == b.classes)
        #expect(a.classes?.isEmpty == false)
    }

    // MARK: - Bad input

    @Test("an incomplete store is refused with a one-line error naming it")
    func incompleteStore() throws {
        let dir = try TemporaryDirectory()
        let (_, test) = try makeToyStores(dir)
        let partial = dir.file("partial.h5")
        try writeStore(
            partial, rows: 20, dim: 4, targets: [Int64](repeating: 0, count: 60), multiLabel: 3, value: { _, _ in 1 },
            finish: false)
        let error = #expect(throws: LinprobeError.self) {
            try runSVM(train: partial + ".partial", test: test, settings: try visslSettings(), workdir: dir.path)
        }
        #expect(error?.message.contains("incomplete") == true)
        #expect(error?.message.contains("partial.h5") == true)
    }

    @Test("single-label targets for the VOC07 protocol, and multi-label for the Places variant, are refused")
    func labelLayouts() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir)
        let single = dir.file("single.h5")
        try writeStore(
            single, rows: 30, dim: 12, targets: (0..<30).map { Int64($0 % 3) }, multiLabel: nil,
            value: { r, j in Float((r + j) % 5) })
        let e1 = #expect(throws: LinprobeError.self) {
            try runSVM(train: single, test: test, settings: try visslSettings(), workdir: dir.path)
        }
        #expect(e1?.message.contains("single-label") == true)
        let places = try visslSettings(
            ["low_shot": ["dataset_name": "places205"]], linprobe: ["SVM": ["LOW_SHOT": true]])
        let e2 = #expect(throws: LinprobeError.self) {
            try runSVM(train: train, test: test, settings: places, workdir: dir.path)
        }
        #expect(e2?.message.contains("multi-label") == true)
    }

    @Test("a training store with several augmented views per image is refused, naming it")
    func multiViewStoreRefused() throws {
        let dir = try TemporaryDirectory()
        let (_, test) = try makeToyStores(dir)
        let views = dir.file("views.h5")
        let targets = (0..<40).flatMap { r -> [Int64] in (0..<3).map { c in Int64((r / 2 + c) % 3 == 0 ? 1 : 0) } }
        try writeStore(
            views, rows: 40, dim: 12, targets: targets, multiLabel: 3, value: { r, j in Float((r + j) % 5) }, views: 2)
        let work = dir.file("work")
        let e = #expect(throws: LinprobeError.self) {
            try runSVM(train: views, test: test, settings: try visslSettings(), workdir: work)
        }
        #expect(
            e?.message.hasPrefix(views) == true && e?.message.contains("TRAIN_VIEWS=1") == true, "\(e?.message ?? "")")
        #expect(!FileManager.default.fileExists(atPath: work), "refused before any work")
    }

    @Test("NaN or Inf features are refused naming the layer and row", arguments: [Float.nan, Float.infinity])
    func nonFinite(_ bad: Float) throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir, poison: { r, j in r == 17 && j == 3 ? bad : nil })
        let error = #expect(throws: LinprobeError.self) {
            try runSVM(train: train, test: test, settings: try visslSettings(), workdir: dir.path)
        }
        #expect(error?.message.contains("row 17") == true)
        #expect(error?.message.contains("feat") == true)
    }

    @Test("bad settings are configuration errors naming the key")
    func badSettings() throws {
        func settings(_ svm: JSONValue) throws -> SVMSettings {
            try SVMSettings(config: ConfigNode(path: "", value: ["SVM": svm]))
        }
        let cases: [(JSONValue, String)] = [
            (["costs": ["costs_list": [1.0, 0.0]]], "SVM.costs.costs_list[1]"),
            (["costs": ["costs_list": [-2.0]]], "SVM.costs.costs_list[0]"),
            (["costs": ["costs_list": [], "base": -1.0]], "SVM.costs"),
            (["dual": false], "SVM.dual"),
            (["penalty": "l1"], "SVM.penalty"),
            (["loss": "log"], "SVM.loss"),
            (["max_iter": 0], "SVM.max_iter"),
            (["cross_val_folds": 1], "SVM.cross_val_folds"),
            (["low_shot": ["dataset_name": "coco"]], "SVM.low_shot.dataset_name"),
        ]
        for (svm, key) in cases {
            let error = #expect(throws: LinprobeError.self) { try settings(svm) }
            #expect(error?.code == .invalidConfig)
            #expect(error?.exitCode == 64)
            #expect(error?.message.contains(key) == true, "\(error?.message ?? "") should name \(key)")
        }
    }

    @Test("costs resolve as VISSL's: costs_list then base^k over power_range [start, end)")
    func costList() throws {
        let s = try SVMSettings(
            config: ConfigNode(
                path: "", value: ["SVM": ["costs": ["costs_list": [0.1], "base": 2.0, "power_range": [1, 4]]]]))
        #expect(s.costs == [0.1, 2, 4, 8])
        let d = try SVMSettings(config: ConfigNode(path: "", value: [:]))
        #expect(d.costs == [0.1, 0.01])
        #expect(d.maxIterations == 2000 && d.crossValidationFolds == 3 && d.normalize && d.loss == .squaredHinge)
    }

    @Test("a class listed in cls_list that the store lacks is a configuration error")
    func classListOutOfRange() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir)
        let error = #expect(throws: LinprobeError.self) {
            try runSVM(train: train, test: test, settings: try visslSettings(["cls_list": [0, 7]]), workdir: dir.path)
        }
        #expect(error?.message.contains("SVM.cls_list") == true)
    }

    @Test("StratifiedKFold deals labels like scikit-learn on a hand-checked case")
    func foldsByHand() {
        // Labels in order of appearance: b (code 0), a (code 1). Sorted codes round-robin:
        // b,b,b,b → folds 0,1,2,0 ; a,a → 1,2. Per label, rows fill folds in blocks.
        let folds = StratifiedKFold.testFolds(labels: ["b", "a", "b", "b", "a", "b"], folds: 3)
        #expect(folds == [0, 1, 0, 1, 2, 2])
        #expect(StratifiedKFold.testFolds(labels: [1, 1], folds: 3) == nil)
    }
}
