import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeReport

private func config(_ name: String = "voc07_svm", yaml: String = "config: {}") throws -> PipelineConfig {
    try PipelineConfig.load(text: yaml, source: name, name: name)
}

private func rows(_ doc: ReportDocument, method: String, metric: String) -> [ReportRow] {
    doc.rows.filter { $0.method == method && $0.metric == metric }
}

@Suite struct ReportBuilderTests {
    @Test func svmRowsCarryTheResultsNumbers() throws {
        let w = try ResultsWorkdir()
        let svmDir = try w.svm()
        let doc = try ReportBuilder.build(
            resultsDirectories: [svmDir], title: "t", context: .init(pipeline: "voc07_svm"))
        for layer in ["res4", "res5avg"] {
            let results = try readJSON("\(svmDir)/\(layer)/results.json")
            let mAP = try #require(rows(doc, method: "svm", metric: "mAP").first { $0.layer == layer })
            #expect(mAP.value == results["metrics"]?["mAP"]?.doubleValue)
            #expect(mAP.value == results["value"]?.doubleValue)
            let elevenPoint = try #require(rows(doc, method: "svm", metric: "mAP_11point").first { $0.layer == layer })
            #expect(elevenPoint.value == results["metrics"]?["mAP_11point"]?.doubleValue)
            #expect(mAP.fingerprint == (svmDir as NSString).lastPathComponent)
            #expect(mAP.dataset == "voc2007")
            #expect(mAP.split == "test")
            #expect(mAP.run == "voc07_svm · rn50_ep100.torch")
            // Chosen costs in words: every trained class counted once.
            let hyper = try #require(mAP.hyperparameters)
            #expect(hyper.hasPrefix("C "))
            #expect(hyper.contains("of 3 costs, 3-fold CV"))
            let counted = hyper.components(separatedBy: "×").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
                .reduce(0, +)
            #expect(counted == results["classes"]?.arrayValue?.filter { $0["status"]?.stringValue == "trained" }.count)
        }
        // CV AP against cost: one series per layer, one point per cost, means of the results' cv_ap.
        let cv = try #require(doc.charts.first { $0.id == "svm-cv" })
        #expect(cv.logX)
        #expect(cv.series.map(\.name) == ["res4", "res5avg"])
        let res4 = try readJSON("\(svmDir)/res4/results.json")
        let classes = res4["classes"]!.arrayValue!
        let expected0 =
            classes.map { $0["cv_ap"]!.arrayValue![0].doubleValue! }.reduce(0, +) / Double(classes.count) * 100
        #expect(cv.series[0].points.map(\.x) == [0.1, 1, 10])
        #expect(abs(cv.series[0].points[0].y - expected0) < 1e-9)
        // Metric per layer.
        let layers = try #require(doc.charts.first { $0.id == "layers/mAP" })
        #expect(layers.categories == ["res4", "res5avg"])
        #expect(layers.series.map(\.name) == ["svm"])
        // Protocol: what the results recorded about the stores, and the results' own settings.
        let block = try #require(doc.protocolInfo.runs["voc07_svm · rn50_ep100.torch"])
        let features = try #require(block.features["voctrain"])
        #expect(features.recorded)
        #expect(features.transforms?.arrayValue?.count == 2)
        #expect(features.weights?["sha256"]?.stringValue == "ab12")
        #expect(features.dataset?["settings"]?["dataset_names"] == ["voc2007"])
        #expect(features.provenance == ["tool": "linprobe 0.1.0"])  // the store's written_by
        let svm = try #require(block.svm?[(svmDir as NSString).lastPathComponent])
        #expect(svm.settings == res4["settings"])
        #expect(svm.provenance?.timings == nil)
        #expect(svm.provenance?.toolVersion != nil)
        #expect(svm.layers.keys.sorted() == ["res4", "res5avg"])
    }

