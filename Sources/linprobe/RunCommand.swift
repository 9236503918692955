import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeExtract
import LinprobeStore

/// `linprobe run <pipeline> [overrides]`: extract → train-svm and/or train-linear → report,
/// each stage skipped when the manifest holds a complete record with the same fingerprint.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract:
            "Run every stage the pipeline needs, reusing each one the manifest shows as done with the same inputs.",
        discussion: """
            Stages: LINPROBE.STAGES when set; otherwise extract, then train-svm when the pipeline sets SVM.* \
            keys (or LINPROBE.SVM.LOW_SHOT), train-linear when it sets MODEL.HEAD.PARAMS, and report. \
            Stores are shared by every pipeline that extracts the same way: a second pipeline over the \
            same data, trunk and pool ops does not run the trunk again.
            """)

    @OptionGroup var arguments: PipelineArguments

    @OptionGroup var threading: ThreadOptions

    @Flag(help: "Fail at the first unreadable image (LINPROBE.STRICT_IMAGES).")
    var strict = false

    func run() throws {
        try reportingErrors {
            let config = try arguments.load()
            let stages = try StageSelection(config: config)
            let workdir = arguments.workdir
            let threads = try threading.resolved(config)
            Console.note("run \(config.name): stages \(stages.names.joined(separator: " → "))")

            var stores: TrainingStores? = nil
            if stages.contains(.extract) {
                let stop = StopRequest.installed()
                let options = ExtractOptions(
                    workdir: workdir, threads: threads, decodeWorkers: nil,
                    strict: strict ? true : nil, force: false, flushInterval: 5,
                    shouldStop: { stop.isRequested }, note: { Console.note($0) })
                stores = try TrainingStores.of(try ExtractStage.run(config: config, options: options))
            }
            func trainingStores(_ stage: StageKind) throws -> TrainingStores {
                if let stores { return stores }
                return try TrainingStores.resolve(
                    config: config, layout: WorkdirLayout(workdir), features: nil, testFeatures: nil, stage: stage)
            }
            var results: [String] = []
            var lines: [String] = []
            if stages.contains(.trainSVM) {
                let summary = try TrainSVMCommand.execute(
                    config: config, stores: try trainingStores(.trainSVM), layout: WorkdirLayout(workdir),
                    threads: threads, force: false)
                results.append(summary.directory)
                lines += summary.summaryLines
            }
            if stages.contains(.trainLinear) {
                let outcome = try TrainLinearCommand.execute(
                    config: config, stores: try trainingStores(.trainLinear), layout: WorkdirLayout(workdir),
                    threads: threads, force: false)
                results.append(outcome.directory)
                lines += outcome.summaryLines
            }
            if stages.contains(.report) {
                let outputs = try ReportCommand.execute(
                    config: config, layout: WorkdirLayout(workdir), resultsDirectories: results)
                Console.result(outputs.markdown)
                for path in outputs.files { Console.result(path) }
            } else {
                for line in lines { Console.result(line) }
            }
        }
    }
}
