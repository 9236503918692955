internal import CLinprobeJPEG
internal import CLinprobePNG

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Decodes image files to 8-bit RGB exactly as `PIL.Image.open(f).convert("RGB")` does.
///
/// - JPEG through TurboJPEG (accurate integer IDCT, fancy upsampling — Pillow's settings):
///   grayscale is replicated, 4-component files are read as CMYK (YCCK converted by libjpeg),
///   inverted as PIL assumes Adobe polarity, and converted with PIL's `cmyk2rgb` formula. A
///   stream that ends before its EOI marker is unreadable ("truncated"), as in PIL; libjpeg
///   warnings about corrupt data are tolerated, as in PIL.
/// - PNG through libpng's simplified `png_image` API (see `PNGDecoding.swift` for how PIL's
///   conversions are reproduced).
/// - Anything else (GIF, BMP, TIFF, WebP, PNM) is reported unreadable with the format named.
///
/// One decoder per worker thread: it owns a TurboJPEG handle and reusable buffers, so it must
/// not be used by two threads at once (it is `Sendable` so that it can be handed to a worker).
public final class ImageDecoder: @unchecked Sendable {
    /// The default pixel limit, `ImageLimits.maxPixels`.
    public static let maxPixels = ImageLimits.maxPixels

    /// Images with more pixels are refused before their pixels are allocated.
    public let maxPixels: Int
    /// Files larger than this are refused before they are read (`ImageLimits.maxFileBytes`).
    public let maxFileBytes: Int

    private var turbo: tjhandle?
    /// The last file read (reused between images).
    var fileBuffer: [UInt8] = []
    /// CMYK or 16-bit scratch (reused).
    var scratch: [UInt8] = []
    var scratch2: [UInt8] = []
    var scratch3: [UInt8] = []

    /// `maxPixels` bounds the image size (`ImageLimits.maxPixels`, PIL's limit, by default).
    public init(maxPixels: Int = ImageLimits.maxPixels) {
        self.maxPixels = max(1, maxPixels)
        maxFileBytes = ImageLimits.maxFileBytes(maxPixels: self.maxPixels)
    }

    deinit {
        if let turbo { tjDestroy(turbo) }
    }

    /// Reads and decodes a file into `image` (whose storage is reused).
    public func decodeFile(atPath path: String, into image: inout RGBImage) -> DecodeOutcome {
        if let failure = readFile(path) { return .unreadable(failure) }
        let count = fileCount
        return fileBuffer.withUnsafeBytes { raw in
            decode(UnsafeRawBufferPointer(rebasing: raw[0..<count]), into: &image)
        }
    }

    /// Decodes an in-memory file into `image` (whose storage is reused).
    public func decode(_ bytes: UnsafeRawBufferPointer, into image: inout RGBImage) -> DecodeOutcome {
        let format = ImageFormat.sniff(bytes)
        switch format {
        case .jpeg:
            return decodeJPEG(bytes, into: &image)
        case .png:
            return decodePNG(bytes, into: &image)
        case .unknown:
            return .unreadable(
                UnreadableImage(.unsupportedFormat, "not a recognised image file (neither JPEG nor PNG)"))
        default:
            return .unreadable(
                UnreadableImage(
                    .unsupportedFormat,
                    "\(format.rawValue.uppercased()) images are not supported (Linprobe decodes JPEG and PNG)"))
        }
    }

    /// Decodes an in-memory file given as an array (convenience for tests and tools).
    public func decode(_ bytes: [UInt8], into image: inout RGBImage) -> DecodeOutcome {
        bytes.withUnsafeBytes { decode($0, into: &image) }
    }

    // MARK: - File reading

    private var fileCount = 0

    /// Reads the whole file into `fileBuffer`; returns the reason on failure. Only a regular
    /// file (or a link to one) is opened: a FIFO would block `open`, and a device such as
    /// `/dev/zero` never ends. At most the `st_size` bytes seen when it was opened are read.
    private func readFile(_ path: String) -> UnreadableImage? {
        var st = stat()
        guard stat(path, &st) == 0 else { return UnreadableImage(.unreadableFile, "cannot open: \(errnoText())") }
        if let notRegular = Self.notRegular(st) { return notRegular }
        // O_NONBLOCK: should the path become a FIFO after the check, open returns at once.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return UnreadableImage(.unreadableFile, "cannot open: \(errnoText())") }
        defer { close(fd) }
        guard fstat(fd, &st) == 0 else { return UnreadableImage(.unreadableFile, "cannot stat: \(errnoText())") }
        if let notRegular = Self.notRegular(st) { return notRegular }
        let size = Int(st.st_size)
        guard size <= maxFileBytes else {
            return UnreadableImage(
                .tooLarge,
                "file of \(size) bytes exceeds the \(maxFileBytes)-byte limit "
                    + "for images of at most \(maxPixels) pixels")
        }
        if fileBuffer.count < size { fileBuffer = [UInt8](repeating: 0, count: size) }
        var total = 0
        while total < size {
            let got = fileBuffer.withUnsafeMutableBytes { raw in
                raw.baseAddress.map { read(fd, $0 + total, size - total) } ?? 0  // size > 0: never nil
            }
            if got < 0 {
                if errno == EINTR { continue }
                return UnreadableImage(.unreadableFile, "read failed: \(errnoText())")
            }
            if got == 0 { break }  // the file shrank since fstat
            total += got
        }
        fileCount = total
        if total == 0 { return UnreadableImage(.truncated, "empty file") }
        return nil
    }

