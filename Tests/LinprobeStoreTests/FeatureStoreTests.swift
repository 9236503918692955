import Foundation
import LinprobeCore
import LinprobeHDF5
import LinprobeStore
import LinprobeTestSupport
import Testing

private let layers = SyntheticRows.layers.map { StoreLayer(name: $0.name, shapeCHW: $0.shape) }
private let metadata = StoreMetadata(
    fingerprint: "abc123", split: "train", numClasses: SyntheticRows.classes,
    classNames: (0..<SyntheticRows.classes).map { "class \($0)" }, trunk: ["name": "resnet", "depth": 50],
    weights: ["path": "w.torch", "sha256": "00ff"], transforms: [["name": "Resize", "size": 256]],
    poolOps: [["res4", ["AvgPool2d", [[8, 8], 3, 0]]]], provenance: ["tool": "test"])

/// Writes rows 0..<total in the given uneven batch sizes (cycled).
private func writeStore(
    _ path: String, total: Int, batches: [Int], dtype: FeatureDType, deflate: Int? = nil,
    chunkRows: Int? = 8
) throws {
    let writer = try FeatureStoreWriter(
        creating: path, layers: layers, targetLayout: .multiLabel(classes: SyntheticRows.classes),
        metadata: metadata, dtype: dtype, deflate: deflate, chunkRows: chunkRows)
    var row = 0, b = 0
    while row < total {
        let n = min(batches[b % batches.count], total - row)
        b += 1
        let rows = row..<(row + n)
        try writer.append(
            FeatureBatch(
                count: n, features: layers.indices.map { SyntheticRows.features(rows: rows, layer: $0) },
                targets: SyntheticRows.targets(rows: rows), indices: rows.map(Int64.init),
                imagePaths: SyntheticRows.paths(rows: rows),
                unreadable: rows.map { $0 == 5 }))
        if b % 3 == 0 { try writer.flush() }
        row += n
    }
    try writer.finish()
}

