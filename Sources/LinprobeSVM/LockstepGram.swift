import CLinprobeSVMKernels
import Foundation

/// Problems that share their training rows (the costs of one (class, fold)): rows of the layer's
/// Gram matrix, labels ±1 per training row, one cost per problem, and the rows to score at the end.
struct LockstepGroup {
    let rows: [Int]
    let labels: [Int8]
    let costs: [Double]
    let scoreRows: [Int]
}

/// One problem's result: how the fit ended, the dual variables (one per training row of its group)
/// and the decision values of the group's score rows.
struct LockstepResult {
    var outcome: FitOutcome
    var alpha: [Double]
    var margins: [Double]
}

/// Settings of a lockstep run.
struct LockstepParameters {
    var loss: SVMLoss
    var tolerance: Double
    var maxIterations: Int
    /// Seed of the shared visiting order (a `SweepOrder` over every row of the Gram matrix).
    var seed: UInt64
    var positiveClassWeight: Double
    var negativeClassWeight: Double
    /// Visiting positions per block: the decision values are brought up to date once per block.
    /// (VOC07-sized benchmark, 2,048-d, max_iter 300, AVX-512 Zen 5: 64, 128 and 256 took 37.1,
    /// 36.2 and 39.2 s; a longer block lengthens every visit's margin, a shorter one reads the
    /// decision values and converts the Gram rows more often.)
    var block = 128
    /// Kernel level (-1: the CPU's; tests pin lower ones).
    var level: Int32 = -1
}

/// liblinear's dual coordinate descent (`DualCD`, same iterates bit for bit) for many groups of
/// problems over one Gram matrix K̃, all visiting the rows in one shared order (`SweepOrder` over
/// every row; a problem skips rows outside its group and rows it has shrunk).
///
/// Why: `DualCD` with `GramKernel` reads a Gram row per update for the problems of one group
/// only, so each outer iteration of each group streams its whole matrix (45 MB for a VOC07 fold)
/// from memory — the CV phase was bound by memory bandwidth. Here every problem of every group
/// visits the same row at the same time, so one read of a block of rows serves them all:
/// the decision values u_p = K̃(α_p∘y_p) of every problem are updated once per block of positions,
/// as a register-blocked product of the block's rows (converted to float64 once per thread and
/// column chunk) with the block's coefficients (`lp_lockstep_update`), and a visit's decision value
/// is u_p[row] plus the terms of the block so far (`lp_lockstep_margins`, vectorised across
/// problems). Both apply each problem's updates as fused multiply-adds in the order they were made
/// (a position without an update adds an exact zero), as `lp_axpy_f32_f64` does one update after
/// another, so every problem's iterates equal `DualCD`'s with the same order (tested at every kernel
/// level). Only column tiles holding training rows of a group are kept up to date; score rows
/// are computed from α at the end.
///
/// Threads take whole groups (a problem's result does not depend on which thread or which other
/// problems ran with it), each thread running its own lockstep over its groups.
enum LockstepGram {
    static func solve(
        gram: GramMatrix, groups: [LockstepGroup], parameters: LockstepParameters, threads: Int
    ) -> [[LockstepResult]] {
        precondition(gram.columns == gram.count, "the lockstep solver needs the full Gram matrix")
        let parts = partition(groups, threads: threads)
        let results = Locked([[LockstepResult]](repeating: [], count: groups.count))
        try? Parallel.forEach(count: parts.count, threads: parts.count) { t in
            let mine = parts[t].map { groups[$0] }
            let solved = Run(gram: gram, groups: mine, parameters: parameters).solve()
            results.withLock { all in
                for (k, g) in parts[t].enumerated() { all[g] = solved[k] }
            }
        }
        return results.withLock { $0 }
    }

    /// Groups per thread, balanced by problems × training rows (largest first, to the least loaded).
    static func partition(_ groups: [LockstepGroup], threads: Int) -> [[Int]] {
        let count = max(1, min(threads, groups.count))
        var parts = [[Int]](repeating: [], count: count)
        var load = [Int](repeating: 0, count: count)
        let order = groups.indices.sorted {
            let a = groups[$0].costs.count * groups[$0].rows.count, b = groups[$1].costs.count * groups[$1].rows.count
            return a != b ? a > b : $0 < $1
        }
        for g in order {
            let t = load.indices.min { load[$0] != load[$1] ? load[$0] < load[$1] : $0 < $1 } ?? 0
            parts[t].append(g)
            load[t] += groups[g].costs.count * groups[g].rows.count
        }
        return parts.map { $0.sorted() }.filter { !$0.isEmpty }
    }
}

