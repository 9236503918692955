import Foundation
import LinprobeCore

/// VISSL's `resnet_sk` trunk (`vissl/models/trunks/resnext_selective_kernels.py`, `MODEL.TRUNK.RESNETS_SK`):
/// the SimCLRv2 ResNets. With `SK_RATIO > 0` (SimCLRv2's "sk1"): a three-conv 3×3 stem, selective-kernel
/// 3×3 convolutions (one 3×3 conv to 2C channels, split in two, mixed per channel by a softmax over
/// a squeeze of their sum) and average-pool projection shortcuts; with `SK_RATIO` 0 a plain 7×7 stem
/// and 1×1 strided projections. Every stage's first block has a projection (stage 1 too). BatchNorm
/// eps 1e-5; convolutions without bias; padding (k − 1)/2.
///
/// VISSL's forward ignores the requested taps and returns the global average of the last stage,
/// so the trunk offers one tap, `flatten` (N × 2048·w); its overlays use an empty pool-op map.
public struct ResNetSKSpec: Sendable, Hashable, CustomStringConvertible {
    /// Depths VISSL builds (`BLOCK_CONFIG`).
    public static let supportedDepths = [152]

    public let depth: Int
    public let widthMultiplier: Int
    public let skRatio: Double
    /// Blocks per stage (from the depth; tests build smaller networks).
    public let blockCounts: [Int]

    public static let keyPath = "MODEL.TRUNK.RESNETS_SK"

    /// A network with explicit stage depths (VISSL's configurations go through `init(model:)`).
    init(blockCounts: [Int], widthMultiplier: Int, skRatio: Double, depth: Int = 152) {
        self.depth = depth
        self.widthMultiplier = widthMultiplier
        self.skRatio = skRatio
        self.blockCounts = blockCounts
    }

