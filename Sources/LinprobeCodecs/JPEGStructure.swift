/// What the marker structure of a JPEG stream says, read without decoding any pixels.
///
/// Linprobe needs this for two reasons TurboJPEG does not serve: the frame header (size,
/// components, sample precision) even for chroma subsamplings `tjDecompressHeader3` refuses, and
/// whether the stream reaches its end-of-image marker. PIL raises "image file is truncated"
/// whenever libjpeg runs out of data before EOI, whereas TurboJPEG's memory source silently
/// inserts a fake EOI (only a warning); checking for EOI here reproduces PIL's verdict.
struct JPEGStructure: Equatable {
    var width = 0
    var height = 0
    var components = 0
    var precision = 0
    /// The SOFn marker byte (0xC0 baseline, 0xC2 progressive, …), 0 if none was seen.
    var frameMarker: UInt8 = 0
    /// Whether an EOI marker follows the last scan.
    var reachesEndOfImage = false

    /// Walks the markers; `nil` when the stream is not structured as JPEG at all.
    static func scan(_ b: UnsafeRawBufferPointer) -> JPEGStructure? {
        let n = b.count
        guard n >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return nil }
        var s = JPEGStructure()
        var pos = 2
        while pos < n {
            // Find the next marker: PIL and libjpeg both skip junk between segments.
            guard b[pos] == 0xFF else { pos += 1; continue }
            var m = pos + 1
            while m < n, b[m] == 0xFF { m += 1 }  // fill bytes
            guard m < n else { break }
            let marker = b[m]
            pos = m + 1
            switch marker {
            case 0x00:
                continue  // stuffed byte outside a scan: junk
            case 0xD9:
                s.reachesEndOfImage = true
                return s
            case 0xD8, 0x01, 0xD0...0xD7:
                continue  // standalone markers
            default:
                break
            }
            guard pos + 2 <= n else { return s }
            let length = Int(b[pos]) << 8 | Int(b[pos + 1])
            guard length >= 2 else { return s }
            let body = pos + 2
            let end = pos + length
            guard end <= n else { return s }
            if isStartOfFrame(marker), length >= 8, s.frameMarker == 0 {
                s.frameMarker = marker
                s.precision = Int(b[body])
                s.height = Int(b[body + 1]) << 8 | Int(b[body + 2])
                s.width = Int(b[body + 3]) << 8 | Int(b[body + 4])
                s.components = Int(b[body + 5])
            }
            pos = end
            if marker == 0xDA {
                // Entropy-coded data runs to the next marker that is not a stuffed byte or RSTn.
                while pos + 1 < n {
                    if b[pos] == 0xFF {
                        let next = b[pos + 1]
                        if next == 0x00 || (0xD0...0xD7).contains(next) || next == 0xFF {
                            pos += next == 0xFF ? 1 : 2
                            continue
                        }
                        break
                    }
                    pos += 1
                }
                if pos + 1 >= n { return s }
            }
        }
        return s
    }

    private static func isStartOfFrame(_ m: UInt8) -> Bool {
        (0xC0...0xCF).contains(m) && m != 0xC4 && m != 0xC8 && m != 0xCC
    }
}
