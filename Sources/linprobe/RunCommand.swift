import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeExtract
import LinprobeImport
import LinprobeStore

/// `linprobe run <pipeline> [overrides]`: extract (or import-features) → train-svm, train-linear
/// and/or knn → report, each stage skipped when the manifest holds a complete record with the
/// same fingerprint.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract:
            "Run every stage the pipeline needs, reusing each one the manifest shows as done with the same inputs.",
        discussion: """
            Stages: LINPROBE.STAGES when set; otherwise extract (import-features when \
            LINPROBE.IMPORT.TRAIN/TEST.FEATURES name features made elsewhere), then train-svm when the pipeline \
            sets SVM.* keys (or LINPROBE.SVM.LOW_SHOT), train-linear when it sets MODEL.HEAD.PARAMS, knn when it \
            sets NEAREST_NEIGHBOR.* (or LINPROBE.KNN.*), and report. Stores are shared by every pipeline that \
            extracts the same way: a second pipeline over the same data, trunk and pool ops does not run the trunk \
            again.
            """)

    @OptionGroup var arguments: PipelineArguments

    @OptionGroup var threading: ThreadOptions

    @Flag(help: "Fail at the first unreadable image (LINPROBE.STRICT_IMAGES).")
    var strict = false

    @OptionGroup var streaming: StreamingOptions

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            let stages = try StageSelection(config: config)
            let layout = arguments.layout
            let threads = try threading.resolved(config)
            Console.note("run \(config.name): stages \(stages.names.joined(separator: " → "))")

            let stores = try features(config, stages: stages, threads: threads)
            func trainingStores(_ stage: StageKind) throws -> TrainingStores {
                if let stores { return stores }
                return try TrainingStores.resolve(
                    config: config, layout: layout, features: nil, testFeatures: nil, stage: stage)
            }
            var results: [String] = []
            var lines: [String] = []
            if stages.contains(.trainSVM) {
                let summary = try TrainSVMCommand.execute(
                    config: config, stores: try trainingStores(.trainSVM), layout: layout, threads: threads,
                    force: false)
                results.append(summary.directory)
                lines += summary.summaryLines
            }
            if stages.contains(.trainLinear) {
                let outcome = try TrainLinearCommand.execute(
                    config: config, stores: try trainingStores(.trainLinear), layout: layout, threads: threads,
                    force: false)
                results.append(outcome.directory)
                lines += outcome.summaryLines
            }
            if stages.contains(.knn) {
                let summary = try KNNCommand.execute(
                    config: config, stores: try trainingStores(.knn), layout: layout, threads: threads, force: false)
                results.append(summary.directory)
                lines += summary.summaryLines
            }
            if stages.contains(.report) {
                let outputs = try ReportCommand.execute(config: config, layout: layout, resultsDirectories: results)
                Console.result(outputs.markdown)
                for path in outputs.files { Console.result(path) }
            } else {
                for line in lines { Console.result(line) }
            }
        }
    }

    /// Extracts or imports the pipeline's stores when it runs that stage; the TRAIN and TEST
    /// stores it produced (nil when it produced only one, or the stage is not run).
    private func features(_ config: PipelineConfig, stages: StageSelection, threads: Int) throws -> TrainingStores? {
        if stages.contains(.importFeatures) {
            let layout = arguments.layout
            let plans = try ImportPlanner.plan(config: config, layout: layout)
            let outcomes = try ImportFeaturesCommand.execute(plans, layout: layout, pipeline: config.name, force: false)
            guard let train = outcomes.first(where: { $0.split == "train" }),
                let test = outcomes.first(where: { $0.split == "test" })
            else { return nil }
            return TrainingStores(
                train: try FeatureStoreReader(path: train.storePath), test: try FeatureStoreReader(path: test.storePath)
            )
        }
        guard stages.contains(.extract) else { return nil }
        let stop = StopRequest.installed()
        let options = ExtractOptions(
            workdir: arguments.workdir, threads: threads, decodeWorkers: streaming.decodeWorkers,
            strict: strict ? true : nil, force: false, flushInterval: streaming.flushSeconds,
            shouldStop: { stop.isRequested }, note: { Console.note($0) })
        return try TrainingStores.of(try ExtractStage.run(config: config, options: options))
    }
}
