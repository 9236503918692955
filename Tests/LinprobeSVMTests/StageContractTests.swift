import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeSVM

/// A train/test pair whose stores hold `layers` (name, width) in that order, multi-label with 3 classes.
func makeLayeredStores(_ dir: TemporaryDirectory, layers: [(String, Int)], rows: Int = 60) throws -> (String, String) {
    let classes = 3
    func targets(_ seed: UInt64) -> [Int64] {
        var g = SeededGenerator(seed: seed)
        return (0..<(rows * classes)).map { _ in g.next() % 10 < 3 ? 1 : 0 }
    }
    func write(_ path: String, _ t: [Int64], _ seed: UInt64, _ fingerprint: String) throws {
        try writeLayeredStore(
            path, layers: layers, rows: rows, targets: t, multiLabel: classes,
            value: { l, r, j in
                var g = SeededGenerator(seed: seed &+ UInt64(l * 1_000_000 + r * 1000 + j))
                return Float(g.next() % 1000) / 1000 + (t[r * classes + j % classes] == 1 ? 1.5 : 0)
            }, fingerprint: fingerprint)
    }
    let train = dir.file("train.h5"), test = dir.file("test.h5")
    try write(train, targets(1), 10, "layered-train")
    try write(test, targets(2), 20, "layered-test")
    return (train, test)
}

/// A pipeline whose pool-op map lists `taps`, with two SVM costs.
func poolMapPipeline(_ taps: [String], name: String = "mapped") throws -> PipelineConfig {
    let map = taps.map { "[\"\($0)\", [\"Identity\", []]]" }.joined(separator: ", ")
    let text = """
        config:
          SEED_VALUE: 0
          MODEL:
            FEATURE_EVAL_SETTINGS:
              LINEAR_EVAL_FEAT_POOL_OPS_MAP: [\(map)]
          SVM:
            costs:
              costs_list: [0.1, 1.0]
              base: -1.0
        """
    return try PipelineConfig.load(text: text, source: "\(name).yaml", name: name)
}

@Suite("SVM stage contract: plan, reuse, pool-op map layers, results document, fit-log reuse")
struct StageContractTests {
    // MARK: - Plan and reuse

