import Foundation
import LinprobeCore
import LinprobeStore

extension SVMStage {
    /// Re-runs only the test of a finished VOC07 layer from its saved models (`models.npy`) and
    /// returns the per-class test AP (VOC all-points; nil where undefined).
    public static func retest(
        layerDirectory: String, test testPath: String, threads: Int = 0
    ) throws -> [Int: Double?] {
        let resultsPath = WorkdirLayout.resultsFile(in: layerDirectory)
        let results = try SVMResultsDocument.read(path: resultsPath)
        guard let models = results.models else {
            throw LinprobeError(.corruptInput, "\(resultsPath): no saved models recorded (low-shot results keep none)")
        }
        let normalize: Bool
        if case .bool(let b)? = results.settings["normalize"] { normalize = b } else { normalize = true }
        let bias = results.settings["intercept_scaling"]?.doubleValue ?? 1
        let modelPath = Paths.join(layerDirectory, models.file)
        if try Fingerprint.sha256(ofFile: modelPath) != models.sha256 {
            throw LinprobeError(
                .corruptInput,
                "\(modelPath): checksum differs from results.json; rerun train-svm with SVM.force_retrain=true")
        }
        let weights = try readModels(modelPath, count: models.classes.count)
        let reader = try FeatureStoreReader(path: testPath)
        let info = try reader.layer(results.layer)
        let cols = weights.first?.count ?? info.dim + 1
        guard cols == info.dim + 1 else {
            throw LinprobeError(
                .incompatible,
                "\(testPath): layer \(results.layer) has D = \(info.dim) but the models have \(cols - 1) weights")
        }
        guard case .multiLabel = reader.targetLayout else {
            throw LinprobeError(.incompatible, "\(testPath): needs multi-label [N, C] targets")
        }
        let workers = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
        let scores = try Scoring.score(
            reader: reader, layer: results.layer, models: weights, normalize: normalize, bias: bias, threads: workers)
        let targets = try reader.targets()
        let width = reader.targetLayout.width
        var out: [Int: Double?] = [:]
        for (m, c) in models.classes.enumerated() {
            out[c] = TestEvaluation(scores: scores[m], targets: targets, width: width, column: c).allPoints
        }
        return out
    }

    /// The rows of a `models.npy` (float64, one model per row).
    static func readModels(_ path: String, count: Int) throws -> [[Double]] {
        func bad(_ what: String) -> LinprobeError {
            LinprobeError(
                .corruptInput, "\(path): \(what); rerun train-svm with SVM.force_retrain=true to rebuild the models")
        }
        let array = try NPYArray.read(path: path)
        guard array.dtype == "<f8", array.shape.count == 2, case .floats(let values) = array.values else {
            throw bad("expected a C-order float64 matrix, found '\(array.dtype)' of shape \(array.shape)")
        }
        let (rows, cols) = (array.shape[0], array.shape[1])
        guard rows == count else { throw bad("\(rows) models for \(count) classes") }
        return (0..<rows).map { Array(values[($0 * cols)..<(($0 + 1) * cols)]) }
    }
}
