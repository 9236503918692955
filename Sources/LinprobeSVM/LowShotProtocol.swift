import Foundation
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
///
/// Phases: `LowShotSampling` (the problems) → `LowShotFits` (per unit: every cost fit and
/// tested, and the CV of the honest rule) → `LowShotAggregation` (cost choice by both rules) →
/// `LowShotResults`. Low-shot keeps no refit models.
enum LowShotProtocol {
    static func run(_ ctx: LayerContext) throws -> SVMResultsDocument {
        let journal = LayerJournal(ctx)
        let sampling = try LowShotSampling(ctx, journal: journal)
        try sampling.writeSamplesFile(ctx.file(LowShotSampling.samplesFile), seed: ctx.settings.seed)
        let log = try FitLog(path: ctx.file("fits.log"), fresh: ctx.settings.forceRetrain)
        let layout = try LowShotFits.run(sampling, log: log, ctx: ctx, journal: journal)
        let aggregation = LowShotAggregation(sampling, log: log, settings: ctx.settings, journal: journal)
        let document = LowShotResults(
            ctx: ctx, sampling: sampling, aggregation: aggregation, log: log, layout: layout, journal: journal
        ).document()
        try document.write(to: ctx.resultsPath)
        return document
    }

    static func unitKey(_ sample: Int, _ k: Int, _ c: Int) -> String { "ls/s\(sample)/k\(k)/c\(c)" }
}

/// The rows one class trains on in one (sample, k) draw, labelled ±1.
struct ClassSample {
    let cls: Int
    let rows: [Int]
    let labels: [Int8]
}

/// The low-shot problems: the classes, the feasible k values and the seeded draws.
struct LowShotSampling {
    static let samplesFile = "low_shot_samples.json"

    let isVOC: Bool
    let width: Int
    let numClasses: Int
    let classes: [Int]
    let kValues: [Int]
    let sampleIndices: [Int]
    let testTargets: [Int64]
    /// Draws of every (sample, k), keyed `<sample>/<k>`.
    let draws: [String: [ClassSample]]

    init(_ ctx: LayerContext, journal: LayerJournal) throws {
        let s = ctx.settings
        let train = ctx.train
        isVOC = s.lowShotDataset == .voc
        let trainTargets = try train.targets()
        testTargets = try ctx.test.targets()
        width = train.targetLayout.width
        let numClasses: Int
        if isVOC {
            numClasses = width
        } else {
            let maxLabel = max(trainTargets.max() ?? -1, testTargets.max() ?? -1)
            numClasses = max(Int(maxLabel) + 1, train.numClasses)
        }
        self.numClasses = numClasses
        classes = s.classList.isEmpty ? Array(0..<numClasses) : s.classList
        if let bad = classes.first(where: { $0 >= numClasses }) {
            throw LinprobeError.config(
                "SVM.cls_list: class \(bad) does not exist (the store has \(numClasses) classes)")
        }
        sampleIndices = s.lowShotSampleIndices
        let pools = Self.pools(trainTargets, rows: train.count, isVOC: isVOC, width: width, numClasses: numClasses)
        kValues = Self.feasible(
            s.lowShotKValues, pools: pools, classes: isVOC ? classes : Array(0..<numClasses), isVOC: isVOC,
            width: width, journal: journal)
        guard !kValues.isEmpty else {
            throw LinprobeError(
                .incompatible,
                "\(train.path): no low-shot k value can be sampled (\(journal.warnings.joined(separator: "; ")))")
        }
        var draws: [String: [ClassSample]] = [:]
        for sample in sampleIndices {
            for k in kValues {
                draws["\(sample)/\(k)"] = Self.draw(
                    sample: sample, k: k, pools: pools, classes: classes, isVOC: isVOC, width: width,
                    numClasses: numClasses, seed: s.seed)
            }
        }
        self.draws = draws
    }

    /// Rows with target 1 (VOC: and rows with target 0) per class.
    private static func pools(
        _ targets: [Int64], rows: Int, isVOC: Bool, width: Int, numClasses: Int
    ) -> (positives: [[Int]], negatives: [[Int]]) {
        var positives = [[Int]](repeating: [], count: numClasses)
        var negatives = [[Int]](repeating: [], count: numClasses)
        for r in 0..<rows {
            if isVOC {
                for c in 0..<width {
                    let t = targets[r * width + c]
                    if t == 1 { positives[c].append(r) } else if t == 0 { negatives[c].append(r) }
                }
            } else {
                let t = Int(targets[r])
                if t >= 0 && t < numClasses { positives[t].append(r) }
            }
        }
        return (positives, negatives)
    }

