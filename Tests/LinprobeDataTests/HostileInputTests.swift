import Foundation
import LinprobeCodecs
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeData

#if canImport(Glibc)
    import Glibc
#endif

final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

/// Runs `body` on its own thread and waits up to `seconds` for what it returns. When it is still
/// running — blocked opening the FIFO at `fifo` — an issue is recorded and the FIFO is opened
/// for writing, which releases the blocked `open`; the result is then nil.
func within<T>(_ seconds: Double, fifo: String, _ body: @escaping @Sendable () -> T) -> T? {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Thread {
        box.value = body()
        done.signal()
    }.start()
    if done.wait(timeout: .now() + seconds) == .timedOut {
        Issue.record("still blocked after \(seconds) s (opening the FIFO \(fifo))")
        let fd = open(fifo, O_WRONLY | O_NONBLOCK)
        if fd >= 0 { close(fd) }
        _ = done.wait(timeout: .now() + 10)
        return nil
    }
    return box.value
}

/// The error `body` throws, or nil.
func thrown(_ body: () throws -> Void) -> (any Error)? {
    do { try body() } catch { return error }
    return nil
}

/// Issue 19 cases in the data layer: `.npy` label files declaring huge shapes (case 1), label,
/// catalog and image paths that are FIFOs or devices (cases 6, 9), and transforms whose images
/// exceed the machine's memory (case 5).
@Suite struct DataHostileInputTests {
    let images = fixturePath("images")

    func loadWithLabels(_ labelPath: String) throws -> DatasetListing {
        let fields: [String: JSONValue] = [
            "DATA_SOURCES": ["disk_filelist"], "DATA_PATHS": [.string(fixturePath("data/filelist_images.npy"))],
            "LABEL_SOURCES": ["disk_filelist"], "LABEL_PATHS": [.string(labelPath)],
        ]
        return try DatasetLoader.load(try settings(.train, fields), catalog: nil, workingDirectory: images)
    }

