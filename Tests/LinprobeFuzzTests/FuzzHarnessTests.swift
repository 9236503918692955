import Foundation
import LinprobeTestSupport
import Testing

@testable import LinprobeFuzz

/// The fuzz harness itself (`make fuzz` is not part of `make test`): mutants are reproducible,
/// every target still parses its seeds, a few mutants of each run clean, and the runner records a
/// crash, a hang and an allocation bomb as findings.
@Suite struct FuzzHarnessTests {
    private func fuzzBinary() -> String {
        URL(fileURLWithPath: linprobeBinary()).deletingLastPathComponent().appendingPathComponent("linprobe-fuzz").path
    }

    @Test func mutantsAreReproducibleAndDiffer() throws {
        let seeds = try FuzzTarget.named("npy").seeds(root: repositoryRoot.path)
        let mutator = Mutator(maximumSize: 4096)
        let hot: ([UInt8]) -> [Int] = { Array(0..<min($0.count, 64)) }
        let first = (0..<50).map { mutator.mutant(iteration: $0, seed: 7, seeds: seeds, hotspots: hot) }
        let again = (0..<50).map { mutator.mutant(iteration: $0, seed: 7, seeds: seeds, hotspots: hot) }
        let other = (0..<50).map { mutator.mutant(iteration: $0, seed: 8, seeds: seeds, hotspots: hot) }
        #expect(first == again)
        #expect(first != other)
        #expect(first.filter { !seeds.contains($0) }.count >= 40)
        #expect(first.allSatisfy { $0.count <= 4096 })
    }

    /// A target whose seeds are all rejected would fuzz nothing but its first check.
    @Test(arguments: FuzzTarget.all.map(\.name))
    func targetParsesSomeOfItsSeeds(_ name: String) throws {
        let target = try FuzzTarget.named(name)
        let dir = try TemporaryDirectory("linprobe-fuzz")
        let seeds = try target.seeds(root: repositoryRoot.path)
        let parsed = seeds.filter { (try? target.run($0, path: dir.file("input"))) != nil }
        #expect(!parsed.isEmpty, "\(name): none of its \(seeds.count) seeds parses")
    }

    /// A handful of mutants per target through the real loop (forked children, limits, summary).
    @Test func everyTargetRunsAFewMutantsClean() throws {
        let dir = try TemporaryDirectory("linprobe-fuzz")
        let result = try runProcess(
            fuzzBinary(), ["--iterations", "15", "--findings", dir.path, "--root", repositoryRoot.path])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        for target in FuzzTarget.all {
            let line = lines.first { $0.hasPrefix(target.name + ": ") }
            #expect(line?.contains("+ 15 mutants") == true, "\(target.name): \(result.stdout)")
            #expect(line?.contains(" 0 crashes, 0 hangs, 0 over the memory limit") == true, "\(result.stdout)")
        }
    }

    /// The runner survives each kind of finding, counts it and keeps its input.
    @Test(arguments: [
        ("selftest-crash", "1 crashes, 0 hangs, 0 over"), ("selftest-hang", "0 crashes, 1 hangs, 0 over"),
        ("selftest-allocation", "0 crashes, 0 hangs, 1 over"),
    ])
    func findingsAreRecorded(_ name: String, _ counts: String) throws {
        let dir = try TemporaryDirectory("linprobe-fuzz")
        let result = try runProcess(
            fuzzBinary(),
            [name, "--iterations", "0", "--timeout", "2", "--findings", dir.path, "--root", repositoryRoot.path])
        #expect(result.status == 1)
        #expect(result.stdout.contains("\(name): 1 inputs (1 seeds + 0 mutants), 0 rejected"), "\(result.stdout)")
        #expect(result.stdout.contains(counts), "\(result.stdout)")
        let kept = try FileManager.default.contentsOfDirectory(atPath: dir.file(name))
        #expect(kept.filter { $0.hasSuffix(".bin") }.count == 1)
    }
}
