import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import LinprobeTrunk
import Testing

/// A SimCLRv2 selective-kernel ResNet-152 (`resnet_sk`, width 1, SK ratio 0.0625: 89 M
/// parameters) from a VISSL `classy_state_dict` checkpoint through extract → train-svm → report
/// on the demo data. The checkpoint (356 MB, too large to commit) is written by the test: the
/// seeded random initialisation's values under VISSL's keys (`base_model.net.…` below
/// `classy_state_dict.base_model.model.trunk`), so the stored features must equal, bit for bit,
/// those of the same run with `PARAMS_FILE: ""` and that seed. The layout itself is checked
/// against VISSL's key list by `ResNetSKTests` (fixtures from `scripts/make_resnet_sk_fixtures.py`).
@Suite("run: a VISSL-layout resnet_sk checkpoint on the demo data")
struct ResNetSKEndToEndTests {
    static let trunk = """
              LINEAR_EVAL_FEAT_POOL_OPS_MAP: []
            TRUNK:
              NAME: resnet_sk
              RESNETS_SK:
                DEPTH: 152
                WIDTH_MULTIPLIER: 1
                SK_RATIO: 0.0625

        """

    static func pipeline(weights: String) throws -> String {
        try demoPipelineText(
            model: trunk + "    WEIGHTS_INIT:\n      PARAMS_FILE: \"\(weights)\"\n")
    }

    /// The seeded random weights (`SEED_VALUE: 0`, as the demo) written in VISSL's layout.
    static func writeCheckpoint(_ path: String) throws {
        let model = ConfigNode(
            path: "MODEL",
            value: ["TRUNK": ["NAME": "resnet_sk", "RESNETS_SK": ["DEPTH": 152, "WIDTH_MULTIPLIER": 1]]])
        let architecture = try TrunkConfiguration(model: model).architecture
        let weights = TrunkWeights.random(architecture: architecture, seed: 0)
        let tensors = try architecture.parameters.map {
            CheckpointTensorValues(name: "base_model." + $0.name, shape: $0.shape, values: try weights.values($0.name))
        }
        try writeTorchCheckpoint(
            to: path, nesting: ["classy_state_dict", "base_model", "model", "trunk"], tensors: tensors)
    }

    @Test("extract → train-svm → report from the checkpoint; features equal the seeded random weights'")
    func run() throws {
        let dir = try TemporaryDirectory()
        let checkpoint = dir.file("simclrv2_rn152_1x_sk1.torch")
        try Self.writeCheckpoint(checkpoint)
        let voc = repositoryRoot.appendingPathComponent("data/demo/voc").path
        let data = ["config.DATA.TRAIN.DATA_PATHS=[\(voc)]", "config.DATA.TEST.DATA_PATHS=[\(voc)]"]
        var stores: [String] = []
        for (name, weights) in [("from_file", checkpoint), ("random", "")] {
            let file = dir.file("\(name).yaml")
            try Self.pipeline(weights: weights).write(toFile: file, atomically: true, encoding: .utf8)
            let work = dir.file(name)
            let result = try runProcess(linprobeBinary(), ["run", file] + data + ["--workdir", work])
            try #require(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("stages extract → train-svm"), "\(result.stderr)")
            let report = try JSONValue.parse(
                String(contentsOfFile: "\(work)/reports/\(name)/report.json", encoding: .utf8))
            // An empty pool-op map stores the trunk output under VISSL's name for it, `heads`.
            let row = (report["rows"]?.arrayValue ?? []).first {
                $0["layer"]?.stringValue == "heads" && $0["metric"]?.stringValue == "mAP"
            }
            let value = try #require(row?["value"]?.doubleValue, "no mAP row for heads")
            #expect(value > 0 && value <= 100)
            let features = work + "/features"
            let fingerprint = try #require(
                try FileManager.default.contentsOfDirectory(atPath: features).first {
                    FileManager.default.fileExists(atPath: "\(features)/\($0)/test.h5")
                })
            stores.append("\(features)/\(fingerprint)/test.h5")
        }
        let fromFile = try FeatureStoreReader(path: stores[0])
        let random = try FeatureStoreReader(path: stores[1])
        #expect(fromFile.layers.map(\.name) == ["heads"])
        let a = try fromFile.readLayer("heads")
        let b = try random.readLayer("heads")
        #expect(a.count == 80 * 2048)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "the checkpoint's features differ from the same weights'")
    }
}
