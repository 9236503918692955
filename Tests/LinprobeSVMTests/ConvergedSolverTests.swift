import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeSVM

/// `SVM.solver: converged` (`PrimalNewton`) against the optimality conditions and scikit-learn's
/// primal Newton solver to tol 1e-12 (scripts/make_svm_fixtures.py, converged_reference.json).
@Suite("SVM converged solver")
struct ConvergedSolverTests {
    static let reference: JSONValue = {
        let path = fixturePath("svm/converged_reference.json")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let value = try? JSONValue.parse(text)
        else { return .null }
        return value
    }()

    func convergedSettings(_ extra: [String: JSONValue] = [:]) throws -> SVMSettings {
        var svm = extra
        svm["solver"] = "converged"
        return try visslSettings(svm)
    }

    /// The real fixture's rows and class-0 labels.
    func realProblem() throws -> (features: FeatureMatrix, test: FeatureMatrix, labels: [Int8]) {
        let train = try FeatureStoreReader(path: Reference.store("real_train"))
        let test = try FeatureStoreReader(path: Reference.store("real_test"))
        let features = try FeatureMatrix(reader: train, layer: "late160", normalize: true)
        let testFeatures = try FeatureMatrix(reader: test, layer: "late160", normalize: true)
        let targets = try train.targets()
        let labels: [Int8] = (0..<train.count).map { targets[$0 * 20] == 1 ? 1 : -1 }
        return (features, testFeatures, labels)
    }

    /// ∇f(w) = w − 2Σ C_i y_i max(0, 1 − y_i w·x̃_i) x̃_i, computed directly from the rows.
    func primalGradient(_ m: FeatureMatrix, labels: [Int8], w: [Double], cost: Double) -> [Double] {
        let d = m.dim
        var g = w
        for r in 0..<m.count {
            let row = m.row(r)
            let s = m.scale[r]
            var o = w[d]
            for j in 0..<d { o += s * Double(row[j]) * w[j] }
            let y = Double(labels[r])
            let slack = 1 - y * o
            if slack <= 0 { continue }
            let c = 2 * cost * (labels[r] > 0 ? 2 : 1) * y * slack
            for j in 0..<d { g[j] -= c * s * Double(row[j]) }
            g[d] -= c
        }
        return g
    }

