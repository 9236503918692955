import Foundation
import LinprobeCore

/// A feature store as a results document names it.
struct FeatureReference: Equatable {
    var fingerprint: String
    var path: String?
    /// Trunk, weights, transforms, pool ops and dataset as the training stage read them from the
    /// store (`feature_provenance`, results format 2); nil for results of format 1.
    var provenance: FeatureProvenance?
}

/// One `results.json` of train-svm or train-linear, decoded and checked.
struct LoadedResult {
    enum Kind: Equatable { case svm, svmLowShot, linear, knn }

    enum Content {
        case svm(SVMResultsDocument)
        /// A linear head and its per-epoch history (`metrics.json`, nil when absent).
        case linear(LinearResultsDocument, epochs: LinearMetricsDocument?)
        case knn(KNNResultsDocument)
    }

    let kind: Kind
    /// The results.json file (its folder is `svm/<fp>/<layer>` or `linear/<fp>/<head>`).
    let path: String
    let content: Content
    let layer: String
    /// The results' fingerprint: features + every hyper-parameter (`svm/<fp>`, `linear/<fp>`).
    let fingerprint: String
    let trainFeatures: FeatureReference
    let testFeatures: FeatureReference
}

enum ResultsLoader {
    /// Files whose presence marks a layer or head folder of a stage (even before its results exist).
    static let stageMarkers = ["fits.log", "models.npy", "low_shot_samples.json", "metrics.json"]
    /// The per-epoch history beside a linear head's results.json.
    static let linearMetricsFile = "metrics.json"

    /// The results.json files of the given folders. A folder may be a layer/head folder (holding
    /// results.json), a stage run folder (`svm/<fp>`, `linear/<fp>`) or a stage folder (`svm`,
    /// `linear`); a results.json file may be named directly. Sorted, each once.
    static func resultFiles(in folders: [String]) throws -> [String] {
        var found: [String] = []
        for folder in folders {
            let base = Paths.standardized(folder)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: base, isDirectory: &isDir) else {
                throw LinprobeError(
                    .missingInput,
                    "\(folder): no such results folder; run train-svm, train-linear or knn first, or pass the folder "
                        + "they wrote (svm/<fp>, linear/<fp>, knn/<fp>)")
            }
            if !isDir.boolValue {
                guard base == WorkdirLayout.resultsFile(in: Paths.parent(base)) else {
                    throw LinprobeError(.usage, "\(folder): not a results folder or results.json file")
                }
                found.append(base)
            } else {
                found.append(contentsOf: try resultFiles(under: base, named: folder))
            }
        }
        return orderedUnique(found).sorted()
    }

    /// results.json files at most three folder levels below `base` (the first level holding any).
    private static func resultFiles(under base: String, named folder: String) throws -> [String] {
        let fm = FileManager.default
        var here: [String] = []
        var level = [base]
        for _ in 0..<3 {
            var next: [String] = []
            for dir in level {
                let results = WorkdirLayout.resultsFile(in: dir)
                if fm.fileExists(atPath: results) {
                    here.append(results)
                } else if stageMarkers.contains(where: { fm.fileExists(atPath: Paths.join(dir, $0)) }) {
                    throw LinprobeError(
                        .missingInput,
                        "\(results): missing; the stage that writes it did not finish (rerun train-svm / train-linear)")
                } else {
                    next.append(contentsOf: subdirectories(of: dir))
                }
            }
            if !here.isEmpty { break }
            level = next
        }
        if here.isEmpty {
            throw LinprobeError(
                .missingInput,
                "\(folder): no results.json under it (expected svm/<fp>/<layer>/results.json, "
                    + "linear/<fp>/<head>/results.json or knn/<fp>/<layer>/results.json); run train-svm, train-linear "
                    + "or knn first")
        }
        return here
    }

    static func subdirectories(of dir: String) -> [String] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: dir) else { return [] }
        return names.sorted().compactMap { name in
            if name.hasPrefix(".") { return nil }
            let p = Paths.join(dir, name)
            var isDir: ObjCBool = false
            return fm.fileExists(atPath: p, isDirectory: &isDir) && isDir.boolValue ? p : nil
        }
    }

    /// Reads a results.json of any training stage (format version 1 or 2): the document's own reader
    /// checks it, errors name the file.
    static func load(_ path: String) throws -> LoadedResult {
        let data = try DocumentFile.read(path, what: "results of train-svm / train-linear")
        let format = DocumentFile.header(data)?.format
        switch format {
        case SVMResultsDocument.format:
            return loaded(try SVMResultsDocument.read(path: path), path: path)
        case KNNResultsDocument.format:
            return loaded(try KNNResultsDocument.read(path: path), path: path)
        case LinearResultsDocument.format:
            let metricsPath = Paths.join(Paths.parent(path), linearMetricsFile)
            let epochs =
                FileManager.default.fileExists(atPath: metricsPath)
                ? try LinearMetricsDocument.read(path: metricsPath) : nil
            return loaded(try LinearResultsDocument.read(path: path), epochs: epochs, path: path)
        default:
            throw LinprobeError(
                .corruptInput,
                "\(path): not a Linprobe results file (format '\(format ?? "none")'; expected "
                    + "\(SVMResultsDocument.format), \(LinearResultsDocument.format) or \(KNNResultsDocument.format))")
        }
    }

    static func loaded(_ doc: SVMResultsDocument, path: String) -> LoadedResult {
        let provenance = doc.featureProvenance
        return LoadedResult(
            kind: doc.protocolKind.isLowShot ? .svmLowShot : .svm, path: path, content: .svm(doc), layer: doc.layer,
            fingerprint: doc.fingerprint,
            trainFeatures: FeatureReference(
                fingerprint: doc.features.train.fingerprint, path: doc.features.train.path,
                provenance: provenance?.train),
            testFeatures: FeatureReference(
                fingerprint: doc.features.test.fingerprint, path: doc.features.test.path, provenance: provenance?.test))
    }

    static func loaded(_ doc: KNNResultsDocument, path: String) -> LoadedResult {
        LoadedResult(
            kind: .knn, path: path, content: .knn(doc), layer: doc.layer, fingerprint: doc.fingerprint,
            trainFeatures: FeatureReference(
                fingerprint: doc.features.train.fingerprint, path: doc.features.train.path,
                provenance: doc.featureProvenance.train),
            testFeatures: FeatureReference(
                fingerprint: doc.features.test.fingerprint, path: doc.features.test.path,
                provenance: doc.featureProvenance.test))
    }

    static func loaded(_ doc: LinearResultsDocument, epochs: LinearMetricsDocument?, path: String) -> LoadedResult {
        let provenance = doc.featureProvenance
        return LoadedResult(
            kind: .linear, path: path, content: .linear(doc, epochs: epochs), layer: doc.layer,
            fingerprint: doc.resultsFingerprint,
            trainFeatures: FeatureReference(
                fingerprint: doc.fingerprint, path: provenance?.train.path, provenance: provenance?.train),
            testFeatures: FeatureReference(
                fingerprint: doc.testFingerprint ?? provenance?.test.fingerprint ?? "", path: provenance?.test.path,
                provenance: provenance?.test))
    }
}
