import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeSVM

/// Linprobe against scikit-learn's LinearSVC with VISSL's settings and VISSL's AP function, on
/// committed stores (scripts/make_svm_fixtures.py).
@Suite("SVM fidelity against scikit-learn / VISSL")
struct FidelityTests {
    @Test("AP definitions match scikit-learn and VISSL's evaluate.py on tied scores")
    func averagePrecision() throws {
        let cases = try #require(Reference.json["ap_cases"]?.arrayValue)
        #expect(cases.count == 3)
        for c in cases {
            let scores = c["scores"]!.doubles.map { $0! }
            let positive = c["labels"]!.ints.map { $0 > 0 }
            #expect(
                abs(AveragePrecision.sklearn(scores: scores, positive: positive) - c["sklearn_ap"]!.double!) < 1e-12)
            #expect(
                abs(AveragePrecision.vocAllPoints(scores: scores, positive: positive)! - c["vissl_ap"]!.double!) < 1e-12
            )
            #expect(
                abs(AveragePrecision.vocElevenPoint(scores: scores, positive: positive)! - c["voc11_ap"]!.double!)
                    < 1e-12)
        }
    }

    @Test("stratified folds equal scikit-learn's StratifiedKFold", arguments: ["real", "synth"])
    func folds(_ name: String) throws {
        let reader = try FeatureStoreReader(path: Reference.store("\(name)_train"))
        let targets = try reader.targets()
        let width = reader.targetLayout.width
        let classes = try #require(Reference.json[name]?["classes"]?.arrayValue)
        var checked = 0
        for c in classes {
            guard let expected = c["test_folds"]?.arrayValue else { continue }
            let k = Int(c["index"]!.intValue!)
            let labels: [Int8] = (0..<reader.count).map { targets[$0 * width + k] == 1 ? 1 : -1 }
            #expect(
                StratifiedKFold.testFolds(labels: labels, folds: 3) == expected.map { Int($0.intValue!) }, "class \(k)")
            checked += 1
        }
        #expect(checked > 0)
    }

    @Test(
        "single fits: decision values agree with scikit-learn's liblinear to its tolerance",
        arguments: [SolverLayout.gram, .dense])
    func solver(_ layout: SolverLayout) throws {
        let train = try FeatureStoreReader(path: Reference.store("real_train"))
        let test = try FeatureStoreReader(path: Reference.store("real_test"))
        let features = try FeatureMatrix(reader: train, layer: "late160", normalize: true)
        let testFeatures = try FeatureMatrix(reader: test, layer: "late160", normalize: true)
        let settings = try visslSettings()
        let trainer = SVMTrainer(features: features, settings: settings, layout: layout, blasThreads: 1)
        let targets = try train.targets()
        let fits = try #require(Reference.json["real_solver"]?.arrayValue)
        for fit in fits {
            let cls = Int(fit["class"]!.intValue!)
            let cost = fit["cost"]!.double!
            let labels: [Int8] = (0..<train.count).map { targets[$0 * 20 + cls] == 1 ? 1 : -1 }
            let result = trainer.fit(
                rows: Array(0..<train.count), labels: labels, cost: cost, seed: 42, scoreRows: [], wantWeights: true)
            let sklearnConverged = fit["n_iter"]!.intValue! < 2000
            #expect(result.outcome.converged == sklearnConverged, "C=\(cost): converged \(result.outcome)")
            let ours = LowShotFits.scoreInMemory(testFeatures, try #require(result.weights), bias: 1)
            let sklearn = fit["decision"]!.doubles.map { $0! }
            let tight = fit["decision_tight"]!.doubles.map { $0! }
            try #require(ours.count == tight.count && sklearn.count == tight.count, "C=\(cost): decision lengths")
            try #require(!tight.isEmpty)
            let scale = tight.map(abs).max()!
            let oursErr = zip(ours, tight).map { abs($0 - $1) }.max()!
            let sklearnErr = zip(sklearn, tight).map { abs($0 - $1) }.max()!
            // Both stop at the same projected-gradient tolerance: equally far from the exact optimum.
            #expect(oursErr <= max(3 * sklearnErr, 1e-4 * scale), "C=\(cost): ours \(oursErr), sklearn \(sklearnErr)")
            if sklearnConverged {
                let diff = zip(ours, sklearn).map { abs($0 - $1) }.max()!
                #expect(diff <= 1e-3 * scale, "C=\(cost): |ours - sklearn| = \(diff)")
            }
        }
    }

    /// Runs the protocol on a fixture pair and compares with the reference.
    func compareStandard(_ name: String, layer: String) throws -> SVMResultsDocument {
        let dir = try TemporaryDirectory()
        let settings = try visslSettings()
        let run = try runSVM(
            train: Reference.store("\(name)_train"), test: Reference.store("\(name)_test"), settings: settings,
            workdir: dir.path)
        let results = try firstResults(run)
        #expect(results.layer == layer)
        let ref = try #require(Reference.json[name])
        let ours = try #require(results.classes)
        let refClasses = try #require(ref["classes"]?.arrayValue)
        try #require(ours.count >= refClasses.count, "one result per reference class")
        let settingsCosts = settings.costs
        var identicalChoices = 0, nearTies = 0, convergedCompared = 0, nonConvergedCompared = 0
        for r in refClasses {
            let k = Int(try #require(r["index"]?.intValue))
            try #require(k < ours.count && ours[k].index == k, "class \(k) in the results")
            let o = ours[k]
            if r["skipped"] == .bool(true) {
                #expect(o.status == .skipped, "class \(k)")
                continue
            }
            #expect(o.status == .trained, "class \(k)")
            // Fits that stop at max_iter (large costs here, in scikit-learn as in Linprobe) depend on
            // the coordinate order: they are compared within the non-convergence spread, the others
            // within 0.002 (they agree to ~1e-12 in practice).
            let refCV = try #require(r["cv_ap"]).doubles
            let ourCV = try #require(o.cvAP)
            try #require(refCV.count == ourCV.count, "class \(k): CV AP per cost")
            var convergedCost = [Bool](repeating: true, count: refCV.count)
            for fit in try #require(o.fits) where fit.fold != .all {
                let j = try #require(settingsCosts.firstIndex(of: fit.cost))
                if fit.converged == false || (fit.iterations ?? 0) > 1800 { convergedCost[j] = false }
            }
            for (j, (a, b)) in zip(refCV, ourCV).enumerated() {
                if let a, let b {
                    #expect(abs(a - b) <= (convergedCost[j] ? 0.002 : 0.03), "class \(k) cost \(j): CV AP \(b) vs \(a)")
                    if convergedCost[j] { convergedCompared += 1 } else { nonConvergedCompared += 1 }
                } else {
                    #expect(a == nil && b == nil, "class \(k): CV AP definedness")
                }
            }
            let chosen = try #require(o.chosenCostIndex)
            let refChosen = Int(try #require(r["chosen_cost_index"]?.intValue))
            let seeds = Set(try #require(r["chosen_by_seed"]).ints)
            let refBest = refCV.compactMap { $0 }.max() ?? 0
            let runnerUp = refCV.enumerated().filter { $0.offset != refChosen }.compactMap { $0.element }.max() ?? -1
            let robust = seeds.count == 1 && refBest - runnerUp > 0.002 && convergedCost[refChosen]
            if robust || refCV.allSatisfy({ $0 == nil }) {
                #expect(chosen == refChosen, "class \(k): chosen cost \(chosen) vs scikit-learn \(refChosen)")
            } else {
                // A near-tie in CV AP, or one decided by fits that stop at max_iter (whose CV APs
                // depend on the visiting order): ours must be one scikit-learn itself picks with
                // another seed, or as good under scikit-learn's CV AP — within 0.002, or within
                // 0.01 when our choice's fits did not converge (a third of the 0.03 allowed above
                // for such CV APs).
                let refOfOurs = refCV[chosen] ?? -1
                let margin = convergedCost[chosen] ? 0.002 : 0.01
                #expect(
                    chosen == refChosen || seeds.contains(chosen) || refOfOurs >= refBest - margin,
                    "class \(k): chosen \(chosen) (ref CV \(refOfOurs)) vs scikit-learn \(refChosen) (\(refBest))")
                if chosen != refChosen { nearTies += 1 }
            }
            if chosen == refChosen { identicalChoices += 1 }
            if let refAP = r["test_ap"]?.double {
                let ap = try #require(o.testAP, "class \(k)")
                let ap11 = try #require(o.testAP11Point)
                let refitConverged = (r["refit_n_iter"]?.intValue ?? 2000) < 2000 && o.fits?.last?.converged == true
                if chosen == refChosen {
                    let tolerance = refitConverged ? 0.002 : 0.02
                    #expect(abs(ap - refAP) <= tolerance, "class \(k): test AP \(ap) vs \(refAP)")
                    let refAP11 = try #require(r["test_ap_11point"]?.double)
                    #expect(abs(ap11 - refAP11) <= tolerance, "class \(k): 11-point AP")
                }
            } else {
                #expect(o.testAP == nil, "class \(k): no test positives → undefined AP")
            }
        }
        #expect(convergedCompared > 0)
        print(
            "\(name): \(identicalChoices) identical cost choices, \(nearTies) near-tie choices; CV AP compared on \(convergedCompared) converged and \(nonConvergedCompared) non-converged (class, cost) pairs"
        )
        // mAP: within 0.05 points of scikit-learn's, or — where fits stop at max_iter — within
        // the range scikit-learn's own seeds give (each seed's test APs, as VISSL would report
        // them), widened by 0.1 point.
        let mAP = try #require(results.value)
        let refMAP = try #require(ref["mAP"]?.double)
        let seedMAPs = try Self.seedMAPs(refClasses)
        let low = min(refMAP - 0.05, (seedMAPs.min() ?? refMAP) - 0.1)
        let high = max(refMAP + 0.05, (seedMAPs.max() ?? refMAP) + 0.1)
        #expect(mAP >= low && mAP <= high, "mAP \(mAP) vs \(refMAP) (scikit-learn's seeds: \(seedMAPs))")
        let mAP11 = try #require(results.metrics?.mAP11Point)
        let refMAP11 = try #require(ref["mAP_11point"]?.double)
        #expect(abs(mAP11 - refMAP11) <= max(0.05, high - refMAP, refMAP - low))
        return results
    }

    /// scikit-learn's mAP (×100) under each of its seeds, from the per-seed test APs of the classes
    /// that have test positives (empty when the reference has none).
    static func seedMAPs(_ classes: [JSONValue]) throws -> [Double] {
        let bySeed = classes.compactMap { $0["test_ap_by_seed"]?.doubles.compactMap { $0 } }.filter { !$0.isEmpty }
        guard let seeds = bySeed.first?.count, bySeed.allSatisfy({ $0.count == seeds }) else { return [] }
        return (0..<seeds).map { s in 100 * bySeed.map { $0[s] }.reduce(0, +) / Double(bySeed.count) }
    }

    @Test("VOC07 protocol on real features: identical chosen costs, test AP within 0.002, mAP within 0.05")
    func realFeatures() throws {
        let results = try compareStandard("real", layer: "late160")
        #expect(results.convergence.fits > 0)
    }

    @Test("VOC07 protocol on the hard synthetic cases (ties, one positive, no positives, all-difficult rows)")
    func hardCases() throws {
        let results = try compareStandard("synth", layer: "feat")
        let classes = try #require(results.classes)
        try #require(classes.count >= 4)
        #expect(classes[2].status == .skipped)
        #expect(classes[1].chosenCostIndex == 0)  // CV AP NaN for every cost → first cost
        #expect(classes[1].cvAP?.allSatisfy { $0 == nil } == true)
        #expect(classes[3].status == .trained && classes[3].testAP == nil)
        #expect(results.metrics?.classesInMean == 4)
        let warnings = results.warnings
        #expect(warnings.contains { $0.contains("class 2") && $0.contains("skipped") })
        #expect(warnings.contains { $0.contains("class 3") && $0.contains("no positive test rows") })
    }

    @Test("VOC07 low-shot: VISSL's rule and the CV rule match scikit-learn on the same seeded samples")
    func lowShotVOC() throws {
        try compareLowShot(name: "real", dataset: "voc", ref: "real_low_shot")
    }

    @Test("Places205-style single-label low-shot matches scikit-learn")
    func lowShotPlaces() throws {
        try compareLowShot(name: "places", dataset: "places", ref: "places_low_shot")
    }

    func compareLowShot(name: String, dataset: String, ref refName: String) throws {
        let ref = try #require(Reference.json[refName])
        let dir = try TemporaryDirectory()
        let costs = try #require(ref["costs"]?.arrayValue)
        let kValues = try #require(ref["k_values"])
        let sampleIndices = try #require(ref["sample_inds"])
        let settings = try visslSettings(
            [
                "costs": ["costs_list": .array(costs), "base": -1.0],
                "low_shot": ["dataset_name": .string(dataset), "k_values": kValues, "sample_inds": sampleIndices],
            ],
            linprobe: ["SVM": ["LOW_SHOT": true]])
        let run = try runSVM(
            train: Reference.store("\(name)_train"), test: Reference.store("\(name)_test"), settings: settings,
            workdir: dir.path)
        let results = try firstResults(run)
        let byK = try #require(results.resultsByK)
        let refByK = try #require(ref["by_k"]?.arrayValue)
        try #require(byK.count == refByK.count, "one result per k")
        for (o, r) in zip(byK, refByK) {
            let k = try #require(r["k"]).canonicalText
            #expect(o.k == Int(r["k"]?.intValue ?? -1))
            // Every (sample, cost) mAP is defined on both sides (a nil shortens its row and fails the count check).
            let ourSamples = o.perSampleMAP.map { $0.compactMap { $0 } }
            let refSamples = try #require(r["per_sample_map"]?.arrayValue).map { $0.doubles.compactMap { $0 } }
            try #require(ourSamples.count == refSamples.count, "k=\(k): samples")
            for (a, b) in zip(ourSamples, refSamples) {
                try #require(a.count == b.count && a.count == ref["costs"]?.arrayValue?.count, "k=\(k): costs")
                for (x, y) in zip(a, b) { #expect(abs(x - y) <= 0.2, "k=\(k): per-cost mAP \(x) vs \(y)") }
            }
            let vissl = try #require(o.visslRule, "k=\(k): VISSL rule")
            let costIndex = Int(try #require(r["vissl_cost_index"]?.intValue))
            #expect(vissl.cost == (try #require(ref["costs"])).doubles[costIndex], "k=\(k): VISSL-rule cost")
            let refMean = try #require(r["vissl_mean"]?.double)
            #expect(abs(try #require(vissl.mean) - refMean) <= 0.05)
            if let cv = r["cv_mean"]?.double {
                #expect(abs(try #require(o.cvRule.mean) - cv) <= 0.2)
            } else {
                #expect(o.cvRule.mean == nil)
            }
        }
    }
}
