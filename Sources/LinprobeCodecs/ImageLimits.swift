/// Bounds applied to an image file before it is read or decoded.
///
/// The pixel limit follows PIL's decompression-bomb convention: `Image.open` raises
/// `DecompressionBombError` for images of more than 2 × `Image.MAX_IMAGE_PIXELS` (89,478,485)
/// pixels, and VISSL then substitutes a gray image; Linprobe reports such an image as
/// unreadable (`UnreadableImage.Kind.tooLarge`) before allocating its pixels.
public enum ImageLimits {
    /// PIL's `Image.MAX_IMAGE_PIXELS` (the default of `LINPROBE.MAX_IMAGE_PIXELS`).
    public static let pilMaxImagePixels = 89_478_485

    /// PIL's default limit: 2 × 89,478,485 = 178,956,970 pixels (PIL refuses anything above).
    public static let maxPixels = refusedAbove(maxImagePixels: pilMaxImagePixels)

    /// The most pixels an image may have under PIL's `MAX_IMAGE_PIXELS` setting `m`: PIL warns
    /// above `m` and raises `DecompressionBombError` above `2 m`.
    public static func refusedAbove(maxImagePixels m: Int) -> Int {
        let (doubled, overflow) = max(1, m).multipliedReportingOverflow(by: 2)
        return overflow ? Int.max : doubled
    }

    /// The largest file read for an image of at most `maxPixels` pixels: 8 bytes per pixel (a
    /// 16-bit RGBA PNG stored uncompressed) plus 1 MiB of headers and metadata. A larger file
    /// (e.g. a sparse file with a forged size) is refused before any buffer is allocated.
    public static func maxFileBytes(maxPixels: Int) -> Int {
        let pixels = min(max(1, maxPixels), Int.max / 16)  // no overflow below
        return pixels * 8 + (1 << 20)
    }
}
