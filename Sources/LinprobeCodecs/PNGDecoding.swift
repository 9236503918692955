internal import CLinprobePNG

/// PNG through libpng's simplified `png_image` API, reproducing PIL's `convert("RGB")`.
///
/// PIL ignores colour-space chunks and converts without compositing, while the simplified API
/// gamma-corrects (from `gAMA`/`sRGB`/`iCCP`/`cHRM`), composites alpha away when the requested
/// format has none, and premultiplies 16-bit ("linear") output. So:
/// - the colour-space chunks are dropped from (a copy of) the stream before libpng sees it, so
///   8-bit data is taken as sRGB and 16-bit data as linear: no gamma conversion in either case;
/// - images with alpha (an alpha channel or `tRNS`) are read with alpha, which is then dropped,
///   as PIL's `RGBA`/`LA`/`P` → `RGB` conversions do;
/// - 16-bit samples become their high byte (PIL's `RGB;16B`, `LA;16B` raw modes), except 16-bit
///   grayscale, which PIL opens as `I;16` and converts with `min(v, 255)` (so such images are
///   mostly white in PIL, and in VISSL — reproduced on purpose);
/// - pixels that a `tRNS` key made transparent (premultiplied to 0 by libpng) get the key back;
/// - 16-bit images with an alpha channel: opaque pixels are exact; for translucent pixels the
///   unpremultiplied high byte cannot be recovered exactly through this API, so it is taken from
///   a second, 8-bit read (libpng rounds `v/257` where PIL truncates `v/256`), refined by the
///   premultiplied value — off by at most one level, and only there. (For interlaced files the
///   8-bit read is unusable — a libpng bug — and translucent pixels are unpremultiplied, exact
///   within one level where alpha ≥ 1/256, unknown — black — where alpha is 0.)
extension ImageDecoder {
    func decodePNG(_ bytes: UnsafeRawBufferPointer, into image: inout RGBImage) -> DecodeOutcome {
        guard let header = PNGStructure.scanAndStrip(bytes, into: &scratch2) else {
            return .unreadable(UnreadableImage(.corrupt, "PNG has no valid IHDR header"))
        }
        if let tooLarge = checkPixelLimit(header.width, header.height) { return .unreadable(tooLarge) }
        if let refusal = header.refusal { return .unreadable(refusal) }
        let stripped = header.strippedCount
        return scratch2.withUnsafeBytes { raw in
            decodeStrippedPNG(UnsafeRawBufferPointer(rebasing: raw[0..<stripped]), header: header, into: &image)
        }
    }