@Suite struct FeatureStoreRoundTrip {
    @Test(arguments: [FeatureDType.float32, .float16], [nil, 4] as [Int?])
    func roundTrip(dtype: FeatureDType, deflate: Int?) throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("train.h5")
        try writeStore(path, total: 53, batches: [5, 13, 1, 8], dtype: dtype, deflate: deflate)
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))

        let reader = try FeatureStoreReader(path: path)
        #expect(reader.count == 53)
        #expect(reader.layers.map(\.name) == ["res4", "res5avg"])
        #expect(reader.layers.map(\.shapeCHW) == [[4, 3, 3], [7, 1, 1]])
        #expect(reader.layers[0].storedType == dtype.rawValue)
        #expect(reader.fingerprint == "abc123")
        #expect(reader.split == "train")
        #expect(reader.classNames == metadata.classNames)
        #expect(reader.targetLayout == .multiLabel(classes: 5))
        #expect(try reader.targets() == SyntheticRows.targets(rows: 0..<53))
        #expect(try reader.indices() == (0..<53).map(Int64.init))
        #expect(try reader.imagePaths() == SyntheticRows.paths(rows: 0..<53))
        #expect(try reader.unreadableRows() == [5])
        #expect(try reader.jsonAttribute("trunk") == metadata.trunk)

        // float16 keeps ~3 significant digits for values in [-0.5, 0.5].
        let tolerance: Float = dtype == .float32 ? 0 : 3e-4
        for (l, info) in reader.layers.enumerated() {
            let all = try reader.readLayer(info.name)
            let expected = SyntheticRows.features(rows: 0..<53, layer: l)
            #expect(zip(all, expected).allSatisfy { abs($0 - $1) <= tolerance })

            var range = [Float](repeating: .nan, count: 9 * info.dim)
            try range.withUnsafeMutableBufferPointer {
                try reader.readFeatures(layer: info.name, rows: 17..<26, into: $0)
            }
            #expect(
                zip(range, SyntheticRows.features(rows: 17..<26, layer: l)).allSatisfy { abs($0 - $1) <= tolerance })

            let pick = [40, 3, 4, 5, 52, 3, 0, 17]
            var picked = [Float](repeating: .nan, count: pick.count * info.dim)
            try picked.withUnsafeMutableBufferPointer {
                try reader.readFeatures(layer: info.name, rows: pick, into: $0)
            }
            let expectedPicked = pick.flatMap { SyntheticRows.features(rows: $0..<($0 + 1), layer: l) }
            #expect(zip(picked, expectedPicked).allSatisfy { abs($0 - $1) <= tolerance })
        }
    }

    /// Batches of whole chunks go straight to the file, others through the chunk buffer; every
    /// mix gives the same rows (chunk 8: 16 and 24 are direct, 3 + 21 fills a buffered chunk first).
    @Test(arguments: [[16, 24, 8], [3, 21, 16, 5], [8, 1, 7, 32]])
    func directAndBufferedWritesAgree(batches: [Int]) throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("mixed.h5")
        try writeStore(path, total: 61, batches: batches, dtype: .float32)
        let reader = try FeatureStoreReader(path: path)
        #expect(reader.count == 61)
        #expect(try reader.indices() == (0..<61).map(Int64.init))
        #expect(try reader.targets() == SyntheticRows.targets(rows: 0..<61))
        #expect(try reader.imagePaths() == SyntheticRows.paths(rows: 0..<61))
        #expect(try reader.unreadableRows() == [5])
        for (l, info) in reader.layers.enumerated() {
            #expect(try reader.readLayer(info.name) == SyntheticRows.features(rows: 0..<61, layer: l))
        }
    }

    @Test func singleLabelTargets() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("val.h5")
        let writer = try FeatureStoreWriter(
            creating: path, layers: [StoreLayer(name: "flatten", shapeCHW: [3, 1, 1])],
            targetLayout: .singleLabel, metadata: metadata, chunkRows: 4)
        try writer.append(
            FeatureBatch(
                count: 3, features: [[1, 2, 3, 4, 5, 6, 7, 8, 9]], targets: [2, 0, -1],
                indices: [10, 11, 12], imagePaths: ["a", "b", "ü/c"]))
        try writer.finish()
        let reader = try FeatureStoreReader(path: path)
        #expect(reader.targetLayout == .singleLabel)
        #expect(try reader.targets() == [2, 0, -1])
        #expect(try reader.imagePaths() == ["a", "b", "ü/c"])
        #expect(try reader.readLayer("flatten") == [1, 2, 3, 4, 5, 6, 7, 8, 9])
    }

    @Test func badBatchesAreRefused() throws {
        let dir = try TemporaryDirectory()
        let writer = try FeatureStoreWriter(
            creating: dir.file("x.h5"), layers: layers,
            targetLayout: .multiLabel(classes: 5), metadata: metadata)
        #expect(throws: LinprobeError.self) {
            try writer.append(
                FeatureBatch(
                    count: 1, features: [[1], [2]], targets: [0, 0, 0, 0, 0], indices: [0], imagePaths: ["a"]))
        }
    }

    @Test func missingLayerIsNamed() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("s.h5")
        try writeStore(path, total: 4, batches: [4], dtype: .float32)
        let reader = try FeatureStoreReader(path: path)
        let error = #expect(throws: LinprobeError.self) { try reader.layer("res3") }
        #expect(error?.message.contains("res4, res5avg") == true)
    }
}