    /// Why a file of this type is not read, or nil for a regular file.
    static func notRegular(_ st: stat) -> UnreadableImage? {
        let kind: String
        switch st.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: kind = "a directory"
        case S_IFIFO: kind = "a FIFO"
        case S_IFCHR: kind = "a character device"
        case S_IFBLK: kind = "a block device"
        case S_IFSOCK: kind = "a socket"
        default: kind = "a special file"
        }
        return UnreadableImage(.unreadableFile, "not a regular file (\(kind))")
    }

    // MARK: - JPEG

    private func decodeJPEG(_ bytes: UnsafeRawBufferPointer, into image: inout RGBImage) -> DecodeOutcome {
        guard let s = JPEGStructure.scan(bytes), s.frameMarker != 0 else {
            return .unreadable(UnreadableImage(.truncated, "JPEG data ends before the frame header"))
        }
        guard s.precision == 8 else {
            return .unreadable(
                UnreadableImage(.corrupt, "JPEG with \(s.precision)-bit samples (PIL handles 8-bit only)"))
        }
        let mode: String
        switch s.components {
        case 1: mode = "L"
        case 3: mode = "RGB"
        case 4: mode = "CMYK"
        default:
            return .unreadable(
                UnreadableImage(.corrupt, "JPEG with \(s.components) components (PIL handles 1, 3 or 4)"))
        }
        guard s.width > 0, s.height > 0 else {
            return .unreadable(UnreadableImage(.corrupt, "JPEG frame header gives size \(s.width)×\(s.height)"))
        }
        if let tooLarge = checkPixelLimit(s.width, s.height) { return .unreadable(tooLarge) }
        guard s.reachesEndOfImage else {
            return .unreadable(
                UnreadableImage(.truncated, "JPEG is truncated (no end-of-image marker; PIL: image file is truncated)"))
        }
        if turbo == nil { turbo = tjInitDecompress() }
        guard let turbo else {
            return .unreadable(UnreadableImage(.corrupt, "cannot create a TurboJPEG decompressor"))
        }
        let w = s.width, h = s.height
        image.reshape(width: w, height: h)
        let flags = Int32(TJFLAG_ACCURATEDCT)
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            return .unreadable(UnreadableImage(.truncated, "empty file"))
        }
        var status: Int32
        if s.components == 4 {
            if scratch.count < w * h * 4 { scratch = [UInt8](repeating: 0, count: w * h * 4) }
            status = scratch.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(
                    turbo, base, UInt(bytes.count), dst.baseAddress, Int32(w), 0, Int32(h),
                    Int32(TJPF_CMYK.rawValue), flags)
            }
            if status == 0 || tjGetErrorCode(turbo) == Int32(TJERR_WARNING.rawValue) {
                convertInvertedCMYK(count: w * h, into: &image)
            }
        } else {
            status = image.pixels.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(
                    turbo, base, UInt(bytes.count), dst.baseAddress, Int32(w), 0, Int32(h),
                    Int32(TJPF_RGB.rawValue), flags)
            }
        }
        // Warnings (corrupt data that libjpeg worked around) are tolerated, as PIL does.
        if status != 0 && tjGetErrorCode(turbo) != Int32(TJERR_WARNING.rawValue) {
            let message = String(cString: tjGetErrorStr2(turbo))
            return .unreadable(UnreadableImage(.corrupt, "JPEG decoding failed: \(message)"))
        }
        return .decoded(ImageInfo(format: .jpeg, sourceMode: mode, width: w, height: h))
    }

    /// PIL reads CMYK JPEGs with raw mode `CMYK;I` (Adobe polarity: every byte inverted) and
    /// converts with `cmyk2rgb`: `R = clip(nk − round(c·nk/255))` with `nk = 255 − k`, where the
    /// rounding is Pillow's `MULDIV255`.
    private func convertInvertedCMYK(count: Int, into image: inout RGBImage) {
        scratch.withUnsafeBufferPointer { src in
            image.pixels.withUnsafeMutableBufferPointer { dst in
                for i in 0..<count {
                    let c = 255 - Int(src[4 * i]), m = 255 - Int(src[4 * i + 1])
                    let y = 255 - Int(src[4 * i + 2]), k = 255 - Int(src[4 * i + 3])
                    let nk = 255 - k
                    dst[3 * i] = clip8(nk - mulDiv255(c, nk))
                    dst[3 * i + 1] = clip8(nk - mulDiv255(m, nk))
                    dst[3 * i + 2] = clip8(nk - mulDiv255(y, nk))
                }
            }
        }
    }

    func checkPixelLimit(_ w: Int, _ h: Int) -> UnreadableImage? {
        let pixels = w.multipliedReportingOverflow(by: h)
        if pixels.overflow || pixels.partialValue > maxPixels {
            return UnreadableImage(
                .tooLarge,
                "image of \(w)×\(h) pixels exceeds the limit of \(maxPixels) pixels "
                    + "(PIL's decompression-bomb limit by default)")
        }
        return nil
    }
}

@inline(__always) func mulDiv255(_ a: Int, _ b: Int) -> Int {
    let t = a * b + 128
    return ((t >> 8) + t) >> 8
}

@inline(__always) func clip8(_ v: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: v < 0 ? 0 : (v > 255 ? 255 : v))
}

func errnoText() -> String {
    String(cString: strerror(errno))
}
