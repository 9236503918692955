import Foundation
import LinprobeCore

/// The settings of the `train-svm` stage, read from the effective configuration's `SVM.*` keys
/// (VISSL's names and defaults) and Linprobe's `LINPROBE.SVM.*`, `LINPROBE.THREADS`, `SEED_VALUE`.
///
/// What VISSL hard-codes in `svm_trainer.py` is fixed here too and recorded in every result:
/// `class_weight {1: 2, -1: 1}`, `intercept_scaling 1`, `tol 1e-4`.
public struct SVMSettings: Sendable, Equatable {
    /// Low-shot scheme (`SVM.low_shot.dataset_name`): VOC07's k positives + 19k negatives per
    /// class on multi-label targets, or Places205's k images per class on single-label targets.
    public enum LowShotDataset: String, Sendable, Equatable {
        case voc
        case places
    }

    /// Which low-shot rule gives the headline number (`LINPROBE.SVM.SELECT_BY`). Both are always
    /// reported side by side.
    public enum LowShotSelection: String, Sendable, Equatable, CaseIterable {
        /// VISSL's rule: per k, the cost with the best mean *test* mAP (comparable with papers).
        case vissl
        /// Cost chosen per class by cross-validation on the low-shot training rows only.
        case cv
    }

    /// Which solver fits every (class, cost) (`SVM.solver`).
    public enum Solver: String, Sendable, Equatable, CaseIterable {
        /// liblinear's dual coordinate descent stopped at `max_iter` (VISSL's numbers).
        case vissl
        /// Each cost's optimum of the same objective to `convergedTolerance` (`PrimalNewton`),
        /// warm-started along the cost path.
        case converged
    }

    public var solver: Solver = .vissl
    /// The `converged` solver's stopping test: ‖∇f(w)‖ ≤ this·‖∇f(0)‖ (fixed, recorded).
    public var convergedTolerance: Double = 1e-8

    /// The stage's warning when `count` of `fits` fits did not converge, in the solver's terms.
    public func notConvergedWarning(_ count: Int, of fits: Int) -> String {
        switch solver {
        case .vissl:
            return "\(count) of \(fits) fits stopped at max_iter = \(maxIterations) without converging "
                + "(scikit-learn's ConvergenceWarning)"
        case .converged:
            return "\(count) of \(fits) fits stopped short of ‖∇f‖ ≤ \(convergedTolerance)·‖∇f(0)‖ (max_iter = "
                + "\(maxIterations) Newton steps, or no descent left at float64 precision)"
        }
    }

    public var normalize: Bool = true
    /// Classes to train (`SVM.cls_list`); empty = every target column.
    public var classList: [Int] = []
    public var loss: SVMLoss = .squaredHinge
    public var maxIterations: Int = 2000
    public var crossValidationFolds: Int = 3
    /// Resolved cost list: `costs_list` then `base^k` for k in `power_range` [start, end) when base > 0.
    public var costs: [Double] = [0.1, 0.01]
    public var forceRetrain: Bool = false
    public var tolerance: Double = 1e-4
    public var positiveClassWeight: Double = 2
    public var negativeClassWeight: Double = 1
    public var interceptScaling: Double = 1

    public var lowShot: Bool = false
    public var lowShotDataset: LowShotDataset = .voc
    public var lowShotSampleIndices: [Int] = [1, 2, 3, 4, 5]
    public var lowShotKValues: [Int] = [1, 2, 4, 8, 16, 32, 64, 96]
    public var lowShotSelection: LowShotSelection = .vissl

    /// `LINPROBE.THREADS`; 0 = every core.
    public var threads: Int = 0
    public var seed: UInt64 = 0

    public init() {}

