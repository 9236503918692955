import Foundation
import LinprobeCore
import LinprobeHDF5
import LinprobeStore
import LinprobeTestSupport
import Testing

private let layers = SyntheticRows.layers.map { StoreLayer(name: $0.name, shapeCHW: $0.shape) }

/// Rows `rows` of the synthetic data as one store (a part, or the whole for comparison).
private func writeRows(_ path: String, rows: Range<Int>, dtype: FeatureDType, shard: Int? = nil) throws {
    let writer = try FeatureStoreWriter(
        creating: path, layers: layers, targetLayout: .multiLabel(classes: SyntheticRows.classes),
        metadata: StoreMetadata(
            fingerprint: "merge-fp", split: "train", numClasses: SyntheticRows.classes,
            classNames: (0..<SyntheticRows.classes).map { "c\($0)" }, provenance: ["runs": [["from_row": 0]]]),
        dtype: dtype, chunkRows: 4)
    if let shard { try writer.setRootAttribute("shard", json: ["index": .int(Int64(shard))]) }
    try writer.append(
        FeatureBatch(
            count: rows.count, features: layers.indices.map { SyntheticRows.features(rows: rows, layer: $0) },
            targets: SyntheticRows.targets(rows: rows), indices: rows.map(Int64.init),
            imagePaths: SyntheticRows.paths(rows: rows), unreadable: rows.map { $0 == 13 }))
    try writer.finish()
}

/// Three parts of 8, 8 and 5 rows under `<dir>/parts/`, and the merged store's path.
private func parts(in dir: TemporaryDirectory, dtype: FeatureDType) throws -> (StoreMerger, String) {
    let ranges = [0..<8, 8..<16, 16..<21]
    try FileManager.default.createDirectory(atPath: dir.file("parts"), withIntermediateDirectories: true)
    let names = ranges.indices.map { "parts/train-\($0)-of-3.h5" }
    for (i, range) in ranges.enumerated() { try writeRows(dir.file(names[i]), rows: range, dtype: dtype, shard: i) }
    let readers = try names.map { try FeatureStoreReader(path: dir.file($0)) }
    let target = dir.file("train.h5")
    return (StoreMerger(target: target, parts: readers, partFiles: names, deflate: nil), target)
}

private func contents(_ path: String) throws -> [String] {
    let r = try FeatureStoreReader(path: path)
    var out = try r.layers.map { try r.readLayer($0.name).map { String($0.bitPattern) }.joined(separator: ",") }
    out.append(try r.targets().map(String.init).joined(separator: ","))
    out.append(try r.indices().map(String.init).joined(separator: ","))
    out.append(try r.imagePaths().joined(separator: ","))
    out.append(try r.unreadableRows().map(String.init).joined(separator: ","))
    return out
}

@Suite struct StoreMergerTests {
    /// A virtual store and a copy read back bit for bit as the store an unsharded writer makes.
    @Test(arguments: [FeatureDType.float32, .float16], [true, false])
    func mergedStoreReadsAsTheWholeStore(_ dtype: FeatureDType, _ virtual: Bool) throws {
        let dir = try TemporaryDirectory()
        let whole = dir.file("whole.h5")
        try writeRows(whole, rows: 0..<21, dtype: dtype)
        let (merger, target) = try parts(in: dir, dtype: dtype)
        if virtual { try merger.writeVirtual() } else { try merger.writeCopy() }
        #expect(try contents(target) == (try contents(whole)))
        let reader = try FeatureStoreReader(path: target)
        #expect(reader.fingerprint == "merge-fp" && reader.isComplete && reader.count == 21)
        #expect(reader.layers.map(\.shapeCHW) == layers.map(\.shapeCHW))
        #expect(reader.layers[0].storedType == (dtype == .float16 ? "float16" : "float32"))
        // A virtual dataset has no chunks of its own; a copy is chunked like the parts.
        #expect(reader.layers[0].chunkRows == (virtual ? nil : 4))
        #expect(try reader.attribute("shard") == nil)
        #expect(try reader.jsonAttribute("provenance")["runs"]?.arrayValue?.count == 3)
        #expect(try (reader.attribute(StoreMerger.partsAttribute) != nil) == virtual)
    }

    /// HDF5 resolves the parts relative to the virtual store's folder, so the folder can move.
    @Test func movedFolderStillReads() throws {
        let dir = try TemporaryDirectory()
        let (merger, _) = try parts(in: dir, dtype: .float32)
        try merger.writeVirtual()
        let moved = try TemporaryDirectory()
        let target = moved.file("moved")
        try FileManager.default.moveItem(atPath: dir.path, toPath: target)
        let reader = try FeatureStoreReader(path: target + "/train.h5")
        #expect(try reader.readLayer("res5avg") == SyntheticRows.features(rows: 0..<21, layer: 1))
    }

    /// HDF5 reads a missing source as fill values; the reader refuses instead, naming the part.
    @Test func missingOrForeignPartIsOneLineNamingIt() throws {
        let dir = try TemporaryDirectory()
        let (merger, target) = try parts(in: dir, dtype: .float32)
        try merger.writeVirtual()
        try FileManager.default.moveItem(atPath: dir.file("parts/train-1-of-3.h5"), toPath: dir.file("aside.h5"))
        let missing = #expect(throws: LinprobeError.self) { try FeatureStoreReader(path: target) }
        #expect(missing?.message.contains("part parts/train-1-of-3.h5 of this virtual store is missing") == true)

        // A store of other inputs in the part's place.
        let other = dir.file("parts/train-1-of-3.h5")
        let writer = try FeatureStoreWriter(
            creating: other, layers: layers, targetLayout: .multiLabel(classes: SyntheticRows.classes),
            metadata: StoreMetadata(fingerprint: "other", split: "train", numClasses: 5, classNames: []))
        try writer.finish()
        let foreign = #expect(throws: LinprobeError.self) { try FeatureStoreReader(path: target) }
        #expect(foreign?.message.contains("is not a complete store of fingerprint merge-fp") == true)
    }

    /// A damaged part fails its Fletcher-32 checksum when read through the virtual store.
    @Test func partChecksumsHoldThroughTheVirtualStore() throws {
        let dir = try TemporaryDirectory()
        let (merger, target) = try parts(in: dir, dtype: .float32)
        try merger.writeVirtual()
        let part = dir.file("parts/train-2-of-3.h5")
        // Flip one byte of the last part's res4 values (found by its exact float pattern).
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: part)))
        let first = SyntheticRows.features(rows: 16..<17, layer: 0)
        let needle =
            withUnsafeBytes(of: first[0].bitPattern.littleEndian) { Array($0) }
            + withUnsafeBytes(of: first[1].bitPattern.littleEndian) { Array($0) }
        let at = try #require(
            (0..<(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle })
        bytes[at] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: part))
        let merged = try FeatureStoreReader(path: target)
        let error = #expect(throws: LinprobeError.self) { try merged.readLayer("res4") }
        #expect(error?.message.contains("checksum") == true)
    }
}