    /// The k values every class can be sampled at (VISSL skips k above the smallest class for
    /// Places; VOC would fail); each skipped k is a warning.
    private static func feasible(
        _ kValues: [Int], pools: (positives: [[Int]], negatives: [[Int]]), classes: [Int], isVOC: Bool, width: Int,
        journal: LayerJournal
    ) -> [Int] {
        var feasible: [Int] = []
        for k in kValues {
            var blocker: String? = nil
            for c in classes {
                if pools.positives[c].count < k {
                    blocker = "class \(c) has \(pools.positives[c].count) positive training rows"
                    break
                }
                if isVOC && pools.negatives[c].count < (width - 1) * k {
                    let needed = (width - 1) * k
                    blocker = "class \(c) has \(pools.negatives[c].count) absent training rows, \(needed) needed"
                    break
                }
            }
            if let blocker { journal.warn("k = \(k) skipped: \(blocker)") } else { feasible.append(k) }
        }
        return feasible
    }

    /// One (sample, k) draw for every class.
    private static func draw(
        sample: Int, k: Int, pools: (positives: [[Int]], negatives: [[Int]]), classes: [Int], isVOC: Bool,
        width: Int, numClasses: Int, seed: UInt64
    ) -> [ClassSample] {
        var out: [ClassSample] = []
        if isVOC {
            for c in classes {
                var rng = SolverRandom(seed: mixSeed([seed, 0x4C53_0001, UInt64(sample), UInt64(k), UInt64(c)]))
                let pos = pick(pools.positives[c], k, &rng)
                let neg = pick(pools.negatives[c], (width - 1) * k, &rng)
                let rows = (pos + neg).sorted()
                let posSet = Set(pos)
                out.append(ClassSample(cls: c, rows: rows, labels: rows.map { posSet.contains($0) ? 1 : -1 }))
            }
        } else {
            var all: [(Int, Int)] = []
            for c in 0..<numClasses {
                var rng = SolverRandom(seed: mixSeed([seed, 0x4C53_0002, UInt64(sample), UInt64(k), UInt64(c)]))
                all += pick(pools.positives[c], k, &rng).map { ($0, c) }
            }
            all.sort { $0.0 < $1.0 }
            let rows = all.map(\.0)
            for c in classes {
                out.append(ClassSample(cls: c, rows: rows, labels: all.map { $0.1 == c ? 1 : -1 }))
            }
        }
        return out
    }

    /// `count` distinct elements of `pool`, uniformly (partial Fisher–Yates).
    static func pick(_ pool: [Int], _ count: Int, _ rng: inout SolverRandom) -> [Int] {
        var p = pool
        for i in 0..<count {
            let j = i + rng.int(below: p.count - i)
            p.swapAt(i, j)
        }
        return Array(p[0..<count])
    }

    /// The drawn rows (`low_shot_samples.json`), so a draw can be checked or replayed.
    struct SamplesDocument: Codable {
        var rule: String
        var seed: Int64
        var classes: [Int]
        /// `sample<s>_k<k>`: VOC, the rows of each class; Places, the one row set of all classes.
        var rows: [String: [[Int]]]
    }

    func writeSamplesFile(_ path: String, seed: UInt64) throws {
        var rows: [String: [[Int]]] = [:]
        for sample in sampleIndices {
            for k in kValues {
                let d = draws["\(sample)/\(k)"] ?? []
                rows["sample\(sample)_k\(k)"] = isVOC ? d.map(\.rows) : [d.first?.rows ?? []]
            }
        }
        let document = SamplesDocument(
            rule: isVOC
                ? "per class: k rows with target 1 and (C-1)k rows with target 0, without replacement"
                : "per class: k rows of that class, without replacement",
            seed: Int64(bitPattern: seed), classes: classes, rows: rows)
        try AtomicFile.write(try prettyJSON(document), to: path)
    }
}

/// Pretty, key-sorted JSON (the formatting of `JSONValue.prettyText()`), without a final newline.
func prettyJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
