import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeKNN

/// Small stores written with `FeatureStoreWriter`.
enum KNNStores {
    /// One layer `feat` of `dim` columns from `value(row, column)`, single-label targets `label(row)`.
    @discardableResult
    static func write(
        _ path: String, rows: Int, dim: Int, chunkRows: Int = 16, split: String = "train",
        value: (Int, Int) -> Float, label: (Int) -> Int64
    ) throws -> FeatureStoreReader {
        let writer = try FeatureStoreWriter(
            creating: path, layers: [StoreLayer(name: "feat", shapeCHW: [dim, 1, 1])], targetLayout: .singleLabel,
            metadata: StoreMetadata(fingerprint: "knn-\(split)-\(rows)", split: split, numClasses: 4, classNames: []),
            chunkRows: chunkRows)
        var features: [Float] = []
        for r in 0..<rows { for j in 0..<dim { features.append(value(r, j)) } }
        try writer.append(
            FeatureBatch(
                count: rows, features: [features], targets: (0..<rows).map(label),
                indices: (0..<Int64(rows)).map { $0 }, imagePaths: (0..<rows).map { "\($0).png" }))
        try writer.finish()
        return try FeatureStoreReader(path: path)
    }

    static func random(
        _ path: String, rows: Int, dim: Int, seed: UInt64, split: String = "train"
    ) throws
        -> FeatureStoreReader
    {
        var rng = SeededGenerator(seed: seed)
        var values: [Float] = []
        for _ in 0..<(rows * dim) { values.append(Float.random(in: -1...1, using: &rng)) }
        return try write(
            path, rows: rows, dim: dim, split: split, value: { values[$0 * dim + $1] }, label: { Int64($0 % 4) })
    }
}

@Suite struct NeighbourSearchTests {
    /// Brute force in Double: every row's neighbours by descending similarity (ties: lower row).
    static func bruteForce(_ train: FeatureStoreReader, _ test: FeatureStoreReader, k: Int) throws -> [[Int]] {
        let a = try train.readLayer("feat")
        let b = try test.readLayer("feat")
        let dim = try train.layer("feat").dim
        return (0..<test.count).map { q in
            let sims = (0..<train.count).map { r in
                (0..<dim).reduce(0.0) { $0 + Double(b[q * dim + $1]) * Double(a[r * dim + $1]) }
            }
            return Array(
                (0..<train.count).sorted { sims[$0] > sims[$1] || (sims[$0] == sims[$1] && $0 < $1) }.prefix(k))
        }
    }

    @Test(
        "chunked, tiled, multi-threaded search finds the brute-force neighbours, whatever the memory",
        arguments: [64 << 10, 1 << 30])
    func matchesBruteForce(_ memory: Int) throws {
        let tmp = try TemporaryDirectory()
        let train = try KNNStores.random(tmp.file("train.h5"), rows: 1000, dim: 24, seed: 1)
        let test = try KNNStores.random(tmp.file("test.h5"), rows: 300, dim: 24, seed: 2, split: "test")
        let (nb, figures) = try NeighbourSearch.run(
            train: train, test: test, layer: "feat", k: 7, normalize: false, threads: 3, memoryBytes: memory)
        let want = try Self.bruteForce(train, test, k: 7)
        for q in 0..<test.count {
            #expect((0..<7).map { nb.neighbour(q, $0).row } == want[q], "test row \(q)")
            #expect((1..<7).allSatisfy { nb.neighbour(q, $0 - 1).similarity >= nb.neighbour(q, $0).similarity })
        }
        if memory < 1 << 20 {
            #expect(figures.queryBlock < test.count && figures.trainChunk < train.count, "\(figures)")
        }
        #expect(figures.similarities == 300_000)
    }

