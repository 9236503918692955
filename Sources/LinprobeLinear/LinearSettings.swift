import Foundation
import LinprobeCore

/// One head of `MODEL.HEAD.PARAMS`, paired with the stored layer of the same position.
public struct HeadSpec: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// VISSL `eval_mlp`: BatchNorm2d over the tap's channels, flatten, then the `mlp` layers.
        case evalMLP = "eval_mlp"
        /// VISSL `mlp`: Linear layers per `dims` with optional BN / ReLU / dropout between them.
        case mlp
    }

    public var kind: Kind
    /// `in_channels` of an `eval_mlp` head (nil for `mlp`).
    public var inChannels: Int?
    /// Linear layer widths, `dims[0]` = input width, last = number of outputs.
    public var dims: [Int]
    public var useBN: Bool
    public var useReLU: Bool
    public var useDropout: Bool
    public var useBias: Bool
    public var skipLastLayerReLUBN: Bool
    /// Config path of the entry, e.g. `MODEL.HEAD.PARAMS[3]`, used in error messages.
    public var configPath: String

    public init(
        kind: Kind, inChannels: Int? = nil, dims: [Int], useBN: Bool = false, useReLU: Bool = false,
        useDropout: Bool = false, useBias: Bool = true, skipLastLayerReLUBN: Bool = true,
        configPath: String = "MODEL.HEAD.PARAMS"
    ) {
        self.kind = kind
        self.inChannels = inChannels
        self.dims = dims
        self.useBN = useBN
        self.useReLU = useReLU
        self.useDropout = useDropout
        self.useBias = useBias
        self.skipLastLayerReLUBN = skipLastLayerReLUBN
        self.configPath = configPath
    }

    public var outputs: Int { dims.last ?? 0 }

    /// Everything that determines the head (for fingerprints and results).
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "name": .string(kind.rawValue), "dims": .array(dims.map { .int(Int64($0)) }),
            "use_bn": .bool(useBN), "use_relu": .bool(useReLU),
        ]
        if let c = inChannels { o["in_channels"] = .int(Int64(c)) }
        if kind == .mlp {
            o["use_dropout"] = .bool(useDropout)
            o["use_bias"] = .bool(useBias)
            o["skip_last_layer_relu_bn"] = .bool(skipLastLayerReLUBN)
        }
        return .object(o)
    }
}

/// The loss VISSL uses for the heads (summed over heads; each head gets its own gradient).
public enum LossKind: Sendable, Equatable {
    /// `cross_entropy_multiple_output_single_target`: mean softmax cross-entropy over rows whose
    /// label is not `ignoreIndex`, logits divided by `temperature`.
    case crossEntropy(ignoreIndex: Int, temperature: Double)
    /// `bce_logits_multiple_output_single_target`: per class, BCE with logits averaged over the
    /// rows whose target is not −1; summed over classes (VOC-style multi-label targets).
    case bceLogits

    public var isMultiLabel: Bool { if case .bceLogits = self { return true }; return false }
}

/// When the learning rate is recomputed.
public enum UpdateInterval: String, Sendable, Equatable {
    case epoch, step
}

/// SGD as VISSL configures it through ClassyVision (`torch.optim.SGD` semantics).
public struct OptimizerSettings: Sendable, Equatable {
    public var momentum: Double
    public var nesterov: Bool
    /// Weight decay of the heads' regularised parameters (coupled L2: g ← g + wd·w).
    public var weightDecay: Double
    public var regularizeBN: Bool
    public var regularizeBias: Bool
    /// `construct_single_param_group_only`: every parameter is decayed.
    public var singleParamGroup: Bool
    public var numEpochs: Int
}

