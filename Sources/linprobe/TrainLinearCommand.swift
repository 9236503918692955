import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeLinear
import LinprobeStore

/// `linprobe train-linear <pipeline> [overrides] --features TRAIN.h5 --test-features TEST.h5`.
struct TrainLinearCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-linear",
        abstract: "Train VISSL's linear heads (eval_mlp, mlp) with SGD on stored features, all heads in one pass.",
        discussion: """
            Heads come from MODEL.HEAD.PARAMS and pair, in order, with the layers of the training store. \
            Writes <workdir>/linear/<fp>/<head>/{metrics.json,results.json,checkpoint_epoch<E>.lpck}; a killed \
            run resumes at its last finished epoch, a finished one is reused.
            """)

    @OptionGroup var arguments: PipelineArguments

    @Option(help: "Training feature store (.h5).")
    var features: String?

    @Option(help: "Test feature store (.h5), evaluated after every epoch.")
    var testFeatures: String?

    @Option(help: "Compute threads (default: LINPROBE.THREADS, 0 = all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 0 { throw ValidationError("--threads must be ≥ 0") }
    }

    func run() throws {
        try reportingErrors {
            let config = try PipelineConfig.load(pipeline: arguments.pipeline, overrides: arguments.overrides)
            for note in config.notes { Console.note(note) }
            if let note = config.ignoredKeysNote { Console.note(note) }
            guard let features, let testFeatures else {
                throw LinprobeError(.usage, "train-linear: pass --features TRAIN.h5 and --test-features TEST.h5 (the stores written by 'linprobe extract')")
            }
            let train = try FeatureStoreReader(path: features)
            let test = try FeatureStoreReader(path: testFeatures)
            var settings = try LinearSettings(config: config.root, multiLabelStore: train.targetLayout != .singleLabel)
            if let threads, threads > 0 { settings.threads = threads }
            let fingerprint = LinearStage.fingerprint(train: train, test: test, settings: settings)
            let manifest = ManifestStore(workdir: arguments.workdir)
            let output = URL(fileURLWithPath: arguments.workdir).appendingPathComponent("linear/\(fingerprint)").path
            var line: ProgressLine? = nil
            var current = (LinearProgress.Phase.train, 0)
            var done = 0
            let options = LinearRunOptions(progress: { p in
                if line == nil || current != (p.phase, p.epoch) {
                    line?.finish()
                    line = ProgressLine(label: "train-linear epoch \(p.epoch)/\(p.epochs) \(p.phase.rawValue)", total: p.batches, unit: "batches")
                    current = (p.phase, p.epoch)
                    done = 0
                }
                line?.advance(by: p.batch - done)
                done = p.batch
            })
            var result: LinearRunResult? = nil
            let outcome = try runStage(
                "train-linear", fingerprint: fingerprint, manifest: manifest,
                inputs: ["train_features": .string(train.fingerprint), "test_features": .string(test.fingerprint),
                         "train_path": .string(train.path), "test_path": .string(test.path)],
                parameters: settings.json, outputs: [output], pipeline: config.name
            ) {
                let r = try LinearStage.run(train: train, test: test, settings: settings, workdir: arguments.workdir, options: options)
                line?.finish()
                result = r
                return r.resumedFromEpoch.map { "resumed at epoch \($0)" }
            }
            if outcome.wasReused { Console.note("train-linear: reusing the finished run \(output)") }
            for head in result?.heads ?? [] {
                Console.result("\(head.name)\t\(head.kind.rawValue)\t\(head.metric) \(String(format: "%.3f", head.value))\t\(head.directory)/results.json")
            }
            if result == nil { Console.result(output) }
        }
    }
}
