import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

/// A ViT-S/16-shaped trunk (D 384, 12 blocks, 6 heads, MLP 1536, qkv bias) with random weights in
/// the official DINO layout — a flat state dict of timm names, read with VISSL's overlay options
/// (`STATE_DICT_KEY_NAME: ''`, `APPEND_PREFIX: trunk.base_model.`) — through extract → train-svm →
/// report on the demo data. The images are 64×64 (IMAGE_SIZE 64: a 4×4 patch grid) to keep the
/// test fast; the architecture and the checkpoint are ViT-S/16's otherwise.
@Suite("run: a DINO-layout ViT-S/16 on the demo data")
struct ViTEndToEndTests {
    static let d = 384, layers = 12, mlp = 1536, patch = 16, image = 64

    /// Every trunk parameter of the model, timm/DINO names, small random values; written as a
    /// flat safetensors file (the official DINO .pth holds the same flat dict).
    static func writeCheckpoint(to path: String) throws {
        var shapes: [(String, [Int])] = [
            ("cls_token", [1, 1, d]), ("pos_embed", [1, (image / patch) * (image / patch) + 1, d]),
            ("patch_embed.proj.weight", [d, 3, patch, patch]), ("patch_embed.proj.bias", [d]),
        ]
        for i in 0..<layers {
            let b = "blocks.\(i)."
            shapes += [
                (b + "norm1.weight", [d]), (b + "norm1.bias", [d]), (b + "attn.qkv.weight", [3 * d, d]),
                (b + "attn.qkv.bias", [3 * d]), (b + "attn.proj.weight", [d, d]), (b + "attn.proj.bias", [d]),
                (b + "norm2.weight", [d]), (b + "norm2.bias", [d]), (b + "mlp.fc1.weight", [mlp, d]),
                (b + "mlp.fc1.bias", [mlp]), (b + "mlp.fc2.weight", [d, mlp]), (b + "mlp.fc2.bias", [d]),
            ]
        }
        shapes += [("norm.weight", [d]), ("norm.bias", [d]), ("center", [1, 65536])]
        var rng = SeededGenerator(seed: 2026)
        var header: [String: JSONValue] = [:]
        var data = Data()
        for (name, shape) in shapes {
            let n = shape.reduce(1, *)
            let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
            let scale = name.hasSuffix("norm1.weight") || name.hasSuffix("norm2.weight") || name == "norm.weight"
            let bound = shape.count > 1 ? 1.5 / Double(fanIn).squareRoot() : 0.1
            let values = (0..<n).map { _ in
                let u = Double(rng.next() >> 11) * 0x1p-53 * 2 - 1
                return Float(scale ? 1 + 0.2 * u : bound * u)
            }
            let start = data.count
            values.withUnsafeBytes { data.append(contentsOf: $0) }
            header[name] = [
                "dtype": "F32", "shape": .array(shape.map { .int(Int64($0)) }),
                "data_offsets": [.int(Int64(start)), .int(Int64(data.count))],
            ]
        }
        var text = Array(JSONValue.object(header).canonicalText.utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        var file = Data()
        withUnsafeBytes(of: UInt64(text.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: text)
        file.append(data)
        try file.write(to: URL(fileURLWithPath: path))
    }

    /// The demo pipeline with the ViT trunk, its taps and no linear heads (SVMs only).
    static func pipeline(weights: String) throws -> String {
        try demoPipelineText(
            model: """
                      LINEAR_EVAL_FEAT_POOL_OPS_MAP: [
                        ["concatCLS4", ["Identity", []]],
                        ["lastCLS", ["Identity", []]],
                      ]
                    TRUNK:
                      NAME: vision_transformer
                      VISION_TRANSFORMERS:
                        IMAGE_SIZE: \(image)
                        PATCH_SIZE: \(patch)
                        HIDDEN_DIM: \(d)
                        NUM_LAYERS: \(layers)
                        NUM_HEADS: 6
                        MLP_DIM: \(mlp)
                        QKV_BIAS: True
                        DROP_PATH_RATE: 0.1
                    WEIGHTS_INIT:
                      PARAMS_FILE: "\(weights)"
                      STATE_DICT_KEY_NAME: ''
                      APPEND_PREFIX: trunk.base_model.

                """)
    }

    @Test("extract → train-svm → report with a DINO-layout checkpoint; its extra key is ignored")
    func run() throws {
        let dir = try TemporaryDirectory()
        let weights = dir.file("dino_vits16_random.safetensors")
        try Self.writeCheckpoint(to: weights)
        let file = dir.file("vit_demo.yaml")
        try Self.pipeline(weights: weights).write(toFile: file, atomically: true, encoding: .utf8)
        let voc = repositoryRoot.appendingPathComponent("data/demo/voc").path
        let work = dir.file("runs")
        let result = try runProcess(
            linprobeBinary(),
            [
                "run", file, "config.DATA.TRAIN.DATA_PATHS=[\(voc)]", "config.DATA.TEST.DATA_PATHS=[\(voc)]",
                "--workdir", work,
            ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("stages extract → train-svm"), "\(result.stderr)")
        #expect(result.stdout.contains("| layer |"))
        let report = try JSONValue.parse(
            String(contentsOfFile: work + "/reports/vit_demo/report.json", encoding: .utf8))
        let rows = report["rows"]?.arrayValue ?? []
        for layer in ["concatCLS4", "lastCLS"] {
            let row = rows.first { $0["layer"]?.stringValue == layer && $0["metric"]?.stringValue == "mAP" }
            let value = try #require(row?["value"]?.doubleValue, "no mAP row for \(layer)")
            #expect(value > 0 && value <= 100)
        }
    }
}
