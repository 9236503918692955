import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

/// The BVLC AlexNet of `pipelines/voc07_alexnet_svm.yaml` — aspect-distorting Resize([256, 256]),
/// 227-pixel crop, raw 0–255 RGB minus the mean, VISSL's five AvgPool2d taps — with a random
/// checkpoint in VISSL's AlexNet layout ({"model_state_dict": {"_feature_blocks.…"}}, read with the
/// model zoo's APPEND_PREFIX trunk.base_model.) through extract → train-svm → report on the demo data.
@Suite("run: a VISSL-layout AlexNet (BVLC) on the demo data")
struct AlexNetEndToEndTests {
    @Test("extract → train-svm → report; an mAP row for each of conv1…conv5")
    func run() throws {
        let dir = try TemporaryDirectory()
        var text = try String(
            contentsOfFile: repositoryRoot.appendingPathComponent("pipelines/voc07_alexnet_svm.yaml").path,
            encoding: .utf8)
        let weights = fixturePath("alexnet/bvlc_vissl.torch")
        text = text.replacingOccurrences(of: "PARAMS_FILE: \"\"", with: "PARAMS_FILE: \"\(weights)\"")
            .replacingOccurrences(of: "APPEND_PREFIX: trunk.\n", with: "APPEND_PREFIX: trunk.base_model.\n")
            .replacingOccurrences(
                of: "costs_list: [0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0]",
                with: "costs_list: [0.1, 1.0]")
        let file = dir.file("alexnet_demo.yaml")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let voc = repositoryRoot.appendingPathComponent("data/demo/voc").path
        let work = dir.file("runs")
        let result = try runProcess(
            linprobeBinary(),
            [
                "run", file, "config.DATA.TRAIN.DATA_PATHS=[\(voc)]", "config.DATA.TEST.DATA_PATHS=[\(voc)]",
                "config.DATA.NUM_DATALOADER_WORKERS=2", "--workdir", work,
            ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("stages extract → train-svm"), "\(result.stderr)")
        let report = try JSONValue.parse(
            String(contentsOfFile: work + "/reports/alexnet_demo/report.json", encoding: .utf8))
        let rows = report["rows"]?.arrayValue ?? []
        for layer in ["conv1", "conv2", "conv3", "conv4", "conv5"] {
            let row = rows.first { $0["layer"]?.stringValue == layer && $0["metric"]?.stringValue == "mAP" }
            let value = try #require(row?["value"]?.doubleValue, "no mAP row for \(layer)")
            #expect(value > 0 && value <= 100)
        }
    }
}
