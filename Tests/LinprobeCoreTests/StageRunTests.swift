import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@Suite struct StageRunTests {
    struct Boom: Error {}

    @Test func runsOnceThenReusesAndRecordsFailures() throws {
        let dir = try TemporaryDirectory()
        let manifest = ManifestStore(workdir: dir.path)
        var runs = 0
        func attempt(force: Bool = false) throws -> StageOutcome {
            try runStage("train-svm", fingerprint: "f1", manifest: manifest, inputs: ["features": "x"], parameters: ["C": 1],
                         outputs: ["svm/f1/out.json"], force: force) {
                runs += 1
                try "{}".write(toFile: dir.file("svm/f1/out.json"), atomically: true, encoding: .utf8)
                return "done"
            }
        }
        try FileManager.default.createDirectory(atPath: dir.file("svm/f1"), withIntermediateDirectories: true)
        #expect(try !attempt().wasReused)
        #expect(try attempt().wasReused)
        #expect(runs == 1)
        #expect(try !attempt(force: true).wasReused)
        #expect(runs == 2)
        // A deleted output makes the record untrustworthy: the stage runs again.
        try FileManager.default.removeItem(atPath: dir.file("svm/f1/out.json"))
        #expect(try !attempt().wasReused)
        #expect(runs == 3)

        #expect(throws: Boom.self) {
            try runStage("extract", fingerprint: "f2", manifest: manifest, inputs: [:], parameters: [:], outputs: []) {
                throw Boom()
            }
        }
        let failed = try #require(try manifest.read().record(stage: "extract", fingerprint: "f2"))
        #expect(failed.status == .failed)
        #expect(failed.finished != nil)
    }
}
