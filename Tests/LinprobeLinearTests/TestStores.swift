import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport

@testable import LinprobeLinear

/// Small learnable stores written with `FeatureStoreWriter`: features are a class-dependent
/// pattern plus noise.
enum TestStores {
    static let layers = [
        StoreLayer(name: "res4", shapeCHW: [4, 2, 2]), StoreLayer(name: "res5avg", shapeCHW: [8, 1, 1]),
    ]

    @discardableResult
    static func write(
        _ path: String, rows: Int, classes: Int = 4, layers: [StoreLayer] = layers, seed: UInt64 = 1,
        split: String = "train", label: ((Int) -> Int64)? = nil, chunkRows: Int? = 16,
        poison: (layer: String, row: Int, value: Float)? = nil
    ) throws -> FeatureStoreReader {
        var rng = SeededGenerator(seed: seed)
        let writer = try FeatureStoreWriter(
            creating: path, layers: layers, targetLayout: .singleLabel,
            metadata: StoreMetadata(
                fingerprint: "test-\(split)-\(rows)-\(seed)", split: split, numClasses: classes,
                classNames: (0..<classes).map { "c\($0)" }),
            chunkRows: chunkRows)
        var features = layers.map { _ in [Float]() }
        var targets: [Int64] = []
        for r in 0..<rows {
            let y = label?(r) ?? Int64(Int.random(in: 0..<classes, using: &rng))
            targets.append(y)
            for (l, layer) in layers.enumerated() {
                for j in 0..<layer.dim {
                    let signal: Float = y >= 0 && (j % classes) == Int(y) ? 1.5 : 0
                    features[l].append(signal + Float.random(in: -1...1, using: &rng) + Float(l) * 0.1)
                }
                if let poison, poison.layer == layer.name, poison.row == r {
                    features[l][features[l].count - 1] = poison.value
                }
            }
        }
        try writer.append(
            FeatureBatch(
                count: rows, features: features, targets: targets, indices: (0..<Int64(rows)).map { $0 },
                imagePaths: (0..<rows).map { "img\($0).png" }))
        try writer.finish()
        return try FeatureStoreReader(path: path)
    }

    /// A small, fast configuration: one eval_mlp head on res4 and one mlp head on res5avg.
    static func config(
        classes: Int = 4, epochs: Int = 3, batch: Int = 16, lr: Double = 0.1, extra: [String: JSONValue] = [:],
        heads: JSONValue? = nil
    ) -> ConfigNode {
        var root: [String: JSONValue] = [
            "SEED_VALUE": 3,
            "DATA": ["TRAIN": ["BATCHSIZE_PER_REPLICA": .int(Int64(batch))]],
            "DISTRIBUTED": ["NUM_NODES": 1, "NUM_PROC_PER_NODE": 1],
            "MODEL": [
                "HEAD": [
                    "PARAMS": heads ?? [
                        ["eval_mlp", ["in_channels": 4, "dims": [16, .int(Int64(classes))]]],
                        ["mlp", ["dims": [8, .int(Int64(classes))]]],
                    ]
                ]
            ],
            "OPTIMIZER": [
                "name": "sgd", "momentum": 0.9, "nesterov": true, "weight_decay": 0.0005,
                "num_epochs": .int(Int64(epochs)),
                "param_schedulers": [
                    "lr": [
                        "name": "multistep", "values": [.double(lr), .double(lr / 10)], "milestones": [2],
                        "update_interval": "epoch",
                    ]
                ],
            ],
            "LOSS": ["name": "cross_entropy_multiple_output_single_target"],
            "METERS": ["name": "accuracy_list_meter", "accuracy_list_meter": ["topk_values": [1, 2]]],
        ]
        for (k, v) in extra { root = set(root, path: k.split(separator: ".").map(String.init), value: v) }
        return ConfigNode(path: "", value: .object(root))
    }

    private static func set(_ object: [String: JSONValue], path: [String], value: JSONValue) -> [String: JSONValue] {
        var o = object
        if path.count == 1 {
            o[path[0]] = value
        } else {
            o[path[0]] = .object(set(o[path[0]]?.objectValue ?? [:], path: Array(path.dropFirst()), value: value))
        }
        return o
    }
}
