// Benchmark driver for the train-svm stage (Benchmarks/svm/bench.sh): runs SVMStage on a pair
// of stores with VISSL's VOC07 settings and prints one JSON line per layer
// (layer, mAP, seconds, fits, non-converged fits, chosen costs, per-class test APs in percent).
// Not part of the tool.
//
// usage: bench-svm TRAIN.h5 TEST.h5 OUT_DIR THREADS CLASSES [layer ...]   (CLASSES 0 = every class;
// SVM_BENCH_CLASS_LIST=i,j,… runs those classes instead)
import Foundation
import LinprobeCore
import LinprobeSVM
import LinprobeStore

let args = CommandLine.arguments
guard args.count >= 6, let threads = Int(args[4]), let classes = Int(args[5]) else {
    FileHandle.standardError.write(Data("usage: bench-svm TRAIN.h5 TEST.h5 OUT_DIR THREADS CLASSES [layer ...]\n".utf8))
    exit(64)
}
// SVM_BENCH_MAX_ITER overrides VISSL's max_iter 2000 (a shorter run; the reference gets the same).
let maxIter = ProcessInfo.processInfo.environment["SVM_BENCH_MAX_ITER"].flatMap { Int($0) } ?? 2000
// SVM_BENCH_SOLVER=vissl|converged sets SVM.solver (default vissl).
let solver = ProcessInfo.processInfo.environment["SVM_BENCH_SOLVER"] ?? "vissl"
// SVM_BENCH_CLASS_LIST=3,15 runs those classes instead of the first CLASSES (one fit's case alone).
let classList: [Int]
if let text = ProcessInfo.processInfo.environment["SVM_BENCH_CLASS_LIST"] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false)
    let list = parts.compactMap { Int($0) }
    guard !parts.isEmpty, list.count == parts.count, list.allSatisfy({ $0 >= 0 }) else {
        FileHandle.standardError.write(
            Data("SVM_BENCH_CLASS_LIST: class indices separated by commas, got '\(text)'\n".utf8))
        exit(64)
    }
    classList = list
} else {
    classList = Array(0..<classes)
}
let config: JSONValue = [
    "SVM": [
        "costs": ["costs_list": [0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0], "base": -1.0],
        "cls_list": .array(classList.map { .int(Int64($0)) }),
        "max_iter": .int(Int64(maxIter)),
        "solver": .string(solver),
    ]
]
do {
    let settings = try SVMSettings(config: ConfigNode(path: "", value: config))
    let layers = args.count > 6 ? Array(args[6...]) : []
    // SVM_BENCH_LAYOUT=gram|dense forces the solver layout (default: chosen per layer).
    let layout = ProcessInfo.processInfo.environment["SVM_BENCH_LAYOUT"].flatMap { SolverLayout(rawValue: $0) }
    let start = Date()
    let stage = try SVMStage(
        train: try FeatureStoreReader(path: args[1]), test: try FeatureStoreReader(path: args[2]), settings: settings,
        layers: layers, pipeline: "bench-svm", layout: WorkdirLayout(args[3]), threads: threads, solverLayout: layout)
    let runner = StageRunner(
        layout: WorkdirLayout(args[3]), force: true, note: { FileHandle.standardError.write(Data("\($0)\n".utf8)) })
    let summary = try runner.execute(stage, progress: ProgressReporter(stage: "train-svm", mode: .silent)).outcome
    for layer in summary.layers {
        let results = try SVMResultsDocument.read(path: layer.resultsPath)
        let timings = results.provenance.timings ?? [:]
        let line: JSONValue = [
            "layer": .string(layer.layer),
            "mAP": results.value.map { .double($0) } ?? .null,
            "seconds": timings["total_seconds"].map { .double($0) } ?? .null,
            "fits": .int(Int64(results.convergence.fits)),
            "not_converged": .int(Int64(results.convergence.notConverged)),
            "layout": results.provenance.solverLayout.map { .string($0) } ?? .null,
            "timings": .object(timings.mapValues { .double($0) }),
            "chosen_costs": .array((results.classes ?? []).map { $0.chosenCost.map { .double($0) } ?? .null }),
            "aps": .array((results.classes ?? []).map { $0.testAP.map { .double($0 * 100) } ?? .null }),
        ]
        print(line.canonicalText)
    }
    print(JSONValue.object(["total_seconds": .double(Date().timeIntervalSince(start))]).canonicalText)
} catch {
    FileHandle.standardError.write(Data("error: \(oneLine(error))\n".utf8))
    exit(1)
}
