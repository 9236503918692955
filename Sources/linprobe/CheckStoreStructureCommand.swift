import ArgumentParser
import Foundation
import LinprobeCore
import LinprobeStore

/// `linprobe check-store-structure <store.h5>` (hidden): the child process of
/// `StoreStructureCheck` — reads a store's structure so that a crash inside libhdf5 takes down
/// this process instead of the stage that asked.
struct CheckStoreStructureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-store-structure",
        abstract: "Read a feature store's structure (used by linprobe itself in a child process).",
        shouldDisplay: false)

    @Argument(help: "A feature store (.h5 or .h5.partial).")
    var store: String

    func run() throws {
        StoreStructureCheck.command = nil  // this is the check: no child of its own
        try reportingErrors { try StoreStructureCheck.readStructure(store) }
    }
}
