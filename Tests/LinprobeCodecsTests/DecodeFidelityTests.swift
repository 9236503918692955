import Foundation
import LinprobeCodecs
import LinprobeCore
import LinprobeTestSupport
import Testing

/// PIL's verdict on one fixture file (from `scripts/make_image_fixtures.py`).
struct PILDecode: Decodable {
    var mode: String?
    var width: Int?
    var height: Int?
    var sha256: String?
    var error: String?
}

let pilDecodes: [String: PILDecode] = {
    let url = URL(fileURLWithPath: fixturePath("images/decode.json"))
    guard let data = try? Data(contentsOf: url),
        let table = try? JSONDecoder().decode([String: PILDecode].self, from: data)
    else { return [:] }
    return table
}()

/// Files whose decode must equal PIL's bytes exactly.
let exactFiles = pilDecodes.filter {
    $0.value.error == nil && !$0.key.hasSuffix(".gif") && !$0.key.hasPrefix("rgba16") && !$0.key.hasPrefix("ga16")
}
.keys.sorted()

@Suite struct DecodeFidelityTests {
    @Test func fixtureTableIsPresent() {
        #expect(pilDecodes.count >= 40, "fixture missing or short: images/decode.json")
    }

    @Test(arguments: exactFiles)
    func decodeEqualsPILConvertRGB(_ name: String) throws {
        let expected = try #require(pilDecodes[name])
        let decoder = ImageDecoder()
        var image = RGBImage()
        let outcome = decoder.decodeFile(atPath: fixturePath("images/files/\(name)"), into: &image)
        guard case .decoded(let info) = outcome else {
            Issue.record("\(name): \(outcome)")
            return
        }
        #expect(info.width == expected.width && info.height == expected.height)
        #expect(
            info.sourceMode == expected.mode || (expected.mode == "RGBA" && info.sourceMode == "LA"),
            "\(name): mode \(info.sourceMode) vs PIL \(expected.mode ?? "?")")
        let digest = Fingerprint.sha256(Data(image.packedRGB))
        if digest != expected.sha256 {
            let diff = try? firstDifference(name, image)
            Issue.record("\(name): decoded bytes differ from PIL's (\(diff ?? "no stored array"))")
        }
    }

    /// 16-bit PNGs with an alpha channel: exact where opaque, within one level where alpha is
    /// at least 1/256 (interlaced files: where alpha is not 0).
    @Test(arguments: ["rgba16_33x27.png", "rgba16_interlaced_33x27.png", "ga16_33x27.png"])
    func sixteenBitAlphaIsWithinOneLevel(_ name: String) throws {
        let decoder = ImageDecoder()
        var image = RGBImage()
        let outcome = decoder.decodeFile(atPath: fixturePath("images/files/\(name)"), into: &image)
        #expect(outcome.isDecoded)
        let expected = try NPYTestArray.load(fixturePath("images/decoded/\(name).npy"))
        let got = image.packedRGB
        #expect(got.count == expected.bytes.count)
        // PIL's alpha (8-bit high byte), from its RGBA decode of the same file.
        let alpha = try NPYTestArray.load(fixturePath("images/decoded/\(name).alpha.npy")).bytes
        var worst = 0, exact = 0, opaqueMismatch = 0
        for (i, (a, b)) in zip(got, expected.bytes).enumerated() {
            let d = abs(Int(a) - Int(b))
            let pixelAlpha = alpha[i / 3]
            if pixelAlpha == 255 && d != 0 && !name.contains("interlaced") { opaqueMismatch += 1 }
            if pixelAlpha == 0 && name.contains("interlaced") { continue }
            worst = max(worst, d)
            if d == 0 { exact += 1 }
        }
        #expect(worst <= 1)
        #expect(opaqueMismatch == 0)
        #expect(Double(exact) / Double(got.count) > 0.5, "\(exact) of \(got.count) exact")
    }

    @Test(arguments: pilDecodes.filter { $0.value.error != nil }.keys.sorted())
    func filesPILRejectsAreUnreadable(_ name: String) {
        let decoder = ImageDecoder()
        var image = RGBImage()
        let outcome = decoder.decodeFile(atPath: fixturePath("images/files/\(name)"), into: &image)
        guard case .unreadable(let why) = outcome else {
            Issue.record("\(name): decoded although PIL says \(pilDecodes[name]?.error ?? "")")
            return
        }
        #expect(!why.reason.isEmpty)
        if name.hasPrefix("truncated") { #expect(why.kind == .truncated, "\(name): \(why)") }
    }

    @Test func gifIsUnsupportedWithTheFormatNamed() {
        let decoder = ImageDecoder()
        var image = RGBImage()
        let outcome = decoder.decodeFile(atPath: fixturePath("images/files/animation.gif"), into: &image)
        #expect(
            outcome
                == .unreadable(
                    UnreadableImage(.unsupportedFormat, "GIF images are not supported (Linprobe decodes JPEG and PNG)"))
        )
    }

    @Test func missingFileIsUnreadableNotACrash() {
        let decoder = ImageDecoder()
        var image = RGBImage()
        let outcome = decoder.decodeFile(atPath: "/nonexistent/dir/x.jpg", into: &image)
        guard case .unreadable(let why) = outcome else { Issue.record("decoded a missing file"); return }
        #expect(why.kind == .unreadableFile)
        #expect(why.reason.contains("No such file"))
    }

    @Test func directoryIsUnreadable() throws {
        let dir = try TemporaryDirectory()
        let decoder = ImageDecoder()
        var image = RGBImage()
        let outcome = decoder.decodeFile(atPath: dir.path, into: &image)
        #expect(!outcome.isDecoded)
    }

    /// Every prefix of a JPEG and a PNG is rejected cleanly (never a crash), and a decoder
    /// keeps working after failures.
    @Test func everyTruncationIsHandled() throws {
        let decoder = ImageDecoder()
        var image = RGBImage()
        for name in ["progressive_67x45.jpg", "cmyk_43x31.jpg", "rgb_interlaced_33x27.png", "rgba16_33x27.png"] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixturePath("images/files/\(name)"))))
            // PIL (and libpng) accept a PNG whose IEND chunk is cut off: stop before it.
            let end = name.hasSuffix(".png") ? bytes.count - 12 : bytes.count
            for cut in Swift.stride(from: 0, to: end, by: max(1, bytes.count / 97)) {
                let outcome = decoder.decode(Array(bytes[0..<cut]), into: &image)
                #expect(!outcome.isDecoded, "\(name) cut at \(cut) of \(bytes.count) decoded")
            }
            #expect(decoder.decode(bytes, into: &image).isDecoded)
        }
    }

    @Test func hugeDeclaredSizeIsRefusedBeforeAllocating() {
        // A PNG header claiming 100000×100000 pixels (PIL: DecompressionBombError).
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
        png += Array("IHDR".utf8) + [0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0, 8, 2, 0, 0, 0] + [0, 0, 0, 0]
        png += [0, 0, 0, 0] + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82]
        let decoder = ImageDecoder()
        var image = RGBImage()
        let outcome = decoder.decode(png, into: &image)
        guard case .unreadable(let why) = outcome else { Issue.record("decoded"); return }
        #expect(why.kind == .tooLarge)
    }

    func firstDifference(_ name: String, _ image: RGBImage) throws -> String {
        let expected = try NPYTestArray.load(fixturePath("images/decoded/\(name).npy"))
        let got = image.packedRGB
        var count = 0, worst = 0, first = -1
        for i in 0..<min(got.count, expected.bytes.count) where got[i] != expected.bytes[i] {
            count += 1
            worst = max(worst, abs(Int(got[i]) - Int(expected.bytes[i])))
            if first < 0 { first = i }
        }
        return "\(count) bytes differ, max |Δ| \(worst), first at byte \(first)"
    }
}

/// A minimal reader for the uint8 `.npy` fixtures (the codecs tests do not depend on LinprobeData).
struct NPYTestArray {
    var bytes: [UInt8]
    static func load(_ path: String) throws -> NPYTestArray {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        return NPYTestArray(bytes: Array(data[(10 + headerLength)...]))
    }
}
