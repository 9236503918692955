import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

/// A RegNet (parametric form: depth 7, w_0 16, w_a 24, w_m 2, group width 8, stem width 24) from a
/// VISSL `classy_state_dict` checkpoint (`Tests/Fixtures/regnet/parametric.torch`, made by
/// `scripts/make_regnet_fixtures.py`, VISSL's `_feature_blocks.` keys) through extract →
/// train-svm → report on the demo data, with SEER-style taps: uneven adaptive pools on res4 and
/// res5 and the trunk's average pool.
@Suite("run: a VISSL-layout RegNet on the demo data")
struct RegNetEndToEndTests {
    static func pipeline(weights: String) throws -> String {
        try demoPipelineText(
            model: """
                      LINEAR_EVAL_FEAT_POOL_OPS_MAP: [
                        ["res4", ["AdaptiveAvgPool2d", [[2, 1]]]],
                        ["res5", ["AdaptiveAvgPool2d", [[1, 2]]]],
                        ["avgpool", ["Identity", []]],
                      ]
                    TRUNK:
                      NAME: regnet
                      REGNET:
                        depth: 7
                        w_0: 16
                        w_a: 24.0
                        w_m: 2.0
                        group_width: 8
                        stem_width: 24
                    WEIGHTS_INIT:
                      PARAMS_FILE: "\(weights)"

                """)
    }

    @Test("extract → train-svm → report with a classy_state_dict RegNet checkpoint")
    func run() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("regnet_demo.yaml")
        try Self.pipeline(weights: fixturePath("regnet/parametric.torch"))
            .write(toFile: file, atomically: true, encoding: .utf8)
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
        let report = try JSONValue.parse(
            String(contentsOfFile: work + "/reports/regnet_demo/report.json", encoding: .utf8))
        let rows = report["rows"]?.arrayValue ?? []
        for layer in ["res4", "res5", "avgpool"] {
            let row = rows.first { $0["layer"]?.stringValue == layer && $0["metric"]?.stringValue == "mAP" }
            let value = try #require(row?["value"]?.doubleValue, "no mAP row for \(layer)")
            #expect(value > 0 && value <= 100)
        }
    }
}