extension LockstepGram {
    /// One thread's lockstep over its groups.
    final class Run {
        let gram: GramMatrix
        let groups: [LockstepGroup]
        let parameters: LockstepParameters
        let n: Int
        /// Decision values per problem, padded to whole tiles.
        let paddedColumns: Int
        let tiles: Int
        let problems: [Problem]
        let state: States
        /// Per group: the id of its set of training rows (equal rows, equal id).
        let rowSets: [Int]
        /// `problems`, for the visits.
        private let table: UnsafeMutablePointer<Problem>

        /// A problem: its group, and 1/(2C_i) and the upper bound for each label.
        struct Problem {
            let group: Int
            let diagonal: (negative: Double, positive: Double)
            let upper: (negative: Double, positive: Double)
        }

        init(gram: GramMatrix, groups: [LockstepGroup], parameters p: LockstepParameters) {
            self.gram = gram
            self.groups = groups
            parameters = p
            n = gram.count
            let tile = Int(LP_LOCKSTEP_TILE)
            tiles = (n + tile - 1) / tile
            paddedColumns = tiles * tile
            var problems: [Problem] = []
            for (g, group) in groups.enumerated() {
                precondition(group.labels.count == group.rows.count, "lockstep labels and rows disagree")
                for cost in group.costs {
                    let cNeg = cost * p.negativeClassWeight, cPos = cost * p.positiveClassWeight
                    switch p.loss {
                    case .squaredHinge:
                        problems.append(
                            Problem(group: g, diagonal: (0.5 / cNeg, 0.5 / cPos), upper: (.infinity, .infinity)))
                    case .hinge:
                        problems.append(Problem(group: g, diagonal: (0, 0), upper: (cNeg, cPos)))
                    }
                }
            }
            self.problems = problems
            table = .allocate(capacity: max(problems.count, 1))
            table.initialize(from: problems, count: problems.count)
            var ids: [[Int]: Int] = [:]
            rowSets = groups.map { g in
                if let id = ids[g.rows] { return id }
                ids[g.rows] = ids.count
                return ids.count - 1
            }
            state = States(
                groups: groups, problems: problems.map(\.group), n: n, paddedColumns: paddedColumns, tiles: tiles)
        }

        deinit { table.deallocate() }

        func solve() -> [[LockstepResult]] {
            defer { state.deallocate() }
            var order = SweepOrder(seed: parameters.seed, count: n)
            defer { order.deallocate() }
            var running = Array(problems.indices).filter { !groups[problems[$0].group].rows.isEmpty }
            for p in problems.indices where groups[problems[p].group].rows.isEmpty {
                state.outcomes[p] = FitOutcome(iterations: 0, converged: true)
            }
            var sweeps = 0
            let scratch = Scratch(problems: problems.count, block: parameters.block, tiles: tiles)
            defer { scratch.deallocate() }
            while !running.isEmpty && sweeps < parameters.maxIterations {
                for p in running {
                    state.pgMaxNew[p] = -.infinity
                    state.pgMinNew[p] = .infinity
                }
                order.advance()
                let jobs = Jobs(
                    running: running, problems: problems, rowSets: rowSets, state: state, paddedColumns: paddedColumns)
                var start = 0
                while start < n {
                    let count = min(parameters.block, n - start)
                    block(order: order.order + start, count: count, running: running, jobs: jobs, scratch: scratch)
                    start += count
                }
                sweeps += 1
                running = endSweep(running, sweeps: sweeps)
            }
            return results()
        }

