import CLinprobeSVMKernels
import Foundation
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeSVM

/// The Gram layout's lazy updates (`GramKernel`) against eager ones: the same bits.
@Suite("SVM lazy Gram updates")
struct LazyGramTests {
    /// Pending updates of three problems over an n×n symmetric float32 matrix: problem 0 has 9
    /// (one row repeated), problem 1 none, problem 2 four; `stride` slots per problem.
    private struct Updates {
        let n: Int
        let stride = 9
        let counts = [9, 0, 4]
        var gram: [Float]
        var cols: [Int32]
        var deltas: [Double]
        let start: [Double]

        init(n: Int) {
            self.n = n
            var g = SeededGenerator(seed: UInt64(n))
            gram = [Float](repeating: 0, count: n * n)
            for i in 0..<n {
                for j in 0...i {
                    let v = Float(Double(g.next() % 2_000_001) / 1_000_000 - 1)
                    gram[i * n + j] = v
                    gram[j * n + i] = v
                }
            }
            cols = [Int32](repeating: 0, count: 3 * stride)
            deltas = [Double](repeating: 0, count: 3 * stride)
            for p in 0..<3 {
                for s in 0..<counts[p] {
                    cols[p * stride + s] = s == 3 ? cols[p * stride] : Int32(g.next() % UInt64(n))
                    deltas[p * stride + s] = Double(g.next() % 1_000_001) / 3e5 - 1.7
                }
            }
            start = (0..<(3 * n)).map { Double($0 % 17) * 0.37 - 2.1 }
        }

        /// One axpy per update, in order, with the given level's kernel.
        func axpys(level: Int32) -> [Double] {
            var u = start
            u.withUnsafeMutableBufferPointer { up in
                gram.withUnsafeBufferPointer { kp in
                    guard let k = kp.baseAddress, let base = up.baseAddress else { return }
                    for p in 0..<3 {
                        for s in 0..<counts[p] {
                            let row = k + Int(cols[p * stride + s]) * n
                            lp_axpy_f32_f64_at(level, deltas[p * stride + s], row, base + p * n, n)
                        }
                    }
                }
            }
            return u
        }

        /// Every element's lazy margin (from `start` and the pending updates).
        func margins(level: Int32) -> [Double] {
            var out = start
            gram.withUnsafeBufferPointer { kp in
                cols.withUnsafeBufferPointer { cp in
                    deltas.withUnsafeBufferPointer { dp in
                        guard let k = kp.baseAddress, let c = cp.baseAddress, let d = dp.baseAddress else { return }
                        for p in 0..<3 {
                            for j in 0..<n {
                                out[p * n + j] = lp_gram_lazy_margin_at(
                                    level, start[p * n + j], k + j * n, c + p * stride, d + p * stride, counts[p])
                            }
                        }
                    }
                }
            }
            return out
        }

        func flushed(level: Int32) -> [Double] {
            var u = start
            lp_gram_flush_at(level, gram, n, &u, 3, counts, cols, deltas, stride)
            return u
        }
    }

    @Test("every variant's flush and margin equal one eager axpy per update, bit for bit", arguments: [37, 203])
    func kernelsMatchEagerAxpys(_ n: Int) {
        let updates = Updates(n: n)
        let reference = updates.axpys(level: 0).map(\.bitPattern)
        #expect(reference != updates.start.map(\.bitPattern))
        for level in 0...lp_svm_kernel_level() {
            #expect(updates.axpys(level: level).map(\.bitPattern) == reference, "level \(level) axpy")
            #expect(updates.flushed(level: level).map(\.bitPattern) == reference, "level \(level) flush")
            #expect(updates.margins(level: level).map(\.bitPattern) == reference, "level \(level) margins")
        }
    }

    @Test(
        "lazy updates give the eager iterates bit for bit: a batch with shrinking, converged and unconverged fits",
        arguments: [2, 7, 32])
    func lazyEqualsEager(_ block: Int) throws {
        let dir = try TemporaryDirectory()
        let (train, _) = try makeToyStores(dir, rows: 120, dim: 40)
        let reader = try FeatureStoreReader(path: train)
        let features = try FeatureMatrix(reader: reader, layer: "feat", normalize: true)
        let settings = try visslSettings(["max_iter": 300])
        let eager = SVMTrainer(features: features, settings: settings, layout: .gram, blasThreads: 1)
        eager.gramBlock = 1
        let lazy = SVMTrainer(parent: eager, rows: Array(0..<120))
        lazy.gramBlock = block
        let targets = try reader.targets()
        func problems(_ rows: [Int]) -> [(labels: [Int8], cost: Double)] {
            let labels: [[Int8]] = (0..<3).map { c in rows.map { targets[$0 * 3 + c] == 1 ? 1 : -1 } }
            return [(labels[0], 0.01), (labels[1], 1000), (labels[2], 1), (labels[0], 100), (labels[1], 0.1)]
        }
        let rows = Array(0..<90)
        let a = eager.fitBatch(
            rows: rows, problems: problems(rows), seed: 3, scoreRows: Array(0..<120), wantWeights: true)
        let b = lazy.fitBatch(
            rows: rows, problems: problems(rows), seed: 3, scoreRows: Array(0..<120), wantWeights: true)
        #expect(a.contains { !$0.outcome.converged } && a.contains { $0.outcome.converged })
        #expect(a.contains { $0.alpha.contains(0) }, "some variables at the bound (shrinking candidates)")
        for q in a.indices {
            #expect(a[q].outcome == b[q].outcome, "problem \(q)")
            #expect(a[q].alpha.map(\.bitPattern) == b[q].alpha.map(\.bitPattern), "problem \(q)")
            #expect(a[q].margins.map(\.bitPattern) == b[q].margins.map(\.bitPattern), "problem \(q)")
            #expect(a[q].weights == b[q].weights, "problem \(q)")
        }
        // A CV fold's truncated matrix (held-out rows scored at the end) too.
        let trainRows = (0..<120).filter { $0 % 3 != 1 }, heldOut = (0..<120).filter { $0 % 3 == 1 }
        let m = trainRows.count
        let foldEager = SVMTrainer(parent: eager, rows: trainRows + heldOut, columns: m)
        let foldLazy = SVMTrainer(parent: lazy, rows: trainRows + heldOut, columns: m)
        let c = foldEager.fitBatch(
            rows: Array(0..<m), problems: problems(trainRows), seed: 4, scoreRows: Array(m..<120))
        let d = foldLazy.fitBatch(rows: Array(0..<m), problems: problems(trainRows), seed: 4, scoreRows: Array(m..<120))
        #expect(c.contains { !$0.outcome.converged })
        for q in c.indices {
            #expect(c[q].outcome == d[q].outcome, "fold problem \(q)")
            #expect(c[q].alpha.map(\.bitPattern) == d[q].alpha.map(\.bitPattern), "fold problem \(q)")
            #expect(c[q].margins.map(\.bitPattern) == d[q].margins.map(\.bitPattern), "fold problem \(q)")
        }
    }
}
