import CLinprobeSVMKernels
import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// Progress of a `train-svm` run, reported as fits finish.
public struct SVMProgress: Sendable {
    public var layer: String
    /// `cross-validation`, `refit`, `test`, `low-shot`.
    public var phase: String
    public var done: Int
    public var total: Int
}

/// What a run produced for one layer.
public struct SVMLayerOutcome: Sendable {
    public var layer: String
    public var resultsPath: String
    /// The headline number (mAP × 100; for low-shot the headline rule's mean at the largest k).
    public var value: Double?
    public var metric: String
    public var warnings: [String]
}

/// What a whole run produced.
public struct SVMRunSummary: Sendable {
    /// `<fp>` of `svm/<fp>/`: the features' fingerprints plus every SVM hyper-parameter.
    public var fingerprint: String
    /// `<outputDirectory>/<fp>`.
    public var directory: String
    public var layers: [SVMLayerOutcome]
}

/// The `train-svm` stage: VISSL's VOC07 linear-SVM protocol (`tools/train_svm.py`) and its
/// low-shot variants over a training and a test feature store, every layer in one invocation.
///
/// Layout: `<outputDirectory>/<fp>/<layer>/results.json`, `models.npy` (chosen models),
/// `fits.log` (every finished fit, checksummed; a rerun resumes from it), `models/` (refits).
public enum SVMStage {
    /// Memory allowed for a layer's Gram matrix before the solver falls back to the dense layout.
    public static let defaultGramBudgetBytes = 2 << 30

    /// The results' fingerprint: features (train and test) plus every SVM setting.
    public static func fingerprint(trainFingerprint: String, testFingerprint: String, settings: SVMSettings) -> String {
        Fingerprint.short([
            "stage": "train-svm",
            "format_version": 1,
            // The solver's visiting-order scheme: fits that stop at max_iter depend on it.
            "solver": "dual-cd-batched-v2",
            "train_features": .string(trainFingerprint),
            "test_features": .string(testFingerprint),
            "svm": settings.fingerprintJSON,
        ])
    }