    func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    @Test(
        "the optimum satisfies the optimality conditions (primal gradient ≈ 0)", arguments: [SolverLayout.gram, .dense])
    func optimality(_ layout: SolverLayout) throws {
        let (features, _, labels) = try realProblem()
        let settings = try convergedSettings()
        let trainer = SVMTrainer(features: features, settings: settings, layout: layout, blasThreads: 1)
        for cost in [0.01, 1.0, 1000.0] {
            let result = trainer.fit(
                rows: Array(0..<features.count), labels: labels, cost: cost, seed: 0, scoreRows: [], wantWeights: true)
            #expect(result.outcome.converged, "C=\(cost): \(result.outcome)")
            let w = try #require(result.weights)
            let g = norm(primalGradient(features, labels: labels, w: w, cost: cost))
            let g0 = norm(
                primalGradient(features, labels: labels, w: [Double](repeating: 0, count: w.count), cost: cost))
            // The solver stops at 1e-8 (its own products); recomputed here independently in float64.
            #expect(g <= 1e-7 * g0, "C=\(cost): ‖∇f‖ = \(g), ‖∇f(0)‖ = \(g0)")
            // The dual variables are the optimum's: α_i = 2C_i max(0, 1 − y_i o_i) ≥ 0.
            let largest = result.alpha.max() ?? 0
            #expect(
                result.alpha.allSatisfy { $0 >= -1e-6 * largest }, "C=\(cost): dual variable \(result.alpha.min() ?? 0)"
            )
        }
    }

    @Test("weights and decision values equal scikit-learn's exact optimum", arguments: [SolverLayout.gram, .dense])
    func matchesScikitLearn(_ layout: SolverLayout) throws {
        let (features, test, labels) = try realProblem()
        let trainer = SVMTrainer(features: features, settings: try convergedSettings(), layout: layout, blasThreads: 1)
        let fits = try #require(Self.reference["real_fits"]?.arrayValue)
        try #require(fits.count == 4)
        for fit in fits {
            let cost = try #require(fit["cost"]?.double)
            let result = trainer.fit(
                rows: Array(0..<features.count), labels: labels, cost: cost, seed: 0, scoreRows: [], wantWeights: true)
            let w = try #require(result.weights)
            let refW = fit["weights"]!.doubles.map { $0! }
            try #require(w.count == refW.count)
            let wScale = refW.map(abs).max()!
            let wErr = zip(w, refW).map { abs($0 - $1) }.max()!
            #expect(wErr <= 1e-5 * wScale, "C=\(cost): weights differ by \(wErr) (scale \(wScale))")
            let ours = LowShotFits.scoreInMemory(test, w, bias: 1)
            let ref = fit["decision"]!.doubles.map { $0! }
            try #require(ours.count == ref.count && !ref.isEmpty)
            let scale = ref.map(abs).max()!
            let err = zip(ours, ref).map { abs($0 - $1) }.max()!
            #expect(err <= 1e-5 * scale, "C=\(cost): decision values differ by \(err) (scale \(scale))")
        }
    }

    @Test("a fit that cannot move at float64 precision stops at once, unconverged, not at max_iter")
    func stallStopsAtOnce() throws {
        // Tolerance 0 cannot be met: Newton reaches the optimum to rounding, then its step at the
        // tightest forcing is no descent direction, a fixed point. Before, the loop repeated that
        // step until maxIterations.
        let (features, _, labels) = try realProblem()
        let rows = Array(0..<features.count)
        let cost = 1000.0
        let kernel = DensePrimalKernel(features: features, rows: rows, bias: 1)
        let costs = rows.map { cost * (labels[$0] > 0 ? 2.0 : 1.0) }
        let problem = PrimalNewton.Problem(labels: labels, costs: costs)
        var state = PrimalNewton.State.zero(rows.count)
        let outcome = PrimalNewton.solve(
            kernel: kernel, problem: problem, state: &state,
            parameters: PrimalNewton.Parameters(tolerance: 0, maxIterations: 5000))
        #expect(!outcome.converged)
        #expect(outcome.iterations < 1000, "\(outcome.iterations) Newton steps")
        // Where it stopped is the optimum to rounding: the primal gradient, recomputed from the rows
        // independently of the solver's products, is as small as for a fit that met the default test.
        let w = kernel.weights(sources: rows, x: state.beta)
        let g = norm(primalGradient(features, labels: labels, w: w, cost: cost))
        let g0 = norm(primalGradient(features, labels: labels, w: [Double](repeating: 0, count: w.count), cost: cost))
        #expect(g <= 1e-7 * g0, "‖∇f‖ = \(g), ‖∇f(0)‖ = \(g0)")
    }

    @Test("the not-converged warning names each solver's own stopping rule")
    func notConvergedWarning() throws {
        let vissl = try visslSettings([:]).notConvergedWarning(3, of: 680)
        #expect(
            vissl == "3 of 680 fits stopped at max_iter = 2000 without converging (scikit-learn's ConvergenceWarning)")
        let converged = try convergedSettings().notConvergedWarning(1, of: 680)
        #expect(converged.hasPrefix("1 of 680 fits stopped short of ‖∇f‖ ≤ 1e-08·‖∇f(0)‖"))
        #expect(converged.contains("2000 Newton steps") && !converged.contains("ConvergenceWarning"))
    }

    @Test("a warm start along the costs reaches the cold start's optimum", arguments: [SolverLayout.gram, .dense])
    func warmStart(_ layout: SolverLayout) throws {
        let (features, _, labels) = try realProblem()
        let trainer = SVMTrainer(features: features, settings: try convergedSettings(), layout: layout, blasThreads: 1)
        let rows = Array(0..<300)
        let scoreRows = Array(300..<features.count)
        let trainLabels = Array(labels[0..<300])
        let costs = [1000.0, 0.01, 1.0, 20.0, 100.0]
        let path = trainer.fitBatch(
            rows: rows, problems: costs.map { (trainLabels, $0) }, seed: 0, scoreRows: scoreRows)
        var warmSteps = 0, coldSteps = 0
        for (k, cost) in costs.enumerated() {
            let cold = trainer.fit(rows: rows, labels: trainLabels, cost: cost, seed: 0, scoreRows: scoreRows)
            #expect(path[k].outcome.converged && cold.outcome.converged, "C=\(cost)")
            let scale = cold.margins.map(abs).max()!
            let err = zip(path[k].margins, cold.margins).map { abs($0 - $1) }.max()!
            #expect(err <= 1e-6 * scale, "C=\(cost): warm and cold optima differ by \(err) (scale \(scale))")
            warmSteps += path[k].outcome.iterations
            coldSteps += cold.outcome.iterations
        }
        // The path (solved in increasing cost, each from the previous optimum) takes fewer Newton steps.
        #expect(warmSteps < coldSteps, "warm \(warmSteps) vs cold \(coldSteps) Newton steps")
    }

    @Test("the VOC07 protocol with converged fits equals scikit-learn's", arguments: ["real", "synth"])
    func protocolMatches(_ name: String) throws {
        let dir = try TemporaryDirectory()
        let run = try runSVM(
            train: Reference.store("\(name)_train"), test: Reference.store("\(name)_test"),
            settings: try convergedSettings(), workdir: dir.path)
        let results = try firstResults(run)
        let ref = try #require(Self.reference[name])
        let ours = try #require(results.classes)
        let refClasses = try #require(ref["classes"]?.arrayValue)
        #expect(results.convergence.notConverged == 0)
        for r in refClasses {
            let k = Int(try #require(r["index"]?.intValue))
            let o = ours[k]
            if r["skipped"] == .bool(true) {
                #expect(o.status == .skipped, "class \(k)")
                continue
            }
            let refCV = try #require(r["cv_ap"]).doubles
            let ourCV = try #require(o.cvAP)
            try #require(refCV.count == ourCV.count)
            for (a, b) in zip(ourCV, refCV) {
                #expect((a == nil) == (b == nil), "class \(k): CV AP defined on one side only")
                if let a, let b { #expect(abs(a - b) <= 1e-9, "class \(k): CV AP \(a) vs \(b)") }
            }
            #expect(o.chosenCostIndex == r["chosen_cost_index"]?.intValue.map(Int.init), "class \(k): chosen cost")
            if let a = o.testAP, let b = r["test_ap"]?.double {
                #expect(abs(a - b) <= 1e-9, "class \(k): test AP \(a) vs \(b)")
            } else {
                #expect(o.testAP == nil && r["test_ap"]?.double == nil, "class \(k): test AP")
            }
        }
        let mAP = try #require(results.value)
        #expect(abs(mAP - ref["mAP"]!.double!) <= 1e-7, "mAP \(mAP) vs \(ref["mAP"]!.double!)")
    }

    @Test("the low-shot protocol runs with converged fits: every fit converges, results are dense-layout")
    func lowShot() throws {
        let dir = try TemporaryDirectory()
        let settings = try convergedSettings([
            "costs": ["costs_list": [0.1, 1.0, 10.0], "base": -1.0],
            "low_shot": ["dataset_name": "voc", "k_values": [1, 4], "sample_inds": [1]],
        ])
        var withLowShot = settings
        withLowShot.lowShot = true
        let results = try firstResults(
            runSVM(
                train: Reference.store("real_train"), test: Reference.store("real_test"), settings: withLowShot,
                workdir: dir.path))
        #expect(results.convergence.fits > 0)
        #expect(results.convergence.notConverged == 0)
        #expect(results.provenance.solverLayout == "dense")
        #expect(results.value.map { $0 > 0 && $0 <= 100 } == true)
    }

    @Test("SVM.solver: default vissl, converged round-trips, a bad value or the hinge loss is an error")
    func setting() throws {
        let vissl = try visslSettings()
        #expect(vissl.solver == .vissl)
        #expect(try visslSettings(["solver": "vissl"]) == vissl)
        let converged = try convergedSettings()
        #expect(converged.solver == .converged)
        #expect(
            try SVMSettings(config: ConfigNode(path: "", value: ["SVM": ["solver": "converged"]])).solver == .converged)
        // vissl keeps today's fingerprint; converged changes it (cached runs are not reused across solvers).
        #expect(vissl.fingerprintJSON["solver"] == "linprobe-dual-cd-1")
        #expect(vissl.fingerprintJSON["converged_tol"] == nil)
        #expect(converged.fingerprintJSON["solver"] == "linprobe-primal-newton-1")
        #expect(converged.fingerprintJSON != vissl.fingerprintJSON)
        for bad: JSONValue in ["newton", 3, true] {
            #expect {
                try visslSettings(["solver": bad])
            } throws: { error in
                let text = oneLine(error)
                return text.contains("SVM.solver") && !text.contains("\n")
            }
        }
        #expect {
            try convergedSettings(["loss": "hinge"])
        } throws: { error in oneLine(error).contains("SVM.solver") }
    }

    @Test("SVM.solver is a registered key with default vissl and the two values")
    func registered() throws {
        let key = try #require(LinprobeKeys.all.first { $0.path == "SVM.solver" })
        #expect(key.defaultValue == "vissl")
        #expect(key.allowed == ["vissl", "converged"])
    }
}
