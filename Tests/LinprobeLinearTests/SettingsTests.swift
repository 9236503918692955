import Foundation
import LinprobeCore
import Testing

@testable import LinprobeLinear

@Suite("train-linear settings from the effective config")
struct SettingsTests {
    /// VISSL's ImageNet-1k linear benchmark (eval_resnet_8gpu_transfer_in1k_linear.yaml).
    static let in1k: JSONValue = [
        "SEED_VALUE": 1, "TEST_EVERY_NUM_EPOCH": 1,
        "DATA": ["TRAIN": ["BATCHSIZE_PER_REPLICA": 32]],
        "DISTRIBUTED": ["NUM_NODES": 1, "NUM_PROC_PER_NODE": 8],
        "MODEL": [
            "HEAD": [
                "PARAMS": [
                    ["eval_mlp", ["in_channels": 64, "dims": [9216, 1000]]],
                    ["eval_mlp", ["in_channels": 256, "dims": [9216, 1000]]],
                    ["eval_mlp", ["in_channels": 512, "dims": [8192, 1000]]],
                    ["eval_mlp", ["in_channels": 1024, "dims": [9216, 1000]]],
                    ["eval_mlp", ["in_channels": 2048, "dims": [8192, 1000]]],
                    ["eval_mlp", ["in_channels": 2048, "dims": [2048, 1000]]],
                    ["mlp", ["dims": [2048, 1000]]],
                ]
            ]
        ],
        "LOSS": [
            "name": "cross_entropy_multiple_output_single_target",
            "cross_entropy_multiple_output_single_target": ["ignore_index": -1],
        ],
        "METERS": ["name": "accuracy_list_meter", "accuracy_list_meter": ["num_meters": 5, "topk_values": [1, 5]]],
        "OPTIMIZER": [
            "name": "sgd", "momentum": 0.9, "nesterov": true, "weight_decay": 0.0005, "num_epochs": 28,
            "regularize_bn": false, "regularize_bias": true,
            "param_schedulers": [
                "lr": [
                    "auto_lr_scaling": ["auto_scale": true, "base_value": 0.01, "base_lr_batch_size": 256],
                    "name": "multistep", "values": [0.01, 0.001, 0.0001, 0.00001], "milestones": [8, 16, 24],
                    "update_interval": "epoch",
                ]
            ],
        ],
    ]