@Suite struct FeatureStoreIndependentReader {
    /// The layout as h5dump (HDF5's own tool, not our reader) sees it.
    @Test func h5dumpSeesTheLayout() throws {
        let h5dump = ["/usr/bin/h5dump", "/usr/local/bin/h5dump"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        let tool = try #require(h5dump, "h5dump (Debian package hdf5-tools) is required; run 'make setup'")
        let dir = try TemporaryDirectory()
        let path = dir.file("s.h5")
        try writeStore(path, total: 20, batches: [7], dtype: .float16, deflate: 2)
        let header = try runProcess(tool, ["-H", "-A", path])
        #expect(header.status == 0)
        let text = header.stdout
        #expect(text.contains("DATASET \"/features/res4\"") || text.contains("DATASET \"res4\""))
        #expect(text.contains("DATASPACE  SIMPLE { ( 20, 36 ) / ( H5S_UNLIMITED, 36 ) }"))
        #expect(text.contains("DATASPACE  SIMPLE { ( 20, 5 ) / ( H5S_UNLIMITED, 5 ) }"))
        #expect(text.contains("H5T_STRING"))
        #expect(text.contains("H5T_CSET_UTF8"))
        #expect(text.contains("ATTRIBUTE \"shape_chw\""))
        for attribute in [
            "format", "format_version", "fingerprint", "split", "complete", "rows_written", "num_classes",
            "class_names", "trunk", "weights", "transforms", "pool_ops",
        ] {
            #expect(text.contains("ATTRIBUTE \"\(attribute)\""), "missing attribute \(attribute)")
        }
        let format = try runProcess(tool, ["-a", "/format", path])
        #expect(format.stdout.contains("\"linprobe.features\""))
        let complete = try runProcess(tool, ["-a", "/complete", path])
        #expect(complete.stdout.contains("(0): 1"))
        // Values of one row, read by h5dump: row 2 of res5avg (float16 on disk).
        let data = try runProcess(tool, ["-d", "/features/res5avg", "-s", "2,0", "-c", "1,7", "-y", "-w", "0", path])
        let parts = data.stdout.components(separatedBy: "DATA {")
        let numbers =
            (parts.count > 1 ? parts[1] : "")
            .components(separatedBy: "}").first?
            .split(whereSeparator: { $0 == "," || $0.isWhitespace }).compactMap { Float($0) } ?? []
        let expected = SyntheticRows.features(rows: 2..<3, layer: 1)
        #expect(numbers.count == 7)
        #expect(zip(numbers, expected).allSatisfy { abs($0 - $1) < 3e-4 })
    }
}

@Suite struct FeatureStoreBadFiles {
    @Test func missingFile() throws {
        let dir = try TemporaryDirectory()
        let error = #expect(throws: LinprobeError.self) { try FeatureStoreReader(path: dir.file("nope.h5")) }
        #expect(error?.code == .missingInput)
        #expect(error?.message.contains("nope.h5") == true)
    }

    @Test func notHDF5() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("text.h5")
        try "hello, not a store".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: LinprobeError.self) { try FeatureStoreReader(path: path) }
        #expect(error?.message.contains("not an HDF5 file") == true)
    }

    @Test func truncatedFile() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("s.h5")
        try writeStore(path, total: 40, batches: [8], dtype: .float32)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: LinprobeError.self) { try FeatureStoreReader(path: path).readLayer("res4") }
        #expect(error?.message.contains(path) == true)
    }

    @Test func corruptBytes() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("s.h5")
        try writeStore(path, total: 40, batches: [8], dtype: .float32)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        // Keep the 8-byte signature, destroy the superblock after it.
        for i in 8..<min(data.count, 200) { data[i] = 0xA5 }
        try data.write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: LinprobeError.self) { try FeatureStoreReader(path: path) }
        #expect(error?.message.contains(path) == true)
    }

    @Test func foreignHDF5File() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("other.h5")
        let f = try HDF5File.create(path)
        try f.setAttribute("format", string: "something.else")
        try f.close()
        let error = #expect(throws: LinprobeError.self) { try FeatureStoreReader(path: path) }
        #expect(error?.message.contains("not a Linprobe feature store") == true)
    }

    @Test func newerFormatVersion() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("s.h5")
        try writeStore(path, total: 8, batches: [8], dtype: .float32)
        let f = try HDF5File.open(path, writable: true)
        try f.setAttribute("format_version", int64: 99)
        try f.close()
        let error = #expect(throws: LinprobeError.self) { try FeatureStoreReader(path: path) }
        #expect(error?.message.contains("format version 99 is newer") == true)
    }

    @Test func incompleteStoreIsRefused() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("s.h5")
        let writer = try FeatureStoreWriter(
            creating: path, layers: layers, targetLayout: .multiLabel(classes: 5),
            metadata: metadata, chunkRows: 8)
        let rows = 0..<16
        try writer.append(
            FeatureBatch(
                count: 16, features: layers.indices.map { SyntheticRows.features(rows: rows, layer: $0) },
                targets: SyntheticRows.targets(rows: rows), indices: rows.map(Int64.init),
                imagePaths: SyntheticRows.paths(rows: rows)))
        try writer.flush()
        let error = #expect(throws: LinprobeError.self) { try FeatureStoreReader(path: path + ".partial") }
        #expect(error?.message.contains("incomplete") == true)
        #expect(error?.message.contains("16 rows") == true)
        let lenient = try FeatureStoreReader(path: path + ".partial", allowIncomplete: true)
        #expect(lenient.count == 16 && !lenient.isComplete)
    }
}