    @Test func linearRowsHyperparametersAndEpochChart() throws {
        let w = try ResultsWorkdir()
        let dir = try w.linear(epochs: 3)
        let doc = try ReportBuilder.build(resultsDirectories: [dir], title: "t", context: .init(pipeline: "fashion"))
        for (head, kind) in [("res4", "eval_mlp"), ("res5avg", "mlp")] {
            let results = try readJSON("\(dir)/\(head)/results.json")
            let top1 = try #require(rows(doc, method: kind, metric: "top_1").first { $0.layer == head })
            #expect(top1.value == results["value"]?.doubleValue)
            #expect(top1.fingerprint == results["results_fingerprint"]?.stringValue)
            #expect(top1.dataset == "fashion")
            #expect(top1.split == "test")
            let top2 = try #require(rows(doc, method: kind, metric: "top_2").first { $0.layer == head })
            #expect(top2.value == results["metrics"]?["top_2"]?.doubleValue)
            let hyper = try #require(top1.hyperparameters)
            #expect(hyper.contains("lr multistep 0.1, 0.01 at epochs 1"))
            #expect(hyper.contains("3 epochs, batch 16, momentum 0.9 nesterov, wd 0.0005"))
            #expect(hyper.contains("best test top_1"))
        }
        let chart = try #require(doc.charts.first { $0.id == "linear-epochs/top_1" })
        #expect(chart.series.map(\.name) == ["res4 (eval_mlp)", "res5avg (mlp)"])
        let metrics = try readJSON("\(dir)/res4/metrics.json")
        let expected = metrics["epochs"]!.arrayValue!.map {
            ReportChart.Point($0["epoch"]!.doubleValue!, $0["test"]!["top_1"]!.doubleValue!)
        }
        #expect(chart.series[0].points == expected)
        #expect(chart.series[0].points.count == 3)
        let block = try #require(
            doc.protocolInfo.runs["fashion · rn50_ep100.torch"]?.linear?[(dir as NSString).lastPathComponent])
        #expect(block.heads["res4"]?.headType == .evalMLP)
        #expect(block.heads["res5avg"]?.layer == "res5avg")
        #expect(block.hyperParameters?["batch_size"]?.intValue == 16)
    }

    @Test func lowShotRowsPerKUnderBothRules() throws {
        let w = try ResultsWorkdir()
        let dir = try w.lowShot()
        let doc = try ReportBuilder.build(resultsDirectories: [dir], title: "t", context: .init(label: "ckpt"))
        let results = try readJSON("\(dir)/res4/results.json")
        let byK = try #require(results["results_by_k"]?.arrayValue)
        #expect(!byK.isEmpty)
        for entry in byK {
            let k = entry["k"]!.intValue!
            let vissl = try #require(
                rows(doc, method: ReportBuilder.lowShotVISSLMethod, metric: "mAP k=\(k)").first { $0.layer == "res4" })
            let cv = try #require(
                rows(doc, method: ReportBuilder.lowShotCVMethod, metric: "mAP k=\(k)").first { $0.layer == "res4" })
            #expect(vissl.value == entry["vissl_rule"]?["mean"]?.doubleValue)
            if let m = entry["cv_rule"]?["mean"]?.doubleValue {
                #expect(cv.value == m)
            } else {
                #expect(cv.value.isNaN)
            }
        }
        #expect(doc.rows.allSatisfy { $0.run == "ckpt" })
        #expect(doc.charts.contains { $0.id == "svm-low-shot-k" && $0.series.count == 4 })
        #expect(doc.charts.contains { $0.id == "svm-low-shot-cost/res4" })
        #expect(!doc.charts.contains { $0.id == "layers/mAP" })
        // k = 1, 2 are below the 3 CV folds: the CV rule is undefined there and says why.
        #expect(doc.notes.contains { $0.hasPrefix("svm-low-shot (CV rule) k=1:") })
        let md = ReportRenderer.markdown(doc)
        #expect(md.contains("svm-low-shot (VISSL rule) mAP k=1"))
        #expect(md.contains("svm-low-shot (CV rule) mAP k=4"))
    }

    @Test func resultsFromSeveralStagesAndOrder() throws {
        let w = try ResultsWorkdir()
        let svm = try w.svm()
        let linear = try w.linear(epochs: 2)
        // Given as stage folders, layer folders and a results.json file; order of arguments is irrelevant.
        let a = try ReportBuilder.build(resultsDirectories: [svm, linear], title: "t", context: .init(label: "x"))
        let b = try ReportBuilder.build(
            resultsDirectories: ["\(linear)/res5avg", "\(svm)/res4/results.json", "\(linear)/res4", "\(svm)/res5avg"],
            title: "t",
            context: .init(label: "x"))
        #expect(a == b)
        #expect(ReportRenderer.markdown(a) == ReportRenderer.markdown(b))
        #expect(Set(a.rows.map(\.dataset)) == ["voc2007", "fashion"])
        #expect(a.rows.first?.dataset == "fashion")
        #expect(a.rows.first { $0.dataset == "voc2007" }?.method == "svm")
        // The work folder's stage folder works too.
        let c = try ReportBuilder.build(
            resultsDirectories: ["\(w.workdir)/svm"], title: "t", context: .init(label: "x"))
        #expect(c.rows.count == 4)
    }

    @Test func twoSVMRunsOfOneLayerAreToldApartByFingerprint() throws {
        let w = try ResultsWorkdir()
        let first = try w.svm(costs: [0.1, 1])
        let second = try w.svm(costs: [1, 10], storePrefix: "voc2")
        let doc = try ReportBuilder.build(resultsDirectories: [first, second], title: "t", context: .init(label: "x"))
        let methods = Set(doc.rows.map(\.method))
        #expect(methods.count == 2)
        #expect(methods.contains("svm [\((first as NSString).lastPathComponent.prefix(8))]"))
    }

    @Test func storesAreNeverOpened() throws {
        // The stores are gone: the report reads what the results recorded about them.
        let w = try ResultsWorkdir()
        let dir = try w.svm()
        try FileManager.default.removeItem(atPath: "\(w.workdir)/features")
        let doc = try ReportBuilder.build(resultsDirectories: [dir], title: "t", context: .init(pipeline: "p"))
        #expect(doc.rows.allSatisfy { $0.dataset == "voc2007" && $0.run == "p · rn50_ep100.torch" })
        #expect(doc.protocolInfo.runs["p · rn50_ep100.torch"]?.features["voctest"]?.recorded == true)
        #expect(!doc.notes.contains { $0.contains("provenance") })
    }
}