    @Test("VISSL's ImageNet-1k linear config")
    func in1kConfig() throws {
        let s = try LinearSettings(config: ConfigNode(path: "", value: Self.in1k))
        #expect(s.heads.count == 7)
        #expect(
            s.heads[0]
                == HeadSpec(kind: .evalMLP, inChannels: 64, dims: [9216, 1000], configPath: "MODEL.HEAD.PARAMS[0]"))
        #expect(s.heads[6].kind == .mlp && s.heads[6].dims == [2048, 1000])
        #expect(s.batchSize == 256 && s.seed == 1)
        #expect(
            s.optimizer
                == OptimizerSettings(
                    momentum: 0.9, nesterov: true, weightDecay: 0.0005, regularizeBN: false,
                    regularizeBias: true, singleParamGroup: false, numEpochs: 28))
        #expect(
            s.schedule == .multistep(values: [0.01, 0.001, 0.0001, 0.00001], milestones: [8, 16, 24], numUpdates: 28))
        #expect(s.updateInterval == .epoch)
        #expect(s.loss == .crossEntropy(ignoreIndex: -1, temperature: 1))
        #expect(s.topK == [1, 5])
        #expect(s.batchNormEps == 1e-5 && s.batchNormMomentum == 0.1)
    }

    static func replacing(_ path: String, with value: JSONValue?) -> ConfigNode {
        func set(_ v: JSONValue, _ keys: ArraySlice<String>) -> JSONValue {
            guard let k = keys.first else { return value ?? .null }
            var o = v.objectValue ?? [:]
            if keys.count == 1 && value == nil {
                o[k] = nil
            } else {
                o[k] = set(o[k] ?? .object([:]), keys.dropFirst())
            }
            return .object(o)
        }
        return ConfigNode(path: "", value: set(in1k, path.split(separator: ".").map(String.init)[...]))
    }

    @Test(
        "invalid values are config errors naming the key",
        arguments: [
            ("OPTIMIZER.name", JSONValue.string("adamw"), "OPTIMIZER.name"),
            ("OPTIMIZER.momentum", .double(1.5), "OPTIMIZER.momentum"),
            ("OPTIMIZER.num_epochs", .int(0), "OPTIMIZER.num_epochs"),
            ("OPTIMIZER.use_larc", .bool(true), "OPTIMIZER.use_larc"),
            ("OPTIMIZER.param_schedulers.lr.name", .string("polynomial"), "OPTIMIZER.param_schedulers.lr.name"),
            ("OPTIMIZER.param_schedulers.lr.milestones", .array([8, 16]), "OPTIMIZER.param_schedulers.lr.milestones"),
            (
                "OPTIMIZER.param_schedulers.lr.milestones", .array([8, 30, 40]),
                "OPTIMIZER.param_schedulers.lr.milestones"
            ),
            ("OPTIMIZER.param_schedulers.lr.update_interval", .string("hourly"), "update_interval"),
            ("DATA.TRAIN.BATCHSIZE_PER_REPLICA", .int(0), "DATA.TRAIN.BATCHSIZE_PER_REPLICA"),
            ("MODEL.HEAD.PARAMS", .array([]), "MODEL.HEAD.PARAMS"),
            ("MODEL.HEAD.PARAMS", .array([["linear", ["dims": [4, 2]]]]), "MODEL.HEAD.PARAMS[0]"),
            ("MODEL.HEAD.PARAMS", .array([["mlp", ["dims": [4]]]]), "MODEL.HEAD.PARAMS[0][1].dims"),
            (
                "MODEL.HEAD.PARAMS", .array([["mlp", ["dims": [4, 2], "use_dropout": "yes"]]]),
                "MODEL.HEAD.PARAMS[0][1].use_dropout"
            ),
            (
                "MODEL.HEAD.PARAMS", .array([["mlp", ["dims": [4, 2], "dropout": true]]]),
                "MODEL.HEAD.PARAMS[0][1].dropout"
            ),
            ("MODEL.HEAD.PARAMS", .array([["eval_mlp", ["dims": [4, 2]]]]), "MODEL.HEAD.PARAMS[0][1].in_channels"),
            (
                "MODEL.HEAD.PARAMS", .array([["eval_mlp", ["in_channels": 3, "dims": [4, 2]]]]),
                "MODEL.HEAD.PARAMS[0][1]"
            ),
            ("MODEL.HEAD.BATCHNORM_EPS", .double(-1), "MODEL.HEAD.BATCHNORM_EPS"),
            ("LOSS.name", .string("nce_loss"), "LOSS.name"),
            ("METERS.accuracy_list_meter.topk_values", .array([1, 5000]), "METERS.accuracy_list_meter.topk_values"),
            ("TEST_EVERY_NUM_EPOCH", .int(0), "TEST_EVERY_NUM_EPOCH"),
            ("LINPROBE.LINEAR.SHUFFLE_CHUNK_ROWS", .int(-5), "LINPROBE.LINEAR.SHUFFLE_CHUNK_ROWS"),
            ("LINPROBE.THREADS", .string("many"), "LINPROBE.THREADS"),
        ] as [(String, JSONValue, String)])
    func invalid(_ key: String, _ value: JSONValue, _ named: String) throws {
        let error = try #require(throws: LinprobeError.self) {
            try LinearSettings(config: Self.replacing(key, with: value))
        }
        #expect(error.exitCode == 64)
        #expect(error.message.contains(named), "\(error.message)")
    }

    @Test("absent keys take VISSL's defaults")
    func defaults() throws {
        let minimal: JSONValue = ["MODEL": ["HEAD": ["PARAMS": [["mlp", ["dims": [2048, 1000]]]]]]]
        let s = try LinearSettings(config: ConfigNode(path: "", value: minimal))
        #expect(s.batchSize == 256 * 8)
        #expect(s.optimizer.weightDecay == 1e-4 && s.optimizer.momentum == 0.9 && !s.optimizer.nesterov)
        #expect(s.optimizer.numEpochs == 90)
        #expect(s.schedule == .multistep(values: [0.1, 0.01, 0.001], milestones: [30, 60], numUpdates: 90))
        #expect(s.seed == 0 && s.topK == [1, 5] && s.testEveryEpochs == 1)
        #expect(s.shuffleChunkRows == nil && s.threads == nil)
    }

    @Test("the multi-label loss follows LOSS.name, LINPROBE.LINEAR.MULTI_LABEL or the store")
    func multiLabelChoice() throws {
        let base: JSONValue = ["MODEL": ["HEAD": ["PARAMS": [["mlp", ["dims": [16, 20]]]]]]]
        #expect(try LinearSettings(config: ConfigNode(path: "", value: base), multiLabelStore: true).loss == .bceLogits)
        #expect(
            try LinearSettings(config: ConfigNode(path: "", value: base), multiLabelStore: false).loss.isMultiLabel
                == false)
        let forced = TestStores.config(extra: [
            "LINPROBE.LINEAR.MULTI_LABEL": true, "LOSS.name": "bce_logits_multiple_output_single_target",
        ])
        #expect(try LinearSettings(config: forced).loss == .bceLogits)
        let contradiction = TestStores.config(extra: ["LINPROBE.LINEAR.MULTI_LABEL": true])
        let error = try #require(throws: LinprobeError.self) { try LinearSettings(config: contradiction) }
        #expect(error.message.contains("LINPROBE.LINEAR.MULTI_LABEL"))
    }

    @Test("the fingerprint changes with every hyper-parameter")
    func fingerprintChanges() throws {
        let a = try LinearSettings(config: ConfigNode(path: "", value: Self.in1k))
        let b = try LinearSettings(config: Self.replacing("OPTIMIZER.weight_decay", with: .double(0.0001)))
        let c = try LinearSettings(config: Self.replacing("SEED_VALUE", with: .int(2)))
        #expect(Fingerprint.short(a.json) != Fingerprint.short(b.json))
        #expect(Fingerprint.short(a.json) != Fingerprint.short(c.json))
        #expect(
            Fingerprint.short(a.json)
                == Fingerprint.short(try LinearSettings(config: ConfigNode(path: "", value: Self.in1k)).json))
    }
}
