import Foundation
import LinprobeCore
import LinprobeLinear
import LinprobeReport
import LinprobeSVM
import LinprobeStore
import LinprobeTestSupport

/// Real results for the report tests: small feature stores written with Linprobe's writer (with
/// the root attributes `extract` records), and train-svm / train-linear run on them with the
/// stage libraries, into a work folder laid out as the CLI lays it out.
struct ResultsWorkdir {
    let dir: TemporaryDirectory
    var workdir: String { dir.file("work") }

    init() throws { dir = try TemporaryDirectory("linprobe-report") }

    static let layers = [
        StoreLayer(name: "res4", shapeCHW: [4, 1, 1]), StoreLayer(name: "res5avg", shapeCHW: [6, 1, 1]),
    ]

    /// A store under `<work>/features/<fp>/<split>.h5` with the attributes extract writes.
    @discardableResult
    func store(
        split: String, rows: Int, classes: Int, multiLabel: Bool, fingerprint: String, seed: UInt64,
        weights: JSONValue = ["path": "/models/rn50_ep100.torch", "sha256": "ab12", "init": "checkpoint"]
    ) throws -> String {
        let path = "\(workdir)/features/\(fingerprint)/\(split).h5"
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var rng = SeededGenerator(seed: seed)
        let metadata = StoreMetadata(
            fingerprint: fingerprint, split: split, numClasses: classes, classNames: (0..<classes).map { "c\($0)" },
            trunk: ["name": "resnet", "depth": 50], weights: weights,
            transforms: [["name": "Resize", "size": 256], ["name": "CenterCrop", "size": 224]],
            poolOps: [["res4", ["AvgPool2d", [[8, 8], 3, 0]]]],
            provenance: [
                "tool": "linprobe 0.1.0", "libraries": ["hdf5": "1.10.8"],
                "dataset": [
                    "name": "/data/VOC2007", "root": "/data/VOC2007",
                    "settings": ["dataset_names": multiLabel ? ["voc2007"] : ["fashion"]],
                ],
                "runs": [["started": "2025-01-01T00:00:00Z"]],
            ])
        let writer = try FeatureStoreWriter(
            creating: path, layers: Self.layers,
            targetLayout: multiLabel ? .multiLabel(classes: classes) : .singleLabel,
            metadata: metadata, chunkRows: 16)
        var features = Self.layers.map { _ in [Float]() }
        var targets: [Int64] = []
        for r in 0..<rows {
            var present: [Int] = []
            if multiLabel {
                for c in 0..<classes {
                    let t: Int64 = (r + c) % 3 == 0 ? 1 : ((r * 7 + c) % 11 == 0 ? -1 : 0)
                    targets.append(t)
                    if t == 1 { present.append(c) }
                }
            } else {
                let y = r % classes
                targets.append(Int64(y))
                present = [y]
            }
            for (l, layer) in Self.layers.enumerated() {
                for j in 0..<layer.dim {
                    let signal: Float = present.contains(j % classes) ? 1.2 : 0
                    features[l].append(signal + Float.random(in: -1...1, using: &rng))
                }
            }
        }
        try writer.append(
            FeatureBatch(
                count: rows, features: features, targets: targets, indices: (0..<Int64(rows)).map { $0 },
                imagePaths: (0..<rows).map { "img\($0).jpg" }))
        try writer.finish()
        try Self.waitUntilReadable(path)
        return path
    }

    /// Opens the finished store until HDF5's file lock lets it (seen once in a while when suites run
    /// in parallel in one process: the lock of the just-closed writer is still held for a moment).
    static func waitUntilReadable(_ path: String) throws {
        for attempt in 0..<100 {
            do {
                _ = try FeatureStoreReader(path: path)
                return
            } catch let error as LinprobeError where error.message.contains("lock") && attempt < 99 {
                usleep(20_000)
            }
        }
    }

    /// VOC07 SVMs on both layers; returns `svm/<fp>`.
    func svm(costs: [Double] = [0.1, 1, 10], storePrefix: String = "voc") throws -> String {
        let train = try store(
            split: "train", rows: 48, classes: 3, multiLabel: true, fingerprint: "\(storePrefix)train", seed: 1)
        let test = try store(
            split: "test", rows: 30, classes: 3, multiLabel: true, fingerprint: "\(storePrefix)test", seed: 2)
        let settings = try svmSettings(["costs": ["costs_list": .array(costs.map { .double($0) }), "base": -1.0]])
        let summary = try runSVM(train: train, test: test, settings: settings)
        try Self.recordProvenance(in: summary.directory, train: train, test: test)
        return summary.directory
    }