@Suite struct ReportErrorTests {
    @Test func missingResultsJSONNamesTheFile() throws {
        let w = try ResultsWorkdir()
        let dir = try w.svm()
        try FileManager.default.removeItem(atPath: "\(dir)/res5avg/results.json")
        let error = try #require(throws: LinprobeError.self) {
            try ReportBuilder.build(resultsDirectories: [dir], title: "t")
        }
        #expect(error.message.contains("\(dir)/res5avg/results.json: missing"))
        #expect(!oneLine(error).contains("\n"))
        #expect(error.exitCode == 1)
    }

    @Test(arguments: [
        "{\"format\": \"linprobe.svm.res", "", "[1, 2]",
        "{\"format\": \"linprobe.svm.results\", \"protocol\": \"voc07\"}",
    ])
    func corruptResultsJSONNamesTheFile(_ text: String) throws {
        let w = try ResultsWorkdir()
        let dir = try w.svm()
        try text.write(toFile: "\(dir)/res4/results.json", atomically: true, encoding: .utf8)
        let error = try #require(throws: LinprobeError.self) {
            try ReportBuilder.build(resultsDirectories: [dir], title: "t")
        }
        #expect(error.message.hasPrefix("\(dir)/res4/results.json: "))
        #expect(error.exitCode == 1)
    }

    @Test func corruptMetricsJSONNamesTheFile() throws {
        let w = try ResultsWorkdir()
        let dir = try w.linear(epochs: 2)
        try "{".write(toFile: "\(dir)/res4/metrics.json", atomically: true, encoding: .utf8)
        let error = try #require(throws: LinprobeError.self) {
            try ReportBuilder.build(resultsDirectories: [dir], title: "t")
        }
        #expect(error.message.hasPrefix("\(dir)/res4/metrics.json: "))
        #expect(!oneLine(error).contains("\n"))
        #expect(error.exitCode == 1)
    }

    @Test func absentOrEmptyFolders() throws {
        let dir = try TemporaryDirectory()
        let missing = try #require(throws: LinprobeError.self) {
            try ReportBuilder.build(resultsDirectories: [dir.file("nope")], title: "t")
        }
        #expect(missing.message.hasPrefix("\(dir.file("nope")): no such results folder"))
        try FileManager.default.createDirectory(atPath: dir.file("empty/a"), withIntermediateDirectories: true)
        let empty = try #require(throws: LinprobeError.self) {
            try ReportBuilder.build(resultsDirectories: [dir.file("empty")], title: "t")
        }
        #expect(empty.message.contains("no results.json under it"))
    }
}