    /// Runs the stage. `threads` overrides `settings.threads` (0 or nil = every core); `layout`
    /// forces the solver layout of every layer (nil: chosen per layer by `SVMTrainer.chooseLayout`;
    /// both give the same numbers to rounding, only the speed differs).
    @discardableResult
    public static func run(
        train trainPath: String, test testPath: String, settings: SVMSettings, outputDirectory: String,
        layers requestedLayers: [String]? = nil, threads: Int? = nil, gramBudgetBytes: Int = defaultGramBudgetBytes,
        progress: (@Sendable (SVMProgress) -> Void)? = nil, warn: (@Sendable (String) -> Void)? = nil,
        layout: SolverLayout? = nil
    ) throws -> SVMRunSummary {
        let train = try FeatureStoreReader(path: trainPath)
        let test = try FeatureStoreReader(path: testPath)
        let wanted = threads ?? settings.threads
        let workers = wanted > 0 ? wanted : ProcessInfo.processInfo.activeProcessorCount

        // Inputs must fit the protocol before any work starts.
        let needsSingleLabel = settings.lowShot && settings.lowShotDataset == .places
        for reader in [train, test] {
            switch (reader.targetLayout, needsSingleLabel) {
            case (.singleLabel, false):
                throw LinprobeError(
                    .incompatible,
                    "\(reader.path): targets are single-label [N]; the VOC07 SVM protocol needs multi-label [N, C] targets (1 present, 0 absent, -1 difficult). For single-label data use the Places205 low-shot variant (LINPROBE.SVM.LOW_SHOT=true, SVM.low_shot.dataset_name=places)")
            case (.multiLabel, true):
                throw LinprobeError(
                    .incompatible,
                    "\(reader.path): targets are multi-label [N, C]; the Places205 low-shot variant needs single-label [N] class indices. Use SVM.low_shot.dataset_name=voc for multi-label data")
            default: break
            }
        }
        if train.views > 1 {
            throw LinprobeError(
                .incompatible,
                "\(trainPath): holds \(train.views) augmented views of each image (LINPROBE.TRAIN_VIEWS); the SVM protocol fits one row per image, and its cross-validation folds would put views of one image on both sides — extract with LINPROBE.TRAIN_VIEWS=1 for train-svm")
        }
        if case .multiLabel(let a) = train.targetLayout, case .multiLabel(let b) = test.targetLayout, a != b {
            throw LinprobeError(.incompatible, "\(testPath): test targets have \(b) classes but the training store \(trainPath) has \(a)")
        }
        let layerNames = requestedLayers ?? train.layers.map(\.name)
        for name in layerNames {
            let a = try train.layer(name)
            guard let b = test.layers.first(where: { $0.name == name }) else {
                throw LinprobeError(.incompatible, "\(testPath): has no layer '\(name)' (layers: \(test.layers.map(\.name).joined(separator: ", "))); train and test stores must come from the same extraction")
            }
            guard a.dim == b.dim else {
                throw LinprobeError(.incompatible, "\(testPath): layer \(name) has D = \(b.dim) but the training store has D = \(a.dim)")
            }
        }
        if train.count == 0 { throw LinprobeError(.incompatible, "\(trainPath): the training store has no rows") }

        let fp = fingerprint(trainFingerprint: train.fingerprint, testFingerprint: test.fingerprint, settings: settings)
        let root = (outputDirectory as NSString).appendingPathComponent(fp)
        try Files.ensureDirectory(root)
        var outcomes: [SVMLayerOutcome] = []
        for name in layerNames {
            let dir = (root as NSString).appendingPathComponent(name)
            try Files.ensureDirectory(dir)
            let context = LayerContext(
                layer: name, train: train, test: test, settings: settings, directory: dir, fingerprint: fp,
                threads: workers, gramBudgetBytes: gramBudgetBytes, layout: layout, progress: progress, warn: warn)
            if settings.lowShot {
                outcomes.append(try LowShotProtocol.run(context))
            } else {
                outcomes.append(try StandardProtocol.run(context))
            }
        }
        return SVMRunSummary(fingerprint: fp, directory: root, layers: outcomes)
    }

    /// Re-runs only the test of a finished layer from its saved models (`models.npy`) and
    /// returns the per-class test AP (VOC all-points; nil where undefined).
    public static func retest(layerDirectory: String, test testPath: String, threads: Int = 0) throws -> [Int: Double?] {
        let resultsPath = (layerDirectory as NSString).appendingPathComponent("results.json")
        let text: String
        do { text = try String(contentsOfFile: resultsPath, encoding: .utf8) } catch {
            throw LinprobeError(.missingInput, "\(resultsPath): cannot read (run train-svm first): \(oneLine(error))")
        }
        let results = try JSONValue.parse(text)
        guard let models = results["models"], let file = models["file"]?.stringValue,
            let classes = models["classes"]?.arrayValue?.compactMap({ $0.intValue.map(Int.init) }),
            let layer = results["layer"]?.stringValue
        else {
            throw LinprobeError(.corruptInput, "\(resultsPath): no saved models recorded (low-shot results keep none)")
        }
        let normalize = results["settings"]?["normalize"].flatMap { if case .bool(let b) = $0 { return b } else { return nil } } ?? true
        let bias = results["settings"]?["intercept_scaling"]?.doubleValue ?? 1
        let modelPath = (layerDirectory as NSString).appendingPathComponent(file)
        if let expected = models["sha256"]?.stringValue, try Fingerprint.sha256(ofFile: modelPath) != expected {
            throw LinprobeError(.corruptInput, "\(modelPath): checksum differs from results.json; rerun train-svm with SVM.force_retrain=true")
        }
        let (rows, cols, values) = try Files.readNpy(modelPath)
        guard rows == classes.count else { throw LinprobeError(.corruptInput, "\(modelPath): \(rows) models for \(classes.count) classes") }
        let reader = try FeatureStoreReader(path: testPath)
        let info = try reader.layer(layer)
        guard info.dim + 1 == cols else {
            throw LinprobeError(.incompatible, "\(testPath): layer \(layer) has D = \(info.dim) but the models have \(cols - 1) weights")
        }
        guard case .multiLabel = reader.targetLayout else {
            throw LinprobeError(.incompatible, "\(testPath): needs multi-label [N, C] targets")
        }
        let weights = (0..<rows).map { Array(values[($0 * cols)..<(($0 + 1) * cols)]) }
        let workers = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
        let scores = try Scoring.score(reader: reader, layer: layer, models: weights, normalize: normalize, bias: bias, threads: workers)
        let targets = try reader.targets()
        let width = reader.targetLayout.width
        var out: [Int: Double?] = [:]
        for (m, c) in classes.enumerated() {
            let eval = TestEvaluation(scores: scores[m], targets: targets, width: width, column: c)
            out[c] = eval.allPoints
        }
        return out
    }
}