/// Validated settings of the train-linear stage, read from the effective (VISSL-style) config.
///
/// Keys read (VISSL's defaults apply to absent keys, as in `vissl/config/defaults.yaml`):
/// `MODEL.HEAD.{PARAMS, BATCHNORM_EPS, BATCHNORM_MOMENTUM, PARAMS_MULTIPLIER}`,
/// `OPTIMIZER.{name, momentum, nesterov, weight_decay, num_epochs, regularize_bn, regularize_bias,
/// use_larc, construct_single_param_group_only, head_optimizer_params.*, param_schedulers.lr(_head).*}`,
/// `DATA.TRAIN.BATCHSIZE_PER_REPLICA`, `DISTRIBUTED.{NUM_PROC_PER_NODE, NUM_NODES}`, `SEED_VALUE`,
/// `LOSS.{name, <loss>.*}`, `METERS.{name, names, accuracy_list_meter.topk_values}`,
/// `TEST_EVERY_NUM_EPOCH`, `LINPROBE.LINEAR.{SHUFFLE_CHUNK_ROWS, MULTI_LABEL}`, `LINPROBE.THREADS`.
public struct LinearSettings: Sendable, Equatable {
    public var heads: [HeadSpec]
    public var batchNormEps: Double
    public var batchNormMomentum: Double
    public var paramsMultiplier: Double
    public var optimizer: OptimizerSettings
    /// The learning-rate schedule after VISSL's auto-scaling.
    public var schedule: LRSchedule
    public var updateInterval: UpdateInterval
    /// Global batch: BATCHSIZE_PER_REPLICA × NUM_PROC_PER_NODE × NUM_NODES (the rows over which
    /// VISSL's synchronised BatchNorm computes its statistics).
    public var batchSize: Int
    public var seed: Int
    public var loss: LossKind
    /// Top-k values of the accuracy meter (single-label runs).
    public var topK: [Int]
    public var testEveryEpochs: Int
    /// Rows held in memory and shuffled together (nil: chosen from a 1 GiB budget).
    public var shuffleChunkRows: Int?
    /// Threads for the stage (nil: all cores).
    public var threads: Int?

    public init(
        heads: [HeadSpec], batchNormEps: Double = 1e-5, batchNormMomentum: Double = 0.1,
        paramsMultiplier: Double = 1, optimizer: OptimizerSettings, schedule: LRSchedule,
        updateInterval: UpdateInterval = .epoch, batchSize: Int = 256, seed: Int = 0,
        loss: LossKind = .crossEntropy(ignoreIndex: -1, temperature: 1), topK: [Int] = [1, 5],
        testEveryEpochs: Int = 1, shuffleChunkRows: Int? = nil, threads: Int? = nil
    ) {
        self.heads = heads
        self.batchNormEps = batchNormEps
        self.batchNormMomentum = batchNormMomentum
        self.paramsMultiplier = paramsMultiplier
        self.optimizer = optimizer
        self.schedule = schedule
        self.updateInterval = updateInterval
        self.batchSize = batchSize
        self.seed = seed
        self.loss = loss
        self.topK = topK
        self.testEveryEpochs = testEveryEpochs
        self.shuffleChunkRows = shuffleChunkRows
        self.threads = threads
    }

    /// Every hyper-parameter that changes the trained heads or their metrics (threads and the
    /// shuffle window are included: the window changes the batch order).
    public var json: JSONValue {
        let lossJSON: JSONValue
        switch loss {
        case .crossEntropy(let ignore, let t):
            lossJSON = [
                "name": "cross_entropy_multiple_output_single_target", "ignore_index": .int(Int64(ignore)),
                "temperature": .double(t),
            ]
        case .bceLogits:
            lossJSON = ["name": "bce_logits_multiple_output_single_target"]
        }
        return [
            "heads": .array(heads.map(\.json)),
            "batchnorm_eps": .double(batchNormEps), "batchnorm_momentum": .double(batchNormMomentum),
            "params_multiplier": .double(paramsMultiplier),
            "optimizer": [
                "name": "sgd", "momentum": .double(optimizer.momentum), "nesterov": .bool(optimizer.nesterov),
                "weight_decay": .double(optimizer.weightDecay), "regularize_bn": .bool(optimizer.regularizeBN),
                "regularize_bias": .bool(optimizer.regularizeBias),
                "single_param_group": .bool(optimizer.singleParamGroup),
                "num_epochs": .int(Int64(optimizer.numEpochs)),
            ],
            "lr": schedule.json, "lr_update_interval": .string(updateInterval.rawValue),
            "batch_size": .int(Int64(batchSize)), "seed": .int(Int64(seed)), "loss": lossJSON,
            "topk": .array(topK.map { .int(Int64($0)) }), "test_every_num_epoch": .int(Int64(testEveryEpochs)),
            "shuffle_chunk_rows": shuffleChunkRows.map { .int(Int64($0)) } ?? .null,
        ]
    }
}

// MARK: - Reading the configuration