        /// One block of visiting positions: each position's decision values for every running
        /// problem, the visits, then the block's updates of every problem's decision values.
        private func block(order: UnsafePointer<Int>, count: Int, running: [Int], jobs: Jobs, scratch: Scratch) {
            let stride = scratch.deltaStride
            let rows = scratch.rows
            for k in 0..<count { rows[k] = Int32(truncatingIfNeeded: order[k]) }
            scratch.delta.update(repeating: 0, count: count * stride)
            let margins = scratch.margins
            for k in 0..<count {
                let r = order[k]
                for (j, p) in running.enumerated() { margins[j] = state.values[p * paddedColumns + r] }
                lp_lockstep_margins(
                    parameters.level, gram.row(r), rows, k, scratch.delta, stride, running.count, margins)
                let norm = gram.diagonal[r]
                for (j, p) in running.enumerated() {
                    if let d = visit(p, row: r, margin: margins[j], norm: norm) { scratch.delta[k * stride + j] = d }
                }
            }
            jobs.withPointers { cols, sizes, values, masks, jobCount in
                lp_lockstep_update(
                    parameters.level, gram.row(0), n, n, rows, count, scratch.delta, stride, jobCount, cols, sizes,
                    values, masks, scratch.chunkTiles(count: count), scratch.panel, scratch.klists)
            }
        }

        /// liblinear's visit of `row` by problem `p` (shrinking, projected gradient, clipped Newton
        /// step); returns the coefficient of the update (nil: none).
        @inline(__always)
        private func visit(_ p: Int, row r: Int, margin: Double, norm: Double) -> Double? {
            let at = r * state.problemCount + p
            if state.active[at] == 0 { return nil }
            let problem = table[p]
            let positive = state.labels[r * state.groupCount + problem.group] > 0
            let yi: Double = positive ? 1 : -1
            let diag = positive ? problem.diagonal.positive : problem.diagonal.negative
            let upper = positive ? problem.upper.positive : problem.upper.negative
            let a = state.alpha[at]
            let g = yi * margin - 1 + a * diag
            var pg = 0.0
            if a == 0 {
                if g > state.pgMaxOld[p] {
                    state.shrink(p, at)
                    return nil
                } else if g < 0 {
                    pg = g
                }
            } else if a == upper {
                if g < state.pgMinOld[p] {
                    state.shrink(p, at)
                    return nil
                } else if g > 0 {
                    pg = g
                }
            } else {
                pg = g
            }
            if pg > state.pgMaxNew[p] { state.pgMaxNew[p] = pg }
            if pg < state.pgMinNew[p] { state.pgMinNew[p] = pg }
            if abs(pg) <= 1e-12 { return nil }
            let updated = min(max(a - g / (diag + norm), 0), upper)
            state.alpha[at] = updated
            let d = (updated - a) * yi
            return d != 0 ? d : nil
        }

        /// liblinear's stopping test per problem (as `DualCD`): converged when the gap is within
        /// `tol` with every row active; with some shrunk, all are reactivated and checked again.
        private func endSweep(_ running: [Int], sweeps: Int) -> [Int] {
            var still: [Int] = []
            still.reserveCapacity(running.count)
            for p in running {
                state.outcomes[p].iterations = sweeps
                let members = groups[problems[p].group].rows.count
                if state.pgMaxNew[p] - state.pgMinNew[p] <= parameters.tolerance {
                    if state.activeCount[p] == members {
                        state.outcomes[p].converged = true
                        continue
                    }
                    state.reactivate(p, group: problems[p].group)
                    state.pgMaxOld[p] = .infinity
                    state.pgMinOld[p] = -.infinity
                } else {
                    state.pgMaxOld[p] = state.pgMaxNew[p] <= 0 ? .infinity : state.pgMaxNew[p]
                    state.pgMinOld[p] = state.pgMinNew[p] >= 0 ? -.infinity : state.pgMinNew[p]
                }
                still.append(p)
            }
            return still
        }

        /// Per problem: α on its group's rows and the score rows' decision values Σ_i K̃[s, i]·α_i·y_i.
        private func results() -> [[LockstepResult]] {
            var out: [[LockstepResult]] = groups.map { _ in [] }
            let coefficients = UnsafeMutablePointer<Double>.allocate(capacity: max(n, 1))
            defer { coefficients.deallocate() }
            for (p, problem) in problems.enumerated() {
                let group = groups[problem.group]
                coefficients.initialize(repeating: 0, count: n)
                var alpha = [Double](repeating: 0, count: group.rows.count)
                for (i, r) in group.rows.enumerated() {
                    alpha[i] = state.alpha[r * problems.count + p]
                    coefficients[r] = alpha[i] * Double(group.labels[i])
                }
                let margins = group.scoreRows.map { lp_dot_f32_f64(gram.row($0), coefficients, n) }
                out[problem.group].append(LockstepResult(outcome: state.outcomes[p], alpha: alpha, margins: margins))
            }
            return out
        }
    }

