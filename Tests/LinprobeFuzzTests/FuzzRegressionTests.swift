import Foundation
import LinprobeTestSupport
import Testing

@testable import LinprobeFuzz

/// Inputs `make fuzz` found crashing, hanging or allocating without bound, kept under
/// `Tests/Fixtures/fuzz/<target>/` once fixed: each is now rejected with a one-line error.
@Suite struct FuzzRegressionTests {
    static let cases: [(String, String)] = FuzzTarget.all.flatMap { target in
        let folder = fixturePath("fuzz/\(target.name)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { !$0.hasSuffix(".md") }.sorted().map { (target.name, $0) }
    }

    @Test(arguments: cases)
    func fixedFindingIsRejectedInOneLine(_ target: String, _ file: String) throws {
        let dir = try TemporaryDirectory("linprobe-fuzz")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: fixturePath("fuzz/\(target)/\(file)"))))
        do {
            try FuzzTarget.named(target).run(bytes, path: dir.file(file))
            Issue.record("\(target)/\(file) was accepted")
        } catch {
            let text = "\(error)"
            #expect(!text.isEmpty && !text.contains("\n"), "\(target)/\(file): \(text)")
        }
    }
}