@Suite struct ReportStageTests {
    @Test func writesValidDeterministicFiles() throws {
        let w = try ResultsWorkdir()
        let svm = try w.svm()
        let linear = try w.linear(epochs: 2)
        let cfg = try config()
        let a = try ReportStage.run(
            config: cfg, workdir: w.workdir, resultsDirectories: [svm, linear], outputDirectory: w.dir.file("a"))
        _ = try ReportStage.run(
            config: cfg, workdir: w.workdir, resultsDirectories: [linear, svm], outputDirectory: w.dir.file("b"))
        for name in ["report.md", "report.json", "report.html"] {
            let x = try Data(contentsOf: URL(fileURLWithPath: w.dir.file("a/\(name)")))
            let y = try Data(contentsOf: URL(fileURLWithPath: w.dir.file("b/\(name)")))
            #expect(x == y, "\(name) differs between two runs")
        }
        let json = try readJSON(a.jsonPath)
        let validator = try SchemaValidator(schemaPath: schemaPath("report.schema.json"))
        #expect(validator.validate(json) == [])
        #expect(json["charts"]?.arrayValue?.isEmpty == false)
        let html = try String(contentsOfFile: a.htmlPath, encoding: .utf8)
        #expect(html.contains("<svg"))
        #expect(html.contains("<polyline"))
        #expect(!html.contains("<script"))
        #expect(!html.contains("<link"))
        let urls = html.components(separatedBy: "http").count - 1
        #expect(
            urls == html.components(separatedBy: "xmlns=\"http://www.w3.org/2000/svg\"").count - 1,
            "only the SVG namespace may name a URL")
        #expect(a.markdown.contains("## voc2007 (test)"))
        #expect(a.markdown == (try String(contentsOfFile: a.markdownPath, encoding: .utf8)))
    }

    @Test func mergesAnotherRunsReport() throws {
        let w = try ResultsWorkdir()
        let svm = try w.svm()
        let cfg = try config()
        let first = try ReportStage.run(
            config: cfg, workdir: w.workdir, resultsDirectories: [svm], label: "ckpt-a",
            outputDirectory: w.dir.file("a"))
        let second = try ReportStage.run(
            config: cfg, workdir: w.workdir, resultsDirectories: [svm], merge: [first.jsonPath],
            label: "ckpt-b", outputDirectory: w.dir.file("b"))
        let doc = second.document
        #expect(Set(doc.rows.map(\.run)) == ["ckpt-a", "ckpt-b"])
        #expect(doc.rows.count == 2 * first.document.rows.count)
        let a = first.document.rows.first { $0.metric == "mAP" && $0.layer == "res4" }!
        let merged = doc.rows.first { $0.run == "ckpt-a" && $0.metric == "mAP" && $0.layer == "res4" }!
        #expect(merged.value == a.value)
        #expect(merged.hyperparameters == a.hyperparameters)
        let cv = try #require(doc.charts.first { $0.id == "svm-cv" })
        #expect(cv.series.map(\.name) == ["ckpt-b · res4", "ckpt-b · res5avg", "ckpt-a · res4", "ckpt-a · res5avg"])
        #expect(doc.protocolInfo.runs["ckpt-a"] != nil && doc.protocolInfo.runs["ckpt-b"] != nil)
        #expect(second.markdown.contains("ckpt-a · svm mAP"))
        let validator = try SchemaValidator(schemaPath: schemaPath("report.schema.json"))
        #expect(validator.validate(try readJSON(second.jsonPath)) == [])
        // Merging a report that already holds this run's label leaves its rows out, and says so.
        let third = try ReportStage.run(
            config: cfg, workdir: w.workdir, resultsDirectories: [svm], merge: [second.jsonPath],
            label: "ckpt-b", outputDirectory: w.dir.file("c"))
        #expect(third.document.rows.count == doc.rows.count)
        #expect(third.messages.contains { $0.contains("'ckpt-b' already in the report") })
    }

    @Test func corruptMergeFileNamesIt() throws {
        let w = try ResultsWorkdir()
        let svm = try w.svm()
        let bad = w.dir.file("bad.json")
        try #"{"format": "linprobe.report", "format_version": 1, "rows": [{"dataset": 3}]}"#.write(
            toFile: bad, atomically: true, encoding: .utf8)
        let error = try #require(throws: LinprobeError.self) {
            try ReportStage.run(
                config: try config(), workdir: w.workdir, resultsDirectories: [svm], merge: [bad],
                outputDirectory: w.dir.file("o"))
        }
        #expect(error.message.hasPrefix("\(bad): rows[0].dataset"))
    }

    @Test func latestCompleteRecordsOfThePipeline() throws {
        let w = try ResultsWorkdir()
        let svm = try w.svm()
        let linear = try w.linear(epochs: 2)
        let store = ManifestStore(workdir: w.workdir)
        let fp = (svm as NSString).lastPathComponent
        try store.put(
            ManifestRecord(
                stage: "train-svm", fingerprint: "old", status: .complete, outputs: ["svm/gone"],
                started: "2025-01-01T00:00:00Z", finished: "2025-01-01T00:00:01Z", pipeline: "voc07_svm"))
        try store.put(
            ManifestRecord(
                stage: "train-svm", fingerprint: fp, status: .complete, outputs: ["svm/\(fp)"],
                started: "2025-01-02T00:00:00Z", finished: "2025-01-02T00:00:01Z", pipeline: "voc07_svm"))
        try store.put(
            ManifestRecord(
                stage: "train-svm", fingerprint: "newer-failed", status: .failed, outputs: ["svm/\(fp)"],
                started: "2025-01-03T00:00:00Z", pipeline: "voc07_svm"))
        try store.put(
            ManifestRecord(
                stage: "train-linear", fingerprint: "other", status: .complete, outputs: [linear],
                started: "2025-01-02T00:00:00Z", finished: "2025-01-02T00:00:01Z", pipeline: "other_pipeline"))
        #expect(
            try ReportStage.latestResults(layout: WorkdirLayout(w.workdir), pipeline: "voc07_svm") == [
                "\(w.workdir)/svm/\(fp)"
            ])
        let out = try ReportStage.run(config: try config(), workdir: w.workdir)
        #expect(out.jsonPath == "\(w.workdir)/reports/voc07_svm/report.json")
        #expect(Set(out.document.rows.map(\.method)) == ["svm"])
        // The report is recorded; an unchanged second report is reused.
        #expect(try store.read().records.values.contains { $0.stage == "report" && $0.status == .complete })
        let again = try ReportStage.run(config: try config(), workdir: w.workdir)
        #expect(again.unchanged)
        #expect(again.markdown == out.markdown)
    }

    @Test func nothingFoundSaysWhichStageToRun() throws {
        let w = try ResultsWorkdir()
        let cfg = try config("voc07_svm", yaml: "config:\n  SVM:\n    cross_val_folds: 3\n")
        let none = try #require(throws: LinprobeError.self) { try ReportStage.run(config: cfg, workdir: w.workdir) }
        #expect(none.message.contains("run 'linprobe extract voc07_svm' first, then 'linprobe train-svm voc07_svm'"))
        #expect(none.exitCode == 1)
        try ManifestStore(workdir: w.workdir).put(
            ManifestRecord(stage: "extract", fingerprint: "f", status: .complete, pipeline: "voc07_svm"))
        let noTraining = try #require(throws: LinprobeError.self) {
            try ReportStage.run(config: cfg, workdir: w.workdir)
        }
        #expect(noTraining.message.contains("run 'linprobe train-svm voc07_svm' first"))
        #expect(!noTraining.message.contains("\n"))
    }
}

@Suite struct NaturalOrderTests {
    @Test func layersInTrunkOrder() {
        let names = ["res5avg", "res10", "conv1", "res5", "res4", "heads", "res5avg_1", "res2"]
        #expect(
            names.sorted(by: naturalLess) == [
                "conv1", "heads", "res2", "res4", "res5", "res5avg", "res5avg_1", "res10",
            ])
    }
}

@Suite struct DatasetNameTests {
    @Test(arguments: [
        ("/data/demo/fashion/val", "fashion"), ("/data/VOC2007", "VOC2007"), ("/data/VOC2007/", "VOC2007"),
        ("/data/places/train_images.npy", "places"), ("/data/inat/train/filelist.npy", "inat"),
        ("imagenet", "imagenet"),
    ])
    func nameFromDataPath(_ path: String, _ expected: String) {
        #expect(FeatureProvenance.name(fromPath: path) == expected)
    }
}
