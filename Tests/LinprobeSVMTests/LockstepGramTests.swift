import CLinprobeSVMKernels
import Foundation
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeSVM

/// The lockstep solver (every CV group of a layer visiting one shared order) against `DualCD`
/// solving each group alone over its fold's own Gram matrix with the same order: the same bits.
@Suite("SVM lockstep Gram solver")
struct LockstepGramTests {
    /// Three classes × three stratified folds of a 150-row toy layer (costs that converge and
    /// costs that stop at `max_iter`), two groups that share jobs with different tiles, and three
    /// refit-like groups over every row.
    private struct Setup {
        let trainer: SVMTrainer
        let groups: [LockstepGroup]
        let settings: SVMSettings

        init(dir: TemporaryDirectory, rows: Int = 150, maxIter: Int = 60, loss: SVMLoss = .squaredHinge) throws {
            let (train, _) = try makeToyStores(dir, rows: rows, dim: 40)
            let reader = try FeatureStoreReader(path: train)
            let features = try FeatureMatrix(reader: reader, layer: "feat", normalize: true)
            settings = try visslSettings(["max_iter": .int(Int64(maxIter)), "loss": .string(loss.rawValue)])
            trainer = SVMTrainer(features: features, settings: settings, layout: .gram, blasThreads: 1)
            let targets = try reader.targets()
            var groups: [LockstepGroup] = []
            for c in 0..<3 {
                let y: [Int8] = (0..<rows).map { targets[$0 * 3 + c] == 1 ? 1 : -1 }
                let folds = try #require(StratifiedKFold.testFolds(labels: y, folds: 3))
                for f in 0..<3 {
                    let train = (0..<rows).filter { folds[$0] != f }, held = (0..<rows).filter { folds[$0] == f }
                    // Class 2: VISSL's eleven costs (whole-group jobs of up to LP_LOCKSTEP_MAX_JOB problems).
                    let costs =
                        c == 1
                        ? [1000.0]
                        : c == 2 ? [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000] : [0.01, 1, 100, 1000, 0.1]
                    groups.append(
                        LockstepGroup(rows: train, labels: train.map { y[$0] }, costs: costs, scoreRows: held))
                }
            }
            // Two groups whose training rows differ by one column tile (the last but one), next to
            // each other in the lockstep's order: one job, updating the union of their tiles.
            let y0: [Int8] = (0..<rows).map { targets[$0 * 3] == 1 ? 1 : -1 }
            let tile = Int(LP_LOCKSTEP_TILE), lastTile = (rows - 1) / tile
            for from in [(lastTile - 1) * tile, lastTile * tile] {
                let train = Array(0..<from)
                groups.append(
                    LockstepGroup(
                        rows: train, labels: train.map { y0[$0] }, costs: [0.01, 1, 100, 1000, 0.1],
                        scoreRows: Array(from..<rows)))
            }
            // Refits: every row, one class each; groups with the same rows share jobs.
            for c in 0..<3 {
                let y: [Int8] = (0..<rows).map { targets[$0 * 3 + c] == 1 ? 1 : -1 }
                groups.append(
                    LockstepGroup(rows: Array(0..<rows), labels: y, costs: [c == 0 ? 1000 : 1], scoreRows: []))
            }
            self.groups = groups
        }

        func parameters(block: Int, subBlock: Int = 16, level: Int32) -> LockstepParameters {
            LockstepParameters(
                loss: settings.loss, tolerance: settings.tolerance, maxIterations: settings.maxIterations, seed: 77,
                positiveClassWeight: settings.positiveClassWeight, negativeClassWeight: settings.negativeClassWeight,
                block: block, subBlock: subBlock, level: level)
        }

        /// Each group alone: `DualCD` over the fold's own matrix (training rows first), lazy updates.
        func reference() -> [[FitResult]] {
            let n = trainer.features.count
            return groups.map { g in
                let local = SVMTrainer(parent: trainer, rows: g.rows + g.scoreRows, columns: g.rows.count)
                let m = g.rows.count
                return local.fitBatch(
                    rows: Array(0..<m), problems: g.costs.map { (g.labels, $0) }, seed: 77,
                    scoreRows: Array(m..<(m + g.scoreRows.count)), order: (g.rows, n))
            }
        }
    }

