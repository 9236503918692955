import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeReport

private func sampleDocument(run: String = "rn50") -> ReportDocument {
    let rows = [
        ReportRow(
            run: run, dataset: "voc07", split: "test", layer: "res4", method: "svm", metric: "mAP", value: 71.234,
            fingerprint: "aa", hyperparameters: "C: 0.1 ×3, 1 ×17"),
        ReportRow(
            run: run, dataset: "voc07", split: "test", layer: "res5", method: "svm", metric: "mAP", value: 80.5,
            fingerprint: "bb"),
        ReportRow(
            run: run, dataset: "voc07", split: "test", layer: "res5", method: "svm", metric: "mAP_11pt", value: 78.25,
            fingerprint: "bb"),
        ReportRow(
            run: run, dataset: "imagenet1k", split: "val", layer: "res5avg", method: "mlp", metric: "top1",
            value: 76.13,
            fingerprint: "cc", hyperparameters: "lr 0.01 <multistep>, 28 epochs"),
    ]
    let chart = ReportChart(
        title: "CV AP against cost", dataset: "voc07", xLabel: "cost C", yLabel: "mean CV AP", logX: true,
        series: [.init(name: "res4", points: [.init(0.01, 50), .init(1, 70), .init(1000, 65)])])
    let layers = ReportChart(
        title: "mAP per layer", dataset: "voc07", xLabel: "layer", yLabel: "mAP", categories: ["res4", "res5"],
        series: [.init(name: "svm", points: [.init(0, 71.2), .init(1, 80.5)])])
    let block = RunProtocol(
        features: [
            "fp": FeaturesProtocol(recorded: true, split: "train", weights: ["path": "/w.torch", "sha256": "ff"])
        ],
        svm: ["aa": SVMRunProtocol(protocolName: "voc07", costs: [0.01, 1], trainFeatures: "fp", testFeatures: "fp")])
    return ReportDocument(
        title: "Linprobe report", rows: rows, charts: [chart, layers],
        protocolInfo: ReportProtocol(runs: [run: block]), notes: ["mAP is all-points AP"])
}

@Suite struct ReportRenderingTests {
    @Test func markdownTablePerDataset() {
        let md = ReportRenderer.markdown(sampleDocument())
        #expect(md.contains("## voc07 (test)"))
        #expect(md.contains("| layer | svm mAP | svm mAP_11pt |"))
        #expect(md.contains("| res4 | 71.23 |  |"))
        #expect(md.contains("| res5 | 80.50 | 78.25 |"))
        #expect(md.contains("## imagenet1k (val)"))
        #expect(md.contains("| res5avg | 76.13 |"))
        #expect(md.contains("| res4 | C: 0.1 ×3, 1 ×17 |"))
    }

    @Test func jsonValidatesAgainstSchema() throws {
        let json = try ReportRenderer.json(sampleDocument())
        let validator = try SchemaValidator(schemaPath: schemaPath("report.schema.json"))
        #expect(validator.validate(json) == [])
        #expect(json["rows"]?.arrayValue?.count == 4)
        var broken = json
        if case .object(var o) = broken { o["rows"] = [["dataset": "x"]]; broken = .object(o) }
        #expect(!validator.validate(broken).isEmpty)
    }

    @Test func htmlIsSelfContainedEscapedAndDeterministic() {
        let a = ReportRenderer.html(sampleDocument())
        let b = ReportRenderer.html(sampleDocument())
        #expect(a == b)
        #expect(a.contains("<svg"))
        #expect(a.contains("<polyline"))
        #expect(a.contains("lr 0.01 &lt;multistep&gt;"))
        #expect(!a.contains("<script"))
        #expect(
            !a.contains("http://")
                || a.components(separatedBy: "http://").count - 1 == a.components(
                    separatedBy: "xmlns=\"http://www.w3.org/2000/svg\""
                ).count - 1)
        // log axis ticks at the decades
        #expect(a.contains(">0.01<") && a.contains(">1000<"))
    }

    @Test func mergedRunsGetRunColumns() {
        let merged = ReportDocument.merged(
            [sampleDocument(run: "ckpt-a"), sampleDocument(run: "ckpt-b")], title: "compare")
        let md = ReportRenderer.markdown(merged)
        #expect(md.contains("ckpt-a · svm mAP"))
        #expect(md.contains("ckpt-b · svm mAP"))
        #expect(merged.rows.count == 8)
        #expect(merged.protocolInfo.runs.keys.sorted() == ["ckpt-a", "ckpt-b"])
        #expect(md.contains("- ckpt-a: features fp (train): weights /w.torch sha256 ff"))
        #expect(md.contains("- ckpt-b: svm aa: voc07, costs [0.01,1]"))
    }

    @Test func writesThreeFiles() throws {
        let dir = try TemporaryDirectory()
        let paths = try ReportRenderer.write(sampleDocument(), to: dir.file("reports/demo"))
        #expect(paths.map { ($0 as NSString).lastPathComponent } == ["report.md", "report.json", "report.html"])
        for p in paths { #expect(FileManager.default.fileExists(atPath: p)) }
    }

    @Test func niceTicksCoverTheRange() {
        let t = SVGChart.niceTicks(47.3, 81.9, count: 5)
        #expect(t.first! <= 47.3 && t.last! >= 81.9)
        #expect(t == [40, 50, 60, 70, 80, 90])
    }
}
