import Foundation
import LinprobeCodecs
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeData

/// VISSL's `ImgPil2LabTensor` (OpenCV's 8-bit BGR→Lab) against OpenCV's own answers on crops of
/// real photos (`scripts/make_alexnet_fixtures.py` stores the RGB bytes with cv2's Lab bytes).
@Suite("ImgPil2LabTensor: OpenCV 8-bit Lab")
struct LabColorTests {
    static func cases() throws -> [JSONValue] {
        let text = try String(contentsOfFile: fixturePath("alexnet/lab.json"), encoding: .utf8)
        return try #require(try JSONValue.parse(text)["cases"]?.arrayValue)
    }

    static func bytes(_ v: JSONValue?) throws -> [UInt8] {
        try #require(v?.arrayValue).map { UInt8(try #require($0.intValue)) }
    }

    /// L is what the colorization trunk reads: it must equal OpenCV's byte for byte, and the
    /// tensor value NumPy's float32 `L8 * (100/255) - 50` bit for bit. a and b may differ by one
    /// step (OpenCV's vector path rounds a few colours differently; see `LabColor`).
    @Test("L bytes identical to OpenCV, L tensor values bit-identical, a/b within one step")
    func photos() throws {
        var checked = 0
        for c in try Self.cases() {
            let rgb = try Self.bytes(c["rgb"]), lab = try Self.bytes(c["lab8"])
            let tensor = try #require(c["L_tensor"]?.arrayValue).map { Float(try #require($0.doubleValue)) }
            for p in 0..<(rgb.count / 3) {
                let (l, a, b) = LabColor.lab8(r: rgb[3 * p], g: rgb[3 * p + 1], b: rgb[3 * p + 2])
                #expect(l == lab[3 * p], "\(c["photo"]?.stringValue ?? "") pixel \(p)")
                #expect(abs(Int(a) - Int(lab[3 * p + 1])) <= 1 && abs(Int(b) - Int(lab[3 * p + 2])) <= 1)
                #expect(LabColor.tensorValue(channel: 0, byte: l) == tensor[p])
                checked += 1
            }
        }
        #expect(checked == 6 * 16 * 24)
    }

    @Test("the transform writes [L8·100/255 − 50, a8 − 128, b8 − 128] planes; Normalize applies after it")
    func pipeline() throws {
        let c = try #require(try Self.cases().first)
        let w = Int(try #require(c["width"]?.intValue)), h = Int(try #require(c["height"]?.intValue))
        let rgb = try Self.bytes(c["rgb"]), lab = try Self.bytes(c["lab8"])
        let steps: JSONValue = [
            ["name": "ImgPil2LabTensor", "indices": [0]], ["name": "Normalize", "mean": [1, 2, 3], "std": [2, 2, 2]],
        ]
        let pipeline = try TransformPipeline(config: ConfigNode(path: "DATA.TEST.TRANSFORMS", value: steps))
        let runner = TransformRunner(pipeline: pipeline)
        var random = TransformRandom(baseSeed: 0, sampleIndex: 0, view: 0)
        var out = [Float](repeating: .nan, count: 3 * w * h)
        try out.withUnsafeMutableBufferPointer { buffer in
            _ = try runner.transform(RGBImage(width: w, height: h, rgb: rgb), random: &random, into: buffer)
        }
        for p in [0, 7, w * h - 1] {
            let l = (Float(lab[3 * p]) * Float(100.0 / 255.0) - 50 - 1) / 2
            #expect(out[p] == l)
            #expect(abs(out[w * h + p] - (Float(lab[3 * p + 1]) - 128 - 2) / 2) <= 0.5)
            #expect(abs(out[2 * w * h + p] - (Float(lab[3 * p + 2]) - 128 - 3) / 2) <= 0.5)
        }
        #expect(pipeline.description.canonicalText.contains("ImgPil2LabTensor"))
    }
}