@Suite struct FeatureStoreKill {
    private func helperBinary() -> String {
        let dir = URL(fileURLWithPath: linprobeBinary()).deletingLastPathComponent()
        return dir.appendingPathComponent("LinprobeTestHelper").path
    }

    /// A writer killed with SIGKILL leaves a store that is refused, resumes from its
    /// watermark, and ends equal to an uninterrupted write.
    @Test func resumeAfterSIGKILL() throws {
        let dir = try TemporaryDirectory()
        let killed = dir.file("killed.h5")
        let clean = dir.file("clean.h5")
        let total = 120, batch = 5

        let process = Process()
        process.executableURL = URL(fileURLWithPath: helperBinary())
        process.arguments = ["store-write", killed, String(total), String(batch), "30"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // Wait until at least 40 rows are durable, then kill without warning.
        var seen = ""
        while !seen.contains("flushed 40") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(!FileManager.default.fileExists(atPath: killed))

        let refused = #expect(throws: LinprobeError.self) { try FeatureStoreReader(path: killed + ".partial") }
        #expect(refused?.message.contains("incomplete") == true)

        let writer = try #require(try FeatureStoreWriter.resume(finalPath: killed, fingerprint: "synthetic"))
        let start = writer.rowsWritten
        #expect(start >= 40 && start % 8 == 0 && start < total)
        var row = start
        while row < total {
            let n = min(batch, total - row)
            let rows = row..<(row + n)
            try writer.append(
                FeatureBatch(
                    count: n, features: writer.layers.indices.map { SyntheticRows.features(rows: rows, layer: $0) },
                    targets: SyntheticRows.targets(rows: rows), indices: rows.map(Int64.init),
                    imagePaths: SyntheticRows.paths(rows: rows)))
            row += n
        }
        try writer.finish()

        let helper = try runProcess(helperBinary(), ["store-write", clean, String(total), String(batch), "0"])
        #expect(helper.status == 0)
        let a = try FeatureStoreReader(path: killed)
        let b = try FeatureStoreReader(path: clean)
        #expect(a.count == total && b.count == total)
        for layer in a.layers.map(\.name) { #expect(try a.readLayer(layer) == b.readLayer(layer)) }
        #expect(try a.targets() == b.targets())
        #expect(try a.indices() == b.indices())
        #expect(try a.imagePaths() == b.imagePaths())
    }

    /// `abandon` closes the partial store at once (a failing run must not leave it to whichever
    /// thread drops the writer last): HDF5's lock is gone while the writer object still lives,
    /// nothing more can be appended, and a resume starts at the flushed watermark.
    @Test func abandonReleasesThePartialStoreNow() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("s.h5")
        let writer = try FeatureStoreWriter(
            creating: path, layers: layers, targetLayout: .multiLabel(classes: 5), metadata: metadata, chunkRows: 8)
        let rows = 0..<16
        let batch = FeatureBatch(
            count: rows.count, features: writer.layers.indices.map { SyntheticRows.features(rows: rows, layer: $0) },
            targets: SyntheticRows.targets(rows: rows), indices: rows.map(Int64.init),
            imagePaths: SyntheticRows.paths(rows: rows))
        try writer.append(batch)
        try writer.flush()
        #expect(!canLockExclusively(path + ".partial"))
        writer.abandon()
        writer.abandon()
        #expect(canLockExclusively(path + ".partial"))
        #expect(throws: LinprobeError.self) { try writer.append(batch) }
        let resumed = try #require(try FeatureStoreWriter.resume(finalPath: path, fingerprint: "abc123"))
        #expect(resumed.rowsWritten == 16)
    }

    /// Issue 19 case 13: every numeric chunk carries a Fletcher-32 checksum, so a value changed
    /// inside a valid HDF5 file is an error naming the layer and rows, not another number.
    @Test func aTamperedFeatureChunkFailsItsChecksum() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("s.h5")
        let writer = try FeatureStoreWriter(
            creating: path, layers: layers, targetLayout: .multiLabel(classes: 5), metadata: metadata, chunkRows: 8)
        let rows = 0..<16
        let marker: Float = 1234.5678
        try writer.append(
            FeatureBatch(
                count: rows.count, features: layers.map { [Float](repeating: marker, count: rows.count * $0.dim) },
                targets: SyntheticRows.targets(rows: rows), indices: rows.map(Int64.init),
                imagePaths: SyntheticRows.paths(rows: rows)))
        try writer.finish()
        #expect(try FeatureStoreReader(path: path).readLayer(layers[0].name).allSatisfy { $0 == marker })

        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let pattern = withUnsafeBytes(of: marker.bitPattern.littleEndian) { Array($0) }
        let at = try #require(
            (0..<(bytes.count - 8)).first { i in (0..<8).allSatisfy { bytes[i + $0] == pattern[$0 % 4] } })
        bytes[at + 1] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let reader = try FeatureStoreReader(path: path)
        let error = #expect(throws: LinprobeError.self) {
            for layer in reader.layers { _ = try reader.readLayer(layer.name) }
        }
        #expect(error?.message.contains("fail their checksum") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("rows 0..<16") == true, "\(error?.message ?? "")")
    }

    @Test func resumeRefusesOtherInputs() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("s.h5")
        let writer = try FeatureStoreWriter(
            creating: path, layers: layers, targetLayout: .multiLabel(classes: 5),
            metadata: metadata, chunkRows: 8)
        try writer.flush()
        #expect(throws: LinprobeError.self) { try FeatureStoreWriter.resume(finalPath: path, fingerprint: "different") }
        #expect(try FeatureStoreWriter.resume(finalPath: dir.file("none.h5"), fingerprint: "x") == nil)
    }
}

