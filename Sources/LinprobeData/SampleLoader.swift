import LinprobeCodecs
import LinprobeCore

/// What loading one sample gave.
public struct LoadedSample: Sendable, Equatable {
    /// `[3, H, W]` of the tensor written.
    public var shape: [Int]
    /// Set when the image could not be decoded and VISSL's gray image was used instead.
    public var unreadable: UnreadableImage?
    /// Facts about the decoded image (nil when unreadable).
    public var image: ImageInfo?
}

/// Decode + transforms for one worker thread: reads an image file, applies the pipeline with
/// the sample's own random stream, and writes the CHW float32 tensor into a caller buffer.
///
/// An unreadable image follows VISSL: a gray (128) `grayImageSize`² RGB image goes through the
/// same transforms, and the result says why (the caller records it; `--strict` fails on it).
public final class SampleLoader: @unchecked Sendable {
    public let pipeline: TransformPipeline
    public let grayImageSize: Int
    public let baseSeed: UInt64
    private let decoder: ImageDecoder
    private let runner: TransformRunner
    private var image = RGBImage()

    /// `maxImagePixels`: larger images are unreadable (`tooLarge`) before they are decoded
    /// (`ImageLimits.maxPixels`, PIL's decompression-bomb limit, by default).
    public init(
        pipeline: TransformPipeline, grayImageSize: Int = 224, baseSeed: UInt64 = 0,
        maxImagePixels: Int = ImageLimits.maxPixels
    ) {
        self.pipeline = pipeline
        self.grayImageSize = grayImageSize
        self.baseSeed = baseSeed
        decoder = ImageDecoder(maxPixels: maxImagePixels)
        runner = TransformRunner(pipeline: pipeline)
    }

    /// Loads sample `sampleIndex` (view `view` of it, for several augmented views) from `path`.
    public func load(
        path: String, sampleIndex: Int, view: Int = 0,
        into output: UnsafeMutableBufferPointer<Float>
    ) throws -> LoadedSample {
        let outcome = decoder.decodeFile(atPath: path, into: &image)
        var random = TransformRandom(baseSeed: baseSeed, sampleIndex: sampleIndex, view: view)
        switch outcome {
        case .decoded(let info):
            let shape = try runner.transform(image, random: &random, into: output)
            return LoadedSample(shape: shape, unreadable: nil, image: info)
        case .unreadable(let why):
            image.fill(width: grayImageSize, height: grayImageSize, gray: 128)
            let shape = try runner.transform(image, random: &random, into: output)
            return LoadedSample(shape: shape, unreadable: why, image: nil)
        }
    }
}
