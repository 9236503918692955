import CLinprobeSVMKernels
import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// Everything a protocol needs for one layer.
struct LayerContext {
    let layer: String
    let train: FeatureStoreReader
    let test: FeatureStoreReader
    let settings: SVMSettings
    /// The layer's folder (`WorkdirLayout.Artifact.svmLayer`).
    let directory: String
    let fingerprint: String
    let threads: Int
    let gramBudgetBytes: Int
    /// The solver layout forced by the caller (nil: chosen per layer).
    let layout: SolverLayout?
    /// Provenance of the two stores, carried into the results document.
    let featureProvenance: SVMResultsDocument.FeatureProvenancePair
    /// (phase, done, total) as fits finish.
    let progress: @Sendable (String, Int, Int) -> Void
    /// A warning about this layer (already prefixed with the layer name by the caller's sink).
    let warn: @Sendable (String) -> Void

    /// A file of the layer's folder.
    func file(_ name: String) -> String { Paths.join(directory, name) }

    var resultsPath: String { WorkdirLayout.resultsFile(in: directory) }

    func className(_ c: Int, in reader: FeatureStoreReader) -> String {
        c < reader.classNames.count ? reader.classNames[c] : "class\(c)"
    }

    /// `features` of the results: where the two stores were.
    var features: SVMResultsDocument.Features {
        SVMResultsDocument.Features(
            train: .init(path: train.path, fingerprint: train.fingerprint, rows: train.count),
            test: .init(path: test.path, fingerprint: test.fingerprint, rows: test.count))
    }

    /// Tool, BLAS and kernels, threads; the protocol adds layouts and timings.
    var provenance: SVMResultsDocument.Provenance {
        SVMResultsDocument.Provenance(
            toolVersion: LinprobeVersion.string, blas: BLAS.config, blasCore: BLAS.coreName,
            vectorKernels: String(cString: lp_svm_kernel_name()), threads: threads)
    }
}

/// The warnings and phase timings of one layer's run.
final class LayerJournal {
    private let context: LayerContext
    private let started = Date()
    private(set) var warnings: [String] = []
    private(set) var timings: [String: Double] = [:]

    init(_ context: LayerContext) { self.context = context }

    /// Records a warning and passes it on, prefixed with the layer.
    func warn(_ message: String) {
        warnings.append(message)
        context.warn("\(context.layer): \(message)")
    }

    /// Runs `body` and records its wall time as `<name>_seconds`.
    func time<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
        let start = Date()
        defer { timings["\(name)_seconds"] = Date().timeIntervalSince(start) }
        return try body()
    }

    /// The timings with `total_seconds`.
    func finalTimings() -> [String: Double] {
        var t = timings
        t["total_seconds"] = Date().timeIntervalSince(started)
        return t
    }
}

/// VOC test evaluation of one class: difficult (−1) rows dropped, positives = target 1.
struct TestEvaluation {
    var positives = 0
    var negatives = 0
    var difficult = 0
    var allPoints: Double?
    var elevenPoint: Double?

    init(scores: [Double], targets: [Int64], width: Int, column: Int) {
        var s: [Double] = []
        var p: [Bool] = []
        s.reserveCapacity(scores.count)
        p.reserveCapacity(scores.count)
        for r in 0..<scores.count {
            let t = targets[r * width + column]
            if t == -1 { difficult += 1; continue }
            s.append(scores[r])
            p.append(t > 0)
            if t > 0 { positives += 1 } else { negatives += 1 }
        }
        allPoints = AveragePrecision.vocAllPoints(scores: s, positive: p)
        elevenPoint = AveragePrecision.vocElevenPoint(scores: s, positive: p)
    }

    /// Single-label (one-vs-rest) evaluation: rows with target < 0 dropped, positives = class.
    init(scores: [Double], singleLabelTargets targets: [Int64], positiveClass: Int) {
        var s: [Double] = []
        var p: [Bool] = []
        for r in 0..<scores.count {
            let t = targets[r]
            if t < 0 { difficult += 1; continue }
            s.append(scores[r])
            p.append(t == Int64(positiveClass))
            if t == Int64(positiveClass) { positives += 1 } else { negatives += 1 }
        }
        allPoints = AveragePrecision.vocAllPoints(scores: s, positive: p)
        elevenPoint = AveragePrecision.vocElevenPoint(scores: s, positive: p)
    }
}

/// numpy's `argmax` over a row that may hold NaN (nil here): the first NaN wins, otherwise the
/// first maximum. VISSL picks the cost this way, so a class whose CV AP is undefined for every
/// cost gets the first cost.
func numpyArgmax(_ values: [Double?]) -> Int {
    if let firstNaN = values.firstIndex(where: { $0 == nil }) { return firstNaN }
    let defined = values.compactMap { $0 }
    var best = 0
    for (i, v) in defined.enumerated() where v > defined[best] { best = i }
    return best
}

/// The mean of `values` when every one is defined, else nil.
func meanIfDefined(_ values: [Double?]) -> Double? {
    let defined = values.compactMap { $0 }
    guard defined.count == values.count, !values.isEmpty else { return nil }
    return defined.reduce(0, +) / Double(values.count)
}

/// A number as results record it: nil for an undefined (non-finite) value.
func finite(_ d: Double?) -> Double? {
    guard let d, d.isFinite else { return nil }
    return d
}

extension JSONValue {
    /// A log value: null for nil or non-finite.
    static func number(_ d: Double?) -> JSONValue {
        guard let d, d.isFinite else { return .null }
        return .double(d)
    }
}
