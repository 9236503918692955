import Foundation
import LinprobeCore

/// Cost choice of the low-shot protocol, per k (VISSL's `aggregate_stats`): mAP per (sample,
/// cost) over the classes; VISSL's rule takes the cost with the best mean over samples, the CV
/// rule the per-class CV-chosen costs.
struct LowShotAggregation {
    private(set) var results: [SVMResultsDocument.LowShotResult] = []
    /// The headline rule's mean at the last feasible k (× 100).
    private(set) var headline: Double?
    private(set) var fits = 0
    private(set) var notConverged = 0

    init(_ sampling: LowShotSampling, log: FitLog, settings s: SVMSettings, journal: LayerJournal) {
        for k in sampling.kValues {
            let samples = collect(k: k, sampling: sampling, log: log, costs: s.costs.count)
            results.append(aggregate(k: k, samples: samples, settings: s))
        }
        if notConverged > 0 {
            journal.warn(s.notConvergedWarning(notConverged, of: fits))
        }
    }

    /// Per sample: mAP of every cost over the classes, and the CV rule's mAP.
    private mutating func collect(
        k: Int, sampling: LowShotSampling, log: FitLog, costs: Int
    )
        -> (map: [[Double?]], honest: [Double?])
    {
        var mapBySample: [[Double?]] = []
        var honestBySample: [Double?] = []
        var honestUndefined = false
        for sample in sampling.sampleIndices {
            var sums = [Double](repeating: 0, count: costs)
            var counts = [Int](repeating: 0, count: costs)
            var honestSum = 0.0, honestCount = 0
            for c in sampling.classes {
                let key = LowShotProtocol.unitKey(sample, k, c)
                guard let rec = LowShotUnitRecord(log.record(key), costs: costs) else { continue }
                fits += rec.fits
                notConverged += rec.notConverged
                for (j, v) in rec.testAP.enumerated() where j < costs {
                    if let d = v { sums[j] += d; counts[j] += 1 }
                }
                if let h = rec.honestTestAP {
                    honestSum += h
                    honestCount += 1
                } else if !rec.cvDefined {
                    honestUndefined = true
                }
            }
            mapBySample.append((0..<costs).map { counts[$0] > 0 ? sums[$0] / Double(counts[$0]) : nil })
            honestBySample.append(honestCount > 0 && !honestUndefined ? honestSum / Double(honestCount) : nil)
        }
        return (mapBySample, honestBySample)
    }

    /// Both rules at one k; sets the headline from the configured rule.
    private mutating func aggregate(
        k: Int, samples: (map: [[Double?]], honest: [Double?]), settings s: SVMSettings
    )
        -> SVMResultsDocument.LowShotResult
    {
        let costs = s.costs
        var meanByCost: [Double?] = []
        var perCost: [SVMResultsDocument.LowShotStatistics] = []
        for j in 0..<costs.count {
            let vals = samples.map.compactMap { $0[j] }
            if vals.count == samples.map.count, !vals.isEmpty {
                let st = Self.stats(vals, cost: costs[j])
                meanByCost.append(vals.reduce(0, +) / Double(vals.count))
                perCost.append(st)
            } else {
                meanByCost.append(nil)
                perCost.append(.init(cost: costs[j], mean: nil))
            }
        }
        var visslRule: SVMResultsDocument.LowShotStatistics? = nil
        if meanByCost.contains(where: { $0 != nil }) {
            let j = numpyArgmax(meanByCost.map { $0 ?? -Double.infinity })
            visslRule = Self.stats(samples.map.compactMap { $0[j] }, cost: costs[j])
            if s.lowShotSelection == .vissl { headline = visslRule?.mean }
        }
        var cvRule = SVMResultsDocument.LowShotStatistics(
            mean: nil,
            note: "CV needs at least \(s.crossValidationFolds) positives per class (k ≥ folds)")
        let honest = samples.honest.compactMap { $0 }
        if honest.count == samples.honest.count, !honest.isEmpty {
            cvRule = Self.stats(honest, cost: nil)
            if s.lowShotSelection == .cv { headline = cvRule.mean }
        }
        return .init(
            k: k, visslRule: visslRule, cvRule: cvRule, perCost: perCost,
            perSampleMAP: samples.map.map { $0.map { finite($0.map { $0 * 100 }) } })
    }

    /// Mean, min, max and population std over samples, × 100.
    static func stats(_ values: [Double], cost: Double?) -> SVMResultsDocument.LowShotStatistics {
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
        return .init(
            cost: cost, mean: mean * 100, min: (values.min() ?? .nan) * 100, max: (values.max() ?? .nan) * 100,
            std: variance.squareRoot() * 100)
    }
}

/// The low-shot results document of a layer.
struct LowShotResults {
    let ctx: LayerContext
    let sampling: LowShotSampling
    let aggregation: LowShotAggregation
    let log: FitLog
    /// The solver layout of the fits (`none` when every unit was in the log).
    let layout: String
    let journal: LayerJournal

    func document() -> SVMResultsDocument {
        let s = ctx.settings
        var provenance = ctx.provenance
        provenance.solverLayout = layout
        provenance.timings = journal.finalTimings()
        let largestK = sampling.kValues.max() ?? 0
        let rule =
            s.lowShotSelection == .vissl
            ? "VISSL rule: cost chosen by best mean test mAP" : "cost chosen by CV on the low-shot training rows"
        var doc = SVMResultsDocument(
            protocolKind: sampling.isVOC ? .voc07LowShot : .places205LowShot, layer: ctx.layer,
            metric: "mAP@k=\(largestK) (\(rule))", value: finite(aggregation.headline), costs: s.costs,
            convergence: .init(fits: aggregation.fits, notConverged: aggregation.notConverged),
            fingerprint: ctx.fingerprint, features: ctx.features, featureProvenance: ctx.featureProvenance,
            settings: s.fingerprintJSON, warnings: journal.warnings, provenance: provenance)
        doc.selectionRules = .init(
            visslRule: "per k, the cost with the highest mean test mAP over samples (VISSL's aggregate_stats; "
                + "selected on the test set, comparable with published numbers)",
            cvRule: "per class, the first cost with the best mean k-fold CV AP (scikit-learn AP) on the low-shot "
                + "training rows; test mAP of those costs")
        doc.headlineRule = s.lowShotSelection.rawValue
        doc.kValues = sampling.kValues
        doc.sampleIndices = sampling.sampleIndices
        doc.resultsByK = aggregation.results
        doc.perClassTestAPByK = perClassTestAP()
        doc.samplesFile = LowShotSampling.samplesFile
        return doc
    }

    /// Per class name, per `k=<k>`, per sample: the test AP of every cost.
    private func perClassTestAP() -> [String: [String: [[Double?]?]]] {
        let costs = ctx.settings.costs.count
        var perClass: [String: [String: [[Double?]?]]] = [:]
        for c in sampling.classes {
            var byK: [String: [[Double?]?]] = [:]
            for k in sampling.kValues {
                byK["k=\(k)"] = sampling.sampleIndices.map { sample in
                    LowShotUnitRecord(log.record(LowShotProtocol.unitKey(sample, k, c)), costs: costs)?.testAP
                }
            }
            perClass[ctx.className(c, in: ctx.train)] = byK
        }
        return perClass
    }
}
