internal import CLinprobeJPEG
internal import CLinprobePNG

/// Versions of the image libraries Linprobe decodes with (recorded in provenance).
public enum CodecVersions {
    /// libpng's version string, e.g. `1.6.39`.
    public static var libpng: String {
        guard let p = png_get_libpng_ver(nil) else { return "unknown" }
        return String(cString: p)
    }

    /// libjpeg-turbo's version as compiled in (the TurboJPEG v2 API has no runtime query).
    public static var libjpegTurbo: String {
        let v = Int(lp_jpeg_turbo_version())
        return v == 0 ? "2.x" : "\(v / 1_000_000).\(v / 1000 % 1000).\(v % 1000)"
    }

    /// Whether a TurboJPEG decompressor can be created (link smoke check).
    public static func turboJPEGAvailable() -> Bool {
        guard let handle = tjInitDecompress() else { return false }
        tjDestroy(handle)
        return true
    }
}