    /// Every problem's solver state and each group's labels, training-row mask and column tiles.
    /// Decision values are problem-major (the block update walks a problem's columns); α, the
    /// active flags and the labels are row-major (a visit reads one row for every problem).
    final class States {
        let n: Int
        let problemCount: Int
        let groupCount: Int
        /// Per problem × padded column.
        let values: UnsafeMutablePointer<Double>
        /// Per row × problem.
        let alpha: UnsafeMutablePointer<Double>
        let active: UnsafeMutablePointer<UInt8>
        /// Per row × group: the label (0: not a training row of the group).
        let labels: UnsafeMutablePointer<Int8>
        /// Per group × tile: whether the tile holds a training row of the group.
        let tileMasks: UnsafeMutablePointer<UInt8>
        let tiles: Int
        /// Per problem: active rows, liblinear's shrinking bounds (previous and current sweep).
        let activeCount: UnsafeMutablePointer<Int>
        let pgMaxOld: UnsafeMutablePointer<Double>
        let pgMinOld: UnsafeMutablePointer<Double>
        let pgMaxNew: UnsafeMutablePointer<Double>
        let pgMinNew: UnsafeMutablePointer<Double>
        var outcomes: [FitOutcome]

        init(groups: [LockstepGroup], problems: [Int], n: Int, paddedColumns: Int, tiles: Int) {
            self.n = n
            self.tiles = tiles
            let count = problems.count
            problemCount = count
            groupCount = groups.count
            values = .allocate(capacity: max(count * paddedColumns, 1))
            values.initialize(repeating: 0, count: max(count * paddedColumns, 1))
            alpha = .allocate(capacity: max(count * n, 1))
            alpha.initialize(repeating: 0, count: max(count * n, 1))
            active = .allocate(capacity: max(count * n, 1))
            active.initialize(repeating: 0, count: max(count * n, 1))
            labels = .allocate(capacity: max(groups.count * n, 1))
            labels.initialize(repeating: 0, count: max(groups.count * n, 1))
            tileMasks = .allocate(capacity: max(groups.count * tiles, 1))
            tileMasks.initialize(repeating: 0, count: max(groups.count * tiles, 1))
            let tile = Int(LP_LOCKSTEP_TILE)
            for (g, group) in groups.enumerated() {
                for (i, r) in group.rows.enumerated() {
                    precondition(
                        r >= 0 && r < n && labels[r * groups.count + g] == 0, "lockstep rows out of range or repeated")
                    precondition(group.labels[i] == 1 || group.labels[i] == -1, "lockstep labels must be ±1")
                    labels[r * groups.count + g] = group.labels[i]
                    tileMasks[g * tiles + r / tile] = 1
                }
            }
            func vector<T>(_ value: T) -> UnsafeMutablePointer<T> {
                let v = UnsafeMutablePointer<T>.allocate(capacity: max(count, 1))
                v.initialize(repeating: value, count: max(count, 1))
                return v
            }
            activeCount = vector(0)
            pgMaxOld = vector(.infinity)
            pgMinOld = vector(-.infinity)
            pgMaxNew = vector(0)
            pgMinNew = vector(0)
            outcomes = Array(repeating: FitOutcome(iterations: 0, converged: false), count: count)
            for (p, g) in problems.enumerated() { reactivate(p, group: g) }
        }

        func deallocate() {
            values.deallocate(); alpha.deallocate(); active.deallocate(); labels.deallocate(); tileMasks.deallocate()
            activeCount.deallocate(); pgMaxOld.deallocate(); pgMinOld.deallocate()
            pgMaxNew.deallocate(); pgMinNew.deallocate()
        }

        @inline(__always) func shrink(_ p: Int, _ at: Int) {
            active[at] = 0
            activeCount[p] -= 1
        }

        /// Every training row of problem `p`'s group active again.
        func reactivate(_ p: Int, group g: Int) {
            var count = 0
            for r in 0..<n {
                let member: UInt8 = labels[r * groupCount + g] != 0 ? 1 : 0
                active[r * problemCount + p] = member
                count += Int(member)
            }
            activeCount[p] = count
        }
    }