    private func decodeStrippedPNG(
        _ data: UnsafeRawBufferPointer, header: PNGStructure,
        into image: inout RGBImage
    ) -> DecodeOutcome {
        let w = header.width, h = header.height, n = w * h
        let mode = header.pilMode
        let info = ImageInfo(format: .png, sourceMode: mode, width: w, height: h)
        image.reshape(width: w, height: h)
        if header.bitDepth < 16 {
            let hasAlpha = header.colorType == 4 || header.colorType == 6 || header.trns != nil
            if !hasAlpha {
                if let failure = readPNG(data, format: UInt32(PNG_FORMAT_FLAG_COLOR), flags: 0, into: &image.pixels) {
                    return .unreadable(failure)
                }
                return .decoded(info)
            }
            if let failure = readPNG(
                data, format: UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA), flags: 0, into: &scratch)
            {
                return .unreadable(failure)
            }
            scratch.withUnsafeBufferPointer { src in
                image.pixels.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<n {
                        dst[3 * i] = src[4 * i]
                        dst[3 * i + 1] = src[4 * i + 1]
                        dst[3 * i + 2] = src[4 * i + 2]
                    }
                }
            }
            return .decoded(info)
        }

        // 16-bit samples.
        let color = header.colorType == 2 || header.colorType == 6
        let channels = color ? 3 : 1
        let alphaChannel = header.colorType == 4 || header.colorType == 6
        let withAlpha = alphaChannel || header.trns != nil
        var format = UInt32(PNG_FORMAT_FLAG_LINEAR)
        if color { format |= UInt32(PNG_FORMAT_FLAG_COLOR) }
        if withAlpha { format |= UInt32(PNG_FORMAT_FLAG_ALPHA) }
        let stride = channels + (withAlpha ? 1 : 0)
        if let failure = readPNG(data, format: format, flags: 0, into: &scratch) {
            return .unreadable(failure)
        }
        // PIL's conversion of one 16-bit sample: high byte, or min(v, 255) for I;16 grayscale.
        let grayI16 = header.colorType == 0
        @inline(__always) func pil(_ v: Int) -> UInt8 {
            grayI16 ? UInt8(min(v, 255)) : UInt8(v >> 8)
        }
        // libpng 1.6.39 garbles this 8-bit read for interlaced 16-bit images: there, the high
        // byte is estimated from the premultiplied value alone.
        let useRounded = alphaChannel && !header.interlaced
        if useRounded {
            // Second read: 8-bit, unpremultiplied, no gamma change (16-bit data declared sRGB).
            var format8 = UInt32(PNG_FORMAT_FLAG_ALPHA)
            if color { format8 |= UInt32(PNG_FORMAT_FLAG_COLOR) }
            if let failure = readPNG(data, format: format8, flags: UInt32(PNG_IMAGE_FLAG_16BIT_sRGB), into: &scratch3) {
                return .unreadable(failure)
            }
        }
        let key = header.trnsKey16
        scratch.withUnsafeBytes { raw in
            let s = raw.bindMemory(to: UInt16.self)
            scratch3.withUnsafeBufferPointer { s8 in
                image.pixels.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<n {
                        let a = withAlpha ? Int(s[i * stride + channels]) : 65535
                        for c in 0..<channels {
                            let p = Int(s[i * stride + c])
                            let v: UInt8
                            if a == 65535 {
                                v = pil(p)
                            } else if !alphaChannel {
                                // Only a tRNS key makes pixels transparent here: restore the key.
                                v = pil(key.isEmpty ? 0 : Int(key[min(c, key.count - 1)]))
                            } else {
                                v =
                                    useRounded
                                    ? highByte(premultiplied: p, alpha: a, rounded8: Int(s8[i * stride + c]))
                                    : highByte(premultiplied: p, alpha: a)
                            }
                            if channels == 3 {
                                dst[3 * i + c] = v
                            } else {
                                dst[3 * i] = v
                                dst[3 * i + 1] = v
                                dst[3 * i + 2] = v
                            }
                        }
                    }
                }
            }
        }
        return .decoded(info)
    }

    /// One simplified-API read of the whole image into `buffer` (grown as needed).
    private func readPNG(
        _ data: UnsafeRawBufferPointer, format: UInt32, flags: UInt32,
        into buffer: inout [UInt8]
    ) -> UnreadableImage? {
        var img = png_image()
        lp_png_image_init(&img)
        defer { png_image_free(&img) }
        guard png_image_begin_read_from_memory(&img, data.baseAddress, data.count) != 0 else {
            return UnreadableImage(.corrupt, "PNG header rejected: \(message(img))")
        }
        img.format = format
        img.flags |= flags
        let size = Int(lp_png_image_size(&img))
        if buffer.count < size { buffer = [UInt8](repeating: 0, count: size) }
        let ok = buffer.withUnsafeMutableBytes { dst in
            png_image_finish_read(&img, nil, dst.baseAddress, 0, nil)
        }
        guard ok != 0 else {
            let text = message(img)
            let truncated =
                text.contains("EOF") || text.contains("end of") || text.contains("Not enough")
                || text.contains("truncated")
            return UnreadableImage(truncated ? .truncated : .corrupt, "PNG decoding failed: \(text)")
        }
        return nil
    }

    private func message(_ img: png_image) -> String {
        var copy = img
        var buf = [CChar](repeating: 0, count: 80)
        buf.withUnsafeMutableBufferPointer { lp_png_image_message(&copy, $0.baseAddress, 80) }
        let text = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.isEmpty ? "unknown libpng error" : text
    }
}

/// The high byte PIL would take from a 16-bit sample `v` that libpng only gives as its
/// premultiplied value `p ≈ v·a/65535` and its 8-bit rounding `r = round(v/257)` (libpng's
/// `png_do_scale_16_to_8`: `r = hi + ((lo − hi + 128)·65535 >> 24)`).
@inline(__always)
func highByte(premultiplied p: Int, alpha a: Int, rounded8 r: Int) -> UInt8 {
    // Candidates for the high byte consistent with r, nearest first.
    var best = -1
    for hi in [r, r - 1, r + 1] where hi >= 0 && hi <= 255 {
        // Range of low bytes giving r: lo − hi + 128 < 0 → r = hi − 1; ≥ 257 → hi + 1; else hi.
        let loRange: ClosedRange<Int>
        switch r - hi {
        case 0: loRange = max(0, hi - 128)...min(255, hi + 128)
        case -1: guard hi - 129 >= 0 else { continue }; loRange = 0...(hi - 129)
        default: guard hi + 129 <= 255 else { continue }; loRange = (hi + 129)...255
        }
        if loRange.isEmpty { continue }
        if best < 0 { best = hi }
        guard a > 0 else { break }
        // Does some v in this range premultiply to p (±1 for libpng's rounding)?
        let vLow = hi * 256 + loRange.lowerBound, vHigh = hi * 256 + loRange.upperBound
        let pLow = (vLow * a) / 65535, pHigh = (vHigh * a + 65534) / 65535
        if p >= pLow - 1 && p <= pHigh + 1 { return UInt8(hi) }
    }
    return UInt8(clamping: best < 0 ? r : best)
}

