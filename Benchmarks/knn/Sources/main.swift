import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeKNN
import LinprobeStore

// bench-knn TRAIN.h5 TEST.h5 LAYER WORKDIR [K SIGMA L2 THREADS MEMORY_MB]
// Runs the knn stage as `linprobe knn` does (search, labels, vote, results.json) and prints one
// JSON line: wall seconds, the stage's own search+vote seconds, top-1 / top-5 at K, the rate in
// train × test inner products per second, the layout it chose, and the library it used.
let args = CommandLine.arguments
guard args.count >= 5 else {
    FileHandle.standardError.write(
        Data("usage: bench-knn TRAIN.h5 TEST.h5 LAYER WORKDIR [K SIGMA L2 THREADS MEMORY_MB]\n".utf8))
    exit(64)
}
func arg(_ i: Int, _ fallback: String) -> String { args.count > i ? args[i] : fallback }

do {
    let start = Date()
    let train = try FeatureStoreReader(path: args[1])
    let test = try FeatureStoreReader(path: args[2])
    var settings = KNNSettings()
    settings.ks = [Int(arg(5, "200")) ?? 200]
    settings.temperature = Double(arg(6, "0.1")) ?? 0.1
    settings.l2Normalize = arg(7, "1") == "1"
    settings.threads = Int(arg(8, "0")) ?? 0
    settings.memoryBytes = (Int(arg(9, "1024")) ?? 1024) << 20
    let layout = WorkdirLayout(args[4])
    let stage = try KNNStage(
        train: train, test: test, settings: settings, layers: [args[3]], pipeline: "bench", layout: layout)
    let result = try StageRunner(layout: layout, force: true).execute(
        stage, progress: ProgressReporter(stage: "knn", mode: .silent))
    guard let document = result.outcome.layers.first?.document, let r = document.results.first else {
        throw LinprobeError(.io, "no results")
    }
    let plan = NeighbourSearch.layout(
        queries: test.count, trainRows: train.count, dim: try train.layer(args[3]).dim, k: settings.maxK,
        threads: stage.threads, memoryBytes: settings.memoryBytes, storeChunk: try train.layer(args[3]).chunkRows)
    let line: JSONValue = [
        "wall_seconds": .double(Date().timeIntervalSince(start)),
        "stage_seconds": .double(document.provenance.seconds ?? .nan),
        "similarities_per_second": .double(document.provenance.similaritiesPerSecond ?? .nan),
        "top_1": .double(r.top1 ?? .nan), "top_5": .double(r.top5 ?? .nan),
        "correct_top_1": .int(Int64(r.correctTop1 ?? -1)), "correct_top_5": .int(Int64(r.correctTop5 ?? -1)),
        "train_rows": .int(Int64(train.count)), "test_rows": .int(Int64(test.count)),
        "threads": .int(Int64(stage.threads)), "query_block": .int(Int64(plan.queryBlock)),
        "train_chunk": .int(Int64(plan.trainChunk)), "blas": .string(BLAS.config), "blas_core": .string(BLAS.coreName),
    ]
    print(line.canonicalText)
} catch {
    FileHandle.standardError.write(Data("bench-knn: \(oneLine(error))\n".utf8))
    exit(1)
}
