/// What decoding one image file gave: the image, or why it could not be read.
///
/// An unreadable image is a per-item data fault, not an error: VISSL substitutes a gray image
/// for it, and so does Linprobe, but the caller records the reason (`extract` counts them and
/// `--strict` turns them into a failure).
public enum DecodeOutcome: Sendable, Equatable {
    case decoded(ImageInfo)
    case unreadable(UnreadableImage)

    public var isDecoded: Bool { if case .decoded = self { return true }; return false }
}

/// Facts about a decoded image.
public struct ImageInfo: Sendable, Equatable {
    public var format: ImageFormat
    /// The mode PIL would open the file in (`RGB`, `L`, `CMYK`, `P`, `LA`, `RGBA`, `1`, `I;16`),
    /// before the conversion to RGB.
    public var sourceMode: String
    public var width: Int
    public var height: Int

    public init(format: ImageFormat, sourceMode: String, width: Int, height: Int) {
        self.format = format
        self.sourceMode = sourceMode
        self.width = width
        self.height = height
    }
}

/// Why an image could not be decoded, in words fit for a summary line.
public struct UnreadableImage: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        /// The file does not exist or cannot be opened/read.
        case unreadableFile
        /// The bytes are not an image format Linprobe decodes (JPEG, PNG).
        case unsupportedFormat
        /// The file ends before the image does (PIL: "image file is truncated").
        case truncated
        /// The codec rejected the data.
        case corrupt
        /// More pixels than PIL accepts (its decompression-bomb limit).
        case tooLarge
    }

    public var kind: Kind
    public var reason: String

    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var description: String { reason }
}