    @Test(
        "a label .npy declaring a huge shape is one line naming the file (case 1)",
        arguments: [
            ("<i8", [4_611_686_018_427_387_904]), ("<i8", [4_294_967_296, 4_294_967_296]),
            ("<U0", [4_611_686_018_427_387_904]),
            ("|S0", [4_611_686_018_427_387_904]), ("<U4611686018427387904", [1]),
            ("<i8", [3_037_000_500, 3_037_000_500]),
        ])
    func hugeShape(descr: String, shape: [Int]) throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("labels.npy")
        var data = NPYWriter.header(descr: descr, shape: shape)
        data.append(contentsOf: [UInt8](repeating: 0, count: 8))
        try data.write(to: URL(fileURLWithPath: path))
        expectError([path, "not a valid NumPy .npy file"], code: .corruptInput) { _ = try loadWithLabels(path) }
    }

    @Test("a label file, catalog or VOC list that is a FIFO is refused without blocking (cases 9, 10)")
    func fifoInputs() throws {
        let dir = try TemporaryDirectory()
        let fifo = dir.file("labels.npy")
        #expect(mkfifo(fifo, 0o600) == 0)
        let labelError = within(20, fifo: fifo) { [self] in thrown { _ = try loadWithLabels(fifo) } }
        #expect(
            (labelError as? LinprobeError)?.message
                == "\(fifo): not a regular file (a NumPy .npy file is expected)")
        let catalog = dir.file("catalog.json")
        #expect(mkfifo(catalog, 0o600) == 0)
        let catalogError = within(20, fifo: catalog) { thrown { _ = try DatasetCatalog.load(path: catalog) } }
        #expect((catalogError as? LinprobeError)?.message.hasPrefix("\(catalog): not a regular file") == true)
        let zero = dir.file("zero.npy")
        try FileManager.default.createSymbolicLink(atPath: zero, withDestinationPath: "/dev/zero")
        expectError([zero, "not a regular file"], code: .corruptInput) { _ = try loadWithLabels(zero) }
    }

    @Test("images that are FIFOs or links to /dev/zero and /dev/urandom are unreadable at once (cases 6, 9)")
    func specialImageFiles() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.file("cat"), withIntermediateDirectories: true)
        #expect(mkfifo(dir.file("cat/fifo.jpg"), 0o600) == 0)
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: dir.file("cat/zero.jpg"), withDestinationPath: "/dev/zero")
        try fm.createSymbolicLink(atPath: dir.file("cat/urandom.png"), withDestinationPath: "/dev/urandom")
        try fm.copyItem(atPath: fixturePath("images/files/cmyk_43x31.jpg"), toPath: dir.file("cat/ok.jpg"))
        let listing = try DatasetLoader.load(
            try settings(["DATA_SOURCES": ["disk_folder"], "DATA_PATHS": [.string(dir.path)]]), catalog: nil)
        let listed = listing.samples.map(\.relativePath)
        #expect(listed == ["cat/fifo.jpg", "cat/ok.jpg", "cat/urandom.png", "cat/zero.jpg"])
        let p = try pipeline([["name": "Resize", "size": [8, 8]], ["name": "ToTensor"]])
        let results = within(20, fifo: dir.file("cat/fifo.jpg")) {
            let loader = SampleLoader(pipeline: p, grayImageSize: 8)
            var out = [Float](repeating: 0, count: 3 * 8 * 8)
            return listing.samples.enumerated().map { i, s in
                out.withUnsafeMutableBufferPointer {
                    (try? loader.load(path: s.path, sampleIndex: i, into: $0))?.unreadable
                }
            }
        }
        let reasons = try #require(results).map { $0?.reason }
        #expect(
            reasons == [
                "not a regular file (a FIFO)", nil, "not a regular file (a character device)",
                "not a regular file (a character device)",
            ])
    }

    @Test(
        "a resize or crop whose image exceeds half the machine's memory is a config error with the figure (case 5)",
        arguments: [
            (["name": "Resize", "size": [1_000_000, 1_000_000]] as JSONValue, "Resize"),
            (["name": "CenterCrop", "size": 2_000_000] as JSONValue, "CenterCrop"),
            (["name": "RandomResizedCrop", "size": [4_611_686_018_427_387_904, 4]] as JSONValue, "RandomResizedCrop"),
            (["name": "Resize", "size": 4_611_686_018_427_387_904] as JSONValue, "Resize"),
        ])
    func hugeConfiguredSize(step: JSONValue, name: String) throws {
        expectError(
            ["DATA.TRAIN.TRANSFORMS[0] (\(name))", "float32 tensor", "needs", ", more than the", "of memory"],
            code: .invalidConfig
        ) {
            _ = try pipeline([step, ["name": "ToTensor"]])
        }
    }

    @Test("a shorter-side resize of a very elongated image is refused before allocating (case 5)")
    func hugeResizeOfAnImage() throws {
        let p = try pipeline([
            ["name": "Resize", "size": 2000], ["name": "CenterCrop", "size": 4],
            ["name": "ToTensor"],
        ])
        let runner = TransformRunner(pipeline: p)
        var random = TransformRandom(seed: 0)
        var out = [Float](repeating: 0, count: 3 * 4 * 4)
        let image = RGBImage(width: 100_000, height: 1, gray: 7)
        expectError(
            ["TRANSFORMS[0] (Resize) of a 100000×1 image", "a 200000000×2000 RGB image needs 1.2 TB"],
            code: .invalidConfig
        ) {
            try out.withUnsafeMutableBufferPointer { _ = try runner.transform(image, random: &random, into: $0) }
        }
        #expect(runner.transformToImage(image, random: &random).width == 0)
    }

    @Test("the decoder's pixel limit is PIL's and can be lowered")
    func pixelLimit() throws {
        #expect(ImageLimits.maxPixels == 178_956_970)
        let p = try pipeline([["name": "Resize", "size": [8, 8]], ["name": "ToTensor"]])
        let loader = SampleLoader(pipeline: p, grayImageSize: 8, maxImagePixels: 1000)
        var out = [Float](repeating: 0, count: 3 * 8 * 8)
        let result = try out.withUnsafeMutableBufferPointer {
            try loader.load(path: fixturePath("images/files/cmyk_43x31.jpg"), sampleIndex: 0, into: $0)
        }
        #expect(result.unreadable?.kind == .tooLarge)
        #expect(result.unreadable?.reason.contains("43×31") == true)
    }
}
