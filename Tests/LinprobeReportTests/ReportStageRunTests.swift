import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeReport

/// Runs `body` on a copy of the format-1 work folder (`Tests/Fixtures/report/v1/workdir`: the
/// results.json and metrics.json files `linprobe run demo` wrote before results carried
/// `feature_provenance`, the per-fit lists left out, and its manifest's training records), in a
/// temporary folder that lives until `body` returns.
private func withV1WorkFolder(_ body: (_ workdir: String, _ scratch: TemporaryDirectory) throws -> Void) throws {
    let dir = try TemporaryDirectory("linprobe-report-v1")
    let workdir = dir.file("work")
    try FileManager.default.copyItem(atPath: reportFixture("v1/workdir"), toPath: workdir)
    try withExtendedLifetime(dir) { try body(workdir, dir) }
}

private func demoConfig() throws -> PipelineConfig {
    try PipelineConfig.load(
        text: "config:\n  DATA:\n    TEST:\n      DATA_PATHS: [data/demo/voc]\n", source: "demo", name: "demo")
}

@Suite struct ReportStageRunTests {
    @Test func aVersion1WorkFolderStillReports() throws {
        try withV1WorkFolder { workdir, _ in
            let out = try ReportStage.run(config: try demoConfig(), workdir: workdir)
            // The tables and hyper-parameters of the report main wrote for these results, byte for byte.
            let v1 = try String(contentsOfFile: reportFixture("v1/report.md"), encoding: .utf8)
            let head = { (text: String) in text.components(separatedBy: "\nNotes:")[0] }
            #expect(head(out.markdown) == head(v1))
            #expect(out.markdown.contains("| res5avg | 50.06 | 51.16 | 59.57 |"))
            let v1Notes = try ReportStage.readReport(reportFixture("v1/report.json")).notes
            #expect(v1Notes.allSatisfy(out.document.notes.contains))
            // The stores' provenance was not recorded: said, and nothing opened or invented.
            let run = try #require(out.document.protocolInfo.runs["demo"])
            #expect(run.features.keys.sorted() == ["9ac3ba2c503ed58e", "d7b7e04e1be71390"])
            #expect(run.features.values.allSatisfy { !$0.recorded && $0.trunk == nil })
            #expect(run.features["9ac3ba2c503ed58e"]?.path == "/tmp/v1demo/features/9ac3ba2c503ed58e/train.h5")
            #expect(
                out.document.notes.contains {
                    $0.hasPrefix("features 9ac3ba2c503ed58e") && $0.contains("do not record")
                })
            #expect(out.markdown.contains("features d7b7e04e1be71390: provenance not recorded"))
            #expect(run.svm?["5b73ea2be94b2885"]?.settings?["cross_val_folds"] == 3)
            #expect(run.linear?["1d1bf5951ce39efa"]?.heads.keys.sorted() == ["res3", "res4", "res5avg"])
            let json = try JSONValue.parse(String(contentsOfFile: out.jsonPath, encoding: .utf8))
            #expect(try SchemaValidator(schemaPath: schemaPath("report.schema.json")).validate(json) == [])
            // The numbers are the results' numbers.
            let results = try JSONValue.parse(
                String(contentsOfFile: "\(workdir)/svm/5b73ea2be94b2885/res4/results.json", encoding: .utf8))
            let row = out.document.rows.first { $0.layer == "res4" && $0.method == "svm" && $0.metric == "mAP" }
            #expect(row?.value == results["metrics"]?["mAP"]?.doubleValue)
        }
    }

    @Test func anIdenticalRerunIsAReuseAndDamagedFilesAreRestored() throws {
        try withV1WorkFolder { workdir, _ in
            let layout = WorkdirLayout(workdir)
            let runner = StageRunner(layout: layout)
            let stage = try ReportStage(config: try demoConfig(), layout: layout)
            #expect(stage.plan.kind == .report)
            #expect(
                stage.plan.outputs == [
                    "reports/demo/report.md", "reports/demo/report.json", "reports/demo/report.html",
                ])
            let first = try runner.execute(stage)
            #expect(!first.reused && !first.outcome.unchanged)
            #expect(first.record.status == .complete)
            #expect(
                FileManager.default.fileExists(atPath: layout.path(.lock(.report, fingerprint: stage.plan.fingerprint)))
            )

            let again = try ReportStage(config: try demoConfig(), layout: layout)
            #expect(again.plan.fingerprint == stage.plan.fingerprint)
            let second = try runner.execute(again)
            #expect(second.reused && second.outcome.unchanged)
            #expect(second.outcome.messages.contains { $0.hasPrefix("unchanged (same results, same report)") })

            let md = layout.path(.reportFile(pipeline: "demo", name: "report.md"))
            try "edited".write(toFile: md, atomically: true, encoding: .utf8)
            let third = try runner.execute(again)
            #expect(third.reused && !third.outcome.unchanged)
            #expect(try String(contentsOfFile: md, encoding: .utf8) == first.outcome.markdown)
            // A reuse writes no record: the one of the first run stands.
            let record = try ManifestStore(layout: layout).read().record(
                stage: StageKind.report.name, fingerprint: stage.plan.fingerprint)
            #expect(record?.finished == first.record.finished)
        }
    }

    @Test func changedResultsOrParametersAreANewReport() throws {
        try withV1WorkFolder { workdir, dir in
            let layout = WorkdirLayout(workdir)
            let base = try ReportStage(config: try demoConfig(), layout: layout)
            let labelled = try ReportStage(config: try demoConfig(), layout: layout, label: "ckpt")
            #expect(labelled.plan.fingerprint != base.plan.fingerprint)
            let results = "\(workdir)/linear/1d1bf5951ce39efa/res4/results.json"
            try (String(contentsOfFile: results, encoding: .utf8) + "\n").write(
                toFile: results, atomically: true, encoding: .utf8)
            let changed = try ReportStage(config: try demoConfig(), layout: layout)
            #expect(changed.plan.fingerprint != base.plan.fingerprint)
            // Outside the work folder, outputs are recorded by their absolute paths.
            let elsewhere = try ReportStage(config: try demoConfig(), layout: layout, outputDirectory: dir.file("out"))
            #expect(
                elsewhere.plan.outputs
                    == ReportRenderer.fileNames.map { Paths.join(Paths.standardized(dir.file("out")), $0) })
            let outcome = try StageRunner(layout: layout).execute(elsewhere).outcome
            #expect(outcome.directory == Paths.standardized(dir.file("out")))
        }
    }

    @Test func aVersion1ReportMergesIntoAVersion2One() throws {
        try withV1WorkFolder { workdir, _ in
            let out = try ReportStage.run(
                config: try demoConfig(), workdir: workdir, merge: [reportFixture("v1/report.json")], label: "again")
            #expect(Set(out.document.rows.map(\.run)) == ["again", "demo · random init (seed 0)"])
            #expect(
                out.document.protocolInfo.runs["demo · random init (seed 0)"]?.features.values.first?.provenance != nil)
            #expect(out.markdown.contains("demo · random init (seed 0) · svm mAP"))
            let json = try JSONValue.parse(String(contentsOfFile: out.jsonPath, encoding: .utf8))
            #expect(json["format_version"] == 2)
            #expect(try SchemaValidator(schemaPath: schemaPath("report.schema.json")).validate(json) == [])
        }
    }

    @Test func resultsOfBothFormatsAreOneRun() throws {
        // train-linear rerun after an upgrade (format 2), train-svm's results reused (format 1).
        try withV1WorkFolder { workdir, _ in
            func provenance(_ fingerprint: String, _ split: String) -> FeatureProvenance {
                FeatureProvenance(
                    fingerprint: fingerprint, path: "\(workdir)/features/\(fingerprint)/\(split).h5", split: split,
                    rows: split == "train" ? 120 : 80, weights: ["init": "random", "seed": 0],
                    dataset: ["settings": ["data_paths": ["data/demo/voc"]]])
            }
            for file in try ReportBuilder.resultFiles(in: ["\(workdir)/linear"]) {
                var doc = try LinearResultsDocument.read(path: file)
                doc.formatVersion = 2
                doc.featureProvenance = .init(
                    train: provenance("9ac3ba2c503ed58e", "train"), test: provenance("d7b7e04e1be71390", "test"))
                try doc.write(to: file)
            }
            let out = try ReportStage.run(config: try demoConfig(), workdir: workdir)
            #expect(Set(out.document.rows.map(\.run)) == ["demo · random init (seed 0)"])
            #expect(
                out.document.protocolInfo.runs["demo · random init (seed 0)"]?.features.values.allSatisfy(\.recorded)
                    == true)
            #expect(!out.document.notes.contains { $0.contains("do not record") })
            let v1 = try String(contentsOfFile: reportFixture("v1/report.md"), encoding: .utf8)
            let head = { (text: String) in text.components(separatedBy: "\nNotes:")[0] }
            #expect(head(out.markdown) == head(v1))
        }
    }
}