extension LinearSettings {
    /// Reads and validates every setting; errors are `LinprobeError.config` naming the key.
    ///
    /// - Parameter multiLabelStore: whether the training store has `[N, C]` targets; used when
    ///   `LINPROBE.LINEAR.MULTI_LABEL` and `LOSS.name` leave the choice open.
    public init(config root: ConfigNode, multiLabelStore: Bool? = nil) throws {
        let head = root.at("MODEL.HEAD")
        let paramsNode = head["PARAMS"]
        guard paramsNode.exists else {
            throw LinprobeError.config(
                "MODEL.HEAD.PARAMS: required key is missing (one [name, {dims: ...}] entry per pooled tap)")
        }
        let entries = try paramsNode.list()
        guard !entries.isEmpty else { throw LinprobeError.config("MODEL.HEAD.PARAMS: no heads configured") }
        heads = try entries.map(Self.parseHead)

        batchNormEps = try head["BATCHNORM_EPS"].doubleIfPresent() ?? 1e-5
        guard batchNormEps > 0 else {
            throw LinprobeError.config("MODEL.HEAD.BATCHNORM_EPS: must be > 0, got \(batchNormEps)")
        }
        batchNormMomentum = try head["BATCHNORM_MOMENTUM"].doubleIfPresent() ?? 0.1
        guard (0...1).contains(batchNormMomentum) else {
            throw LinprobeError.config("MODEL.HEAD.BATCHNORM_MOMENTUM: must be in 0…1, got \(batchNormMomentum)")
        }
        paramsMultiplier = try head["PARAMS_MULTIPLIER"].doubleIfPresent() ?? 1
        guard paramsMultiplier.isFinite else {
            throw LinprobeError.config("MODEL.HEAD.PARAMS_MULTIPLIER: must be finite")
        }

        // Optimizer.
        let opt = root["OPTIMIZER"]
        let name = try opt["name"].stringIfPresent() ?? "sgd"
        guard name == "sgd" else {
            throw LinprobeError.config("OPTIMIZER.name: '\(name)' is not supported by train-linear (supported: sgd)")
        }
        if try opt["use_larc"].boolIfPresent() == true {
            throw LinprobeError.config("OPTIMIZER.use_larc: LARC is not supported by train-linear; set it to false")
        }
        let momentum = try opt["momentum"].doubleIfPresent() ?? 0.9
        guard momentum >= 0, momentum < 1 else {
            throw LinprobeError.config("OPTIMIZER.momentum: must be in [0, 1), got \(momentum)")
        }
        let nesterov = try opt["nesterov"].boolIfPresent() ?? false
        if nesterov && momentum == 0 {
            throw LinprobeError.config("OPTIMIZER.nesterov: Nesterov momentum needs OPTIMIZER.momentum > 0")
        }
        var weightDecay = try opt["weight_decay"].doubleIfPresent() ?? 1e-4
        let headOpt = opt["head_optimizer_params"]
        if try headOpt["use_different_wd"].boolIfPresent() == true {
            weightDecay = try headOpt["weight_decay"].double()
        }
        guard weightDecay >= 0 else {
            throw LinprobeError.config("OPTIMIZER.weight_decay: must be ≥ 0, got \(weightDecay)")
        }
        let numEpochs = try opt["num_epochs"].intIfPresent() ?? 90
        guard numEpochs >= 1 else { throw LinprobeError.config("OPTIMIZER.num_epochs: must be ≥ 1, got \(numEpochs)") }
        optimizer = OptimizerSettings(
            momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
            regularizeBN: try opt["regularize_bn"].boolIfPresent() ?? false,
            regularizeBias: try opt["regularize_bias"].boolIfPresent() ?? true,
            singleParamGroup: try opt["construct_single_param_group_only"].boolIfPresent() ?? false,
            numEpochs: numEpochs)

        // Batch: the global batch of VISSL's synchronised BatchNorm.
        let perReplica = try root.at("DATA.TRAIN.BATCHSIZE_PER_REPLICA").intIfPresent() ?? 256
        let procs = try root.at("DISTRIBUTED.NUM_PROC_PER_NODE").intIfPresent() ?? 8
        let nodes = try root.at("DISTRIBUTED.NUM_NODES").intIfPresent() ?? 1
        for (value, key) in [
            (perReplica, "DATA.TRAIN.BATCHSIZE_PER_REPLICA"), (procs, "DISTRIBUTED.NUM_PROC_PER_NODE"),
            (nodes, "DISTRIBUTED.NUM_NODES"),
        ] where value < 1 {
            throw LinprobeError.config("\(key): must be ≥ 1, got \(value)")
        }
        batchSize = perReplica * procs * nodes
        guard batchSize <= 1 << 20 else {
            throw LinprobeError.config("DATA.TRAIN.BATCHSIZE_PER_REPLICA: global batch \(batchSize) is too large")
        }

        // Learning rate.
        let useDifferentLR = try headOpt["use_different_lr"].boolIfPresent() ?? false
        let lrNode = opt.at(useDifferentLR ? "param_schedulers.lr_head" : "param_schedulers.lr")
        let resolved = try LRSchedule.parse(
            lrNode, numEpochs: numEpochs, globalBatch: batchSize,
            batchPerNode: perReplica * procs, numNodes: nodes)
        schedule = resolved.schedule
        updateInterval = resolved.interval

        seed = try root["SEED_VALUE"].intIfPresent() ?? 0

        // Loss and meters.
        let forcedMultiLabel = try root.at("LINPROBE.LINEAR.MULTI_LABEL").boolIfPresent()
        let lossName = try root.at("LOSS.name").stringIfPresent()
        let ceName = "cross_entropy_multiple_output_single_target"
        let bceName = "bce_logits_multiple_output_single_target"
        let multiLabel: Bool
        switch lossName {
        case ceName: multiLabel = false
        case bceName: multiLabel = true
        case nil, "CrossEntropyLoss": multiLabel = forcedMultiLabel ?? multiLabelStore ?? false
        case let other?:
            throw LinprobeError.config(
                "LOSS.name: '\(other)' is not supported by train-linear (supported: \(ceName), \(bceName))")
        }
        if let forced = forcedMultiLabel, forced != multiLabel {
            throw LinprobeError.config(
                "LINPROBE.LINEAR.MULTI_LABEL: \(forced) contradicts LOSS.name '\(lossName ?? "")'")
        }
        if multiLabel {
            let node = root.at("LOSS.\(bceName)")
            if let r = try node["reduction"].stringIfPresent(), r != "none" {
                throw LinprobeError.config(
                    "LOSS.\(bceName).reduction: only 'none' (VISSL's per-class masked mean) is supported, got '\(r)'")
            }
            if try node["normalize_output"].boolIfPresent() == true {
                throw LinprobeError.config(
                    "LOSS.\(bceName).normalize_output: L2-normalised outputs are not supported; set it to false")
            }
            loss = .bceLogits
        } else {
            let node = root.at("LOSS.\(ceName)")
            let ignore = try node["ignore_index"].intIfPresent() ?? -1
            guard Int(Int32.min)...Int(Int32.max) ~= ignore else {
                throw LinprobeError.config("LOSS.\(ceName).ignore_index: \(ignore) is out of range")
            }
            let temperature = try node["temperature"].doubleIfPresent() ?? 1
            guard temperature > 0 else {
                throw LinprobeError.config("LOSS.\(ceName).temperature: must be > 0, got \(temperature)")
            }
            if let r = try node["reduction"].stringIfPresent(), r != "mean" {
                throw LinprobeError.config("LOSS.\(ceName).reduction: only 'mean' is supported, got '\(r)'")
            }
            if try node["normalize_output"].boolIfPresent() == true {
                throw LinprobeError.config(
                    "LOSS.\(ceName).normalize_output: L2-normalised outputs are not supported; set it to false")
            }
            if node["weight"].exists {
                throw LinprobeError.config(
                    "LOSS.\(ceName).weight: class weights are not supported; remove the key or set it to null")
            }
            loss = .crossEntropy(ignoreIndex: ignore, temperature: temperature)
        }
        let meters = root["METERS"]
        var meterNames = try meters["names"].exists ? meters["names"].strings() : []
        if let n = try meters["name"].stringIfPresent(), !n.isEmpty { meterNames.append(n) }
        for n in meterNames where !["accuracy_list_meter", "mean_ap_list_meter"].contains(n) {
            throw LinprobeError.config(
                "METERS.name: '\(n)' is not supported by train-linear (accuracy_list_meter, mean_ap_list_meter)")
        }
        let topNode = meters.at("accuracy_list_meter.topk_values")
        topK = try topNode.exists ? topNode.ints() : [1, 5]
        guard !topK.isEmpty, topK.allSatisfy({ $0 >= 1 }) else {
            throw LinprobeError.config(
                "METERS.accuracy_list_meter.topk_values: must be a non-empty list of integers ≥ 1, got \(topK)")
        }
        testEveryEpochs = try root["TEST_EVERY_NUM_EPOCH"].intIfPresent() ?? 1
        guard testEveryEpochs >= 1 else {
            throw LinprobeError.config("TEST_EVERY_NUM_EPOCH: must be ≥ 1, got \(testEveryEpochs)")
        }

        let chunk = root.at("LINPROBE.LINEAR.SHUFFLE_CHUNK_ROWS")
        if let rows = try chunk.intIfPresent(), rows != 0 {
            guard rows > 0 else {
                throw LinprobeError.config(
                    "LINPROBE.LINEAR.SHUFFLE_CHUNK_ROWS: must be > 0 (or 0 for automatic), got \(rows)")
            }
            shuffleChunkRows = rows
        } else {
            shuffleChunkRows = nil
        }
        if let t = try root.at("LINPROBE.THREADS").intIfPresent(), t != 0 {
            guard t > 0, t <= 1024 else {
                throw LinprobeError.config("LINPROBE.THREADS: must be 1…1024 (or 0 for all cores), got \(t)")
            }
            threads = t
        } else {
            threads = nil
        }

        for h in heads where h.outputs < 1 {
            throw LinprobeError.config("\(h.configPath): the last entry of dims must be ≥ 1")
        }
        if !multiLabel, let k = topK.max(), let smallest = heads.map(\.outputs).min(), k > smallest {
            throw LinprobeError.config(
                "METERS.accuracy_list_meter.topk_values: top-\(k) needs at least \(k) classes, a head has \(smallest)")
        }
    }

