// Benchmark driver for the train-linear stage: trains the heads of a JSON config on two stores
// for a given number of epochs and prints per-epoch wall times as JSON (used by bench.sh).
//
//   linear-bench --train T.h5 --test V.h5 --config cfg.json --workdir DIR --threads N --epochs E
import Foundation
import LinprobeCore
import LinprobeLinear
import LinprobeStore

func argument(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

do {
    guard let trainPath = argument("--train"), let testPath = argument("--test"), let configPath = argument("--config"),
        let workdir = argument("--workdir"), let configData = FileManager.default.contents(atPath: configPath)
    else {
        FileHandle.standardError.write(
            Data("usage: linear-bench --train T --test V --config C.json --workdir D [--threads N] [--epochs E]\n".utf8)
        )
        exit(64)
    }
    let threads = Int(argument("--threads") ?? "") ?? ProcessInfo.processInfo.activeProcessorCount
    let epochs = Int(argument("--epochs") ?? "")
    let config = ConfigNode(path: "", value: try JSONValue.parse(String(decoding: configData, as: UTF8.self)))
    let openStart = Date()
    let train = try FeatureStoreReader(path: trainPath)
    let test = try FeatureStoreReader(path: testPath)
    let settings = try LinearSettings(config: config, multiLabelStore: train.targetLayout != .singleLabel)
    var marks: [Double] = []
    var trainSeconds: [Double] = []
    var phaseStart = Date()
    var lastPhase: LinearProgress.Phase? = nil
    var lastEpoch = 0
    let start = Date()
    let options = LinearRunOptions(
        threads: threads,
        progress: { p in
            if p.phase != lastPhase || p.epoch != lastEpoch {
                if lastPhase == .train { trainSeconds.append(Date().timeIntervalSince(phaseStart)) }
                phaseStart = Date()
                lastPhase = p.phase
                lastEpoch = p.epoch
            }
            if p.phase == .test && p.batch == p.batches { marks.append(Date().timeIntervalSince(start)) }
        }, stopAfterEpochs: epochs)
    let result = try LinearStage.run(train: train, test: test, settings: settings, workdir: workdir, options: options)
    let total = Date().timeIntervalSince(start)
    var epochSeconds: [Double] = []
    var previous = 0.0
    for m in marks { epochSeconds.append(m - previous); previous = m }
    let out: JSONValue = [
        "open_seconds": .double(start.timeIntervalSince(openStart)),
        "total_seconds": .double(total), "epoch_seconds": .array(epochSeconds.map { .double($0) }),
        "train_seconds": .array(trainSeconds.map { .double($0) }),
        "epochs_done": .int(Int64(result.epochsDone)),
        "top_1": .array(result.heads.map { .double($0.history.last?.test?["top_1"] ?? .nan) }),
        "train_loss": .array(result.heads.map { .double($0.history.last?.trainLoss ?? .nan) }),
    ]
    print(out.canonicalText)
} catch {
    FileHandle.standardError.write(Data("error: \(oneLine(error))\n".utf8))
    exit(1)
}
