import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

/// The store additions the extract stage relies on: `train_views` / `views`, and replacing the
/// provenance attribute of a store being written or resumed.
@Suite struct StoreAdditions {
    static let layers = [StoreLayer(name: "f", shapeCHW: [2, 1, 1])]

    static func write(_ path: String, samples: Int, views: Int, finish: Bool = true) throws -> FeatureStoreWriter {
        let writer = try FeatureStoreWriter(
            creating: path, layers: layers, targetLayout: .singleLabel,
            metadata: StoreMetadata(
                fingerprint: "fp", split: "train", numClasses: 2, classNames: ["x", "y"],
                provenance: ["runs": []], trainViews: views),
            chunkRows: 2)
        let n = samples * views
        try writer.append(
            FeatureBatch(
                count: n, features: [(0..<(2 * n)).map(Float.init)], targets: (0..<n).map { Int64($0 / views % 2) },
                indices: (0..<n).map { Int64($0 / views) }, imagePaths: (0..<n).map { "s\($0 / views).jpg" }))
        if finish { try writer.finish() }
        return writer
    }

    @Test func viewsAreRecordedAndReadBack() throws {
        let dir = try TemporaryDirectory()
        _ = try Self.write(dir.file("v3.h5"), samples: 4, views: 3)
        let r = try FeatureStoreReader(path: dir.file("v3.h5"))
        #expect(r.views == 3)
        #expect(r.count == 12)
        #expect(r.sampleCount == 4)
        #expect(r.rows(view: 0) == [0, 3, 6, 9])
        #expect(r.rows(view: 2) == [2, 5, 8, 11])
        #expect(r.rows(view: 7) == [1, 4, 7, 10], "epoch e reads view e mod K")
        #expect(try r.attribute("train_views") == "3")
    }

    @Test func storesWithoutTheAttributeHaveOneView() throws {
        let dir = try TemporaryDirectory()
        _ = try Self.write(dir.file("v1.h5"), samples: 5, views: 1)
        let r = try FeatureStoreReader(path: dir.file("v1.h5"))
        #expect(r.views == 1)
        #expect(try r.attribute("train_views") == nil)
        #expect(r.rows(view: 3) == [0, 1, 2, 3, 4])
    }

    @Test func provenanceCanBeReplacedWhileWritingAndAfterResume() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("p.h5")
        let writer = try Self.write(path, samples: 2, views: 1, finish: false)
        #expect(try writer.rootAttribute("provenance") == #"{"runs":[]}"#)
        try writer.setRootAttribute("provenance", json: ["runs": [["from_row": 0]]])
        try writer.flush()
        let resumed = try #require(try FeatureStoreWriter.resume(finalPath: path, fingerprint: "fp"))
        let text = try #require(try resumed.rootAttribute("provenance"))
        #expect(try JSONValue.parse(text) == ["runs": [["from_row": 0]]])
        #expect(throws: LinprobeError.self) { try resumed.setRootAttribute("fingerprint", json: "other") }
        #expect(throws: LinprobeError.self) { try resumed.setRootAttribute("rows_written", json: 0) }
        try resumed.setRootAttribute("provenance", json: ["runs": [["from_row": 0], ["from_row": 2]]])
        try resumed.finish()
        #expect(
            try FeatureStoreReader(path: path).jsonAttribute("provenance") == [
                "runs": [["from_row": 0], ["from_row": 2]]
            ])
    }
}
