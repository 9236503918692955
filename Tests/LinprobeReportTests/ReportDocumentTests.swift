import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeReport

/// The fixtures of this suite: `Tests/Fixtures/report/`.
func reportFixture(_ relative: String) -> String {
    fixturePath("report/\(relative)")
}

@Suite struct ReportDocumentTests {
    @Test func readsAVersion1ReportAndWritesVersion2() throws {
        let path = reportFixture("v1/report.json")
        let document = try ReportStage.readReport(path)
        let v1 = try JSONValue.parse(String(contentsOfFile: path, encoding: .utf8))
        #expect(v1["format_version"] == 1)
        // Every row and number of the version-1 file, in order.
        let rows = try #require(v1["rows"]?.arrayValue)
        #expect(document.rows.count == rows.count)
        for (row, json) in zip(document.rows, rows) {
            #expect(row.value == json["value"]?.doubleValue)
            #expect(row.run == json["run"]?.stringValue)
            #expect(row.layer == json["layer"]?.stringValue)
            #expect(row.hyperparameters == json["hyperparameters"]?.stringValue)
        }
        #expect(document.charts.count == v1["charts"]?.arrayValue?.count)
        // Its protocol block: whole store provenance (format 1) kept under the run.
        let run = try #require(document.protocolInfo.runs["demo · random init (seed 0)"])
        let features = try #require(run.features["9ac3ba2c503ed58e"])
        #expect(features.recorded)
        #expect(features.provenance?["tool"]?.stringValue == "linprobe 0.1.0")
        #expect(run.svm?["5b73ea2be94b2885"]?.layers.keys.sorted() == ["res3", "res4", "res5avg"])
        // Written again it is version 2, valid, and reads back to the same document.
        let json = try ReportRenderer.json(document)
        #expect(json["format_version"] == 2)
        #expect(try SchemaValidator(schemaPath: schemaPath("report.schema.json")).validate(json) == [])
        let again = try JSONDecoder().decode(
            ReportDocument.self, from: Data(try ReportRenderer.jsonText(document).utf8))
        #expect(again == document)
    }

    @Test func markdownOfAVersion1ReportKeepsItsTables() throws {
        let document = try ReportStage.readReport(reportFixture("v1/report.json"))
        let markdown = ReportRenderer.markdown(document)
        let v1 = try String(contentsOfFile: reportFixture("v1/report.md"), encoding: .utf8)
        let tables = { (text: String) in text.components(separatedBy: "\n## Protocol")[0] }
        #expect(tables(markdown) == tables(v1))
    }

    @Test func notANumberIsNullAndBack() throws {
        let row = ReportRow(
            run: "r", dataset: "d", split: "test", layer: "res4", method: "svm", metric: "mAP", value: .nan,
            fingerprint: "f")
        let chart = ReportChart(
            title: "t", dataset: "d", xLabel: "x", yLabel: "y",
            series: [.init(name: "s", points: [.init(1, .nan)])])
        let document = ReportDocument(title: "t", rows: [row], charts: [chart])
        let json = try ReportRenderer.json(document)
        #expect(json["rows"]?.arrayValue?.first?["value"] == .null)
        #expect(json["charts"]?.arrayValue?.first?["series"]?.arrayValue?.first?["points"] == [[1, nil]])
        let back = try JSONDecoder().decode(ReportDocument.self, from: Data(try ReportRenderer.jsonText(document).utf8))
        #expect(back.rows[0].value.isNaN)
        #expect(back.charts[0].series[0].points[0].y.isNaN)
    }

    @Test(arguments: [
        (
            #"{"format": "linprobe.report", "format_version": 3, "rows": []}"#,
            "report format version 3 is not supported"
        ),
        (#"{"format": "other", "format_version": 2, "rows": []}"#, "not a Linprobe report.json"),
        (
            #"{"format": "linprobe.report", "format_version": 2, "rows": [{"dataset": 3}]}"#,
            "rows[0].dataset is not a string"
        ),
        (#"{"format": "linprobe.report", "format_version": 2, "rows": [{"run": "r"}]}"#, "rows[0].dataset is missing"),
        (
            #"{"format": "linprobe.report", "format_version": 2, "rows": [], "charts": [{"id": "x"}]}"#,
            "charts[0].title is missing"
        ),
        (#"{"format": "linprobe.report", "format_ver"#, "not valid JSON"),
    ])
    func damagedReportsAreOneLineNamingTheField(_ text: String, _ expected: String) throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("report.json")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let error = try #require(throws: LinprobeError.self) { try ReportStage.readReport(path) }
        #expect(error.message.hasPrefix("\(path): "))
        #expect(error.message.contains(expected), "\(error.message)")
        #expect(!error.message.contains("\n"))
    }
}