/// The high byte of a 16-bit sample known only premultiplied by `a` (0 when `a` is 0).
@inline(__always)
func highByte(premultiplied p: Int, alpha a: Int) -> UInt8 {
    guard a > 0 else { return 0 }
    return UInt8(min(255, ((p * 65535 + a / 2) / a) >> 8))
}

/// IHDR facts and `tRNS`, gathered while copying the stream without its colour-space chunks.
struct PNGStructure {
    var width = 0
    var height = 0
    var bitDepth = 0
    var colorType = 0
    var interlaced = false
    var trns: [UInt8]?
    var strippedCount = 0
    /// Why PIL would refuse the file (see `scanAndStrip`); nil when it would decode it.
    var refusal: UnreadableImage?

    /// PIL's mode for this IHDR.
    var pilMode: String {
        switch (colorType, bitDepth) {
        case (0, 1): return "1"
        case (0, 16): return "I;16"
        case (0, _): return "L"
        case (2, _): return "RGB"
        case (3, _): return "P"
        case (4, _): return "LA"
        default: return "RGBA"
        }
    }

    /// The 16-bit tRNS key samples (gray: one, RGB: three).
    var trnsKey16: [UInt16] {
        guard let t = trns, colorType == 0 || colorType == 2 else { return [] }
        return stride(from: 0, to: t.count - 1, by: 2).map { UInt16(t[$0]) << 8 | UInt16(t[$0 + 1]) }
    }

    /// Chunks libpng's simplified API would use for colour management, which PIL ignores.
    private static let dropped: Set<UInt32> = [fourCC("gAMA"), fourCC("cHRM"), fourCC("sRGB"), fourCC("iCCP")]