    /// Reads `TRUNK.RESNETS_SK` (VISSL's defaults: DEPTH 152, WIDTH_MULTIPLIER 3, SK_RATIO 0.0625).
    public init(model: ConfigNode) throws {
        let trunk = model["TRUNK"]
        let params = trunk["TRUNK_PARAMS"]["RESNETS_SK"]
        let node = params.exists ? params : trunk["RESNETS_SK"]
        let known: Set<String> = ["DEPTH", "WIDTH_MULTIPLIER", "SK_RATIO"]
        if node.exists {
            for key in try node.keys() where !known.contains(key) {
                throw LinprobeError.config(
                    "\(node.path).\(key): unknown key (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
        let depth = try node["DEPTH"].intIfPresent() ?? 152
        guard Self.supportedDepths.contains(depth) else {
            throw LinprobeError.config(
                "\(node.path).DEPTH: \(depth) is not supported (VISSL's resnet_sk builds only 152)")
        }
        let width = try node["WIDTH_MULTIPLIER"].intIfPresent() ?? 3
        guard (1...16).contains(width) else {
            throw LinprobeError.config("\(node.path).WIDTH_MULTIPLIER: \(width) is outside 1…16")
        }
        let ratio = try node["SK_RATIO"].doubleIfPresent() ?? 0.0625
        guard ratio >= 0, ratio <= 16, ratio.isFinite else {
            throw LinprobeError.config("\(node.path).SK_RATIO: \(ratio) must be between 0 and 16")
        }
        let input = try model["INPUT_TYPE"].stringIfPresent() ?? "rgb"
        guard input == "rgb" || input == "bgr" else {
            throw LinprobeError.config(
                "\(model["INPUT_TYPE"].path): '\(input)' is not supported by the resnet_sk trunk (rgb, bgr)")
        }
        self.init(blockCounts: [3, 8, 36, 3], widthMultiplier: width, skRatio: ratio, depth: depth)
    }

    public var selectiveKernel: Bool { skRatio > 0 }

    /// Stem output channels (64·w).
    public var stemChannels: Int { 64 * widthMultiplier }
    /// Bottleneck width of stage i (64·w·2^i); the stage outputs 4 times that.
    public func width(stage i: Int) -> Int { (64 * widthMultiplier) << i }
    public func stride(stage i: Int) -> Int { i == 0 ? 1 : 2 }
    /// The squeeze width of a selective kernel of C channels: max(int(C·SK_RATIO), 32).
    public func mixingWidth(_ c: Int) -> Int { max(Int(Double(c) * skRatio), 32) }
    public var featureChannels: Int { 4 * width(stage: 3) }

    public var description: String {
        "ResNet-SK-\(depth) \(widthMultiplier)x sk\(skRatio)"
            + (blockCounts == [3, 8, 36, 3] ? "" : " blocks \(blockCounts)")
    }

    public var provenance: JSONValue {
        [
            "NAME": "resnet_sk", "DEPTH": .int(Int64(depth)), "WIDTH_MULTIPLIER": .int(Int64(widthMultiplier)),
            "SK_RATIO": .double(skRatio), "BLOCKS": .array(blockCounts.map { .int(Int64($0)) }),
        ]
    }

    static func outSize(_ n: Int, kernel: Int, stride: Int, pad: Int) -> Int {
        let span = n + 2 * pad - kernel
        return span < 0 ? 0 : span / stride + 1
    }

    /// Spatial size after the stem (stride-2 conv, stride-2 max pool).
    func stemSize(_ n: Int) -> Int {
        let k = selectiveKernel ? 3 : 7
        let conv = Self.outSize(n, kernel: k, stride: 2, pad: (k - 1) / 2)
        return Self.outSize(conv, kernel: 3, stride: 2, pad: 1)
    }

    // MARK: - Parameters (VISSL's names inside the trunk: `net.…`)

    public var parameters: [TrunkParameter] {
        var out: [TrunkParameter] = []
        func conv(_ name: String, _ cout: Int, _ cin: Int, _ k: Int) {
            out.append(
                TrunkParameter(
                    name: name + ".weight", shape: [cout, cin, k, k], initialisation: .uniform(fanIn: cin * k * k)))
        }
        func bn(_ name: String, _ c: Int) {
            for (p, ones) in [("weight", true), ("bias", false), ("running_mean", false), ("running_var", true)] {
                out.append(TrunkParameter(name: "\(name).\(p)", shape: [c], initialisation: ones ? .ones : .zeros))
            }
        }
        let half = stemChannels / 2
        if selectiveKernel {
            conv("net.0.0", half, 3, 3)
            bn("net.0.1.0", half)
            conv("net.0.2", half, half, 3)
            bn("net.0.3.0", half)
            conv("net.0.4", stemChannels, half, 3)
            bn("net.0.5.0", stemChannels)
        } else {
            conv("net.0.0", stemChannels, 3, 7)
            bn("net.0.1.0", stemChannels)
        }
        var cin = stemChannels
        for s in 0..<4 {
            let c = width(stage: s)
            for b in 0..<blockCounts[s] {
                let p = "net.\(s + 1).blocks.\(b)"
                if b == 0 {
                    conv(p + (selectiveKernel ? ".projection.shortcut.2" : ".projection.shortcut"), 4 * c, cin, 1)
                    bn(p + ".projection.bn.0", 4 * c)
                }
                conv(p + ".net.0", c, cin, 1)
                bn(p + ".net.1.0", c)
                if selectiveKernel {
                    let mid = mixingWidth(c)
                    conv(p + ".net.2.main_conv.0", 2 * c, c, 3)
                    bn(p + ".net.2.main_conv.1.0", 2 * c)
                    conv(p + ".net.2.mixing_conv.0", mid, c, 1)
                    bn(p + ".net.2.mixing_conv.1.0", mid)
                    conv(p + ".net.2.mixing_conv.2", 2 * c, mid, 1)
                    conv(p + ".net.3", 4 * c, c, 1)
                    bn(p + ".net.4.0", 4 * c)
                } else {
                    conv(p + ".net.2", c, c, 3)
                    bn(p + ".net.3.0", c)
                    conv(p + ".net.4", 4 * c, c, 1)
                    bn(p + ".net.5.0", 4 * c)
                }
                cin = 4 * c
            }
        }
        return out
    }
}
