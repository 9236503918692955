// Times Linprobe's per-image preprocessing on one thread: decode (TurboJPEG/libpng) and the
// torchvision-equivalent transforms into a CHW float32 tensor. Prints one JSON line per phase
// with the median milliseconds per image. Used by Benchmarks/data/bench.sh.
//
//   LinprobeDataBench <repeats> <pipeline: test|train> <image>...
import Foundation
import LinprobeCodecs
import LinprobeCore
import LinprobeData

let args = CommandLine.arguments
guard args.count >= 4, let repeats = Int(args[1]) else {
    FileHandle.standardError.write(Data("usage: LinprobeDataBench <repeats> <test|train> <image>...\n".utf8))
    exit(64)
}
let normalize: JSONValue = ["name": "Normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]]
let transforms: JSONValue =
    args[2] == "train"
    ? [["name": "RandomResizedCrop", "size": 224], ["name": "RandomHorizontalFlip"], ["name": "ToTensor"], normalize]
    : [["name": "Resize", "size": 256], ["name": "CenterCrop", "size": 224], ["name": "ToTensor"], normalize]
let files = Array(args[3...])

do {
    let pipeline = try TransformPipeline(config: ConfigNode(path: "TRANSFORMS", value: transforms))
    let decoder = ImageDecoder()
    let runner = TransformRunner(pipeline: pipeline)
    let loader = SampleLoader(pipeline: pipeline)
    var image = RGBImage()
    var output = [Float](repeating: 0, count: 3 * 224 * 224)
    // Files in memory for the decode-only phase (so it times decoding, not the page cache).
    let contents = try files.map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) }

    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
    func timePerImage(_ body: (Int) throws -> Void) rethrows -> Double {
        var samples = [Double]()
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            for i in files.indices { try body(i) }
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(files.count))
        }
        return median(samples)
    }
    for i in files.indices {
        _ = try output.withUnsafeMutableBufferPointer { try loader.load(path: files[i], sampleIndex: i, into: $0) }
    }

    let decodeMs = timePerImage { i in _ = decoder.decode(contents[i], into: &image) }
    var decoded = [RGBImage]()
    for c in contents {
        var im = RGBImage()
        _ = decoder.decode(c, into: &im)
        decoded.append(im)
    }
    let transformMs = try timePerImage { i in
        var random = TransformRandom(baseSeed: 0, sampleIndex: i)
        _ = try output.withUnsafeMutableBufferPointer { try runner.transform(decoded[i], random: &random, into: $0) }
    }
    let totalMs = try timePerImage { i in
        _ = try output.withUnsafeMutableBufferPointer { try loader.load(path: files[i], sampleIndex: i, into: $0) }
    }
    print(#"{"side":"linprobe","decode_ms":\#(decodeMs),"transform_ms":\#(transformMs),"total_ms":\#(totalMs)}"#)
} catch {
    FileHandle.standardError.write(Data("\(oneLine(error))\n".utf8))
    exit(1)
}