    private static func fourCC(_ s: String) -> UInt32 {
        s.utf8.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Copies `bytes` into `out` without the dropped chunks; nil when there is no valid IHDR.
    /// Malformed chunk structure after IHDR is copied through for libpng to report. Where PIL
    /// (VISSL's decoder) and libpng disagree, PIL's behaviour is reproduced and `refusal` set:
    /// - a bad CRC on an `IDAT` chunk is ignored (PIL never checks it): the copy gets the right one;
    /// - a bad CRC on any chunk before the image data is refused ("broken PNG file");
    /// - `zTXt`, `iCCP` and compressed `iTXt` that inflate past 1 MiB (PIL's `MAX_TEXT_CHUNK`),
    ///   text past 64 MiB in all (`MAX_TEXT_MEMORY`) and an unknown compression method are refused
    ///   (PIL raises on them; libpng would skip the chunk and decode). A broken zlib stream is not:
    ///   PIL decodes such a file too.
    static func scanAndStrip(_ b: UnsafeRawBufferPointer, into out: inout [UInt8]) -> PNGStructure? {
        let n = b.count
        guard n >= 33, let source = b.baseAddress else { return nil }
        func be32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        guard be32(12) == fourCC("IHDR"), be32(8) == 13 else { return nil }
        var s = PNGStructure()
        s.width = be32(16)
        s.height = be32(20)
        s.bitDepth = Int(b[24])
        s.colorType = Int(b[25])
        s.interlaced = b[28] != 0
        if out.count < n { out = [UInt8](repeating: 0, count: n) }
        var written = 0
        var checks = ChunkChecks()
        out.withUnsafeMutableBytes { dst in
            guard let target = dst.baseAddress else { return }  // out.count ≥ n ≥ 33
            func copy(_ from: Int, _ count: Int) {
                target.advanced(by: written).copyMemory(from: source.advanced(by: from), byteCount: count)
                written += count
            }
            copy(0, 8)
            var pos = 8
            while pos + 12 <= n, s.refusal == nil {
                let length = be32(pos)
                let type = UInt32(truncatingIfNeeded: be32(pos + 4))
                let end = pos + 12 + length
                guard length >= 0, end <= n else { break }
                let chunk = UnsafeRawBufferPointer(rebasing: b[pos..<end])
                if type == fourCC("tRNS") {
                    s.trns = Array(UnsafeRawBufferPointer(rebasing: chunk[8..<(8 + length)]))
                }
                s.refusal = checks.refusal(chunk, type: type)
                if !dropped.contains(type) {
                    copy(pos, end - pos)
                    if type == fourCC("IDAT"), let crc = checks.correctCRC(chunk) {
                        for k in 0..<4 {
                            let byte = UInt8(truncatingIfNeeded: crc >> (24 - 8 * k))
                            target.storeBytes(of: byte, toByteOffset: written - 4 + k, as: UInt8.self)
                        }
                    }
                }
                pos = end
            }
            if pos < n { copy(pos, n - pos) }
        }
        s.strippedCount = written
        return s
    }

    /// PIL's limits on a PNG's chunks (PngImagePlugin: `MAX_TEXT_CHUNK`, `MAX_TEXT_MEMORY`).
    struct ChunkChecks {
        static let maxTextChunk = 1 << 20
        static let maxTextMemory = 64 << 20
        var seenImageData = false
        var textMemory = 0

        /// Why PIL would refuse the file because of this chunk (nil: fine, or libpng's to judge).
        mutating func refusal(_ chunk: UnsafeRawBufferPointer, type: UInt32) -> UnreadableImage? {
            let name = String(decoding: chunk[4..<8], as: UTF8.self)
            if name == "IDAT" { seenImageData = true }
            if !seenImageData, correctCRC(chunk) != nil {
                return UnreadableImage(.corrupt, "broken PNG file: bad CRC in its \(name) chunk (PIL refuses it)")
            }
            let data = UnsafeRawBufferPointer(rebasing: chunk[8..<(chunk.count - 4)])
            switch name {
            case "tEXt": return countText(data.count, name)
            case "zTXt", "iCCP": return compressed(data, afterKeyword: true, name)
            case "iTXt":
                guard let zero = data.firstIndex(of: 0), zero + 2 < data.count, data[zero + 1] == 1 else {
                    return countText(data.count, name)
                }
                // keyword\0 flag method language\0 translated\0 text
                var at = zero + 2
                for _ in 0..<2 {
                    guard let next = data[(at + 1)...].firstIndex(of: 0) else { return nil }
                    at = next
                }
                return compressed(UnsafeRawBufferPointer(rebasing: data[(zero + 2)...]), skipping: at - zero - 2, name)
            default: return nil
            }
        }

        /// The chunk's correct CRC when the stored one differs (nil when it matches).
        func correctCRC(_ chunk: UnsafeRawBufferPointer) -> UInt32? {
            guard let base = chunk.baseAddress else { return nil }
            let body = chunk.count - 8
            let typeAndData = base.advanced(by: 4).assumingMemoryBound(to: UInt8.self)
            let crc = UInt32(truncatingIfNeeded: lp_png_chunk_crc(typeAndData, body))
            let stored = chunk[(chunk.count - 4)...].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            return crc == stored ? nil : crc
        }

        private mutating func countText(_ bytes: Int, _ name: String) -> UnreadableImage? {
            textMemory += bytes
            guard textMemory > Self.maxTextMemory else { return nil }
            return UnreadableImage(
                .tooLarge, "PNG text chunks hold more than 64 MiB (PIL's MAX_TEXT_MEMORY; it refuses the file)")
        }

        /// `data` = keyword\0 method stream (zTXt, iCCP: `afterKeyword`), or method stream after
        /// `skipping` bytes of language and translated keyword (iTXt).
        private mutating func compressed(
            _ data: UnsafeRawBufferPointer, afterKeyword: Bool = false, skipping: Int = 0, _ name: String
        ) -> UnreadableImage? {
            var start = 0
            if afterKeyword {
                guard let zero = data.firstIndex(of: 0), zero + 1 < data.count else { return nil }
                start = zero + 1
            }
            guard data[start] == 0 else {
                return UnreadableImage(
                    .corrupt, "PNG \(name) chunk: unknown compression method \(data[start]) (PIL refuses the file)")
            }
            start += 1 + skipping
            guard start <= data.count, let base = data.baseAddress else { return nil }
            let stream = base.advanced(by: start).assumingMemoryBound(to: UInt8.self)
            let size = lp_png_inflated_size(stream, data.count - start, Self.maxTextChunk)
            switch size {
            case 0...Int64(Self.maxTextChunk): return name == "iCCP" ? nil : countText(Int(size), name)
            case Int64(Self.maxTextChunk + 1):
                return UnreadableImage(
                    .tooLarge,
                    "PNG \(name) chunk inflates past 1 MiB (PIL's MAX_TEXT_CHUNK: it refuses the file as a decompression bomb)"
                )
            default: return nil  // a broken stream: PIL keeps going, and libpng skips the chunk
            }
        }
    }
}
