import Foundation
import LinprobeCodecs
import LinprobeTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 19, cases 6 and 9: an image path that is (a link to) a FIFO or a device is unreadable
/// at once — never a blocked `open` or an endless read — and image sizes are bounded before
/// anything is allocated.
@Suite struct CodecsHostileInputTests {
    final class OutcomeBox: @unchecked Sendable {
        var outcome: DecodeOutcome?
    }

    /// Decodes `path` on another thread; a decode still running after 20 s is an issue (and a
    /// FIFO at `path` is then opened for writing to release it).
    func decode(_ path: String, decoder: ImageDecoder = ImageDecoder()) -> DecodeOutcome? {
        let box = OutcomeBox()
        let done = DispatchSemaphore(value: 0)
        Thread {
            var image = RGBImage()
            box.outcome = decoder.decodeFile(atPath: path, into: &image)
            done.signal()
        }.start()
        if done.wait(timeout: .now() + 20) == .timedOut {
            Issue.record("\(path): still reading after 20 s")
            let fd = open(path, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
            _ = done.wait(timeout: .now() + 10)
        }
        return box.outcome
    }

    @Test func fifoAndDevicesAreNotRegularFiles() throws {
        let dir = try TemporaryDirectory()
        let fifo = dir.file("x.jpg")
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(decode(fifo) == .unreadable(UnreadableImage(.unreadableFile, "not a regular file (a FIFO)")))
        let device = UnreadableImage(.unreadableFile, "not a regular file (a character device)")
        for target in ["/dev/zero", "/dev/urandom"] {
            #expect(decode(target) == .unreadable(device))
            let link = dir.file("link-\((target as NSString).lastPathComponent).png")
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
            #expect(decode(link) == .unreadable(device))
        }
        #expect(decode(dir.path) == .unreadable(UnreadableImage(.unreadableFile, "not a regular file (a directory)")))
    }

    @Test func limitsFollowPILsDecompressionBombConvention() throws {
        #expect(ImageLimits.maxPixels == 2 * 89_478_485)
        #expect(ImageDecoder().maxPixels == ImageLimits.maxPixels)
        #expect(ImageLimits.maxFileBytes(maxPixels: ImageLimits.maxPixels) == 8 * 178_956_970 + (1 << 20))
        let small = ImageDecoder(maxPixels: 1000)
        let outcome = decode(fixturePath("images/files/progressive_67x45.jpg"), decoder: small)
        guard case .unreadable(let why)? = outcome else { Issue.record("decoded above the limit"); return }
        #expect(why.kind == .tooLarge)
        #expect(
            why.reason
                == "image of 67×45 pixels exceeds the limit of 1000 pixels (PIL's decompression-bomb limit by default)")
    }

    @Test func aSparseFileLargerThanAnyImageIsNotRead() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("sparse.jpg")
        #expect(FileManager.default.createFile(atPath: path, contents: Data([0xFF, 0xD8, 0xFF])))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: 64 << 20)
        try handle.close()
        let outcome = decode(path, decoder: ImageDecoder(maxPixels: 1000))
        guard case .unreadable(let why)? = outcome else { Issue.record("decoded"); return }
        #expect(why.kind == .tooLarge)
        #expect(why.reason.hasPrefix("file of 67108864 bytes exceeds the 1056576-byte limit"))
    }
}

/// Issue 19 case 18: PNGs on which libpng and PIL disagree decode (or are refused) as PIL does,
/// per `scripts/make_png_pil_quirk_fixtures.py`: a bad IDAT CRC is ignored, a bad CRC before the
/// image data, text or ICC chunks inflating past 1 MiB and unknown compression methods refuse the
/// file (VISSL then stores its gray image).
@Suite struct PNGAsPILTests {
    struct Expectation: Decodable {
        let pil: String
        let same_pixels: Bool?
        let error: String?
    }

    @Test func everyQuirkFileAsPIL() throws {
        let folder = fixturePath("images/pil-quirks")
        let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/expected.json"))
        let expected = try JSONDecoder().decode([String: Expectation].self, from: data)
        let pixels = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/pixels.rgb")))
        #expect(expected.count == 8)
        for (name, want) in expected.sorted(by: { $0.key < $1.key }) {
            var image = RGBImage()
            let outcome = ImageDecoder().decodeFile(atPath: folder + "/" + name, into: &image)
            if want.pil == "decodes" {
                #expect(outcome.isDecoded, "\(name): \(outcome)")
                #expect(Array(image.pixels.prefix(image.byteCount)) == pixels, "\(name)")
            } else {
                guard case .unreadable(let why) = outcome else {
                    Issue.record("\(name): decoded, PIL says \(want.error ?? "")")
                    continue
                }
                #expect(why.reason.contains("PIL"), "\(name): \(why.reason)")
            }
        }
    }
}
