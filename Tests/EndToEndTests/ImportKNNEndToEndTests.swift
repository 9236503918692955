import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

/// Features made elsewhere, through the built binary: VISSL's `extract_features` files (written by
/// `scripts/make_import_fixtures.py` as VISSL's engine writes them on 2 GPUs) imported and
/// evaluated with SVMs, linear heads and kNN in one `linprobe run`; `import-features`,
/// `export-features` and `knn` on their own.
@Suite("import-features, export-features and knn end to end")
struct ImportKNNEndToEndTests {
    static let dump = fixturePath("import/vissl")
    static func format(_ name: String) -> String { fixturePath("import/formats/\(name)") }

    /// The VOC-like dump: res4 [4, 2, 2] and res5avg [32], 6 classes in VOC's encoding.
    static func pipeline(_ dir: TemporaryDirectory, extra: String = "") throws -> String {
        let text = """
            config:
              SEED_VALUE: 0
              DATA:
                TRAIN: {BATCHSIZE_PER_REPLICA: 16}
              MODEL:
                FEATURE_EVAL_SETTINGS:
                  LINEAR_EVAL_FEAT_POOL_OPS_MAP: [["res4", ["AdaptiveAvgPool2d", [[2, 2]]]], ["res5avg", ["Identity", []]]]
                HEAD:
                  PARAMS: [["eval_mlp", {"in_channels": 4, "dims": [16, 6]}], ["mlp", {"dims": [32, 6]}]]
              OPTIMIZER:
                name: sgd
                momentum: 0.9
                weight_decay: 0.0005
                num_epochs: 3
                param_schedulers:
                  lr: {auto_lr_scaling: {auto_scale: false}, name: constant, value: 0.1}
              SVM:
                cross_val_folds: 3
                costs: {costs_list: [0.1, 1.0]}
              NEAREST_NEIGHBOR: {TOPK: [5, 20], SIGMA: 0.1, L2_NORM_FEATS: True}
              DISTRIBUTED: {NUM_NODES: 1, NUM_PROC_PER_NODE: 1}
              LINPROBE:
                LINEAR: {MULTI_LABEL: True}
                IMPORT:
                  TRAIN: {FEATURES: "\(dump)"}
                  TEST: {FEATURES: "\(dump)"}
            \(extra)
            """
        let path = dir.file("vissl_dump.yaml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func completed(_ workdir: String) throws -> [String: Int] {
        let json = try JSONValue.parse(String(contentsOfFile: workdir + "/manifest.json", encoding: .utf8))
        var out: [String: Int] = [:]
        for (_, r) in json["records"]?.objectValue ?? [:] where r["status"]?.stringValue == "complete" {
            out[r["stage"]?.stringValue ?? "?", default: 0] += 1
        }
        return out
    }

    @Test("a VISSL-layout dump imports and evaluates with SVM, heads and kNN in one run; a rerun reuses it all")
    func visslDumpInOneRun() throws {
        let dir = try TemporaryDirectory()
        let work = dir.file("runs")
        let pipeline = try Self.pipeline(dir)
        let first = try runProcess(linprobeBinary(), ["run", pipeline, "--workdir", work])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(
            first.stderr.contains("stages import-features → train-svm → train-linear → knn → report"), "\(first.stderr)"
        )
        #expect(first.stderr.contains("dropped 1 padded duplicate row(s)"), "\(first.stderr)")
        for column in ["svm mAP", "eval_mlp mAP", "mlp mAP", "knn mAP k=5", "knn mAP k=20"] {
            #expect(first.stdout.contains(column), "\(column): \(first.stdout)")
        }
        #expect(first.stdout.contains("## vissl (test)"), "the dataset is named after the dump's folder")
        #expect(
            try Self.completed(work) == [
                "import-features": 2, "train-svm": 1, "train-linear": 1, "knn": 1, "report": 1,
            ])
        let report = try JSONValue.parse(
            String(contentsOfFile: work + "/reports/vissl_dump/report.json", encoding: .utf8))
        #expect(try SchemaValidator(schemaPath: schemaPath("report.schema.json")).validate(report).isEmpty)
        let knnRows = (report["rows"]?.arrayValue ?? []).filter { $0["method"]?.stringValue == "knn" }
        #expect(knnRows.count == 4, "2 layers × 2 k")
        #expect(knnRows.allSatisfy { ($0["value"]?.doubleValue ?? -1) > 30 }, "\(knnRows)")

        let again = try runProcess(linprobeBinary(), ["run", pipeline, "--workdir", work])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.components(separatedBy: "import-features: unchanged, reused").count == 3)
        #expect(again.stderr.contains("knn: unchanged"))
        #expect(again.stdout == first.stdout)
        #expect(try Self.completed(work)["report"] == 1)
    }

    @Test("a torch dict and an .npz import single-label splits; DINO's kNN gives top-1 / top-5 per k")
    func torchAndNPZWithDINO() throws {
        let dir = try TemporaryDirectory()
        let work = dir.file("runs")
        let text = """
            config:
              NEAREST_NEIGHBOR: {L2_NORM_FEATS: False}
              LINPROBE:
                KNN: {PROTOCOL: dino, DINO: {NB_KNN: [5, 10]}}
                IMPORT:
                  TRAIN: {FEATURES: "\(Self.format("dict.pth"))"}
                  TEST: {FEATURES: "\(Self.format("arrays.npz"))"}
            """
        let pipeline = dir.file("formats.yaml")
        try text.write(toFile: pipeline, atomically: true, encoding: .utf8)
        let r = try runProcess(linprobeBinary(), ["run", pipeline, "--workdir", work])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("stages import-features → knn → report"), "\(r.stderr)")
        for column in ["knn (DINO) top_1 k=5", "knn (DINO) top_5 k=10"] {
            #expect(r.stdout.contains(column), "\(column): \(r.stdout)")
        }
        let results = try FileManager.default.subpathsOfDirectory(atPath: work + "/knn").filter {
            $0.hasSuffix("results.json")
        }
        #expect(results.count == 2, "res4 and res5avg")
        let doc = try KNNResultsDocument.read(path: "\(work)/knn/\(try #require(results.sorted().last))")
        #expect(doc.protocolKind == .dino && doc.settings.l2Normalize && doc.settings.temperature == 0.07)
        #expect(doc.results.map(\.k) == [5, 10] && doc.settings.numClasses == 10)
    }

    @Test("import-features and knn without a pipeline's import keys; export → import keeps every value")
    func directCommands() throws {
        let dir = try TemporaryDirectory()
        let work = dir.file("runs")
        func importing(_ arguments: [String]) throws -> String {
            let r = try runProcess(linprobeBinary(), ["import-features"] + arguments + ["--workdir", work])
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let train = try importing(["--features", Self.dump, "--split", "train"])
        let test = try importing(["--features", Self.dump, "--split", "test", "--layer", "res5avg", "--layer", "res4"])
        #expect(train.hasSuffix("/train.h5") && test.hasSuffix("/test.h5"))

        let pipeline = try Self.pipeline(dir)
        let knn = try runProcess(
            linprobeBinary(),
            ["knn", pipeline, "--features", train, "--test-features", test, "--workdir", work, "--threads", "2"])
        #expect(knn.status == 0, "\(knn.stderr)")
        #expect(knn.stdout.split(separator: "\n").filter { $0.contains("\tknn\tmAP k=") }.count == 4, "\(knn.stdout)")

        for format in ["npz", "npy"] {
            let out = dir.file(format == "npz" ? "train.npz" : "train-npy")
            let export = try runProcess(
                linprobeBinary(), ["export-features", train, "--format", format, "--out", out])
            #expect(export.status == 0, "\(export.stderr)")
            let back = try importing(["--features", out, "--split", "train"])
            let (a, b) = (try FeatureStoreReader(path: train), try FeatureStoreReader(path: back))
            #expect(a.fingerprint != b.fingerprint, "other files, other fingerprint")
            for layer in a.layers { #expect(try a.readLayer(layer.name) == b.readLayer(layer.name)) }
            #expect(try a.targets() == b.targets() && a.indices() == b.indices())
        }
        let again = try runProcess(
            linprobeBinary(), ["import-features", "--features", Self.dump, "--split", "train", "--workdir", work])
        #expect(again.stderr.contains("import-features: unchanged, reused"), "\(again.stderr)")
    }

    @Test("bad usage is exit 64 and bad input exit 1, each one line")
    func errors() throws {
        let dir = try TemporaryDirectory()
        let work = ["--workdir", dir.file("runs")]
        let cases: [([String], Int32, String)] = [
            (["import-features"] + work, 64, "--features"),
            (["import-features", "--features", Self.dump, "--split", "val"] + work, 64, "--split"),
            (["import-features", "--features", dir.file("nothing.npy")] + work, 1, "nothing.npy"),
            (["import-features", "--features", Self.format("compressed.npz")] + work, 1, "np.savez"),
            (["import-features", "--features", Self.format("plain_features.npy")] + work, 64, "LABELS"),
            (["export-features", dir.file("none.h5"), "--format", "csv", "--out", dir.file("x")], 64, "--format"),
        ]
        for (arguments, status, phrase) in cases {
            let r = try runProcess(linprobeBinary(), arguments)
            #expect(r.status == status, "\(arguments): \(r.stderr)")
            let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error") || $0.hasPrefix("Error") }
            #expect(errors.count == 1 && r.stderr.contains(phrase), "\(arguments): \(r.stderr)")
        }
    }
}
