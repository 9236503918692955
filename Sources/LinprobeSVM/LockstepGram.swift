import CLinprobeSVMKernels
import Foundation

/// Problems that share their training rows (the costs of one (class, fold)): rows of the layer's
/// Gram matrix, labels ±1 per training row, one cost per problem, and the rows to score at the end.
struct LockstepGroup {
    let rows: [Int]
    let labels: [Int8]
    let costs: [Double]
    let scoreRows: [Int]

    /// Per column tile of the Gram matrix (`tiles` of LP_LOCKSTEP_TILE columns): 1 where the tile
    /// holds one of the group's training rows.
    func tileMask(tiles: Int) -> [UInt8] {
        let tile = Int(LP_LOCKSTEP_TILE)
        var mask = [UInt8](repeating: 0, count: tiles)
        for r in rows {
            precondition(r >= 0 && r / tile < tiles, "lockstep rows out of range or repeated")
            mask[r / tile] = 1
        }
        return mask
    }
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
    /// Positions per sub-block of the visits: the terms of a block's earlier sub-blocks are added
    /// to a sub-block's decision values at once. (Same benchmark: 4, 8, 16 and 32 were within the
    /// machine's run-to-run noise, 25–29 s of CV.)
    var subBlock = 16
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
/// as a register-blocked product of the block's rows (packed once per column chunk, a chunk
/// filling half the L2 cache, and widened to float64 as the kernel loads them) with the block's
/// coefficients (`lp_lockstep_update`), and a visit's decision value is u_p[row] plus the terms of
/// the block so far (`lp_lockstep_margins`, vectorised across problems). Both apply each problem's
/// updates as fused multiply-adds in the order they were made (a position without an update adds
/// an exact zero), as `lp_axpy_f32_f64` does one update after another; the visit itself is
/// `ShrinkingRule.visit` for eight problems per vector (`lp_lockstep_visit`, the same operations
/// unfused). So every problem's iterates equal `DualCD`'s with the same order (tested at every
/// kernel level). Only column tiles holding training rows of a group are kept up to date; score
/// rows are computed from α at the end.
///
/// Threads share each block: the visits are split by problems (whole bytes of the problem
/// bitsets), the block update by column tiles (each thread converts and reads only its columns of
/// the block's rows, so the matrix is read once per outer iteration), with a barrier after each
/// phase. A problem's result does not depend on the thread count.
enum LockstepGram {
    /// Memory per fit and Gram row: a float64 decision value and α, two flag bits (rounded up).
    static let bytesPerFitAndRow = 17

    static func solve(
        gram: GramMatrix, groups: [LockstepGroup], parameters: LockstepParameters, threads: Int
    ) -> [[LockstepResult]] {
        precondition(gram.columns == gram.count, "the lockstep solver needs the full Gram matrix")
        return Run(gram: gram, groups: groups, parameters: parameters).solve(threads: threads)
    }
}

extension LockstepGram {
    /// A lockstep over a set of groups.
    final class Run: @unchecked Sendable {
        let gram: GramMatrix
        let groups: [LockstepGroup]
        let parameters: LockstepParameters
        let n: Int
        /// Decision values per problem, padded to whole tiles.
        let paddedColumns: Int
        let tiles: Int
        let problems: [Problem]
        let state: States

        /// A problem: its group, and 1/(2C_i) and the upper bound for each label.
        struct Problem {
            let group: Int
            let diagonal: (negative: Double, positive: Double)
            let upper: (negative: Double, positive: Double)
        }