    @Test("plan names the run folder, the stores and the settings; a second execute reuses the same summary")
    func planAndReuse() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir)
        let settings = try visslSettings(["costs": ["costs_list": [0.1, 1.0], "base": -1.0]])
        let layout = WorkdirLayout(dir.path)
        let stage = try SVMStage(
            train: try FeatureStoreReader(path: train), test: try FeatureStoreReader(path: test), settings: settings,
            layers: [], pipeline: "toy", layout: layout, threads: 1)
        let plan = stage.plan
        #expect(plan.kind == .trainSVM && plan.pipeline == "toy")
        #expect(plan.outputs == [layout.relativePath(.svmRun(fingerprint: stage.fingerprint))])
        #expect(plan.inputs["train_features"] == "toy-train" && plan.inputs["test_features"] == "toy-test")
        #expect(plan.inputs["train_path"]?.stringValue == train && plan.inputs["test_path"]?.stringValue == test)
        #expect(plan.parameters == settings.fingerprintJSON)
        // Every layer of the store: the fingerprint of earlier versions (no layer list in it).
        #expect(
            stage.fingerprint
                == SVMStage.fingerprint(
                    trainFingerprint: "toy-train", testFingerprint: "toy-test", settings: settings))

        let notes = Locked<[String]>([])
        let first = try runSVM(train: train, test: test, settings: settings, workdir: dir.path, notes: notes)
        let second = try runSVM(train: train, test: test, settings: settings, workdir: dir.path)
        #expect(!first.reused && second.reused)
        #expect(first.outcome == second.outcome)
        let layer = try #require(first.outcome.layers.first)
        #expect(layer.layer == "feat" && layer.metric == "mAP" && layer.value != nil && layer.protocolKind == .voc07)
        #expect(layer.resultsPath == stage.resultsPath(layer: "feat"))
        #expect(first.outcome.directory == layout.path(.svmRun(fingerprint: stage.fingerprint)))
        #expect(first.record.status == .complete)
        // Warnings reach the runner's note sink, prefixed; they are the document's warnings.
        let document = try SVMResultsDocument.read(path: layer.resultsPath)
        #expect(notes.withLock { $0 } == document.warnings.map { "train-svm: warning: feat: \($0)" })

        // Reuse reads the documents: a missing one is a one-line error naming it.
        try FileManager.default.removeItem(atPath: layer.resultsPath)
        let error = #expect(throws: LinprobeError.self) {
            try runSVM(train: train, test: test, settings: settings, workdir: dir.path)
        }
        #expect(error?.message.hasPrefix(layer.resultsPath) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("\n") == false)
    }

    // MARK: - Layers follow the pool-op map

    @Test("train-svm trains exactly the pool-op map's taps, in map order, from a store that holds more")
    func layersFollowPoolMap() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeLayeredStores(dir, layers: [("a", 6), ("extra", 4), ("b", 8)])
        let config = try poolMapPipeline(["b", "a"])
        let layout = WorkdirLayout(dir.path)
        let stage = try SVMStage(
            config: config, train: try FeatureStoreReader(path: train), test: try FeatureStoreReader(path: test),
            layout: layout, threads: 1)
        #expect(stage.layers == ["b", "a"])
        #expect(stage.pipeline == "mapped")
        let silent = ProgressReporter(stage: "train-svm", mode: .silent)
        let result = try StageRunner(layout: layout).execute(stage, progress: silent)
        #expect(result.outcome.layers.map(\.layer) == ["b", "a"])
        for outcome in result.outcome.layers {
            let document = try SVMResultsDocument.read(path: outcome.resultsPath)
            #expect(document.layer == outcome.layer)
        }
        let run = layout.path(.svmRun(fingerprint: stage.fingerprint))
        let folders = try FileManager.default.contentsOfDirectory(atPath: run).sorted()
        #expect(folders == ["a", "b"], "no SVMs for the store's extra layer")
        // A subset of the store has its own fingerprint; the map's order does not change it.
        let all = try SVMStage(
            config: try poolMapPipeline(["b", "extra", "a"]), train: try FeatureStoreReader(path: train),
            test: try FeatureStoreReader(path: test), layout: layout)
        let noMap = try SVMStage(
            train: try FeatureStoreReader(path: train), test: try FeatureStoreReader(path: test),
            settings: stage.settings, layers: [], pipeline: nil, layout: layout)
        let swapped = try SVMStage(
            config: try poolMapPipeline(["a", "b"]), train: try FeatureStoreReader(path: train),
            test: try FeatureStoreReader(path: test), layout: layout)
        #expect(all.fingerprint == noMap.fingerprint && noMap.layers == ["a", "extra", "b"])
        #expect(stage.fingerprint != noMap.fingerprint)
        #expect(swapped.fingerprint == stage.fingerprint && swapped.layers == ["a", "b"])
    }

    @Test("a pool-op map naming a tap the store lacks is one line naming it and listing the store's layers")
    func missingTap() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeLayeredStores(dir, layers: [("a", 6), ("extra", 4), ("b", 8)])
        let error = #expect(throws: LinprobeError.self) {
            try SVMStage(
                config: try poolMapPipeline(["b", "res5"]), train: try FeatureStoreReader(path: train),
                test: try FeatureStoreReader(path: test), layout: WorkdirLayout(dir.path))
        }
        let message = error?.message ?? ""
        #expect(message.contains("'res5'") && message.contains("a, extra, b") && !message.contains("\n"), "\(message)")
        #expect(message.hasPrefix(train))
        #expect(!FileManager.default.fileExists(atPath: dir.file("svm")))
    }

    // MARK: - Results document

    @Test("results.json is an SVMResultsDocument of version 2 with feature provenance, written byte for byte")
    func resultsDocument() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir)
        let run = try runSVM(train: train, test: test, settings: try visslSettings(), workdir: dir.file("w"))
        let path = try #require(run.outcome.layers.first).resultsPath
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let document = try SVMResultsDocument.read(path: path)
        #expect(try document.prettyText() + "\n" == text)
        #expect(document.formatVersion == SVMResultsDocument.currentVersion && document.formatVersion == 2)
        #expect(document.protocolKind == .voc07 && document.method == "svm" && document.unit == "percent")
        let provenance = try #require(document.featureProvenance)
        #expect(provenance.train.fingerprint == "toy-train" && provenance.test.fingerprint == "toy-test")
        #expect(provenance.train.rows == 90 && provenance.train.path == Paths.standardized(train))
        #expect(document.features.train.path == train && document.features.test.rows == 90)
        // Undefined numbers are null, absent fields are absent.
        let json = try JSONValue.parse(text)
        #expect(json["value"] != nil && json["samples_file"] == nil && json["results_by_k"] == nil)

        // A version-1 file (no feature_provenance) still reads.
        guard case .object(var v1) = json else { Issue.record("not an object"); return }
        v1["format_version"] = 1
        v1["feature_provenance"] = nil
        let v1Path = dir.file("v1.json")
        try JSONValue.object(v1).prettyText().write(toFile: v1Path, atomically: true, encoding: .utf8)
        let old = try SVMResultsDocument.read(path: v1Path)
        #expect(old.formatVersion == 1 && old.featureProvenance == nil)
        #expect(old.classes == document.classes && old.value == document.value)
    }

    @Test(
        "a results file that cannot be used is one line naming it",
        arguments: [
            ("missing", "cannot read"), ("garbage", "not valid JSON"), ("linear", "not an SVM results document"),
            ("future", "format_version 3 is not supported"), ("broken", "classes[0].index"),
        ])
    func unusableResults(_ kind: String, _ expected: String) throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir)
        let run = try runSVM(
            train: train, test: test, settings: try visslSettings(["costs": ["costs_list": [1.0], "base": -1.0]]),
            workdir: dir.file("w"))
        let path = try #require(run.outcome.layers.first).resultsPath
        guard case .object(var o) = try JSONValue.parse(String(contentsOfFile: path, encoding: .utf8)) else {
            Issue.record("not an object")
            return
        }
        switch kind {
        case "missing": try FileManager.default.removeItem(atPath: path)
        case "garbage": try "{\"format\": ".write(toFile: path, atomically: true, encoding: .utf8)
        case "linear": o["format"] = "linprobe.results"
        case "future": o["format_version"] = 3
        default:
            guard case .array(var classes) = o["classes"], case .object(var first) = classes.first else { return }
            first["index"] = "zero"
            classes[0] = .object(first)
            o["classes"] = .array(classes)
        }
        if ["linear", "future", "broken"].contains(kind) {
            try JSONValue.object(o).prettyText().write(toFile: path, atomically: true, encoding: .utf8)
        }
        let error = #expect(throws: LinprobeError.self) { try SVMResultsDocument.read(path: path) }
        let message = error?.message ?? ""
        #expect(message.hasPrefix(path) && message.contains(expected) && !message.contains("\n"), "\(message)")
    }

    // MARK: - Fit-log reuse

    /// Rewrites the fit log of `folder` through `edit` (key → record; nil drops it), re-checksumming
    /// every line, then appends `extra` raw lines.
    func editLog(_ folder: String, extra: [String] = [], _ edit: (String, JSONValue) throws -> JSONValue?) throws {
        let path = Paths.join(folder, "fits.log")
        var out: [String] = []
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            let json = String(line[..<(line.lastIndex(of: "\t") ?? line.endIndex)])
            let record = try JSONValue.parse(json)
            guard let edited = try edit(record["key"]?.stringValue ?? "", record) else { continue }
            out.append(edited.canonicalText + "\t" + FitLog.checksum(edited.canonicalText))
        }
        try (out + extra).map { $0 + "\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
    }

    func lineCount(_ folder: String) throws -> Int {
        try String(contentsOfFile: Paths.join(folder, "fits.log"), encoding: .utf8).split(separator: "\n").count
    }

    @Test("damaged, foreign and mistyped fit-log entries are refit, never a crash: results equal a clean run")
    func damagedFitLog() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir)
        let settings = try visslSettings(["costs": ["costs_list": [0.1, 1.0, 10.0], "base": -1.0]])
        let clean = try firstResults(runSVM(train: train, test: test, settings: settings, workdir: dir.file("clean")))
        let damaged = try runSVM(train: train, test: test, settings: settings, workdir: dir.file("damaged"))
        let folder = Paths.parent(try #require(damaged.outcome.layers.first).resultsPath)
        let classes = try #require(clean.classes).filter { $0.status == .trained }
        try #require(classes.count == 3)
        let chosen = classes.map { "fit/c\($0.index)/k\($0.chosenCostIndex ?? -1)" }
        // Class 1's model file: the wrong number of weights, with a matching checksum in its record.
        let short = NPYWriter.float64([1, 2, 3], shape: [1, 3])
        let shortModel = "cls1_cost\(classes[1].chosenCostIndex ?? 0).npy"
        try AtomicFile.write(short, to: Paths.join(folder, "models", shortModel))
        // Class 2's model file: bytes that no longer match the recorded checksum.
        let model2 = Paths.join(folder, "models", "cls2_cost\(classes[2].chosenCostIndex ?? 0).npy")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: model2))
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: model2))
        try editLog(
            folder,
            extra: [
                // Another tool's entry under a key this run reads, and one it does not know.
                #"{"key":"cv/c2/k0/f0","score":0.5}"# + "\t" + FitLog.checksum(#"{"key":"cv/c2/k0/f0","score":0.5}"#),
                #"{"key":"other/entry","x":1}"# + "\t" + FitLog.checksum(#"{"key":"other/entry","x":1}"#),
            ]
        ) { key, record in
            guard case .object(var o) = record else { return record }
            switch key {
            case "cv/c0/k1/f1": o["iterations"] = nil  // missing field
            case "cv/c0/k2/f2": o["converged"] = "yes"  // mistyped field
            case "cv/c1/k0/f0": o["ap"] = "high"
            case chosen[0]: o["converged"] = nil  // the old reader force-unwrapped it
            case chosen[1]: o["sha256"] = .string(Fingerprint.sha256(short)); o["model"] = .string(shortModel)
            default: break
            }
            return .object(o)
        }
        let before = try lineCount(folder)
        try FileManager.default.removeItem(atPath: Paths.join(folder, "results.json"))
        let rerun = try runSVM(train: train, test: test, settings: settings, workdir: dir.file("damaged"), force: true)
        let again = try firstResults(rerun)
        // 4 CV fits (three damaged, one foreign) and 3 refits were done again; nothing else.
        #expect(try lineCount(folder) == before + 7)
        #expect(again.withoutTimings.classes == clean.withoutTimings.classes)
        #expect(again.value == clean.value && again.models == clean.models && again.warnings == clean.warnings)
        #expect(again.convergence == clean.convergence)
    }

    @Test("a low-shot unit record with a wrong cost count or mistyped field is refit: results equal a clean run")
    func damagedLowShotLog() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir)
        let settings = try visslSettings(
            [
                "costs": ["costs_list": [0.1, 1.0], "base": -1.0],
                "low_shot": ["dataset_name": "voc", "k_values": [1, 3], "sample_inds": [1, 2]],
            ],
            linprobe: ["SVM": ["LOW_SHOT": true, "SELECT_BY": "cv"]])
        let clean = try firstResults(runSVM(train: train, test: test, settings: settings, workdir: dir.file("clean")))
        let damaged = try runSVM(train: train, test: test, settings: settings, workdir: dir.file("damaged"))
        let folder = Paths.parent(try #require(damaged.outcome.layers.first).resultsPath)
        try editLog(folder) { key, record in
            guard case .object(var o) = record else { return record }
            switch key {
            case "ls/s1/k1/c0": o["test_ap"] = [0.5]  // one AP for two costs
            case "ls/s2/k3/c1": o["fits"] = "many"
            case "ls/s1/k3/c2": o["honest_test_ap"] = nil
            case "ls/s2/k1/c2": o["cv_defined"] = 1
            default: break
            }
            return .object(o)
        }
        let before = try lineCount(folder)
        let rerun = try runSVM(train: train, test: test, settings: settings, workdir: dir.file("damaged"), force: true)
        let again = try firstResults(rerun)
        #expect(try lineCount(folder) == before + 4)
        #expect(again.withoutTimings.resultsByK == clean.withoutTimings.resultsByK)
        #expect(again.perClassTestAPByK == clean.perClassTestAPByK)
        #expect(again.value == clean.value && again.convergence == clean.convergence)
        #expect(again.provenance.solverLayout == clean.provenance.solverLayout)
    }
}