    /// Reads and validates the settings from the effective configuration's root node. Missing
    /// keys take VISSL's defaults; a bad value is a `LinprobeError.config` naming the key.
    public init(config root: ConfigNode) throws {
        let svm = root["SVM"]
        try readSolver(svm)
        costs = try Self.costs(svm["costs"])
        try readLowShot(svm["low_shot"])
        let linprobe = root["LINPROBE"]
        if let v = try linprobe["SVM"]["LOW_SHOT"].boolIfPresent() { lowShot = v }
        if linprobe["SVM"]["SELECT_BY"].exists {
            let s = try linprobe["SVM"]["SELECT_BY"].string(oneOf: LowShotSelection.allCases.map(\.rawValue))
            lowShotSelection = LowShotSelection(rawValue: s) ?? .vissl
        }
        if linprobe["THREADS"].exists { threads = try linprobe["THREADS"].int(in: 0...4096) }
        if root["SEED_VALUE"].exists {
            let s = try root["SEED_VALUE"].int()
            seed = UInt64(bitPattern: Int64(s))
        }
    }

    /// `SVM.normalize`, `cls_list`, `loss`, `penalty`, `dual`, `max_iter`, `cross_val_folds`, `force_retrain`,
    /// `solver`.
    private mutating func readSolver(_ svm: ConfigNode) throws {
        if let v = try svm["normalize"].boolIfPresent() { normalize = v }
        if svm["cls_list"].exists {
            let nodes = try svm["cls_list"].list()
            classList = try nodes.map { node in
                let c = try node.int()
                guard c >= 0 else { throw LinprobeError.config("\(node.path): class index \(c) must be ≥ 0") }
                return c
            }
        }
        if svm["loss"].exists {
            let l = try svm["loss"].string(oneOf: ["squared_hinge", "hinge"])
            loss = SVMLoss(rawValue: l) ?? .squaredHinge
        }
        if svm["penalty"].exists {
            let p = try svm["penalty"].string()
            guard p == "l2" else {
                throw LinprobeError.config(
                    "SVM.penalty: '\(p)' is not supported; Linprobe solves the L2-regularised dual (liblinear's dual coordinate descent), use penalty: l2"
                )
            }
        }
        if let dual = try svm["dual"].boolIfPresent(), !dual {
            throw LinprobeError.config(
                "SVM.dual: false (liblinear's primal Newton solver) is not supported; Linprobe solves the dual by coordinate descent, use dual: true"
            )
        }
        if svm["max_iter"].exists { maxIterations = try svm["max_iter"].int(in: 1...100_000_000) }
        if svm["cross_val_folds"].exists { crossValidationFolds = try svm["cross_val_folds"].int(in: 2...1000) }
        if let f = try svm["force_retrain"].boolIfPresent() { forceRetrain = f }
        if svm["solver"].exists {
            let name = try svm["solver"].string(oneOf: Solver.allCases.map(\.rawValue))
            solver = Solver(rawValue: name) ?? .vissl
        }
        if solver == .converged && loss != .squaredHinge {
            throw LinprobeError.config(
                "SVM.solver: converged solves the squared hinge only (SVM.loss: squared_hinge); with loss \(loss.rawValue) use solver: vissl"
            )
        }
    }

    /// `SVM.costs`: `costs_list`, then `base^k` for k in `power_range` [start, end) when base > 0;
    /// duplicates dropped, order kept.
    private static func costs(_ costNode: ConfigNode) throws -> [Double] {
        var list = [0.1, 0.01]
        if costNode["costs_list"].exists {
            list = try costNode["costs_list"].list().map { node in
                let c = try node.double()
                guard c.isFinite, c > 0 else {
                    throw LinprobeError.config("\(node.path): cost \(c) must be a finite number > 0")
                }
                return c
            }
        }
        let base = try costNode["base"].doubleIfPresent() ?? -1
        if base > 0 {
            var range = [4, 20]
            if costNode["power_range"].exists {
                range = try costNode["power_range"].ints()
                guard range.count == 2 else {
                    throw LinprobeError.config("SVM.costs.power_range: expected [start, end], got \(range)")
                }
            }
            if range[0] < range[1] {
                for k in range[0]..<range[1] {
                    let c = pow(base, Double(k))
                    guard c.isFinite, c > 0 else {
                        throw LinprobeError.config(
                            "SVM.costs.base: \(base)^\(k) = \(c) is not a usable cost (must be finite and > 0)")
                    }
                    list.append(c)
                }
            }
        } else if !base.isFinite {
            throw LinprobeError.config("SVM.costs.base: \(base) is not a number")
        }
        var unique: [Double] = []
        for c in list where !unique.contains(c) { unique.append(c) }
        guard !unique.isEmpty else {
            throw LinprobeError.config("SVM.costs: no costs to try (costs_list is empty and base ≤ 0)")
        }
        return unique
    }