/// Everything a protocol needs for one layer.
struct LayerContext {
    let layer: String
    let train: FeatureStoreReader
    let test: FeatureStoreReader
    let settings: SVMSettings
    let directory: String
    let fingerprint: String
    let threads: Int
    let gramBudgetBytes: Int
    /// The solver layout forced by the caller (nil: chosen per layer).
    var layout: SolverLayout? = nil
    let progress: (@Sendable (SVMProgress) -> Void)?
    let warn: (@Sendable (String) -> Void)?

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    func className(_ c: Int, in reader: FeatureStoreReader) -> String {
        c < reader.classNames.count ? reader.classNames[c] : "class\(c)"
    }

    var provenance: JSONValue {
        [
            "tool": "linprobe",
            "tool_version": .string(LinprobeVersion.string),
            "blas": .string(BLAS.config),
            "blas_core": .string(BLAS.coreName),
            "vector_kernels": .string(String(cString: lp_svm_kernel_name())),
            "threads": .int(Int64(threads)),
        ]
    }
}

/// VOC test evaluation of one class: difficult (−1) rows dropped, positives = target 1.
struct TestEvaluation {
    var positives = 0
    var negatives = 0
    var difficult = 0
    var allPoints: Double?
    var elevenPoint: Double?

    init(scores: [Double], targets: [Int64], width: Int, column: Int) {
        var s: [Double] = []
        var p: [Bool] = []
        s.reserveCapacity(scores.count)
        p.reserveCapacity(scores.count)
        for r in 0..<scores.count {
            let t = targets[r * width + column]
            if t == -1 { difficult += 1; continue }
            s.append(scores[r])
            p.append(t > 0)
            if t > 0 { positives += 1 } else { negatives += 1 }
        }
        allPoints = AveragePrecision.vocAllPoints(scores: s, positive: p)
        elevenPoint = AveragePrecision.vocElevenPoint(scores: s, positive: p)
    }

    /// Single-label (one-vs-rest) evaluation: rows with target < 0 dropped, positives = class.
    init(scores: [Double], singleLabelTargets targets: [Int64], positiveClass: Int) {
        var s: [Double] = []
        var p: [Bool] = []
        for r in 0..<scores.count {
            let t = targets[r]
            if t < 0 { difficult += 1; continue }
            s.append(scores[r])
            p.append(t == Int64(positiveClass))
            if t == Int64(positiveClass) { positives += 1 } else { negatives += 1 }
        }
        allPoints = AveragePrecision.vocAllPoints(scores: s, positive: p)
        elevenPoint = AveragePrecision.vocElevenPoint(scores: s, positive: p)
    }
}

/// numpy's `argmax` over a row that may hold NaN (nil here): the first NaN wins, otherwise the
/// first maximum. VISSL picks the cost this way, so a class whose CV AP is undefined for every
/// cost gets the first cost.
func numpyArgmax(_ values: [Double?]) -> Int {
    if let firstNaN = values.firstIndex(where: { $0 == nil }) { return firstNaN }
    var best = 0
    for (i, v) in values.enumerated() where v! > values[best]! { best = i }
    return best
}

extension JSONValue {
    static func number(_ d: Double?) -> JSONValue {
        guard let d, d.isFinite else { return .null }
        return .double(d)
    }
}
