import Foundation
import LinprobeCore
import LinprobeHDF5
import LinprobeStore
import LinprobeTestSupport
import Testing

/// Issue 19, cases 7 and 12: a store whose attributes or dataset shapes overflow, or whose
/// per-row datasets are longer than its features, is refused on open with one line naming the
/// store, the layer or dataset and the attribute.
@Suite struct HostileStoreTests {
    static let rows = 12

    /// A valid 12-row store (two layers, multi-label targets, indices, paths, unreadable flags).
    static func writeStore(_ path: String) throws {
        let layers = SyntheticRows.layers.map { StoreLayer(name: $0.name, shapeCHW: $0.shape) }
        let metadata = StoreMetadata(
            fingerprint: "hostile", split: "train", numClasses: SyntheticRows.classes,
            classNames: (0..<SyntheticRows.classes).map { "c\($0)" })
        let writer = try FeatureStoreWriter(
            creating: path, layers: layers,
            targetLayout: .multiLabel(classes: SyntheticRows.classes),
            metadata: metadata, dtype: .float32, chunkRows: 8)
        let range = 0..<rows
        try writer.append(
            FeatureBatch(
                count: rows, features: layers.indices.map { SyntheticRows.features(rows: range, layer: $0) },
                targets: SyntheticRows.targets(rows: range), indices: range.map(Int64.init),
                imagePaths: SyntheticRows.paths(rows: range), unreadable: range.map { $0 == 3 }))
        try writer.finish()
    }

    /// A fresh store changed by `tamper` (the file opened for writing).
    static func tamperedStore(_ dir: TemporaryDirectory, _ tamper: (HDF5File) throws -> Void) throws -> String {
        let path = dir.file("s.h5")
        try writeStore(path)
        let file = try HDF5File.open(path, writable: true)
        try tamper(file)
        try file.close()
        return path
    }

    static func openError(_ path: String) -> LinprobeError? {
        #expect(throws: LinprobeError.self) { _ = try FeatureStoreReader(path: path) }
    }

    @Test func untamperedStoreOpens() throws {
        let dir = try TemporaryDirectory()
        let reader = try FeatureStoreReader(path: try Self.tamperedStore(dir) { _ in })
        #expect(reader.count == Self.rows)
        #expect(reader.layers.map(\.shapeCHW) == SyntheticRows.layers.map(\.shape))
    }

    @Test(
        "shape_chw that overflows or is malformed is one line naming store, layer and attribute (case 7)",
        arguments: [
            [Int64(1) << 40, 1 << 40, 1], [Int64(1) << 62, 1 << 62, 1 << 62], [Int64.max, 2, 2], [-4, -9, 1], [36, 1],
        ])
    func badShapeCHW(_ shape: [Int64]) throws {
        let dir = try TemporaryDirectory()
        let path = try Self.tamperedStore(dir) { f in
            try f.openDataset("/features/res4").setAttribute("shape_chw", int64Array: shape)
        }
        let error = Self.openError(path)
        let message = error?.message ?? ""
        #expect(message.hasPrefix("\(path): /features/res4: "), "\(message)")
        #expect(message.contains("shape_chw"))
        #expect(!message.contains("\n"))
        #expect(error?.exitCode == 1)
    }

    @Test(
        "per-row datasets with more (or fewer) rows than the features are refused (case 12)",
        arguments: [
            ("/targets", 3), ("/indices", 5), ("/image_paths", 1), ("/unreadable", 2), ("/targets", -1),
            ("/indices", -12),
        ])
    func rowCountMismatch(dataset: String, extra: Int) throws {
        let dir = try TemporaryDirectory()
        let path = try Self.tamperedStore(dir) { f in try f.openDataset(dataset).setRowCount(Self.rows + extra) }
        let relation = extra > 0 ? "more" : "fewer"
        let expected =
            "\(path): \(dataset) has \(Self.rows + extra) rows, \(relation) than the \(Self.rows) rows"
            + " of the features"
        #expect(Self.openError(path)?.message == expected)
    }

    @Test("a negative watermark or class count is refused")
    func negativeCounts() throws {
        let dir = try TemporaryDirectory()
        let path = try Self.tamperedStore(dir) { f in try f.setAttribute("rows_written", int64: -5) }
        #expect(Self.openError(path)?.message == "\(path): rows_written = -5 is negative")
        let other = try TemporaryDirectory()
        let classes = try Self.tamperedStore(other) { f in try f.setAttribute("num_classes", int64: -1) }
        #expect(Self.openError(classes)?.message == "\(classes): num_classes = -1 is negative")
    }
}
