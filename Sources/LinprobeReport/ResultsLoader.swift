import Foundation
import LinprobeCore
import LinprobeStore

/// One `results.json` of train-svm or train-linear, read and checked.
struct LoadedResult {
    enum Kind: Equatable { case svm, svmLowShot, linear }

    let kind: Kind
    /// The results.json file and its folder (`svm/<fp>/<layer>` or `linear/<fp>/<head>`).
    let path: String
    let directory: String
    let json: JSONValue
    let layer: String
    /// The results' fingerprint: features + every hyper-parameter (`svm/<fp>`, `linear/<fp>`).
    let fingerprint: String
    let trainFeatures: FeatureReference
    let testFeatures: FeatureReference
    /// Linear heads: the per-epoch metrics (`metrics.json`), nil when the file is absent.
    let linearEpochs: [JSONValue]?
}

/// A feature store a result was computed from: its fingerprint, and where it was when the stage ran.
struct FeatureReference: Equatable {
    var fingerprint: String
    var path: String?
}

/// What a feature store records about how it was made (root attributes), for the protocol block,
/// the dataset name and the run label.
struct StoreInfo {
    let path: String
    let fingerprint: String
    let split: String
    let rows: Int
    let trunk: JSONValue
    let weights: JSONValue
    let transforms: JSONValue
    let poolOps: JSONValue
    let provenance: JSONValue

    /// The dataset's name: its catalog name, else the last component of its root folder.
    var datasetName: String? {
        let d = provenance["dataset"]
        if let names = d?["settings"]?["dataset_names"]?.arrayValue, let first = names.first?.stringValue, !first.isEmpty {
            return first
        }
        for key in ["root", "name"] {
            if let s = d?[key]?.stringValue, !s.isEmpty {
                let base = (s as NSString).lastPathComponent
                if !base.isEmpty && base != "/" { return base }
            }
        }
        return nil
    }

    /// The weights in words: the checkpoint's file name, or the seeded random initialisation.
    var weightsName: String? {
        if weights["init"]?.stringValue == "random" {
            if let seed = weights["seed"]?.intValue { return "random init (seed \(seed))" }
            return "random init"
        }
        if let p = weights["path"]?.stringValue, !p.isEmpty { return (p as NSString).lastPathComponent }
        return nil
    }
}

enum ResultsLoader {
    /// Files whose presence marks a layer or head folder of a stage (even before its results exist).
    static let stageMarkers = ["fits.log", "models.npy", "low_shot_samples.json", "metrics.json"]

