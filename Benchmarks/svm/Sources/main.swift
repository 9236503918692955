// Benchmark driver for the train-svm stage (Benchmarks/svm/bench.sh): runs SVMStage on a pair
// of stores with VISSL's VOC07 settings and prints one JSON line per layer
// (layer, mAP, seconds, fits, non-converged fits). Not part of the tool.
//
// usage: bench-svm TRAIN.h5 TEST.h5 OUT_DIR THREADS CLASSES [layer ...]   (CLASSES 0 = every class)
import Foundation
import LinprobeCore
import LinprobeSVM

let args = CommandLine.arguments
guard args.count >= 6, let threads = Int(args[4]), let classes = Int(args[5]) else {
    FileHandle.standardError.write(Data("usage: bench-svm TRAIN.h5 TEST.h5 OUT_DIR THREADS CLASSES [layer ...]\n".utf8))
    exit(64)
}
// SVM_BENCH_MAX_ITER overrides VISSL's max_iter 2000 (a shorter run; the reference gets the same).
let maxIter = ProcessInfo.processInfo.environment["SVM_BENCH_MAX_ITER"].flatMap { Int($0) } ?? 2000
let config: JSONValue = [
    "SVM": [
        "costs": ["costs_list": [0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0], "base": -1.0],
        "cls_list": .array((0..<classes).map { .int(Int64($0)) }),
        "max_iter": .int(Int64(maxIter)),
    ],
]
do {
    let settings = try SVMSettings(config: ConfigNode(path: "", value: config))
    let layers = args.count > 6 ? Array(args[6...]) : nil
    // SVM_BENCH_LAYOUT=gram|dense forces the solver layout (default: chosen per layer).
    let layout = ProcessInfo.processInfo.environment["SVM_BENCH_LAYOUT"].flatMap { SolverLayout(rawValue: $0) }
    let start = Date()
    let summary = try SVMStage.run(
        train: args[1], test: args[2], settings: settings, outputDirectory: args[3], layers: layers, threads: threads,
        warn: { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }, layout: layout)
    for layer in summary.layers {
        let results = try JSONValue.parse(String(contentsOfFile: layer.resultsPath, encoding: .utf8))
        let line: JSONValue = [
            "layer": .string(layer.layer),
            "mAP": results["value"] ?? .null,
            "seconds": results["provenance"]?["timings"]?["total_seconds"] ?? .null,
            "fits": results["convergence"]?["fits"] ?? .null,
            "not_converged": results["convergence"]?["not_converged"] ?? .null,
            "layout": results["provenance"]?["solver_layout"] ?? .null,
            "timings": results["provenance"]?["timings"] ?? .null,
            "chosen_costs": .array((results["classes"]?.arrayValue ?? []).map { $0["chosen_cost"] ?? .null }),
        ]
        print(line.canonicalText)
    }
    print(JSONValue.object(["total_seconds": .double(Date().timeIntervalSince(start))]).canonicalText)
} catch {
    FileHandle.standardError.write(Data("error: \(oneLine(error))\n".utf8))
    exit(1)
}