    @Test(
        "every group's iterates equal DualCD's alone with the same order, bit for bit, at every kernel level",
        arguments: [
            (1, 5, 16, SVMLoss.squaredHinge), (2, 64, 16, .squaredHinge), (2, 256, 3, .squaredHinge), (2, 7, 1, .hinge),
        ])
    func lockstepEqualsDualCD(_ threads: Int, _ block: Int, _ subBlock: Int, _ loss: SVMLoss) throws {
        let dir = try TemporaryDirectory()
        let setup = try Setup(dir: dir, loss: loss)
        #expect(setup.settings.loss == loss)
        let reference = setup.reference()
        let all = reference.flatMap { $0 }
        #expect(all.contains { !$0.outcome.converged } && all.contains { $0.outcome.converged })
        #expect(all.contains { $0.alpha.contains(0) }, "some variables at the bound (shrinking candidates)")
        for level in 0...lp_svm_kernel_level() {
            let gram = try #require(setup.trainer.gram)
            let solved = LockstepGram.solve(
                gram: gram, groups: setup.groups,
                parameters: setup.parameters(block: block, subBlock: subBlock, level: level),
                threads: threads)
            for (g, results) in solved.enumerated() {
                for (q, r) in results.enumerated() {
                    let e = reference[g][q]
                    #expect(r.outcome == e.outcome, "level \(level) group \(g) problem \(q)")
                    #expect(
                        r.alpha.map(\.bitPattern) == e.alpha.map(\.bitPattern), "level \(level) group \(g) problem \(q)"
                    )
                    for (a, b) in zip(r.margins, e.margins) {
                        #expect(abs(a - b) <= 1e-12 * max(1, abs(b)), "level \(level) group \(g) problem \(q)")
                    }
                }
            }
        }
    }

    @Test("the update kernel and the margins kernel equal one axpy per update at every level")
    func kernelsMatchAxpys() {
        let n = 53, count = 9, problems = 83
        var g = SeededGenerator(seed: 5)
        var gram = [Float](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                let v = Float(Double(g.next() % 2_000_001) / 1_000_000 - 1)
                gram[i * n + j] = v
                gram[j * n + i] = v
            }
        }
        let rows: [Int32] = (0..<count).map { _ in Int32(g.next() % UInt64(n)) }
        let stride = 88
        var delta = [Double](repeating: 0, count: count * stride)
        for k in 0..<count where k != 3 {  // position 3: no update at all
            for j in 0..<problems where g.next() % 3 != 0 {
                delta[k * stride + j] = Double(g.next() % 1000) / 300 - 1.6
            }
        }
        let tile = Int(LP_LOCKSTEP_TILE)
        let padded = (n + tile - 1) / tile * tile
        let start = (0..<(problems * padded)).map { Double($0 % 23) * 0.41 - 3.3 }
        // Reference: each problem's updates, one axpy per nonzero coefficient, in order.
        var expected = start
        for j in 0..<problems {
            for k in 0..<count where delta[k * stride + j] != 0 {
                gram.withUnsafeBufferPointer { kp in
                    expected.withUnsafeMutableBufferPointer { e in
                        lp_axpy_f32_f64_at(
                            0, delta[k * stride + j], kp.baseAddress! + Int(rows[k]) * n, e.baseAddress! + j * padded, n
                        )
                    }
                }
            }
        }
        var block = [Double](repeating: 0, count: count * count)
        let lower: [Int32] = Array(0..<Int32(count))
        for k in 0..<count { lp_lockstep_block_gram(gram, n, rows, k, k + 1, lower, k, &block, count) }
        for k in 0..<count {
            for q in 0..<k {
                #expect(block[k * count + q] == Double(gram[Int(rows[k]) * n + Int(rows[q])]), "block Gram \(k), \(q)")
            }
        }
        for level in 0...lp_svm_kernel_level() {
            // The block update, jobs of every size from 1 to 12 problems in turn, every tile.
            var values = start
            let masks = [UInt8](repeating: 1, count: padded / tile)
            values.withUnsafeMutableBufferPointer { v in
                masks.withUnsafeBufferPointer { m in
                    let width = Int(LP_LOCKSTEP_MAX_JOB)
                    var cols: [Int] = [], sizes: [Int] = []
                    var pointers: [UnsafeMutablePointer<Double>?] = [], tiles: [UnsafePointer<UInt8>?] = []
                    var j = 0
                    while j < problems {
                        let size = min(sizes.count % width + 1, problems - j)
                        cols += (0..<width).map { $0 < size ? j + $0 : 0 }
                        pointers += (0..<width).map { $0 < size ? v.baseAddress! + (j + $0) * padded : nil }
                        sizes.append(size)
                        tiles.append(m.baseAddress!)
                        j += size
                    }
                    var panel = [Float](repeating: 0, count: (count + 1) * 2 * tile)
                    var klists = [Int32](repeating: 0, count: sizes.count * count)
                    // In two column ranges, as two threads split a block.
                    let allTiles = padded / tile
                    for range in [0..<(allTiles / 2), (allTiles / 2)..<allTiles] {
                        lp_lockstep_update(
                            level, gram, n, n, range.lowerBound, range.upperBound, rows, count, delta, stride,
                            sizes.count, cols, sizes, pointers, tile, tiles, 2, &panel, &klists, rows, count)
                    }
                }
            }
            for j in 0..<problems {
                let got = values[(j * padded)..<(j * padded + n)].map(\.bitPattern)
                let want = expected[(j * padded)..<(j * padded + n)].map(\.bitPattern)
                #expect(got == want, "level \(level) update, problem \(j)")
            }
            // The margins of every column from the start values and the positions with updates, in one
            // call, and in uneven column ranges with the positions split over two chained calls.
            let kb = (0..<(n * count)).map { Double(gram[($0 / count) * n + Int(rows[$0 % count])]) }
            let klist = (0..<Int32(count)).filter { $0 != 3 }
            let initial = (0..<(n * stride)).map {
                $0 % stride < problems ? start[($0 % stride) * padded + $0 / stride] : 0
            }
            var whole = initial, split = initial
            lp_lockstep_margins(
                level, kb, count, 0, n, klist, klist.count, delta, stride, problems, &whole, stride)
            for range in [0..<5, 5..<6, 6..<n] {
                split.withUnsafeMutableBufferPointer { m in
                    let out = m.baseAddress! + range.lowerBound * stride
                    lp_lockstep_margins(
                        level, kb, count, range.lowerBound, range.upperBound, klist, 4, delta, stride, problems, out,
                        stride)
                    klist.withUnsafeBufferPointer { kl in
                        lp_lockstep_margins(
                            level, kb, count, range.lowerBound, range.upperBound, kl.baseAddress! + 4, kl.count - 4,
                            delta, stride, problems, out, stride)
                    }
                }
            }
            for c in 0..<n {
                for j in 0..<problems {
                    let want = expected[j * padded + c].bitPattern
                    #expect(whole[c * stride + j].bitPattern == want, "level \(level) margin \(j), \(c)")
                    #expect(split[c * stride + j].bitPattern == want, "level \(level) split margin \(j), \(c)")
                }
            }
        }
    }
}
