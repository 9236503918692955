/// An 8-bit RGB image, rows top to bottom, pixels interleaved `R G B` (no padding).
///
/// The storage is reused across decodes: `reshape(width:height:)` keeps the allocation when the
/// new image fits, so a worker decoding many images allocates only when it meets a larger one.
public struct RGBImage: Sendable {
    public private(set) var width: Int
    public private(set) var height: Int
    /// `height * width * 3` bytes in use (the array may hold more capacity).
    public var pixels: [UInt8]

    public init() {
        width = 0
        height = 0
        pixels = []
    }

    /// An image filled with one gray level (VISSL's substitute for an unreadable image is
    /// 128 at `DEFAULT_GRAY_IMG_SIZE`²).
    public init(width: Int, height: Int, gray: UInt8) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: gray, count: width * height * 3)
    }

    /// An image from interleaved RGB bytes (`count == width * height * 3`).
    public init(width: Int, height: Int, rgb: [UInt8]) {
        precondition(rgb.count == width * height * 3, "RGB byte count does not match the size")
        self.width = width
        self.height = height
        pixels = rgb
    }

    public var byteCount: Int { width * height * 3 }

    /// Sets the size, growing the storage if needed (contents are unspecified afterwards).
    public mutating func reshape(width: Int, height: Int) {
        self.width = width
        self.height = height
        let needed = width * height * 3
        if pixels.count < needed {
            pixels.append(contentsOf: repeatElement(0, count: needed - pixels.count))
        }
    }

    /// Fills the image with one gray level at the given size.
    public mutating func fill(width: Int, height: Int, gray: UInt8) {
        reshape(width: width, height: height)
        pixels.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }  // an empty image
            base.update(repeating: gray, count: width * height * 3)
        }
    }

    /// The pixels in use, as a fresh array (for tests and tools; the hot path uses `pixels`).
    public var packedRGB: [UInt8] { Array(pixels[0..<byteCount]) }
}
