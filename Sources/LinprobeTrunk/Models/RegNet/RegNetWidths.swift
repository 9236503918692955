import Foundation

/// One stage of a RegNet / AnyNet: output width, number of blocks, stride of its first block,
/// group width of the 3×3 convolutions and bottleneck multiplier.
public struct RegNetStage: Sendable, Hashable {
    public let width: Int
    public let depth: Int
    public let stride: Int
    public let groupWidth: Int
    public let bottleneckMultiplier: Double

    public init(width: Int, depth: Int, stride: Int, groupWidth: Int, bottleneckMultiplier: Double) {
        self.width = width
        self.depth = depth
        self.stride = stride
        self.groupWidth = groupWidth
        self.bottleneckMultiplier = bottleneckMultiplier
    }
}

/// ClassyVision's RegNet parameters (`RegNetParams`) and its width generation. Every rounding
/// is Python's / numpy's round-half-to-even (`.toNearestOrEven`): with ties away from zero
/// `regnet_y_800mf` and SEER-256GF come out with widths their checkpoints do not have.
public struct RegNetParameters: Sendable, Hashable {
    public let depth: Int
    public let w0: Double
    public let wa: Double
    public let wm: Double
    public let groupWidth: Int
    public let bottleneckMultiplier: Double

    public init(depth: Int, w0: Double, wa: Double, wm: Double, groupWidth: Int, bottleneckMultiplier: Double = 1) {
        self.depth = depth
        self.w0 = w0
        self.wa = wa
        self.wm = wm
        self.groupWidth = groupWidth
        self.bottleneckMultiplier = bottleneckMultiplier
    }

    /// ClassyVision's named models (`classy_vision/models/regnet.py`): depth, w_0, w_a, w_m,
    /// group width, and whether the blocks have squeeze-and-excitation (Y) or not (X).
    public static let named: [String: (parameters: RegNetParameters, useSE: Bool)] = [
        "regnet_y_400mf": (RegNetParameters(depth: 16, w0: 48, wa: 27.89, wm: 2.09, groupWidth: 8), true),
        "regnet_y_800mf": (RegNetParameters(depth: 14, w0: 56, wa: 38.84, wm: 2.4, groupWidth: 16), true),
        "regnet_y_1.6gf": (RegNetParameters(depth: 27, w0: 48, wa: 20.71, wm: 2.65, groupWidth: 24), true),
        "regnet_y_3.2gf": (RegNetParameters(depth: 21, w0: 80, wa: 42.63, wm: 2.66, groupWidth: 24), true),
        "regnet_y_8gf": (RegNetParameters(depth: 17, w0: 192, wa: 76.82, wm: 2.19, groupWidth: 56), true),
        "regnet_y_16gf": (RegNetParameters(depth: 18, w0: 200, wa: 106.23, wm: 2.48, groupWidth: 112), true),
        "regnet_y_32gf": (RegNetParameters(depth: 20, w0: 232, wa: 115.89, wm: 2.53, groupWidth: 232), true),
        "regnet_y_64gf": (RegNetParameters(depth: 20, w0: 368, wa: 102.79, wm: 2.05, groupWidth: 496), true),
        "regnet_y_128gf": (RegNetParameters(depth: 27, w0: 456, wa: 160.83, wm: 2.52, groupWidth: 264), true),
        "regnet_y_256gf": (RegNetParameters(depth: 27, w0: 640, wa: 124.47, wm: 2.04, groupWidth: 848), true),
        "regnet_x_400mf": (RegNetParameters(depth: 22, w0: 24, wa: 24.48, wm: 2.54, groupWidth: 16), false),
        "regnet_x_800mf": (RegNetParameters(depth: 16, w0: 56, wa: 35.73, wm: 2.28, groupWidth: 16), false),
        "regnet_x_1.6gf": (RegNetParameters(depth: 18, w0: 80, wa: 34.01, wm: 2.25, groupWidth: 24), false),
        "regnet_x_3.2gf": (RegNetParameters(depth: 25, w0: 88, wa: 26.31, wm: 2.25, groupWidth: 48), false),
        "regnet_x_8gf": (RegNetParameters(depth: 23, w0: 80, wa: 49.56, wm: 2.88, groupWidth: 120), false),
        "regnet_x_16gf": (RegNetParameters(depth: 22, w0: 216, wa: 55.59, wm: 2.1, groupWidth: 128), false),
        "regnet_x_32gf": (RegNetParameters(depth: 23, w0: 320, wa: 69.86, wm: 2.0, groupWidth: 168), false),
    ]

    /// ClassyVision's RegNetZ names, which need blocks Linprobe does not implement.
    public static let unsupportedNames: Set<String> = ["regnet_z_500mf", "regnet_z_4gf"]

    /// Python's `round(x)` / `np.round(x)` (half to even).
    static func roundEven(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

    /// `RegNetParams.get_expanded_params`: per-block widths quantised in log space to multiples
    /// of 8, runs of equal width as stages (stride 2), then widths adjusted to the group width.
    public var stages: [RegNetStage] {
        var blockWidths: [Int] = []
        for j in 0..<depth {
            let u = Double(j) * wa + w0
            let c = RegNetParameters.roundEven(Foundation.log(u / w0) / Foundation.log(wm))
            blockWidths.append(Int(RegNetParameters.roundEven(w0 * Foundation.pow(wm, c) / 8) * 8))
        }
        var widths: [Int] = []
        var depths: [Int] = []
        for w in blockWidths {
            if widths.last == w {
                depths[depths.count - 1] += 1
            } else {
                widths.append(w)
                depths.append(1)
            }
        }
        let b = bottleneckMultiplier
        return zip(widths, depths).map { w, d in
            // _adjust_widths_groups_compatibilty: int() truncates, round() is half-to-even.
            let bottleneck = Int(Double(w) * b)
            let g = min(groupWidth, bottleneck)
            let quantized = Int(RegNetParameters.roundEven(Double(bottleneck) / Double(g)) * Double(g))
            return RegNetStage(
                width: Int(Double(quantized) / b), depth: d, stride: 2, groupWidth: g, bottleneckMultiplier: b)
        }
    }
}
