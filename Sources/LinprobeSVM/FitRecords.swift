import Foundation
import LinprobeCore

/// The typed records of a fit log. A record is reused only when every field that is read later is
/// present and of the right type; anything else (a damaged entry, one another version wrote) reads
/// as nil, and the fit is done again. The log keeps what it was given (`FitLog.append`), so the
/// lines stay those earlier versions wrote.

/// A CV fit of one (class, cost, fold): a fitted fold (AP, iterations, converged), or a fold whose
/// training part has one label only (AP undefined, with a note).
struct CVFitRecord: Equatable {
    var ap: Double?
    var iterations: Int?
    var converged: Bool?
    var note: String?

    init(ap: Double, iterations: Int, converged: Bool) {
        self.ap = ap
        self.iterations = iterations
        self.converged = converged
    }

    init(unfittable note: String) {
        self.note = note
    }

    init?(_ json: JSONValue?) {
        guard let json, case .object = json else { return nil }
        if let note = json["note"] {
            guard let text = note.stringValue, json["ap"] == .null, json["iterations"] == nil else { return nil }
            self.note = text
        } else {
            guard let ap = json["ap"]?.doubleValue,
                let iterations = json["iterations"]?.intValue.flatMap(Int.init(exactly:)),
                case .bool(let converged)? = json["converged"]
            else { return nil }
            self.ap = ap
            self.iterations = iterations
            self.converged = converged
        }
    }

    func json(key: String) -> JSONValue {
        if let note {
            return ["key": .string(key), "ap": .null, "note": .string(note)]
        }
        return [
            "key": .string(key), "ap": .number(ap), "iterations": .int(Int64(iterations ?? 0)),
            "converged": .bool(converged ?? false),
        ]
    }
}

/// The refit of a class's chosen cost on every training row; its weights are in `models/<model>`.
struct RefitRecord: Equatable {
    var iterations: Int
    var converged: Bool
    /// File name inside the layer's `models/` folder.
    var model: String
    var sha256: String

    init(iterations: Int, converged: Bool, model: String, sha256: String) {
        self.iterations = iterations
        self.converged = converged
        self.model = model
        self.sha256 = sha256
    }

    init?(_ json: JSONValue?) {
        guard let json, let iterations = json["iterations"]?.intValue.flatMap(Int.init(exactly:)),
            case .bool(let converged)? = json["converged"], let model = json["model"]?.stringValue,
            let sha256 = json["sha256"]?.stringValue,
            !model.isEmpty, !model.contains("/"), model != "..", model != "."
        else { return nil }
        self.init(iterations: iterations, converged: converged, model: model, sha256: sha256)
    }

    func json(key: String) -> JSONValue {
        [
            "key": .string(key), "iterations": .int(Int64(iterations)), "converged": .bool(converged),
            "model": .string(model), "sha256": .string(sha256),
        ]
    }
}

/// One low-shot unit (sample, k, class): the test AP of every cost and the CV rule's outcome.
struct LowShotUnitRecord: Equatable {
    /// Test AP per cost (nil: undefined).
    var testAP: [Double?]
    var fits: Int
    var notConverged: Int
    /// False when the CV rule cannot be applied (fewer positives than folds, a fold with one label).
    var cvDefined: Bool
    var cvAP: [Double?]?
    var cvChosenCostIndex: Int?
    /// Test AP of the CV-chosen cost (nil when undefined or `cvDefined` is false).
    var honestTestAP: Double?

    init(
        testAP: [Double?], fits: Int, notConverged: Int, cvDefined: Bool, cvAP: [Double?]?,
        cvChosenCostIndex: Int?, honestTestAP: Double?
    ) {
        self.testAP = testAP
        self.fits = fits
        self.notConverged = notConverged
        self.cvDefined = cvDefined
        self.cvAP = cvAP
        self.cvChosenCostIndex = cvChosenCostIndex
        self.honestTestAP = honestTestAP
    }

    /// Nil unless every field is usable for `costs` costs.
    init?(_ json: JSONValue?, costs: Int) {
        guard let json, let testAP = Self.numbers(json["test_ap"], count: costs),
            let fits = json["fits"]?.intValue.flatMap(Int.init(exactly:)),
            let notConverged = json["not_converged"]?.intValue.flatMap(Int.init(exactly:)),
            case .bool(let cvDefined)? = json["cv_defined"], let honest = json["honest_test_ap"],
            honest == .null || honest.doubleValue != nil
        else { return nil }
        var cvAP: [Double?]? = nil
        var chosen: Int? = nil
        if cvDefined {
            guard let aps = Self.numbers(json["cv_ap"], count: costs),
                let j = json["cv_chosen_cost_index"]?.intValue.flatMap(Int.init(exactly:)), (0..<costs).contains(j)
            else { return nil }
            cvAP = aps
            chosen = j
        }
        self.init(
            testAP: testAP, fits: fits, notConverged: notConverged, cvDefined: cvDefined, cvAP: cvAP,
            cvChosenCostIndex: chosen, honestTestAP: honest.doubleValue)
    }

    /// `count` numbers or nulls.
    private static func numbers(_ json: JSONValue?, count: Int) -> [Double?]? {
        guard let items = json?.arrayValue, items.count == count else { return nil }
        var out: [Double?] = []
        for item in items {
            if item == .null {
                out.append(nil)
            } else if let d = item.doubleValue {
                out.append(d)
            } else {
                return nil
            }
        }
        return out
    }

    func json(key: String) -> JSONValue {
        var record: [String: JSONValue] = [
            "key": .string(key),
            "test_ap": .array(testAP.map { JSONValue.number($0) }),
            "fits": .int(Int64(fits)),
            "not_converged": .int(Int64(notConverged)),
            "cv_defined": .bool(cvDefined),
            "honest_test_ap": .number(honestTestAP),
        ]
        if cvDefined, let cvAP, let cvChosenCostIndex {
            record["cv_ap"] = .array(cvAP.map { JSONValue.number($0) })
            record["cv_chosen_cost_index"] = .int(Int64(cvChosenCostIndex))
        }
        return .object(record)
    }
}
