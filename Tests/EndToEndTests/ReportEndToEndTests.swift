import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

// `linprobe report` through the built binary: results found through the manifest after
// `linprobe train-linear`, deterministic files valid against the schema, a comparison of two
// checkpoints by --merge, and one-line errors with exit codes for missing or damaged inputs.

private struct ReportArea {
    let dir: TemporaryDirectory
    var workdir: String { dir.file("work") }

    init() throws { dir = try TemporaryDirectory("linprobe-report-e2e") }

    /// A single-label store with the attributes extract records (a learnable pattern plus noise).
    func store(_ name: String, split: String, rows: Int, seed: UInt64, weights: String) throws -> String {
        let path = dir.file("\(name).h5")
        let layers = [
            StoreLayer(name: "res4", shapeCHW: [4, 1, 1]), StoreLayer(name: "res5avg", shapeCHW: [6, 1, 1]),
        ]
        var rng = SeededGenerator(seed: seed)
        let writer = try FeatureStoreWriter(
            creating: path, layers: layers, targetLayout: .singleLabel,
            metadata: StoreMetadata(
                fingerprint: "\(name)-fp", split: split, numClasses: 4, classNames: ["a", "b", "c", "d"],
                trunk: ["name": "resnet", "depth": 18],
                weights: ["path": .string(weights), "sha256": "00ff", "init": "checkpoint"],
                transforms: [["name": "ToTensor"]], poolOps: [["res4", ["AdaptiveAvgPool2d", [[1, 1]]]]],
                provenance: ["dataset": ["root": "/data/fashion", "settings": ["dataset_names": []]]]),
            chunkRows: 16)
        var features = layers.map { _ in [Float]() }
        var targets: [Int64] = []
        for r in 0..<rows {
            let y = r % 4
            targets.append(Int64(y))
            for (l, layer) in layers.enumerated() {
                for j in 0..<layer.dim {
                    features[l].append((j % 4 == y ? 1.5 : 0) + Float.random(in: -1...1, using: &rng))
                }
            }
        }
        try writer.append(
            FeatureBatch(
                count: rows, features: features, targets: targets, indices: (0..<Int64(rows)).map { $0 },
                imagePaths: (0..<rows).map { "img\($0).png" }))
        try writer.finish()
        return path
    }

    func pipeline(_ name: String) throws -> String {
        let text = """
            config:
              SEED_VALUE: 3
              DATA:
                TRAIN:
                  BATCHSIZE_PER_REPLICA: 16
              DISTRIBUTED: {NUM_NODES: 1, NUM_PROC_PER_NODE: 1}
              MODEL:
                HEAD:
                  PARAMS: [["eval_mlp", {"in_channels": 4, "dims": [4, 4]}], ["mlp", {"dims": [6, 4]}]]
              METERS:
                name: accuracy_list_meter
                accuracy_list_meter: {topk_values: [1]}
              OPTIMIZER:
                name: sgd
                momentum: 0.9
                nesterov: True
                weight_decay: 0.0005
                num_epochs: 2
                param_schedulers:
                  lr: {name: multistep, values: [0.1, 0.01], milestones: [1], update_interval: epoch}
            """
        let path = dir.file("\(name).yaml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func linprobe(_ args: [String]) throws -> ProcessResult {
        try runProcess(linprobeBinary(), args, currentDirectory: dir.path)
    }

    /// Extracted-looking stores and `linprobe train-linear` on them; returns the pipeline path.
    func trainLinear(checkpoint: String, workdir: String) throws -> String {
        let pipeline = try pipeline("fashion_linear")
        let train = try store(
            "train-\(checkpoint)", split: "train", rows: 48, seed: 1, weights: "/ckpt/\(checkpoint).torch")
        let test = try store(
            "test-\(checkpoint)", split: "test", rows: 24, seed: 2, weights: "/ckpt/\(checkpoint).torch")
        let r = try linprobe([
            "train-linear", pipeline, "--features", train, "--test-features", test, "--workdir", workdir, "--threads",
            "1",
        ])
        #expect(r.status == 0, "train-linear failed: \(r.stderr)")
        return pipeline
    }
}

private func errorLines(_ r: ProcessResult) -> [Substring] {
    r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
}

@Suite struct ReportEndToEndTests {
    @Test func reportFromTheManifestIsValidAndDeterministic() throws {
        let area = try ReportArea()
        let pipeline = try area.trainLinear(checkpoint: "ep100", workdir: area.workdir)
        let first = try area.linprobe(["report", pipeline, "--workdir", area.workdir])
        #expect(first.status == 0, "report failed: \(first.stderr)")
        let out = "\(area.workdir)/reports/fashion_linear"
        for name in ["report.md", "report.json", "report.html"] {
            #expect(FileManager.default.fileExists(atPath: "\(out)/\(name)"))
        }
        #expect(first.stdout.contains("report: \(out)/report.html"))
        #expect(first.stdout.contains("## fashion (test)"))
        #expect(first.stdout.contains("| layer | eval_mlp top_1 | mlp top_1 |"))
        #expect(first.stdout.contains("weights /ckpt/ep100.torch sha256 00ff"))
        // The table's numbers are the results' numbers.
        let linear = try #require(
            try FileManager.default.contentsOfDirectory(atPath: "\(area.workdir)/linear").first {
                !$0.hasSuffix(".lock")
            })
        let results = try JSONValue.parse(
            String(contentsOfFile: "\(area.workdir)/linear/\(linear)/res4/results.json", encoding: .utf8))
        let value = try #require(results["value"]?.doubleValue)
        #expect(first.stdout.contains("| res4 | \(String(format: "%.2f", value)) |"))
        let report = try JSONValue.parse(String(contentsOfFile: "\(out)/report.json", encoding: .utf8))
        let row = try #require(
            report["rows"]?.arrayValue?.first {
                $0["layer"]?.stringValue == "res4" && $0["metric"]?.stringValue == "top_1"
            })
        #expect(row["value"]?.doubleValue == value)
        #expect(row["method"]?.stringValue == "eval_mlp")
        #expect(row["run"]?.stringValue == "fashion_linear · ep100.torch")
        #expect(report["format_version"] == 2)
        let validator = try SchemaValidator(schemaPath: schemaPath("report.schema.json"))
        #expect(validator.validate(report) == [])
        let html = try String(contentsOfFile: "\(out)/report.html", encoding: .utf8)
        #expect(html.contains("<svg") && !html.contains("<script") && !html.contains("<link"))