    /// `SVM.low_shot.dataset_name`, `sample_inds`, `k_values`.
    private mutating func readLowShot(_ lowShotNode: ConfigNode) throws {
        if lowShotNode["dataset_name"].exists {
            let name = try lowShotNode["dataset_name"].string()
            if name.lowercased().contains("voc") {
                lowShotDataset = .voc
            } else if name.lowercased().contains("places") {
                lowShotDataset = .places
            } else {
                throw LinprobeError.config(
                    "SVM.low_shot.dataset_name: '\(name)' is not known; use voc (multi-label, k positives + 19k negatives per class) or places (single-label, k images per class)"
                )
            }
        }
        if lowShotNode["sample_inds"].exists {
            lowShotSampleIndices = try lowShotNode["sample_inds"].ints()
            guard !lowShotSampleIndices.isEmpty else {
                throw LinprobeError.config("SVM.low_shot.sample_inds: needs at least one sample index")
            }
        }
        if lowShotNode["k_values"].exists {
            let node = lowShotNode["k_values"]
            // VISSL's scripts take "1,2,4" strings as well as lists.
            if case .string(let s)? = node.value {
                lowShotKValues = try s.split(separator: ",").map { part in
                    guard let k = Int(part.trimmingCharacters(in: .whitespaces)) else {
                        throw LinprobeError.config("SVM.low_shot.k_values: '\(part)' is not an integer")
                    }
                    return k
                }
            } else {
                lowShotKValues = try node.ints()
            }
            guard !lowShotKValues.isEmpty, lowShotKValues.allSatisfy({ $0 >= 1 }) else {
                throw LinprobeError.config("SVM.low_shot.k_values: expected integers ≥ 1, got \(lowShotKValues)")
            }
        }
    }

    /// Every setting that determines the results (part of the results' fingerprint). Threads
    /// and `force_retrain` are not: results do not depend on them.
    public var fingerprintJSON: JSONValue {
        var o: [String: JSONValue] = [
            "solver": "linprobe-dual-cd-1",
            "normalize": .bool(normalize),
            "cls_list": .array(classList.map { .int(Int64($0)) }),
            "loss": .string(loss.rawValue),
            "penalty": "l2",
            "dual": true,
            "max_iter": .int(Int64(maxIterations)),
            "tol": .double(tolerance),
            "class_weight": ["1": .double(positiveClassWeight), "-1": .double(negativeClassWeight)],
            "intercept_scaling": .double(interceptScaling),
            "cross_val_folds": .int(Int64(crossValidationFolds)),
            "costs": .array(costs.map { .double($0) }),
            "seed": .int(Int64(bitPattern: seed)),
            "low_shot": .bool(lowShot),
        ]
        if solver == .converged {
            // Only when not the default, so `vissl` runs keep their fingerprints.
            o["solver"] = "linprobe-primal-newton-1"
            o["converged_tol"] = .double(convergedTolerance)
        }
        if lowShot {
            o["low_shot_settings"] = [
                "dataset_name": .string(lowShotDataset.rawValue),
                "sample_inds": .array(lowShotSampleIndices.map { .int(Int64($0)) }),
                "k_values": .array(lowShotKValues.map { .int(Int64($0)) }),
                "select_by": .string(lowShotSelection.rawValue),
            ]
        }
        return .object(o)
    }
}
