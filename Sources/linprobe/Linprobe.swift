import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeHDF5
import LinprobeStore

@main
struct Linprobe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linprobe",
        abstract: "Measure how good a frozen image model's features are (VISSL's linear benchmarks).",
        version: LinprobeVersion.string,
        subcommands: [
            ConfigCommand.self, ExtractCommand.self, ImportFeaturesCommand.self, ExportFeaturesCommand.self,
            TrainSVMCommand.self, TrainLinearCommand.self, KNNCommand.self, ReportCommand.self, RunCommand.self,
            SlurmCommand.self, Inspect.self, CheckStoreStructureCommand.self,
        ])

    static func main() {
        HDF5Library.skipCleanupAtExit()
        HDF5Library.silenceErrorPrintingOnThisThread()
        StoreStructureCheck.command = [executablePath, CheckStoreStructureCommand.configuration.commandName ?? ""]
        main(nil)
    }
}

extension Linprobe {
    /// This program's own path (for child processes and sbatch scripts).
    static var executablePath: String { LinprobeExecutable.path }
}

/// This program's own path, resolved through `/proc/self/exe`.
enum LinprobeExecutable {
    static var path: String {
        let resolved = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        return resolved == "/proc/self/exe" ? CommandLine.arguments[0] : resolved
    }
}
