/// Image container formats, recognised from the file's first bytes (as PIL does), never from
/// the file name.
public enum ImageFormat: String, Sendable, Codable, CaseIterable {
    case jpeg, png, gif, bmp, tiff, webp, pnm, unknown

    /// Sniffs the format from the leading bytes.
    public static func sniff(_ bytes: UnsafeRawBufferPointer) -> ImageFormat {
        func starts(_ prefix: [UInt8]) -> Bool {
            bytes.count >= prefix.count && zip(bytes.prefix(prefix.count), prefix).allSatisfy { $0 == $1 }
        }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        if starts(Array("BM".utf8)) { return .bmp }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if bytes.count >= 12, starts(Array("RIFF".utf8)),
            Array(bytes[8..<12]) == Array("WEBP".utf8)
        {
            return .webp
        }
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), (UInt8(ascii: "1")...UInt8(ascii: "7")).contains(bytes[1]) {
            return .pnm
        }
        return .unknown
    }
}