        init(gram: GramMatrix, groups: [LockstepGroup], parameters p: LockstepParameters) {
            precondition(p.block >= 1 && p.subBlock >= 1, "lockstep blocks need at least one position")
            self.gram = gram
            self.groups = groups
            parameters = p
            n = gram.count
            let tile = Int(LP_LOCKSTEP_TILE)
            let tiles = (gram.count + tile - 1) / tile
            self.tiles = tiles
            paddedColumns = tiles * tile
            let masks = groups.map { $0.tileMask(tiles: tiles) }
            var problems: [Problem] = []
            // Problems numbered group by group, the groups ordered by where their first column tile
            // without a training row is: the same fold of different classes holds out nearly the
            // same rows, so those groups come together and can share jobs (`Jobs`).
            for g in Run.foldOrder(masks) {
                let group = groups[g]
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
            state = States(
                groups: groups, tileMasks: masks, problems: problems, n: n, paddedColumns: paddedColumns, tiles: tiles)
        }

        /// The groups' indices (given their tile masks) ordered by their first column tile without a
        /// training row (all tiles: none), then by index.
        static func foldOrder(_ masks: [[UInt8]]) -> [Int] {
            let firstGap = masks.map { $0.firstIndex(of: 0) ?? $0.count }
            return masks.indices.sorted { (firstGap[$0], $0) < (firstGap[$1], $1) }
        }

        /// What thread 0 sets between sweeps and every thread reads during one.
        private final class Sweep: @unchecked Sendable {
            var order: SweepOrder
            var running: [Int]
            var jobs: Jobs?
            /// Per thread: its bytes of the problem bitsets and its running problems (indices into
            /// `running`), thread t from bounds[t] to bounds[t + 1].
            var byteBounds: [Int] = []
            var runningBounds: [Int] = []
            var sweeps = 0
            var finished = false
            let barrier = UnsafeMutablePointer<lp_barrier>.allocate(capacity: 1)

            init(order: SweepOrder, running: [Int], threads: Int) {
                self.order = order
                self.running = running
                lp_barrier_init(barrier, threads)
            }

            deinit {
                order.deallocate()
                barrier.deallocate()
            }
        }

        func solve(threads: Int) -> [[LockstepResult]] {
            defer { state.deallocate() }
            let team = max(1, threads)
            let running = Array(problems.indices).filter { !groups[problems[$0].group].rows.isEmpty }
            for p in problems.indices where groups[problems[p].group].rows.isEmpty {
                state.outcomes[p] = FitOutcome(iterations: 0, converged: true)
            }
            let sweep = Sweep(order: SweepOrder(seed: parameters.seed, count: n), running: running, threads: team)
            let shared = SharedDelta(problems: problems.count, block: parameters.block)
            defer { shared.deallocate() }
            let scratches = (0..<team).map { _ in
                Scratch(problems: problems.count, block: parameters.block, subBlock: parameters.subBlock, tiles: tiles)
            }
            defer { for s in scratches { s.deallocate() } }
            try? Parallel.forEach(count: team, threads: team) { [self] t in
                member(t, of: team, sweep: sweep, delta: shared, scratch: scratches[t])
            }
            return results()
        }

        /// Thread `t` of `team`: its share of every block of every sweep; thread 0 also runs the
        /// work between sweeps (stopping tests, next order, jobs) while the others wait.
        private func member(_ t: Int, of team: Int, sweep: Sweep, delta: SharedDelta, scratch: Scratch) {
            while true {
                if t == 0 {
                    if sweep.running.isEmpty || sweep.sweeps >= parameters.maxIterations {
                        sweep.finished = true
                    } else {
                        state.beginSweep(sweep.running)
                        sweep.order.advance()
                        sweep.jobs = Jobs(running: sweep.running, problems: problems, state: state)
                        (sweep.byteBounds, sweep.runningBounds) = state.split(sweep.running, team: team)
                    }
                }
                lp_barrier_wait(sweep.barrier)
                if sweep.finished { return }
                let running = sweep.running
                let mine = Visitors(
                    running: sweep.runningBounds[t]..<sweep.runningBounds[t + 1],
                    bytes: sweep.byteBounds[t]..<sweep.byteBounds[t + 1])
                let columns = (tiles * t / team)..<(tiles * (t + 1) / team)
                var start = 0
                while start < n {
                    let count = min(parameters.block, n - start)
                    let order = sweep.order.order + start
                    for k in 0..<count { scratch.rows[k] = Int32(truncatingIfNeeded: order[k]) }
                    visits(
                        order: order, count: count, ahead: n - start, running: running, mine: mine, delta: delta,
                        scratch: scratch)
                    lp_barrier_wait(sweep.barrier)
                    if let jobs = sweep.jobs {
                        let following = min(parameters.block, n - start - count)
                        for k in 0..<following {
                            scratch.nextRows[k] = Int32(truncatingIfNeeded: order[count + k])
                        }
                        update(
                            count: count, following: following, tiles: columns, jobs: jobs, delta: delta,
                            scratch: scratch)
                    }
                    lp_barrier_wait(sweep.barrier)
                    start += count
                }
                if t == 0 {
                    sweep.sweeps += 1
                    sweep.running = endSweep(running, sweeps: sweep.sweeps)
                }
            }
        }

        /// A thread's share of the visits: running problems (indices into `running`) and the bytes
        /// of the problem bitsets that hold them.
        struct Visitors {
            let running: Range<Int>
            let bytes: Range<Int>
        }

        /// The visits of one block by the running problems `mine`: each position's decision values,
        /// then liblinear's visit (`lp_lockstep_visit`), recording the updates' coefficients.
        /// `order` has `ahead` ≥ `count` positions left in the sweep (what a visit prefetches for).
        /// A visit's decision value is u[row] plus the block's earlier terms, in order; the terms of
        /// earlier sub-blocks are added for a whole sub-block at once (register-blocked over its
        /// positions), those of its own earlier positions one visit at a time. Positions where no
        /// problem of `mine` made an update are left out (they add exact zeros).
        private func visits(
            order: UnsafePointer<Int>, count: Int, ahead: Int, running: [Int], mine: Visitors, delta: SharedDelta,
            scratch: Scratch
        ) {
            if mine.running.isEmpty { return }
            let stride = delta.stride
            let width = mine.running.count
            let coefficients = delta.values + mine.running.lowerBound
            let margins = scratch.margins, updated = scratch.updated
            var updates = 0
            var first = 0
            running.withUnsafeBufferPointer { runningBuffer in
                guard let which = runningBuffer.baseAddress.map({ $0 + mine.running.lowerBound }) else { return }
                while first < count {
                    let end = min(first + parameters.subBlock, count)
                    for k in first..<end {
                        lp_lockstep_gather(
                            state.values, state.problemCount, order[k], which, width, margins + (k - first) * width)
                    }
                    // The earlier sub-blocks' terms for the whole sub-block, then each position's terms
                    // from its own sub-block as they come.
                    let terms = Terms(
                        count: count, coefficients: coefficients, stride: stride, width: width, scratch: scratch)
                    addTerms(terms, positions: first..<end, from: updated, count: updates, into: margins)
                    let earlier = updates
                    for k in first..<end {
                        let row = margins + (k - first) * width
                        addTerms(
                            terms, positions: k..<(k + 1), from: updated + earlier, count: updates - earlier,
                            into: row)
                        let r = order[k]
                        if k + parameters.subBlock < ahead {
                            prefetch(k + parameters.subBlock, order, count, which, mine)
                        }
                        let any = lp_lockstep_visit(
                            parameters.level, state.visitState, r, gram.diagonal[r], mine.bytes.lowerBound,
                            mine.bytes.upperBound, row, coefficients + k * stride)
                        if any != 0 {
                            updated[updates] = Int32(k)
                            updates += 1
                        }
                    }
                    first = end
                }
            }
        }

        /// Starts loading what the visit at position `k` (of this block, or of the next if k ≥
        /// `count`) by `mine` will read: the decision values at its row, the row's α and flags, and
        /// the Gram entries between its row and the earlier positions of its block.
        private func prefetch(
            _ k: Int, _ order: UnsafePointer<Int>, _ count: Int, _ which: UnsafePointer<Int>, _ mine: Visitors
        ) {
            let row = order[k]
            lp_lockstep_prefetch(
                state.visitState, state.values, row, which, mine.running.count, mine.bytes.lowerBound,
                mine.bytes.upperBound)
            let blockStart = k < count ? 0 : count
            lp_lockstep_prefetch_gram(gram.row(0), n, row, order + blockStart, k - blockStart)
        }

        /// A block's coefficients as the margins read them: `width` problems per position, `stride` apart.
        private struct Terms {
            let count: Int
            let coefficients: UnsafeMutablePointer<Double>
            let stride: Int
            let width: Int
            let scratch: Scratch
        }

        /// Adds to the decision values `margins` of `positions` (one row of `width` per position) the
        /// terms of the `count` block positions listed at `from`, in order: gathers the submatrix
        /// entries they need, then one register-blocked call.
        private func addTerms(
            _ t: Terms, positions: Range<Int>, from: UnsafePointer<Int32>, count: Int,
            into margins: UnsafeMutablePointer<Double>
        ) {
            let kb = t.scratch.blockGram
            lp_lockstep_block_gram(
                gram.row(0), n, t.scratch.rows, positions.lowerBound, positions.upperBound, from, count, kb, t.count)
            lp_lockstep_margins(
                parameters.level, kb, t.count, positions.lowerBound, positions.upperBound, from, count, t.coefficients,
                t.stride, t.width, margins, t.width)
        }

        /// The block update of every job over the column tiles `tiles`.
        private func update(
            count: Int, following: Int, tiles: Range<Int>, jobs: Jobs, delta: SharedDelta, scratch: Scratch
        ) {
            if tiles.isEmpty { return }
            jobs.withPointers { cols, sizes, values, masks, jobCount in
                lp_lockstep_update(
                    parameters.level, gram.row(0), n, n, tiles.lowerBound, tiles.upperBound, scratch.rows, count,
                    delta.values, delta.stride, jobCount, cols, sizes, values, state.tileStride, masks,
                    scratch.chunkTiles(count: count),
                    scratch.panel, scratch.klists, scratch.nextRows, following)
            }
        }

        /// Each running problem's stopping test (`ShrinkingRule.endSweep`, as `DualCD`).
        private func endSweep(_ running: [Int], sweeps: Int) -> [Int] {
            var still: [Int] = []
            still.reserveCapacity(running.count)
            for p in running {
                state.outcomes[p].iterations = sweeps
                let group = problems[p].group
                var rule = state.rule(p)
                defer { state.setRule(p, rule) }
                switch rule.endSweep(tolerance: parameters.tolerance, rows: groups[group].rows.count) {
                case .converged:
                    state.outcomes[p].converged = true
                    continue
                case .reactivate:
                    state.reactivate(p, group: group)
                case .continue:
                    break
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
    /// Decision values are tile-major (tile, problem, 16 columns: the block update reads a
    /// problem's tile as one piece; a visit finds the problems' values at its row 128 bytes apart,
    /// within the row's tile); α is row-major, and the active flags and label signs are one bitset per
    /// row (a visit reads one row for every problem, eight problems per vector).
    final class States {
        let n: Int
        let problemCount: Int
        let groupCount: Int
        /// Per tile × problem × 16 columns (`valueIndex`).
        let values: UnsafeMutablePointer<Double>
        /// Doubles from one tile of a problem's decision values to its next.
        var tileStride: Int { problemCount * Int(LP_LOCKSTEP_TILE) }
        /// Per row × problem.
        let alpha: UnsafeMutablePointer<Double>
        /// Bytes per row of the bitsets (problem p at byte p / 8, bit p % 8).
        let maskBytes: Int
        /// Per row: the problems for which the row is an active training row; whose label is +1.
        let active: UnsafeMutablePointer<UInt8>
        let positive: UnsafeMutablePointer<UInt8>
        /// The running problems of the sweep.
        let running: UnsafeMutablePointer<UInt8>
        /// Per row × group: the label (0: not a training row of the group).
        let labels: UnsafeMutablePointer<Int8>
        /// Per group × tile: whether the tile holds a training row of the group.
        let tileMasks: UnsafeMutablePointer<UInt8>
        /// Per group: its tiles (the ones in `tileMasks`).
        let tileCounts: [Int]
        let tiles: Int
        /// Per problem (label −1, then +1): D_ii and the upper bound.
        let diagonal: UnsafeMutablePointer<Double>
        let upper: UnsafeMutablePointer<Double>
        /// Per problem: liblinear's shrinking rule, one array per field (`rule(_:)`).
        let maxOld, minOld, maxNew, minNew: UnsafeMutablePointer<Double>
        let activeCount: UnsafeMutablePointer<Int>
        /// The above as the visit kernel reads them.
        let visitState: UnsafeMutablePointer<lp_lockstep_state>
        var outcomes: [FitOutcome]

        /// `tileMasks[g]`: group g's `LockstepGroup.tileMask(tiles:)`.
        init(
            groups: [LockstepGroup], tileMasks masks: [[UInt8]], problems: [Run.Problem], n: Int, paddedColumns: Int,
            tiles: Int
        ) {
            self.n = n
            self.tiles = tiles
            let count = problems.count
            problemCount = count
            groupCount = groups.count
            maskBytes = max(1, (count + 7) / 8)
            values = HugePages.allocate(Double.self, count: count * paddedColumns)
            alpha = HugePages.allocate(Double.self, count: count * n)
            active = States.zeroed(n * maskBytes)
            positive = States.zeroed(n * maskBytes)
            running = States.zeroed(maskBytes)
            labels = States.zeroed(groups.count * n)
            tileMasks = States.zeroed(groups.count * tiles)
            for (g, group) in groups.enumerated() {
                for (i, r) in group.rows.enumerated() {
                    precondition(
                        r >= 0 && r < n && labels[r * groups.count + g] == 0, "lockstep rows out of range or repeated")
                    precondition(group.labels[i] == 1 || group.labels[i] == -1, "lockstep labels must be ±1")
                    labels[r * groups.count + g] = group.labels[i]
                }
                (tileMasks + g * tiles).update(from: masks[g], count: tiles)
            }
            tileCounts = masks.map { $0.reduce(0) { $0 + Int($1) } }
            diagonal = States.zeroed(2 * count)
            upper = States.zeroed(2 * count)
            (maxOld, minOld) = (States.zeroed(count), States.zeroed(count))
            (maxNew, minNew) = (States.zeroed(count), States.zeroed(count))
            activeCount = States.zeroed(count)
            for (p, problem) in problems.enumerated() {
                (diagonal[p], diagonal[count + p]) = (problem.diagonal.negative, problem.diagonal.positive)
                (upper[p], upper[count + p]) = (problem.upper.negative, problem.upper.positive)
                for r in 0..<n where labels[r * groups.count + problem.group] > 0 {
                    positive[r * maskBytes + p / 8] |= UInt8(1) << (p % 8)
                }
            }
            visitState = .allocate(capacity: 1)
            visitState.initialize(
                to: lp_lockstep_state(
                    problems: count, maskBytes: maskBytes, alpha: alpha, active: active, positive: positive,
                    running: running, diagonal: diagonal, upper: upper, maxOld: maxOld, minOld: minOld,
                    maxNew: maxNew, minNew: minNew, activeCount: activeCount))
            outcomes = Array(repeating: FitOutcome(iterations: 0, converged: false), count: count)
            for (p, problem) in problems.enumerated() {
                setRule(p, ShrinkingRule(rows: groups[problem.group].rows.count))
                reactivate(p, group: problem.group)
            }
        }

        private static func zeroed<T: Numeric>(_ count: Int) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: max(count, 1))
            p.initialize(repeating: 0, count: max(count, 1))
            return p
        }

        /// Where problem `p`'s decision value at column `c` is.
        @inline(__always) func valueIndex(_ p: Int, _ c: Int) -> Int {
            let tile = Int(LP_LOCKSTEP_TILE)
            return (c / tile * problemCount + p) * tile + c % tile
        }

        func deallocate() {
            HugePages.free(values, count: problemCount * tiles * Int(LP_LOCKSTEP_TILE))
            HugePages.free(alpha, count: problemCount * n)
            for p in [active, positive, running, tileMasks] { p.deallocate() }
            labels.deallocate()
            for p in [diagonal, upper, maxOld, minOld, maxNew, minNew] { p.deallocate() }
            activeCount.deallocate()
            visitState.deallocate()
        }

        /// Problem `p`'s shrinking rule.
        func rule(_ p: Int) -> ShrinkingRule {
            ShrinkingRule(
                active: activeCount[p], maxOld: maxOld[p], minOld: minOld[p], maxNew: maxNew[p], minNew: minNew[p])
        }

        func setRule(_ p: Int, _ rule: ShrinkingRule) {
            (activeCount[p], maxOld[p], minOld[p]) = (rule.active, rule.maxOld, rule.minOld)
            (maxNew[p], minNew[p]) = (rule.maxNew, rule.minNew)
        }

        /// A new sweep of the problems `running`: their rules' sweep starts and the running bitset.
        func beginSweep(_ running: [Int]) {
            self.running.update(repeating: 0, count: maskBytes)
            for p in running {
                var r = rule(p)
                r.beginSweep()
                setRule(p, r)
                self.running[p / 8] |= UInt8(1) << (p % 8)
            }
        }

        /// The threads' shares of the visits: whole bytes of the bitsets (a byte is written by one
        /// thread only), cut where the running problems before the cut are nearest t/team of them.
        /// Returns the byte bounds and the bounds in `running` (team + 1 each).
        func split(_ running: [Int], team: Int) -> (bytes: [Int], running: [Int]) {
            var bytes = [0], indices = [0]
            var j = 0
            for t in 1..<team {
                let target = running.count * t / team
                var byte = bytes[t - 1]
                // Advance through whole bytes while that brings the count nearer the target.
                while byte < maskBytes {
                    var next = j
                    while next < running.count && running[next] / 8 == byte { next += 1 }
                    if abs(next - target) > abs(j - target) { break }
                    (byte, j) = (byte + 1, next)
                }
                bytes.append(byte)
                indices.append(j)
            }
            bytes.append(maskBytes)
            indices.append(running.count)
            return (bytes, indices)
        }

        /// Every training row of problem `p`'s group active again.
        func reactivate(_ p: Int, group g: Int) {
            let bit = UInt8(1) << (p % 8)
            for r in 0..<n {
                let at = r * maskBytes + p / 8
                active[at] = labels[r * groupCount + g] != 0 ? active[at] | bit : active[at] & ~bit
            }
        }
    }

    /// The coefficients of a block's updates, position-major: one column per running problem
    /// (`stride` ≥ the problem count, a multiple of 8).
    final class SharedDelta: @unchecked Sendable {
        let stride: Int
        let values: UnsafeMutablePointer<Double>

        init(problems: Int, block: Int) {
            stride = max(8, (problems + 7) / 8 * 8)
            values = .allocate(capacity: max(block, 1) * stride)
            values.initialize(repeating: 0, count: max(block, 1) * stride)
        }

        func deallocate() { values.deallocate() }
    }

    /// One thread's buffers: the block's rows, its Gram submatrix, the sub-block's decision values
    /// and the positions with updates (visits), the panel (the block's rows, a column chunk of them
    /// packed tile by tile) and the jobs' position lists (update).
    final class Scratch: @unchecked Sendable {
        let block: Int
        let rows: UnsafeMutablePointer<Int32>
        /// The next block's rows (what the update prefetches after its last column chunk).
        let nextRows: UnsafeMutablePointer<Int32>
        let margins: UnsafeMutablePointer<Double>
        let blockGram: UnsafeMutablePointer<Double>
        let updated: UnsafeMutablePointer<Int32>
        let panel: UnsafeMutablePointer<Float>
        let klists: UnsafeMutablePointer<Int32>
        private let panelTiles: Int

        init(problems: Int, block: Int, subBlock: Int, tiles: Int) {
            self.block = max(block, 1)
            rows = .allocate(capacity: self.block)
            nextRows = .allocate(capacity: self.block)
            margins = .allocate(capacity: max(problems, 1) * max(subBlock, 1))
            margins.initialize(repeating: 0, count: max(problems, 1) * max(subBlock, 1))
            blockGram = .allocate(capacity: self.block * self.block)
            blockGram.initialize(repeating: 0, count: self.block * self.block)
            updated = .allocate(capacity: self.block)
            // Half the L2 cache for the panel of a column chunk (at least one tile).
            let l2 = Scratch.l2Bytes()
            panelTiles = max(1, min(tiles, l2 / 2 / (self.block * Int(LP_LOCKSTEP_TILE) * MemoryLayout<Float>.size)))
            panel = .allocate(capacity: (self.block + 1) * panelTiles * Int(LP_LOCKSTEP_TILE))
            klists = .allocate(capacity: max(problems, 1) * self.block)  // at most one job per problem
        }

        func deallocate() {
            rows.deallocate(); nextRows.deallocate(); margins.deallocate(); blockGram.deallocate(); updated.deallocate()
            panel.deallocate(); klists.deallocate()
        }

        /// Tiles per column chunk for a block of `count` positions (the panel holds count + 1
        /// positions × chunk tiles).
        func chunkTiles(count: Int) -> Int { max(1, panelTiles * block / (count + 1)) }

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

    /// The sweep's jobs: runs of at most LP_LOCKSTEP_MAX_JOB consecutive running problems, with their
    /// coefficient columns, decision-value rows and tile mask. A job may mix groups: it updates the
    /// union of their tiles, which changes nothing a problem reads (a problem's decision values at
    /// columns outside its training rows are never used, and a position where it made no update adds
    /// an exact zero), so groups join a job only while the union exceeds each one's own tiles by at
    /// most 1/16 and a tile (the same fold of different classes; groups with equal rows always).
    final class Jobs: @unchecked Sendable {
        private var cols: [Int] = []
        private var sizes: [Int] = []
        private var values: [UnsafeMutablePointer<Double>?] = []
        private var masks: [UnsafePointer<UInt8>?] = []
        private let unions: UnsafeMutablePointer<UInt8>

        init(running: [Int], problems: [Run.Problem], state: States) {
            let width = Int(LP_LOCKSTEP_MAX_JOB), tiles = state.tiles
            unions = .allocate(capacity: max(1, running.count * tiles))
            var j = 0
            while j < running.count {
                let union = unions + sizes.count * tiles
                let first = problems[running[j]].group
                union.update(from: state.tileMasks + first * tiles, count: tiles)
                var smallest = state.tileCounts[first]
                var joined = first  // the last group in the job (a group's problems are consecutive)
                var size = 0
                let base = cols.count
                cols.append(contentsOf: repeatElement(0, count: width))
                values.append(contentsOf: repeatElement(nil, count: width))
                while j < running.count && size < width {
                    let group = problems[running[j]].group
                    if group != joined
                        && !Jobs.merge(
                            state.tileMasks + group * tiles, into: union, tiles: tiles,
                            limit: min(smallest, state.tileCounts[group]))
                    {
                        break
                    }
                    smallest = min(smallest, state.tileCounts[group])
                    joined = group
                    cols[base + size] = j
                    values[base + size] = state.values + running[j] * Int(LP_LOCKSTEP_TILE)
                    size += 1
                    j += 1
                }
                sizes.append(size)
                masks.append(UnsafePointer(union))
            }
        }

        deinit { unions.deallocate() }

        /// ORs `mask` into `union` when the result has at most limit + limit/16 + 1 tiles.
        private static func merge(
            _ mask: UnsafePointer<UInt8>, into union: UnsafeMutablePointer<UInt8>, tiles: Int, limit: Int
        ) -> Bool {
            var count = 0
            for t in 0..<tiles where union[t] != 0 || mask[t] != 0 { count += 1 }
            if count > limit + limit / 16 + 1 { return false }
            for t in 0..<tiles { union[t] |= mask[t] }
            return true
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
