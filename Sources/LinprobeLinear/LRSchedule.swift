import Foundation
import LinprobeCore

/// A learning-rate schedule with ClassyVision/fvcore semantics: a function of `where`, the
/// fraction of training done, in [0, 1).
///
/// VISSL evaluates it at `where = epoch / num_epochs` at the start of every epoch
/// (`update_interval: epoch`) or at `where = step / (num_epochs × steps_per_epoch)` before every
/// step (`update_interval: step`).
public indirect enum LRSchedule: Sendable, Equatable {
    case constant(Double)
    /// Value `values[i]` while `int((where + 1e-6) × numUpdates)` is below `milestones[i]`
    /// (milestones are exclusive upper bounds, ClassyVision semantics).
    case multistep(values: [Double], milestones: [Int], numUpdates: Int)
    /// `values` spread evenly over training.
    case step(values: [Double])
    case cosine(start: Double, end: Double)
    case linear(start: Double, end: Double)
    /// Pieces run in order for `lengths` of training; `rescaled` pieces see their own 0…1.
    case composite([CompositePart])

    public struct CompositePart: Sendable, Equatable {
        public var schedule: LRSchedule
        public var length: Double
        public var rescaled: Bool
        public init(schedule: LRSchedule, length: Double, rescaled: Bool) {
            self.schedule = schedule
            self.length = length
            self.rescaled = rescaled
        }
    }

    static let whereEpsilon = 1e-6

    /// The learning rate at `where` ∈ [0, 1).
    public func value(at whereValue: Double) -> Double {
        switch self {
        case .constant(let v): return v
        case .multistep(let values, let milestones, let numUpdates):
            let epoch = Int((whereValue + Self.whereEpsilon) * Double(numUpdates))
            // bisect_right: number of milestones ≤ epoch.
            let index = milestones.reduce(0) { $0 + ($1 <= epoch ? 1 : 0) }
            return values[min(index, values.count - 1)]
        case .step(let values):
            let index = Int((whereValue + Self.whereEpsilon) * Double(values.count))
            return values[min(max(index, 0), values.count - 1)]
        case .cosine(let start, let end):
            return end + 0.5 * (start - end) * (1 + cos(Double.pi * whereValue))
        case .linear(let start, let end):
            return end * whereValue + start * (1 - whereValue)
        case .composite(let parts):
            var i = 0
            var runningTotal = parts[0].length
            while whereValue + Self.whereEpsilon > runningTotal, i < parts.count - 1 {
                i += 1
                runningTotal += parts[i].length
            }
            var local = whereValue
            if parts[i].rescaled {
                let start = runningTotal - parts[i].length
                local = (whereValue - start) / parts[i].length
            }
            return parts[i].schedule.value(at: local)
        }
    }

    public var json: JSONValue {
        switch self {
        case .constant(let v): return ["name": "constant", "value": .double(v)]
        case .multistep(let values, let milestones, let n):
            return [
                "name": "multistep", "values": .array(values.map { .double($0) }),
                "milestones": .array(milestones.map { .int(Int64($0)) }), "num_epochs": .int(Int64(n)),
            ]
        case .step(let values): return ["name": "step", "values": .array(values.map { .double($0) })]
        case .cosine(let s, let e): return ["name": "cosine", "start_value": .double(s), "end_value": .double(e)]
        case .linear(let s, let e): return ["name": "linear", "start_value": .double(s), "end_value": .double(e)]
        case .composite(let parts):
            return [
                "name": "composite", "schedulers": .array(parts.map(\.schedule.json)),
                "lengths": .array(parts.map { .double($0.length) }),
                "interval_scaling": .array(parts.map { .string($0.rescaled ? "rescaled" : "fixed") }),
            ]
        }
    }

    // MARK: Parsing with VISSL's auto-scaling (vissl/utils/hydra_config.py::infer_learning_rate)

    /// Reads `OPTIMIZER.param_schedulers.lr`, applies `auto_lr_scaling` as VISSL does and returns
    /// the resolved schedule and its update interval.
    static func parse(
        _ node: ConfigNode, numEpochs: Int, globalBatch: Int, batchPerNode: Int, numNodes: Int
    ) throws
        -> (schedule: LRSchedule, interval: UpdateInterval)
    {
        let intervalName = try node["update_interval"].stringIfPresent() ?? "epoch"
        guard let interval = UpdateInterval(rawValue: intervalName) else {
            throw LinprobeError.config("\(node.path).update_interval: '\(intervalName)' is not one of epoch, step")
        }
        var schedule = try parseRaw(node, numEpochs: numEpochs)
        let auto = node["auto_lr_scaling"]
        if try auto["auto_scale"].boolIfPresent() == true {
            let base = try auto["base_value"].doubleIfPresent() ?? 0.1
            let baseBatch = try auto["base_lr_batch_size"].doubleIfPresent() ?? 256
            guard baseBatch > 0 else { throw LinprobeError.config("\(auto.path).base_lr_batch_size: must be > 0") }
            let scaling = try auto["scaling_type"].stringIfPresent() ?? "linear"
            guard scaling == "linear" || scaling == "sqrt" else {
                throw LinprobeError.config("\(auto.path).scaling_type: '\(scaling)' is not one of linear, sqrt")
            }
            var factor = Double(globalBatch) / baseBatch
            if scaling == "sqrt" { factor = factor.squareRoot() }
            let scaled = base * factor
            // The warm-up start uses the per-node batch and always the linear rule (VISSL).
            let warmupStart = base * Double(batchPerNode) / baseBatch
            schedule = try scale(schedule, to: scaled, warmupStart: warmupStart, numNodes: numNodes, path: node.path)
        }
        return (schedule, interval)
    }

    private static func parseRaw(_ node: ConfigNode, numEpochs: Int) throws -> LRSchedule {
        let name = try node["name"].stringIfPresent() ?? "multistep"
        func positiveFinite(_ v: Double, _ key: String) throws -> Double {
            guard v.isFinite, v >= 0 else {
                throw LinprobeError.config("\(node.path).\(key): must be a finite value ≥ 0, got \(v)")
            }
            return v
        }
        switch name {
        case "constant":
            return .constant(try positiveFinite(try node["value"].doubleIfPresent() ?? 0.1, "value"))
        case "multistep":
            let values = try (node["values"].exists ? node["values"].doubles() : [0.1, 0.01, 0.001]).map {
                try positiveFinite($0, "values")
            }
            var milestones = try node["milestones"].exists ? node["milestones"].ints() : [30, 60]
            guard !values.isEmpty else { throw LinprobeError.config("\(node.path).values: must not be empty") }
            var numUpdates = numEpochs
            if milestones.count == values.count, let last = milestones.last {
                // fvcore form without num_updates: the last milestone is the end of training.
                numUpdates = last
                milestones.removeLast()
            }
            guard milestones.count == values.count - 1 else {
                throw LinprobeError.config(
                    "\(node.path).milestones: needs \(values.count - 1) milestones for \(values.count) values, got \(milestones.count)"
                )
            }
            guard numUpdates >= values.count else {
                throw LinprobeError.config(
                    "\(node.path): num_epochs \(numUpdates) must be ≥ the number of values \(values.count)")
            }
            var previous = 0
            for m in milestones {
                guard m > previous, m < numUpdates else {
                    throw LinprobeError.config(
                        "\(node.path).milestones: must increase strictly within 1…\(numUpdates - 1), got \(milestones)")
                }
                previous = m
            }
            return .multistep(values: values, milestones: milestones, numUpdates: numUpdates)
        case "step":
            let values = try node["values"].doubles().map { try positiveFinite($0, "values") }
            guard !values.isEmpty else { throw LinprobeError.config("\(node.path).values: must not be empty") }
            return .step(values: values)
        case "cosine", "linear":
            let start = try positiveFinite(try node["start_value"].doubleIfPresent() ?? 0.1, "start_value")
            let end = try positiveFinite(try node["end_value"].doubleIfPresent() ?? 0, "end_value")
            return name == "cosine" ? .cosine(start: start, end: end) : .linear(start: start, end: end)
        case "composite":
            let subs = try node["schedulers"].list()
            let lengths = try node["lengths"].doubles()
            guard !subs.isEmpty, subs.count == lengths.count else {
                throw LinprobeError.config(
                    "\(node.path): composite needs as many lengths as schedulers (\(subs.count) vs \(lengths.count))")
            }
            guard abs(lengths.reduce(0, +) - 1) < 1e-3, lengths.allSatisfy({ $0 > 0 }) else {
                throw LinprobeError.config("\(node.path).lengths: must be positive and sum to 1, got \(lengths)")
            }
            var fixedLengths = lengths
            fixedLengths[fixedLengths.count - 1] = 1 - lengths.dropLast().reduce(0, +)
            let scalingNode = node["interval_scaling"]
            var scaling = try scalingNode.exists ? scalingNode.strings() : []
            if scaling.isEmpty { scaling = Array(repeating: "rescaled", count: subs.count) }
            guard scaling.count == subs.count, scaling.allSatisfy({ $0 == "rescaled" || $0 == "fixed" }) else {
                throw LinprobeError.config(
                    "\(node.path).interval_scaling: one of rescaled/fixed per scheduler, got \(scaling)")
            }
            var parts: [CompositePart] = []
            for (i, sub) in subs.enumerated() {
                let subName = try sub["name"].string()
                if subName == "composite" {
                    throw LinprobeError.config("\(sub.path).name: nested composite schedules are not supported")
                }
                parts.append(
                    CompositePart(
                        schedule: try parseRaw(sub, numEpochs: numEpochs), length: fixedLengths[i],
                        rescaled: scaling[i] == "rescaled"))
            }
            return .composite(parts)
        default:
            throw LinprobeError.config(
                "\(node.path).name: '\(name)' is not supported (constant, multistep, step, cosine, linear, composite)")
        }
    }

    /// VISSL's `get_scaled_lr_scheduler`.
    private static func scale(
        _ s: LRSchedule, to lr: Double, warmupStart: Double, numNodes: Int, path: String
    ) throws -> LRSchedule {
        switch s {
        case .cosine(let start, let end):
            guard start > 0 else {
                throw LinprobeError.config("\(path).start_value: must be > 0 to auto-scale a cosine schedule")
            }
            return .cosine(start: lr, end: lr * (end / start))
        case .multistep(let values, let milestones, let n):
            return .multistep(values: scaledSteps(values, lr), milestones: milestones, numUpdates: n)
        case .step(let values):
            return .step(values: scaledSteps(values, lr))
        case .linear(let start, _):
            return .linear(start: start, end: lr)
        case .constant:
            return .constant(lr)
        case .composite(var parts):
            var hasLinear = false
            for i in parts.indices {
                if case .linear = parts[i].schedule { hasLinear = true }
                parts[i].schedule = try scale(
                    parts[i].schedule, to: lr, warmupStart: warmupStart, numNodes: numNodes, path: path)
            }
            guard hasLinear else { return .composite(parts) }
            // resolve_linear_schedule: warm-up starts at the per-node scaled LR; on one node a
            // warm-up that does not increase is dropped (the last such one).
            var remove: Int? = nil
            for i in parts.indices {
                if case .linear(_, let end) = parts[i].schedule {
                    parts[i].schedule = .linear(start: warmupStart, end: end)
                    if numNodes == 1 && warmupStart <= end { remove = i }
                }
            }
            if let r = remove {
                parts.remove(at: r)
                // VISSL keeps the remaining lengths as they are; unless one scheduler remains,
                // they no longer sum to 1 and VISSL's scheduler refuses them.
                if parts.count > 1 {
                    throw LinprobeError.config(
                        "\(path).schedulers: on one node VISSL drops the linear warm-up (its start \(warmupStart) is not below its end), and the remaining lengths no longer sum to 1; remove the warm-up or set DISTRIBUTED.NUM_NODES"
                    )
                }
            }
            if parts.count == 1 { return parts[0].schedule }
            return .composite(parts)
        }
    }

    private static func scaledSteps(_ values: [Double], _ lr: Double) -> [Double] {
        var gamma = 1.0
        if values.count > 1 { gamma = (values[1] / values[0] * 1e6).rounded() / 1e6 }
        return values.indices.map { i in (lr * pow(gamma, Double(i)) * 1e8).rounded() / 1e8 }
    }
}