/// Whether a new open file description can take an exclusive `flock` on `path` (HDF5 holds one
/// on every file it has open for writing).
private func canLockExclusively(_ path: String) -> Bool {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return flock(fd, LOCK_EX | LOCK_NB) == 0
}

/// Issue 19 case 8: the structure check turns a check process killed by a signal into one line
/// naming the store, and does nothing when no command is set (library use).
@Suite struct StoreStructureCheckTests {
    @Test func aCheckKilledByASignalIsOneLine() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("s.h5")
        try Data("x".utf8).write(to: URL(fileURLWithPath: path))
        func verify(_ command: [String]?, _ file: String = path, timeout: Double = 120) throws {
            try StoreStructureCheck.verify(file, command: command, timeoutSeconds: timeout)
        }
        try verify(nil)
        let error = #expect(throws: LinprobeError.self) { try verify(["/bin/sh", "-c", "kill -SEGV $$", "sh"]) }
        #expect(error?.message.hasPrefix(path + ": the store is damaged") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("signal 11") == true, "\(error?.message ?? "")")
        try verify(["/bin/sh", "-c", "exit 1", "sh"])  // an ordinary failure: the reader reports it itself
        let other = dir.file("t.h5")
        try Data("y".utf8).write(to: URL(fileURLWithPath: other))
        let start = Date()
        let hang = #expect(throws: LinprobeError.self) {
            try verify(["/bin/sh", "-c", "exec sleep 30", "sh"], other, timeout: 0.5)
        }
        #expect(hang?.message.contains("did not finish") == true, "\(hang?.message ?? "")")
        #expect(Date().timeIntervalSince(start) < 25, "the hung check was not killed")
    }
}