        // A second report into another folder is byte-identical.
        let second = try area.linprobe(["report", pipeline, "--workdir", area.workdir, "--out", area.dir.file("again")])
        #expect(second.status == 0, "report failed: \(second.stderr)")
        for name in ["report.md", "report.json", "report.html"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: "\(out)/\(name)"))
            let b = try Data(contentsOf: URL(fileURLWithPath: area.dir.file("again/\(name)")))
            #expect(a == b, "\(name) differs")
        }
    }

    @Test func twoCheckpointsMerged() throws {
        let area = try ReportArea()
        let pipeline = try area.trainLinear(checkpoint: "ep100", workdir: area.dir.file("a"))
        _ = try area.trainLinear(checkpoint: "ep200", workdir: area.dir.file("b"))
        let a = try area.linprobe(["report", pipeline, "--workdir", area.dir.file("a")])
        #expect(a.status == 0, "report failed: \(a.stderr)")
        let merged = try area.linprobe([
            "report", pipeline, "--workdir", area.dir.file("b"), "--merge",
            area.dir.file("a/reports/fashion_linear/report.json"),
        ])
        #expect(merged.status == 0, "report failed: \(merged.stderr)")
        #expect(merged.stdout.contains("fashion_linear · ep200.torch · eval_mlp top_1"))
        #expect(merged.stdout.contains("fashion_linear · ep100.torch · eval_mlp top_1"))
        let report = try JSONValue.parse(
            String(contentsOfFile: area.dir.file("b/reports/fashion_linear/report.json"), encoding: .utf8))
        let runs = Set((report["rows"]?.arrayValue ?? []).compactMap { $0["run"]?.stringValue })
        #expect(runs == ["fashion_linear · ep100.torch", "fashion_linear · ep200.torch"])
        #expect(try SchemaValidator(schemaPath: schemaPath("report.schema.json")).validate(report) == [])
    }

    @Test func nothingToReportSaysWhichStageToRun() throws {
        let area = try ReportArea()
        let pipeline = try area.pipeline("fashion_linear")
        let r = try area.linprobe(["report", pipeline, "--workdir", area.workdir])
        #expect(r.status == 1)
        let lines = errorLines(r)
        #expect(lines.count == 1)
        #expect(
            lines.first?.contains(
                "run 'linprobe extract fashion_linear' first, then 'linprobe train-linear fashion_linear'") == true)
        #expect(r.stdout.isEmpty)
    }

    @Test func damagedOrMissingResultsGiveOneLine() throws {
        let area = try ReportArea()
        let pipeline = try area.trainLinear(checkpoint: "ep100", workdir: area.workdir)
        let linear = try #require(
            try FileManager.default.contentsOfDirectory(atPath: "\(area.workdir)/linear").first {
                !$0.hasSuffix(".lock")
            })
        let dir = "\(area.workdir)/linear/\(linear)"
        try "{\"format\": \"linprobe.res".write(toFile: "\(dir)/res4/results.json", atomically: true, encoding: .utf8)
        let corrupt = try area.linprobe(["report", pipeline, "--workdir", area.workdir, "--results", dir])
        #expect(corrupt.status == 1)
        #expect(errorLines(corrupt).count == 1)
        #expect(corrupt.stderr.contains("\(dir)/res4/results.json: not valid JSON"))
        try FileManager.default.removeItem(atPath: "\(dir)/res4/results.json")
        let missing = try area.linprobe(["report", pipeline, "--workdir", area.workdir])
        #expect(missing.status == 1)
        #expect(errorLines(missing).count == 1)
        #expect(missing.stderr.contains("\(dir)/res4/results.json: missing"))
        let nowhere = try area.linprobe([
            "report", pipeline, "--workdir", area.workdir, "--results", area.dir.file("nowhere"),
        ])
        #expect(nowhere.status == 1)
        #expect(nowhere.stderr.contains("nowhere: no such results folder"))
        #expect(!FileManager.default.fileExists(atPath: "\(area.workdir)/reports/fashion_linear/report.json"))
    }

    @Test func anIdenticalRerunIsAReuseRecordedOnce() throws {
        let area = try ReportArea()
        let pipeline = try area.trainLinear(checkpoint: "ep100", workdir: area.workdir)
        let first = try area.linprobe(["report", pipeline, "--workdir", area.workdir])
        #expect(first.status == 0, "report failed: \(first.stderr)")
        #expect(!first.stderr.contains("unchanged"))
        let second = try area.linprobe(["report", pipeline, "--workdir", area.workdir])
        #expect(second.status == 0, "report failed: \(second.stderr)")
        #expect(second.stderr.contains("report: unchanged (same results, same report)"))
        #expect(second.stdout == first.stdout)
        let layout = WorkdirLayout(area.workdir)
        let records = try ManifestStore(layout: layout).read().records.values.filter { $0.stage == "report" }
        #expect(records.count == 1)
        let record = try #require(records.first)
        #expect(record.status == .complete && record.pipeline == "fashion_linear")
        #expect(
            record.outputs == [
                "reports/fashion_linear/report.md", "reports/fashion_linear/report.json",
                "reports/fashion_linear/report.html",
            ])
        #expect(FileManager.default.fileExists(atPath: layout.path(.lock(.report, fingerprint: record.fingerprint))))
    }

    @Test func aWorkFolderOfFormatVersion1StillReports() throws {
        let area = try ReportArea()
        try FileManager.default.copyItem(atPath: fixturePath("report/v1/workdir"), toPath: area.workdir)
        let pipeline = area.dir.file("demo.yaml")
        try "config:\n  DATA:\n    TEST:\n      DATA_PATHS: [data/demo/voc]\n".write(
            toFile: pipeline, atomically: true, encoding: .utf8)
        let r = try area.linprobe(["report", pipeline, "--workdir", area.workdir])
        #expect(r.status == 0, "report failed: \(r.stderr)")
        // The demo table of the README, from results written before feature_provenance existed.
        let table = """
            | layer | svm mAP | svm mAP_11point | eval_mlp mAP |
            |---|---:|---:|---:|
            | res3 | 41.37 | 42.52 | 50.97 |
            | res4 | 46.56 | 47.68 | 49.34 |
            | res5avg | 50.06 | 51.16 | 59.57 |
            """
        #expect(r.stdout.contains("## voc (test)\n\n" + table))
        #expect(r.stdout.contains("features 9ac3ba2c503ed58e: provenance not recorded"))
        let report = try JSONValue.parse(
            String(contentsOfFile: "\(area.workdir)/reports/demo/report.json", encoding: .utf8))
        #expect(try SchemaValidator(schemaPath: schemaPath("report.schema.json")).validate(report) == [])
    }
}
