import ArgumentParser
import LinprobeCore
import LinprobeHDF5

@main
struct Linprobe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linprobe",
        abstract: "Measure how good a frozen image model's features are (VISSL's linear benchmarks).",
        version: LinprobeVersion.string,
        subcommands: [
            ConfigCommand.self, ExtractCommand.self, ImportFeaturesCommand.self, ExportFeaturesCommand.self,
            TrainSVMCommand.self, TrainLinearCommand.self, KNNCommand.self, ReportCommand.self, RunCommand.self,
            Inspect.self,
        ])

    static func main() {
        HDF5Library.skipCleanupAtExit()
        HDF5Library.silenceErrorPrintingOnThisThread()
        main(nil)
    }
}
