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
        abstract: "Run every stage the pipeline needs, reusing each one the manifest shows as done with the same inputs.",
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
            let stages = try PipelineStages(config: config)
            let workdir = arguments.workdir
            let threads = try threading.resolved(config)
            Console.note("run \(config.name): stages \(stages.names.joined(separator: " → "))")

            var stores: StagePair? = nil
            if stages.extract {
                let stop = StopRequest.installed()
                let options = ExtractOptions(
                    workdir: workdir, threads: threads, decodeWorkers: nil,
                    strict: strict ? true : nil, force: false, flushInterval: 5,
                    shouldStop: { stop.isRequested }, note: { Console.note($0) })
                let results = try ExtractStage.run(config: config, options: options)
                if let train = results.first(where: { $0.split == .train }), let test = results.first(where: { $0.split == .test }) {
                    stores = StagePair(train: try FeatureStoreReader(path: train.storePath), test: try FeatureStoreReader(path: test.storePath))
                }
            }
            func trainingStores(_ stage: String) throws -> StagePair {
                if let stores { return stores }
                return try resolveStores(config: config, workdir: workdir, features: nil, testFeatures: nil, stage: stage)
            }
            var results: [String] = []
            var lines: [String] = []
            if stages.svm {
                let outcome = try runSVMStage(config: config, workdir: workdir, stores: try trainingStores("train-svm"), threads: threads, force: false)
                if outcome.reused { Console.note("train-svm: unchanged, reused \(outcome.directory)") }
                results.append(outcome.directory)
                lines += outcome.lines
            }
            if stages.linear {
                let outcome = try runLinearStage(config: config, workdir: workdir, stores: try trainingStores("train-linear"), threads: threads, force: false)
                if outcome.reused { Console.note("train-linear: unchanged, reused \(outcome.directory)") }
                results.append(outcome.directory)
                lines += outcome.lines
            }
            if stages.report {
                let outcome = try runReportStage(config: config, workdir: workdir, resultsDirectories: results)
                Console.result(outcome.table)
                for path in outcome.files { Console.result(path) }
            } else {
                for line in lines { Console.result(line) }
            }
        }
    }
}

/// Which stages a pipeline runs.
struct PipelineStages {
    var extract: Bool
    var svm: Bool
    var linear: Bool
    var report: Bool

    var names: [String] {
        [extract ? "extract" : nil, svm ? "train-svm" : nil, linear ? "train-linear" : nil, report ? "report" : nil].compactMap { $0 }
    }

    init(config: PipelineConfig) throws {
        let listed = try config.node("LINPROBE.STAGES").strings()
        if !listed.isEmpty {
            extract = listed.contains("extract")
            svm = listed.contains("train-svm")
            linear = listed.contains("train-linear")
            report = listed.contains("report")
            return
        }
        extract = true
        svm = config.isExplicit("SVM") || config.isExplicit("LINPROBE.SVM.LOW_SHOT")
        var heads = false
        if config.isExplicit("MODEL.HEAD.PARAMS"), case .array(let a)? = config.node("MODEL.HEAD.PARAMS").value { heads = !a.isEmpty }
        linear = heads
        if svm, try config.node("LINPROBE.TRAIN_VIEWS").int() > 1 {
            throw LinprobeError.config("LINPROBE.TRAIN_VIEWS: the pipeline also runs train-svm, whose protocol fits one row per image; use TRAIN_VIEWS 1, or a separate pipeline for the augmented linear heads")
        }
        guard svm || linear else {
            throw LinprobeError.config("\(config.name): the pipeline sets neither SVM.* nor MODEL.HEAD.PARAMS, so there is nothing to train; set one of them, or LINPROBE.STAGES=[extract] to extract only")
        }
        report = true
    }
}