    /// The results.json files of the given folders. A folder may be a layer/head folder (holding
    /// results.json), a stage run folder (`svm/<fp>`, `linear/<fp>`) or a stage folder (`svm`,
    /// `linear`); a results.json file may be named directly. Sorted, each once.
    static func resultFiles(in folders: [String]) throws -> [String] {
        var found: [String] = []
        let fm = FileManager.default
        for folder in folders {
            let base = URL(fileURLWithPath: folder).standardizedFileURL.path
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: base, isDirectory: &isDir) else {
                throw LinprobeError(.missingInput, "\(folder): no such results folder; run train-svm or train-linear first, or pass the folder they wrote (svm/<fp>, linear/<fp>)")
            }
            if !isDir.boolValue {
                guard (base as NSString).lastPathComponent == "results.json" else {
                    throw LinprobeError(.usage, "\(folder): not a results folder or results.json file")
                }
                found.append(base)
                continue
            }
            var here: [String] = []
            var level = [base]
            for _ in 0..<3 {
                var next: [String] = []
                for dir in level {
                    let results = (dir as NSString).appendingPathComponent("results.json")
                    if fm.fileExists(atPath: results) {
                        here.append(results)
                    } else if stageMarkers.contains(where: { fm.fileExists(atPath: (dir as NSString).appendingPathComponent($0)) }) {
                        throw LinprobeError(.missingInput, "\(results): missing; the stage that writes it did not finish (rerun train-svm / train-linear)")
                    } else {
                        next.append(contentsOf: subdirectories(of: dir))
                    }
                }
                if !here.isEmpty { break }
                level = next
            }
            if here.isEmpty {
                throw LinprobeError(.missingInput, "\(folder): no results.json under it (expected svm/<fp>/<layer>/results.json or linear/<fp>/<head>/results.json); run train-svm or train-linear first")
            }
            found.append(contentsOf: here)
        }
        return orderedUnique(found).sorted()
    }

    static func subdirectories(of dir: String) -> [String] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: dir) else { return [] }
        return names.sorted().compactMap { name in
            if name.hasPrefix(".") { return nil }
            let p = (dir as NSString).appendingPathComponent(name)
            var isDir: ObjCBool = false
            return fm.fileExists(atPath: p, isDirectory: &isDir) && isDir.boolValue ? p : nil
        }
    }

    /// Reads a JSON file; a missing, unreadable or damaged file is an error naming it.
    static func readJSON(_ path: String, what: String) throws -> JSONValue {
        guard FileManager.default.fileExists(atPath: path) else {
            throw LinprobeError(.missingInput, "\(path): missing (\(what))")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LinprobeError(.io, "\(path): cannot read (\(what))")
        }
        guard let text = String(data: data, encoding: .utf8), let value = try? JSONValue.parse(text) else {
            throw LinprobeError(.corruptInput, "\(path): not valid JSON (\(what) is damaged or truncated); rerun the stage that wrote it")
        }
        return value
    }

    static func load(_ path: String) throws -> LoadedResult {
        let json = try readJSON(path, what: "results of train-svm / train-linear")
        func field(_ name: String) throws -> String {
            guard let s = json[name]?.stringValue else {
                throw LinprobeError(.corruptInput, "\(path): field '\(name)' is missing or not a string; rerun the stage that wrote it")
            }
            return s
        }
        let directory = (path as NSString).deletingLastPathComponent
        switch json["format"]?.stringValue {
        case "linprobe.svm.results":
            let proto = try field("protocol")
            guard ["voc07", "voc07_low_shot", "places205_low_shot"].contains(proto) else {
                throw LinprobeError(.unsupported, "\(path): SVM protocol '\(proto)' is not known to this report (voc07, voc07_low_shot, places205_low_shot)")
            }
            let kind: LoadedResult.Kind = proto == "voc07" ? .svm : .svmLowShot
            if kind == .svm {
                guard json["metrics"]?.objectValue != nil, json["classes"]?.arrayValue != nil, json["costs"]?.arrayValue != nil else {
                    throw LinprobeError(.corruptInput, "\(path): SVM results lack 'metrics', 'classes' or 'costs'; rerun train-svm")
                }
            } else {
                guard json["results_by_k"]?.arrayValue != nil, json["costs"]?.arrayValue != nil else {
                    throw LinprobeError(.corruptInput, "\(path): low-shot SVM results lack 'results_by_k' or 'costs'; rerun train-svm")
                }
            }
            let features = json["features"]
            guard let trainFP = features?["train"]?["fingerprint"]?.stringValue,
                let testFP = features?["test"]?["fingerprint"]?.stringValue
            else {
                throw LinprobeError(.corruptInput, "\(path): field 'features' (train/test fingerprints) is missing; rerun train-svm")
            }
            return LoadedResult(
                kind: kind, path: path, directory: directory, json: json, layer: try field("layer"),
                fingerprint: try field("fingerprint"),
                trainFeatures: FeatureReference(fingerprint: trainFP, path: features?["train"]?["path"]?.stringValue),
                testFeatures: FeatureReference(fingerprint: testFP, path: features?["test"]?["path"]?.stringValue),
                linearEpochs: nil)
        case "linprobe.results":
            guard json["method"]?.stringValue == "linear" else {
                throw LinprobeError(.unsupported, "\(path): method '\(json["method"]?.stringValue ?? "?")' is not known to this report (linear)")
            }
            for name in ["head", "head_type", "metric"] { _ = try field(name) }
            guard json["value"] != nil else {
                throw LinprobeError(.corruptInput, "\(path): field 'value' is missing; rerun train-linear")
            }
            // Where the stores were: the run's state.json (one folder up) records their paths.
            let statePath = ((directory as NSString).deletingLastPathComponent as NSString).appendingPathComponent("state.json")
            var trainPath: String? = nil, testPath: String? = nil
            if FileManager.default.fileExists(atPath: statePath) {
                let state = try readJSON(statePath, what: "train-linear run state")
                trainPath = state["train_features"]?["path"]?.stringValue
                testPath = state["test_features"]?["path"]?.stringValue
            }
            var epochs: [JSONValue]? = nil
            let metricsPath = (directory as NSString).appendingPathComponent("metrics.json")
            if FileManager.default.fileExists(atPath: metricsPath) {
                let metrics = try readJSON(metricsPath, what: "per-epoch metrics of train-linear")
                guard let list = metrics["epochs"]?.arrayValue else {
                    throw LinprobeError(.corruptInput, "\(metricsPath): field 'epochs' is missing; rerun train-linear")
                }
                epochs = list
            }
            return LoadedResult(
                kind: .linear, path: path, directory: directory, json: json, layer: try field("layer"),
                fingerprint: try field("results_fingerprint"),
                trainFeatures: FeatureReference(fingerprint: try field("fingerprint"), path: trainPath),
                testFeatures: FeatureReference(fingerprint: json["test_fingerprint"]?.stringValue ?? "", path: testPath),
                linearEpochs: epochs)
        default:
            throw LinprobeError(.corruptInput, "\(path): not a Linprobe results file (format '\(json["format"]?.stringValue ?? "none")'; expected linprobe.svm.results or linprobe.results)")
        }
    }

    /// The store a result refers to, when it can still be found with the same fingerprint: at its
    /// recorded path, or relative to the work folder the result lives in. Nil otherwise.
    static func store(_ ref: FeatureReference, near result: LoadedResult, cache: inout [String: StoreInfo?]) -> StoreInfo? {
        guard let recorded = ref.path, !recorded.isEmpty else { return nil }
        // <workdir>/<stage>/<fp>/<layer>/results.json → <workdir>
        let workdir = URL(fileURLWithPath: result.directory).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        var candidates = [recorded]
        if !recorded.hasPrefix("/") { candidates.append((workdir as NSString).appendingPathComponent(recorded)) }
        for candidate in candidates {
            let key = URL(fileURLWithPath: candidate).standardizedFileURL.path
            if let cached = cache[key] {
                if let info = cached, info.fingerprint == ref.fingerprint { return info }
                continue
            }
            var info: StoreInfo? = nil
            if FileManager.default.fileExists(atPath: key), let reader = try? FeatureStoreReader(path: key) {
                info = StoreInfo(
                    path: key, fingerprint: reader.fingerprint, split: reader.split, rows: reader.count,
                    trunk: (try? reader.jsonAttribute("trunk")) ?? .null, weights: (try? reader.jsonAttribute("weights")) ?? .null,
                    transforms: (try? reader.jsonAttribute("transforms")) ?? .null,
                    poolOps: (try? reader.jsonAttribute("pool_ops")) ?? .null,
                    provenance: (try? reader.jsonAttribute("provenance")) ?? .null)
            }
            cache[key] = info
            if let info, info.fingerprint == ref.fingerprint { return info }
        }
        return nil
    }
}