    @Test("equal similarities keep the lower training row")
    func tiesKeepTheLowerRow() throws {
        let tmp = try TemporaryDirectory()
        // Rows 3, 5, 9 and 12 are the same vector; the query is that vector.
        let train = try KNNStores.write(
            tmp.file("train.h5"), rows: 20, dim: 2, chunkRows: 4,
            value: { r, j in [3, 5, 9, 12].contains(r) ? 1 : Float(j) * 0.1 - Float(r) * 0.01 },
            label: { Int64($0 % 4) })
        let test = try KNNStores.write(
            tmp.file("test.h5"), rows: 1, dim: 2, split: "test", value: { _, _ in 1 }, label: { _ in 0 })
        for memory in [4 << 10, 1 << 20] {
            let (nb, _) = try NeighbourSearch.run(
                train: train, test: test, layer: "feat", k: 3, normalize: false, threads: 2, memoryBytes: memory)
            #expect((0..<3).map { nb.neighbour(0, $0).row } == [3, 5, 9])
        }
    }

    @Test("L2 normalisation divides by the norm (F.normalize) before the search")
    func normalisation() throws {
        var rows: [Float] = [3, 4, 0, 0, 1e-20, 0]
        NeighbourSearch.normalizeRows(&rows, rows: 3, dim: 2, threads: 2)
        #expect(rows[0] == 0.6 && rows[1] == 0.8)
        #expect(rows[2] == 0 && rows[3] == 0)
        #expect(rows[4] == Float(1e-20) / Float(1e-12))
    }

    @Test("the search's memory does not grow with the training set")
    func layoutIsIndependentOfTheTrainingSet() {
        let budget = 1 << 30
        let a = NeighbourSearch.layout(
            queries: 50_000, trainRows: 1_281_167, dim: 2048, k: 200, threads: 2, memoryBytes: budget, storeChunk: 128)
        let b = NeighbourSearch.layout(
            queries: 50_000, trainRows: 100_000_000, dim: 2048, k: 200, threads: 2, memoryBytes: budget, storeChunk: 128
        )
        #expect(a == b)
        let bytes = a.queryBlock * (2048 * 4 + 200 * 8) + 2 * a.trainChunk * 2048 * 4 + 2 * a.tile * a.trainChunk * 4
        #expect(bytes <= budget)
        #expect(a.trainChunk % 128 == 0)
        #expect(a.queryBlock == 50_000)
    }

    @Test("a class's rank: higher scores first, equal scores by class index, unvoted classes last")
    func rankOfTheTrueClass() {
        var scores = [Double](repeating: 0, count: 8)
        scores[5] = 2
        scores[2] = 1
        scores[6] = 1
        let touched = [5, 2, 6]
        #expect(KNNVote.rank(of: 5, scores: scores, touched: touched, numClasses: 8) == 0)
        #expect(KNNVote.rank(of: 2, scores: scores, touched: touched, numClasses: 8) == 1)
        #expect(KNNVote.rank(of: 6, scores: scores, touched: touched, numClasses: 8) == 2)
        // Zero-score classes after every voted class, by index: 0, 1, 3, 4, 7.
        #expect(KNNVote.rank(of: 0, scores: scores, touched: touched, numClasses: 8) == 3)
        #expect(KNNVote.rank(of: 4, scores: scores, touched: touched, numClasses: 8) == 6)
        #expect(KNNVote.rank(of: 7, scores: scores, touched: touched, numClasses: 8) == 7)
        #expect(KNNVote.rank(of: 8, scores: scores, touched: touched, numClasses: 8) == nil)
        #expect(KNNVote.rank(of: -1, scores: scores, touched: touched, numClasses: 8) == nil)
    }

    @Test("VISSL counts no top-5 below 5 classes; DINO narrows top-5 to min(5, k)")
    func top5Columns() {
        #expect(KNNVote.top5Columns(.vissl, k: 200, numClasses: 4) == 0)
        #expect(KNNVote.top5Columns(.vissl, k: 1, numClasses: 10) == 5)
        #expect(KNNVote.top5Columns(.dino, k: 3, numClasses: 1000) == 3)
        #expect(KNNVote.top5Columns(.dino, k: 20, numClasses: 1000) == 5)
    }
}
