import Foundation
import LinprobeHDF5
import Testing

/// Every failure of the HDF5 wrapper reaches the caller as one `HDF5Error` line naming the C
/// function, HDF5's own message (ours where HDF5 has none) and the file or object involved.
@Suite struct HDF5ErrorTests {
    /// A fresh folder per test, removed when released.
    final class Scratch {
        let path: String

        init() throws {
            let name = "linprobe-hdf5-\(UUID().uuidString)"
            path = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        func file(_ name: String) -> String { path + "/" + name }

        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    /// A small valid file: `/x` float32 4×3, `/names` strings, root attributes `title` (string)
    /// and `rows` (int64).
    static func writeSample(_ path: String) throws {
        let file = try HDF5File.create(path)
        let x = try file.createExtensibleDataset("/x", type: .float32, dims: [4, 3], chunkRows: 2)
        let values = (0..<12).map(Float.init)
        try values.withUnsafeBufferPointer { try x.writeFloats(rows: 0..<4, from: $0) }
        let names = try file.createExtensibleDataset("/names", type: .utf8String, dims: [2], chunkRows: 2)
        try names.writeStrings(rows: 0..<2, from: ["a", "b"])
        try file.setAttribute("title", string: "sample")
        try file.setAttribute("rows", int64: 4)
        x.close()
        names.close()
        try file.close()
    }

    /// The error's fields and its one printed line.
    static func check(
        _ error: HDF5Error?, function: String, object: String, says words: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let error else {
            Issue.record("no HDF5Error thrown", sourceLocation: sourceLocation)
            return
        }
        #expect(error.function == function, "\(error)", sourceLocation: sourceLocation)
        #expect(error.object == object, "\(error)", sourceLocation: sourceLocation)
        for word in words {
            #expect(error.message.contains(word), "'\(word)' missing from: \(error)", sourceLocation: sourceLocation)
        }
        let line = error.localizedDescription
        #expect(line == "\(object): \(function) failed: \(error.message)", sourceLocation: sourceLocation)
        #expect(!line.contains("\n"), "not one line: \(line)", sourceLocation: sourceLocation)
    }

    @Test func aFileThatIsNotHDF5() throws {
        let scratch = try Scratch()
        let path = scratch.file("text.h5")
        try Data("name,value\na,1\n".utf8).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: HDF5Error.self) { try HDF5File.open(path) }
        Self.check(error, function: "H5Fis_hdf5", object: path, says: ["not an HDF5 file"])
    }

    @Test func aMissingFile() throws {
        let scratch = try Scratch()
        let path = scratch.file("absent.h5")
        let error = #expect(throws: HDF5Error.self) { try HDF5File.open(path) }
        Self.check(error, function: "H5Fopen", object: path, says: ["no such file"])
    }

    /// The signature survives, the rest is cut: HDF5 itself explains (its message names the
    /// end of file it expected).
    @Test func aTruncatedFile() throws {
        let scratch = try Scratch()
        let path = scratch.file("cut.h5")
        try Self.writeSample(path)
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try #require(whole.count > 1024, "sample file is only \(whole.count) bytes")
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: HDF5Error.self) { try HDF5File.open(path) }
        Self.check(error, function: "H5Fopen", object: path, says: ["truncated file", "eof"])
    }

    @Test func aMissingDataset() throws {
        let scratch = try Scratch()
        let path = scratch.file("sample.h5")
        try Self.writeSample(path)
        let file = try HDF5File.open(path)
        let error = #expect(throws: HDF5Error.self) { try file.openDataset("/features/absent") }
        Self.check(error, function: "H5Dopen2", object: "\(path):/features/absent", says: ["H5Dopen2()", "not found"])
        #expect(try file.exists("/features/absent") == false)
    }

    /// An absent attribute is `nil` (callers name the key they needed); a name HDF5 cannot
    /// look up is HDF5's error, naming the object and the attribute.
    @Test func aMissingAttribute() throws {
        let scratch = try Scratch()
        let path = scratch.file("sample.h5")
        try Self.writeSample(path)
        let file = try HDF5File.open(path)
        #expect(try file.attributeString("absent") == nil)
        #expect(try file.attributeInt64Array("absent") == nil)
        #expect(try file.attributeString("title") == "sample")
        let error = #expect(throws: HDF5Error.self) { try file.attributeString("") }
        Self.check(error, function: "H5Aexists", object: "\(path)@", says: ["H5Aexists"])
    }

    @Test func wrongTypeReads() throws {
        let scratch = try Scratch()
        let path = scratch.file("sample.h5")
        try Self.writeSample(path)
        let file = try HDF5File.open(path)
        let x = try file.openDataset("/x")
        let names = try file.openDataset("/names")
        let asIntegers = #expect(throws: HDF5Error.self) { try x.readInt64(rows: 0..<4) }
        Self.check(asIntegers, function: "H5Dread", object: "\(path):/x", says: ["expected integers", "float32"])
        var buffer = [Float](repeating: 0, count: 2)
        let asFloats = #expect(throws: HDF5Error.self) {
            try buffer.withUnsafeMutableBufferPointer { try names.readFloats(rows: 0..<2, into: $0) }
        }
        Self.check(asFloats, function: "H5Dread", object: "\(path):/names", says: ["expected numbers", "string"])
        let textAsInteger = #expect(throws: HDF5Error.self) { try file.attributeInt64("title") }
        Self.check(textAsInteger, function: "H5Aread", object: "\(path)@title", says: ["expected integers", "string"])
        let integerAsString = #expect(throws: HDF5Error.self) { try file.attributeString("rows") }
        Self.check(integerAsString, function: "H5Aread", object: "\(path)@rows", says: ["expected a string", "int64"])
    }

    /// Rows past the end are refused before HDF5 is asked, naming the rows and the dataset's extent.
    @Test func rowsPastTheEnd() throws {
        let scratch = try Scratch()
        let path = scratch.file("sample.h5")
        try Self.writeSample(path)
        let file = try HDF5File.open(path)
        let x = try file.openDataset("/x")
        var buffer = [Float](repeating: 0, count: 7 * 3)
        let error = #expect(throws: HDF5Error.self) {
            try buffer.withUnsafeMutableBufferPointer { try x.readFloats(rows: 2..<9, into: $0) }
        }
        Self.check(error, function: "select rows", object: "\(path):/x", says: ["rows 2..<9 outside 0..<4"])
    }
}