    /// VOC07 low-shot SVMs (k = 1, 2, 4; two samples); returns `svm/<fp>`.
    func lowShot() throws -> String {
        let train = try store(split: "train", rows: 48, classes: 3, multiLabel: true, fingerprint: "lstrain", seed: 3)
        let test = try store(split: "test", rows: 30, classes: 3, multiLabel: true, fingerprint: "lstest", seed: 4)
        let settings = try svmSettings(
            [
                "costs": ["costs_list": [0.1, 1.0], "base": -1.0],
                "low_shot": ["dataset_name": "voc", "k_values": [1, 2, 4], "sample_inds": [1, 2]],
            ],
            linprobe: ["SVM": ["LOW_SHOT": true]])
        let summary = try runSVM(train: train, test: test, settings: settings)
        try Self.recordProvenance(in: summary.directory, train: train, test: test)
        return summary.directory
    }

    /// train-svm on every layer of the two stores, into `svm/<fp>` of the work folder (no manifest).
    func runSVM(train: String, test: String, settings: SVMSettings) throws -> SVMRunSummary {
        let layout = WorkdirLayout(workdir)
        let stage = try SVMStage(
            train: try FeatureStoreReader(path: train), test: try FeatureStoreReader(path: test), settings: settings,
            layers: [], pipeline: nil, layout: layout, threads: 1)
        let context = StageContext(
            layout: layout, progress: ProgressReporter(stage: StageKind.trainSVM.name, mode: .silent), note: { _ in })
        return try stage.run(context)
    }

    func svmSettings(_ svm: [String: JSONValue], linprobe: [String: JSONValue] = [:]) throws -> SVMSettings {
        let root: JSONValue = ["SVM": .object(svm), "LINPROBE": .object(linprobe), "SEED_VALUE": 0]
        return try SVMSettings(config: ConfigNode(path: "", value: root))
    }

    /// An eval_mlp head on res4 and an mlp head on res5avg, 3 epochs; returns `linear/<fp>`.
    func linear(epochs: Int = 3) throws -> String {
        let trainPath = try store(
            split: "train", rows: 64, classes: 4, multiLabel: false, fingerprint: "fashiontrain", seed: 5)
        let testPath = try store(
            split: "test", rows: 32, classes: 4, multiLabel: false, fingerprint: "fashiontest", seed: 6)
        let train = try FeatureStoreReader(path: trainPath)
        let test = try FeatureStoreReader(path: testPath)
        let root: JSONValue = [
            "SEED_VALUE": 3,
            "DATA": ["TRAIN": ["BATCHSIZE_PER_REPLICA": 16]],
            "DISTRIBUTED": ["NUM_NODES": 1, "NUM_PROC_PER_NODE": 1],
            "MODEL": [
                "HEAD": [
                    "PARAMS": [
                        ["eval_mlp", ["in_channels": 4, "dims": [4, 4]]],
                        ["mlp", ["dims": [6, 4]]],
                    ]
                ]
            ],
            "OPTIMIZER": [
                "name": "sgd", "momentum": 0.9, "nesterov": true, "weight_decay": 0.0005,
                "num_epochs": .int(Int64(epochs)),
                "param_schedulers": [
                    "lr": ["name": "multistep", "values": [0.1, 0.01], "milestones": [1], "update_interval": "epoch"]
                ],
            ],
            "LOSS": ["name": "cross_entropy_multiple_output_single_target"],
            "METERS": ["name": "accuracy_list_meter", "accuracy_list_meter": ["topk_values": [1, 2]]],
        ]
        let settings = try LinearSettings(config: ConfigNode(path: "", value: root), multiLabelStore: false)
        let result = try LinearStage.run(
            train: train, test: test, settings: settings, workdir: workdir, options: LinearRunOptions(threads: 1))
        try Self.recordProvenance(in: result.directory, train: trainPath, test: testPath)
        return result.directory
    }

    /// Results as format 2 records them: with the stores' `feature_provenance`. A training stage
    /// that does not write it yet (format 1) gets it added here, read from the stores the way the
    /// stages read it (`FeatureStoreReader.featureProvenance`); results that have it are left as
    /// they are.
    static func recordProvenance(in runFolder: String, train: String, test: String) throws {
        let trainProvenance = try FeatureStoreReader(path: train).featureProvenance
        let testProvenance = try FeatureStoreReader(path: test).featureProvenance
        for file in try ReportBuilder.resultFiles(in: [runFolder]) {
            if var doc = try? SVMResultsDocument.read(path: file) {
                guard doc.featureProvenance == nil else { continue }
                doc.featureProvenance = .init(train: trainProvenance, test: testProvenance)
                doc.formatVersion = SVMResultsDocument.currentVersion
                try doc.write(to: file)
            } else {
                var doc = try LinearResultsDocument.read(path: file)
                guard doc.featureProvenance == nil else { continue }
                doc.featureProvenance = .init(train: trainProvenance, test: testProvenance)
                doc.formatVersion = LinearResultsDocument.currentVersion
                try doc.write(to: file)
            }
        }
    }
}

/// A JSON file, parsed.
func readJSON(_ path: String) throws -> JSONValue {
    try JSONValue.parse(String(contentsOfFile: path, encoding: .utf8))
}