    private static func parseHead(_ entry: ConfigNode) throws -> HeadSpec {
        let parts = try entry.list()
        guard parts.count == 2, case .string(let name)? = parts[0].value else {
            if case .array? = parts.first?.value {
                throw LinprobeError.config(
                    "\(entry.path): sequential heads (a list of head entries) are not supported by train-linear")
            }
            throw LinprobeError.config("\(entry.path): expected [\"eval_mlp\" or \"mlp\", {dims: [...]}]")
        }
        let args = parts[1]
        let allowed: Set<String>
        let kind: HeadSpec.Kind
        switch name {
        case "eval_mlp", "eval_mlp_fsdp":
            kind = .evalMLP
            allowed = ["in_channels", "dims", "use_bn", "use_relu", "use_residual"]
        case "mlp", "mlp_fsdp":
            kind = .mlp
            allowed = ["dims", "use_bn", "use_relu", "use_dropout", "use_bias", "skip_last_layer_relu_bn"]
        default:
            throw LinprobeError.config("\(entry.path): head '\(name)' is not supported by train-linear (eval_mlp, mlp)")
        }
        let argsPath = "\(entry.path)[1]"
        let keys = try args.keys()
        for key in keys where !allowed.contains(key) {
            throw LinprobeError.config(
                "\(argsPath).\(key): unknown \(name) argument (known: \(allowed.sorted().joined(separator: ", ")))")
        }
        let dims = try args["dims"].ints()
        guard dims.count >= 2, dims.allSatisfy({ $0 >= 1 }) else {
            throw LinprobeError.config(
                "\(argsPath).dims: needs at least two positive widths [input, ..., classes], got \(dims)")
        }
        var spec = HeadSpec(kind: kind, dims: dims, configPath: entry.path)
        spec.useBN = try args["use_bn"].boolIfPresent() ?? false
        spec.useReLU = try args["use_relu"].boolIfPresent() ?? false
        if kind == .evalMLP {
            let c = try args["in_channels"].int()
            guard c >= 1 else { throw LinprobeError.config("\(argsPath).in_channels: must be ≥ 1, got \(c)") }
            guard dims[0] % c == 0 else {
                throw LinprobeError.config("\(argsPath): dims[0] = \(dims[0]) is not a multiple of in_channels = \(c)")
            }
            spec.inChannels = c
            if try args["use_residual"].boolIfPresent() == true {
                throw LinprobeError.config("\(argsPath).use_residual: residual eval_mlp heads are not supported")
            }
        } else {
            spec.useDropout = try args["use_dropout"].boolIfPresent() ?? false
            spec.useBias = try args["use_bias"].boolIfPresent() ?? true
            spec.skipLastLayerReLUBN = try args["skip_last_layer_relu_bn"].boolIfPresent() ?? true
        }
        return spec
    }
}
