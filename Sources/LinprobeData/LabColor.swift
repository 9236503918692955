import Foundation

/// OpenCV's 8-bit `cvtColor(BGR2Lab)` (`RGB2Lab_b` in `imgproc/src/color_lab.cpp`), the
/// conversion VISSL's `ImgPil2LabTensor` calls: sRGB gamma to 11 bits through a 256-entry table,
/// a 12-bit fixed-point sRGB→XYZ matrix (D65 white folded in), a cube-root table over 15 bits,
/// then `L8 = L·255/100`, `a8 = a + 128`, `b8 = b + 128`, each rounded and saturated to a byte.
///
/// Checked against OpenCV 5.1 (opencv-python-headless) on all 2^24 colours: L identical
/// everywhere; a and b differ by one step for 962 and 713 colours (OpenCV's vector path rounds
/// differently there). VISSL's colorization AlexNet reads L only.
public enum LabColor {
    static let labShift = 12, gammaShift = 3, labShift2 = 15

    /// sRGB byte → linear light · 255 · 2^gamma_shift (OpenCV's `sRGBGammaTab_b`).
    static let gammaTable: [Int] = (0..<256).map { i in
        let x = Double(i) / 255
        let linear = x <= 0.04045 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4)
        return Int((255 * 8 * linear).rounded(.toNearestOrEven))
    }

    /// f(t) = t^(1/3) (or 7.787·t + 16/116 below 216/24389) · 2^15 for t = i / (255·8)
    /// (OpenCV's `LabCbrtTab_b`, 256·3/2·8 entries).
    static let cubeRootTable: [Int] = (0..<(256 * 3 / 2 * 8)).map { i in
        let x = Double(i) / (255 * 8)
        let f = x < 216.0 / 24389.0 ? x * (841.0 / 108.0) + 16.0 / 116.0 : cbrt(x)
        return Int((32768 * f).rounded(.toNearestOrEven))
    }

    /// The sRGB→XYZ (D65) matrix divided by the white point, · 2^12, rows X, Y, Z over R, G, B.
    static let coefficients: [Int] = {
        let m = [0.412453, 0.357580, 0.180423, 0.212671, 0.715160, 0.072169, 0.019334, 0.119193, 0.950227]
        let white = [0.950456, 1.0, 1.088754]
        return (0..<9).map { i in
            Int((4096 * Double(Float(m[i])) / Double(Float(white[i / 3]))).rounded(.toNearestOrEven))
        }
    }()

    @inline(__always) static func descale(_ x: Int, _ n: Int) -> Int { (x + (1 << (n - 1))) >> n }

    @inline(__always) static func saturate(_ v: Int) -> UInt8 { UInt8(clamping: v) }

    /// The 8-bit Lab triple (L8, a8, b8) of one RGB pixel.
    @inline(__always)
    public static func lab8(r: UInt8, g: UInt8, b: UInt8) -> (UInt8, UInt8, UInt8) {
        let c = coefficients, cube = cubeRootTable, gt = gammaTable
        let R = gt[Int(r)], G = gt[Int(g)], B = gt[Int(b)]
        let fX = cube[descale(R * c[0] + G * c[1] + B * c[2], labShift)]
        let fY = cube[descale(R * c[3] + G * c[4] + B * c[5], labShift)]
        let fZ = cube[descale(R * c[6] + G * c[7] + B * c[8], labShift)]
        let lScale = (116 * 255 + 50) / 100, lShift = -((16 * 255 * (1 << labShift2) + 50) / 100)
        let l = descale(lScale * fY + lShift, labShift2)
        let a = descale(500 * (fX - fY) + 128 * (1 << labShift2), labShift2)
        let bb = descale(200 * (fY - fZ) + 128 * (1 << labShift2), labShift2)
        return (saturate(l), saturate(a), saturate(bb))
    }

    /// `ImgPil2LabTensor`'s float value of a Lab byte of channel `c`: `L8·(100/255) − 50` for L
    /// (float32 arithmetic, as NumPy does it), `v − 128` for a and b.
    public static func tensorValue(channel c: Int, byte v: UInt8) -> Float {
        c == 0 ? Float(v) * Float(100.0 / 255.0) - 50 : Float(v) - 128
    }
}
