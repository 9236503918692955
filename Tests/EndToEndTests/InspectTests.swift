import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

/// `linprobe inspect` through the built binary.
@Suite struct InspectEndToEnd {
    @Test func storeTableAndJSON() throws {
        let dir = try TemporaryDirectory()
        let store = dir.file("train.h5")
        #expect(try runProcess(testHelperBinary(), ["store-write", store, "20", "6", "0"]).status == 0)
        let table = try runProcess(linprobeBinary(), ["inspect", store])
        #expect(table.status == 0)
        #expect(table.stdout.contains("res4     36   [4,3,3]"))
        #expect(table.stdout.contains("rows: 20"))
        let json = try runProcess(linprobeBinary(), ["inspect", "--json", store])
        #expect(json.status == 0)
        let value = try JSONValue.parse(json.stdout)
        #expect(value["rows"] == 20)
        #expect(value["complete"] == true)
        #expect(value["layers"]?.arrayValue?.first?["shape_chw"] == [4, 3, 3])
    }

    /// Issue 19 case 8: a store whose metadata makes libhdf5 1.10 crash (one flipped byte, found
    /// by mutating a store `store-write` made) is one line from a check process, not a crash of
    /// the command; an intact store passes the check.
    @Test func aStoreThatCrashesHDF5IsOneLine() throws {
        let damaged = fixturePath("store-damaged/hdf5_crashes_on_open.h5")
        for command in [
            ["inspect", damaged], ["train-svm", "demo", "--features", damaged, "--test-features", damaged],
        ] {
            let r = try runProcess(linprobeBinary(), command, currentDirectory: repositoryRoot.path)
            #expect(r.status == 1, "\(command): \(r.stderr)")
            let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
            #expect(errors.count == 1 && errors[0].contains("hdf5_crashes_on_open.h5"), "\(r.stderr)")
            #expect(!r.stderr.contains("Program crashed") && !r.stderr.contains("HDF5-DIAG"), "\(r.stderr)")
        }
        let dir = try TemporaryDirectory()
        let store = dir.file("train.h5")
        #expect(try runProcess(testHelperBinary(), ["store-write", store, "20", "6", "0"]).status == 0)
        #expect(try runProcess(linprobeBinary(), ["inspect", store]).status == 0)
    }

    /// Found by `make fuzz` (seed 3): a store whose structure reads fine but whose image paths
    /// (variable-length strings, in HDF5's unchecksummed global heap) crash libhdf5 when read.
    @Test func aStoreWhosePathsCrashHDF5IsOneLine() throws {
        let damaged = fixturePath("store-damaged/hdf5_crashes_reading_paths.h5")
        let out = try TemporaryDirectory()
        for command in [
            ["inspect", damaged], ["export-features", damaged, "--format", "npy", "--out", out.file("x")],
        ] {
            let r = try runProcess(linprobeBinary(), command, currentDirectory: repositoryRoot.path)
            #expect(r.status == 1, "\(command): \(r.stderr)")
            let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
            #expect(errors.count == 1 && errors[0].contains("hdf5_crashes_reading_paths.h5"), "\(r.stderr)")
            #expect(!r.stderr.contains("Program crashed"), "\(r.stderr)")
        }
    }

    @Test func partialStoreIsShownAsIncomplete() throws {
        let dir = try TemporaryDirectory()
        let store = dir.file("train.h5")
        // A store killed part-way: start the writer, kill it after its first flush.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: testHelperBinary())
        process.arguments = ["store-write", store, "400", "8", "50"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        _ = out.fileHandleForReading.availableData
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let result = try runProcess(linprobeBinary(), ["inspect", "--json", store + ".partial"])
        #expect(result.status == 0)
        #expect(try JSONValue.parse(result.stdout)["complete"] == false)
    }

    @Test func workFolderAndManifest() throws {
        let dir = try TemporaryDirectory()
        #expect(try runProcess(testHelperBinary(), ["manifest-put", dir.path, "x", "3"]).status == 0)
        let result = try runProcess(linprobeBinary(), ["inspect", dir.path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("x-2"))
        let direct = try runProcess(linprobeBinary(), ["inspect", "--json", dir.file("manifest.json")])
        #expect(try JSONValue.parse(direct.stdout)["records"]?.arrayValue?.count == 3)
    }

    @Test(arguments: ["missing.h5", "not-a-store.h5", "empty-folder"])
    func badTargetsGiveOneLine(name: String) throws {
        let dir = try TemporaryDirectory()
        if name == "not-a-store.h5" {
            try "plain text".write(toFile: dir.file(name), atomically: true, encoding: .utf8)
        }
        if name == "empty-folder" {
            try FileManager.default.createDirectory(atPath: dir.file(name), withIntermediateDirectories: true)
        }
        let result = try runProcess(linprobeBinary(), ["inspect", dir.file(name)])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.hasPrefix("error: ") == true)
        #expect(result.stderr.contains(name))
    }
}