    /// Buffers of one block: its rows, the coefficients of its updates (position-major, one column
    /// per running problem), the visit's decision values, the float64 panel and position lists.
    final class Scratch {
        let block: Int
        let deltaStride: Int
        let rows: UnsafeMutablePointer<Int32>
        let delta: UnsafeMutablePointer<Double>
        let margins: UnsafeMutablePointer<Double>
        let panel: UnsafeMutablePointer<Double>
        let klists: UnsafeMutablePointer<Int32>
        private let panelTiles: Int

        init(problems: Int, block: Int, tiles: Int) {
            self.block = max(block, 1)
            deltaStride = max(8, (problems + 7) / 8 * 8)
            rows = .allocate(capacity: self.block)
            delta = .allocate(capacity: self.block * deltaStride)
            margins = .allocate(capacity: deltaStride)
            margins.initialize(repeating: 0, count: deltaStride)
            // Half the L2 cache for the float64 panel of a column chunk (at least one tile).
            let l2 = Scratch.l2Bytes()
            panelTiles = max(1, min(tiles, l2 / 2 / (self.block * Int(LP_LOCKSTEP_TILE) * 8)))
            panel = .allocate(capacity: self.block * panelTiles * Int(LP_LOCKSTEP_TILE))
            let jobs = problems  // at most one job per problem
            klists = .allocate(capacity: max(jobs, 1) * self.block)
        }

        func deallocate() {
            rows.deallocate(); delta.deallocate(); margins.deallocate(); panel.deallocate(); klists.deallocate()
        }

        /// Tiles per column chunk for a block of `count` positions (the panel holds count × chunk tiles).
        func chunkTiles(count: Int) -> Int { max(1, panelTiles * block / max(count, 1)) }

        /// The per-core L2 size (sysfs; 1 MiB when unknown).
        static func l2Bytes() -> Int {
            let path = "/sys/devices/system/cpu/cpu0/cache/index2/size"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 1 << 20 }
            let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
            let scale = t.hasSuffix("K") ? 1024 : t.hasSuffix("M") ? 1 << 20 : 1
            let digits = t.filter(\.isNumber)
            guard let v = Int(digits), v > 0 else { return 1 << 20 }
            return min(max(v * scale, 256 << 10), 8 << 20)
        }
    }

    /// The sweep's jobs: each group's running problems in runs of at most LP_LOCKSTEP_MAX_JOB,
    /// with their coefficient columns, decision-value rows and the group's tile mask.
    final class Jobs {
        private var cols: [Int] = []
        private var sizes: [Int] = []
        private var values: [UnsafeMutablePointer<Double>?] = []
        private var masks: [UnsafePointer<UInt8>?] = []

        /// `rowSets[g]`: an id shared by the groups with the same training rows (a job may mix
        /// them: its positions and tiles are the same).
        init(running: [Int], problems: [Run.Problem], rowSets: [Int], state: States, paddedColumns: Int) {
            let width = Int(LP_LOCKSTEP_MAX_JOB)
            var j = 0
            while j < running.count {
                let group = problems[running[j]].group
                var size = 0
                let base = cols.count
                cols.append(contentsOf: repeatElement(0, count: width))
                values.append(contentsOf: repeatElement(nil, count: width))
                while j < running.count && size < width && rowSets[problems[running[j]].group] == rowSets[group] {
                    cols[base + size] = j
                    values[base + size] = state.values + running[j] * paddedColumns
                    size += 1
                    j += 1
                }
                sizes.append(size)
                masks.append(UnsafePointer(state.tileMasks + group * state.tiles))
            }
        }

        func withPointers(
            _ body: (
                UnsafePointer<Int>, UnsafePointer<Int>, UnsafePointer<UnsafeMutablePointer<Double>?>,
                UnsafePointer<UnsafePointer<UInt8>?>, Int
            ) -> Void
        ) {
            cols.withUnsafeBufferPointer { c in
                sizes.withUnsafeBufferPointer { s in
                    values.withUnsafeBufferPointer { v in
                        masks.withUnsafeBufferPointer { m in
                            guard let cp = c.baseAddress, let sp = s.baseAddress, let vp = v.baseAddress,
                                let mp = m.baseAddress
                            else { return }  // no running problem: nothing to update
                            body(cp, sp, vp, mp, sizes.count)
                        }
                    }
                }
            }
        }
    }
}
