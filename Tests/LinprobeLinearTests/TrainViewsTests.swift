import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeLinear

/// Stores with K augmented views per sample (`LINPROBE.TRAIN_VIEWS`): epoch e trains on view
/// e mod K of every sample, once — VISSL's one fresh augmentation per image per epoch.
@Suite("train-linear over stores with several views per sample")
struct TrainViewsTests {
    /// A store whose rows interleave `views` single-view stores (row = sample·K + view).
    func interleave(_ parts: [FeatureStoreReader], to path: String) throws -> FeatureStoreReader {
        let k = parts.count
        let n = parts[0].count
        let layers = parts[0].layers.map { StoreLayer(name: $0.name, shapeCHW: $0.shapeCHW) }
        var features = layers.map { _ in [Float]() }
        let per = try parts.map { p in try layers.map { try p.readLayer($0.name) } }
        for s in 0..<n {
            for v in 0..<k {
                for (l, layer) in layers.enumerated() {
                    features[l].append(contentsOf: per[v][l][(s * layer.dim)..<((s + 1) * layer.dim)])
                }
            }
        }
        let targets = try parts[0].targets()
        let writer = try FeatureStoreWriter(
            creating: path, layers: layers, targetLayout: .singleLabel,
            metadata: StoreMetadata(
                fingerprint: "views-\(k)-\(n)", split: "train", numClasses: 4,
                classNames: (0..<4).map { "c\($0)" }, trainViews: k),
            chunkRows: 16)
        try writer.append(
            FeatureBatch(
                count: n * k, features: features, targets: targets.flatMap { Array(repeating: $0, count: k) },
                indices: (0..<Int64(n)).flatMap { Array(repeating: $0, count: k) },
                imagePaths: (0..<n).flatMap { s in Array(repeating: "img\(s).png", count: k) }))
        try writer.finish()
        return try FeatureStoreReader(path: path)
    }

    @Test("epoch e reads view e mod K of every sample, once")
    func epochsCycleThroughViews() throws {
        let dir = try TemporaryDirectory()
        let label: (Int) -> Int64 = { Int64($0 % 4) }
        let a = try TestStores.write(dir.file("a.h5"), rows: 96, seed: 11, label: label)
        let b = try TestStores.write(dir.file("b.h5"), rows: 96, seed: 12, label: label)
        let test = try TestStores.write(dir.file("test.h5"), rows: 40, seed: 13, split: "test")
        let both = try interleave([a, b], to: dir.file("views.h5"))
        #expect(both.views == 2 && both.sampleCount == 96 && both.count == 192)

        func run(_ train: FeatureStoreReader, epochs: Int, _ name: String) throws -> [[LinearEpochMetrics]] {
            let settings = try LinearSettings(
                config: TestStores.config(
                    epochs: epochs,
                    extra: [
                        "OPTIMIZER.param_schedulers.lr.values": [0.1], "OPTIMIZER.param_schedulers.lr.milestones": [],
                    ]))
            let r = try LinearStage.run(
                train: train, test: test, settings: settings, workdir: dir.file(name),
                options: LinearRunOptions(threads: 1))
            return r.heads.map(\.history)
        }
        // One epoch over the two-view store is one epoch over its first view: same batches, same numbers.
        let viewsOne = try run(both, epochs: 1, "v1")
        let firstOne = try run(a, epochs: 1, "a1")
        for (x, y) in zip(viewsOne, firstOne) {
            #expect(x[0].trainLoss == y[0].trainLoss)
            #expect(x[0].test == y[0].test)
        }
        // The second epoch reads the second view: not what two epochs over the first view give.
        let viewsTwo = try run(both, epochs: 2, "v2")
        let firstTwo = try run(a, epochs: 2, "a2")
        for (x, y) in zip(viewsTwo, firstTwo) {
            #expect(x[0].trainLoss == y[0].trainLoss)
            #expect(x[1].trainLoss != y[1].trainLoss)
        }
    }
}
