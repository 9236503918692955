import Foundation
import LinprobeCodecs
import LinprobeCore

/// Everything `extract` reads from `DATA.<SPLIT>`: the listing, the transforms, the gray-image
/// size, and one canonical description of all of it for the features fingerprint.
public struct SplitInput: Sendable {
    public let settings: DatasetSettings
    public let listing: DatasetListing
    public let pipeline: TransformPipeline

    /// Reads `DATA.<SPLIT>` (the node of that split, e.g. `config["DATA"]["TRAIN"]`): dataset
    /// settings, the listing (through `catalog` when `DATA_PATHS` is not set) and `TRANSFORMS`.
    /// Transforms are parsed first, so a configuration error is reported before any folder is
    /// walked.
    public static func load(
        split: DatasetSplit, data node: ConfigNode, catalog: DatasetCatalog?,
        workingDirectory: String = FileManager.default.currentDirectoryPath
    ) throws -> SplitInput {
        let settings = try DatasetSettings(split: split, config: node)
        let pipeline = try TransformPipeline(config: node["TRANSFORMS"])
        let listing = try DatasetLoader.load(settings, catalog: catalog, workingDirectory: workingDirectory)
        return SplitInput(settings: settings, listing: listing, pipeline: pipeline)
    }

    public init(settings: DatasetSettings, listing: DatasetListing, pipeline: TransformPipeline) {
        self.settings = settings
        self.listing = listing
        self.pipeline = pipeline
    }

    /// A loader for one worker thread (`baseSeed` seeds the random transforms per sample;
    /// images of more than `maxImagePixels` pixels are unreadable, as PIL refuses them).
    public func makeLoader(baseSeed: UInt64, maxImagePixels: Int = ImageLimits.maxPixels) -> SampleLoader {
        SampleLoader(
            pipeline: pipeline, grayImageSize: settings.grayImageSize, baseSeed: baseSeed,
            maxImagePixels: maxImagePixels)
    }

    /// Canonical JSON of the dataset listing, the transforms and the unreadable-image policy.
    public var description: JSONValue {
        [
            "dataset": listing.description, "transforms": pipeline.description,
            "default_gray_img_size": .int(Int64(settings.grayImageSize)),
        ]
    }
}
