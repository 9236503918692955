import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@Suite struct ManifestTests {
    /// Issue 19 case 13: a stamped output changed since its record was completed is an error
    /// naming it, both for reuse (`changedOutputs`, refused by `StageRunner`) and for readers
    /// (`checkUnchanged`).
    @Test func stampedOutputsChangedSinceAreNamed() throws {
        let dir = try TemporaryDirectory()
        let layout = WorkdirLayout(dir.path)
        let store = ManifestStore(layout: layout)
        let output = "features/abcd/train.h5"
        try FileManager.default.createDirectory(atPath: dir.file("features/abcd"), withIntermediateDirectories: true)
        try Data("12345".utf8).write(to: URL(fileURLWithPath: dir.file(output)))
        var record = ManifestRecord(stage: "extract", fingerprint: "abcd", status: .complete, outputs: [output])
        record.stampOutputs(layout)
        #expect(record.outputFiles?[output]?.size == 5)
        try store.put(record)
        #expect(try store.completeRecord(stage: "extract", fingerprint: "abcd") != nil)
        try store.checkUnchanged(dir.file(output))
        try Data("123456".utf8).write(to: URL(fileURLWithPath: dir.file(output)))
        let changes = try #require(try store.completeRecord(stage: "extract", fingerprint: "abcd")).changedOutputs(
            layout)
        #expect(changes.count == 1 && changes[0].contains("changed since extract wrote it (5 → 6 bytes"), "\(changes)")
        #expect(throws: LinprobeError.self) { try store.checkUnchanged(dir.file(output)) }
        try store.checkUnchanged(dir.file("features/other.h5"))  // not an output of any record
    }

    @Test func putAndReadBack() throws {
        let dir = try TemporaryDirectory()
        let store = ManifestStore(workdir: dir.path)
        #expect(try store.read().records.isEmpty)
        let record = ManifestRecord(
            stage: "extract", fingerprint: "abcd", status: .running, inputs: ["weights": "00"],
            parameters: ["depth": 50], outputs: ["features/abcd/train.h5"])
        try store.put(record)
        let back = try store.read()
        #expect(back.format == "linprobe.manifest" && back.formatVersion == 1)
        #expect(back.record(stage: "extract", fingerprint: "abcd") == record)
        // Not complete, and a complete record whose output is missing is not trusted either.
        #expect(try store.completeRecord(stage: "extract", fingerprint: "abcd") == nil)
        var done = record
        done.status = .complete
        try store.put(done)
        #expect(try store.completeRecord(stage: "extract", fingerprint: "abcd") == nil)
        try FileManager.default.createDirectory(atPath: dir.file("features/abcd"), withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: dir.file("features/abcd/train.h5")))
        #expect(try store.completeRecord(stage: "extract", fingerprint: "abcd")?.status == .complete)
        // The file on disk is what the schema describes.
        let json = try JSONValue.parse(String(contentsOfFile: dir.file("manifest.json"), encoding: .utf8))
        #expect(json["records"]?["extract/abcd"]?["status"] == "complete")
    }

    @Test func concurrentWritersLoseNothing() throws {
        let dir = try TemporaryDirectory()
        let processes = (0..<4).map { p -> Process in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: testHelperBinary())
            process.arguments = ["manifest-put", dir.path, "p\(p)", "25"]
            return process
        }
        for p in processes { try p.run() }
        // Meanwhile this process writes too.
        let store = ManifestStore(workdir: dir.path)
        for i in 0..<25 { try store.put(ManifestRecord(stage: "test", fingerprint: "main-\(i)", status: .complete)) }
        for p in processes { p.waitUntilExit(); #expect(p.terminationStatus == 0) }
        let records = try store.read().records
        #expect(records.count == 125)
        for p in 0..<4 { for i in 0..<25 { #expect(records["test/p\(p)-\(i)"] != nil) } }
    }

    @Test func refusesForeignAndNewerManifests() throws {
        let dir = try TemporaryDirectory()
        let store = ManifestStore(workdir: dir.path)
        try #"{"format": "other", "format_version": 1, "records": {}}"#.write(
            toFile: store.path, atomically: true, encoding: .utf8)
        let foreign = #expect(throws: LinprobeError.self) { try store.read() }
        #expect(foreign?.message.contains("not a Linprobe manifest") == true)
        try #"{"format": "linprobe.manifest", "format_version": 7, "records": {}}"#.write(
            toFile: store.path, atomically: true, encoding: .utf8)
        let newer = #expect(throws: LinprobeError.self) { try store.read() }
        #expect(newer?.message.contains("version 7") == true)
        try "{ truncated".write(toFile: store.path, atomically: true, encoding: .utf8)
        let broken = #expect(throws: LinprobeError.self) { try store.read() }
        #expect(broken?.message.contains("not valid JSON") == true)
        // A failed update leaves the file as it was.
        #expect(throws: LinprobeError.self) {
            try store.put(ManifestRecord(stage: "x", fingerprint: "y", status: .complete))
        }
        #expect(try String(contentsOfFile: store.path, encoding: .utf8) == "{ truncated")
    }

    @Test func fileHashCacheReusesAndNotices() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("weights.bin")
        try Data("abc".utf8).write(to: URL(fileURLWithPath: file))
        let cache = FileHashCache(workdir: dir.path)
        #expect(try cache.sha256(of: file) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(FileManager.default.fileExists(atPath: dir.file("file-hashes.json")))
        try Data("abcd".utf8).write(to: URL(fileURLWithPath: file))
        #expect(try cache.sha256(of: file) == "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589")
        #expect(throws: LinprobeError.self) { try cache.sha256(of: dir.file("missing.bin")) }
    }
}

@Suite struct ManifestSchemaTests {
    @Test func writtenManifestValidatesAgainstItsSchema() throws {
        let dir = try TemporaryDirectory()
        let store = ManifestStore(workdir: dir.path)
        _ = try StageRunner(layout: store.layout).execute(ManifestTestStage())
        let json = try JSONValue.parse(String(contentsOfFile: store.path, encoding: .utf8))
        let validator = try SchemaValidator(schemaPath: schemaPath("manifest.schema.json"))
        #expect(validator.validate(json) == [])
        // The validator is not vacuous: a record with a bad status fails.
        var broken = json
        if case .object(var o) = broken, case .object(var records) = o["records"],
            case .object(var r) = records.values.first
        {
            r["status"] = "finished"
            records[records.keys.first!] = .object(r)
            o["records"] = .object(records)
            broken = .object(o)
        }
        #expect(!validator.validate(broken).isEmpty)
    }
}

/// An extract stage with no outputs, for the manifest's schema test.
private struct ManifestTestStage: PipelineStage {
    var plan: StagePlan {
        StagePlan(
            kind: .extract, fingerprint: "0123456789abcdef", inputs: ["weights_sha256": "ff"],
            parameters: ["depth": 50], outputs: [], pipeline: "demo")
    }
    func run(_ context: StageContext) throws {}
    func reuse(_ context: StageContext, record: ManifestRecord) throws {}
}
