import Foundation
import LinprobeCore

/// VISSL's five AlexNet trunks (`vissl/models/trunks/alexnet_*.py`): nine feature blocks
/// `conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5, flatten` in an `nn.ModuleList`;
/// the `convN` taps are post-ReLU. They differ in what the first convolution sees, in strides,
/// padding, groups, BatchNorm and where Local Response Normalisation sits (trunks.md §C).
public struct AlexNetSpec: Sendable, Hashable, CustomStringConvertible {
    public enum Variant: String, Sendable, CaseIterable {
        case bvlc = "alexnet_bvlc"
        case colorization = "alexnet_colorization"
        case deepcluster = "alexnet_deepcluster"
        case jigsaw = "alexnet_jigsaw"
        case rotnet = "alexnet_rotnet"
    }

    /// What the first convolution is fed from the 3-channel input tensor.
    public enum Input: String, Sendable {
        /// The three channels as given (raw 0–255 RGB for BVLC, normalised RGB otherwise).
        case rgb
        /// Channel 0 of a Lab tensor (`torch.split(x, [1, 2], dim=1)[0]`).
        case labL = "lab L channel"
        /// The fixed Sobel filter of DeepCluster on the channel mean (2 channels).
        case sobel = "sobel(gray)"
    }

    /// The pooling block after conv1 and conv2.
    public enum PoolBlock: String, Sendable {
        case maxPool = "MaxPool2d(3, 2)"
        case lrnThenMaxPool = "LocalResponseNorm(5) → MaxPool2d(3, 2)"
        case maxPoolThenLRN = "MaxPool2d(3, 2) → LocalResponseNorm(5)"
    }

    /// One `convN` block: `Conv2d(bias=True)` [→ BatchNorm2d] → ReLU.
    public struct Conv: Sendable, Hashable {
        public let cin: Int, cout: Int, kernel: Int, stride: Int, pad: Int, groups: Int
        public let batchNorm: Bool
    }

    /// The taps, in depth order (VISSL's `all_feat_names`).
    public static let tapNames = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "flatten"]
    /// ModuleList index of each convolution block (`_feature_blocks.{i}.0` is the conv).
    static let convBlockIndex = [0, 2, 4, 5, 6]

    public let variant: Variant

    public init(variant: Variant) { self.variant = variant }

    /// Reads `MODEL.TRUNK.NAME` and checks `MODEL.INPUT_TYPE` (VISSL's colorization trunk asserts
    /// `lab`; the other AlexNets do not look at it, so rgb and bgr both feed the tensor as it is).
    public init(model: ConfigNode) throws {
        let nameNode = model["TRUNK"]["NAME"]
        let name = try nameNode.string()
        guard let variant = Variant(rawValue: name) else {
            throw LinprobeError.config("\(nameNode.path): '\(name)' is not an AlexNet variant")
        }
        let inputNode = model["INPUT_TYPE"]
        let input = try inputNode.stringIfPresent() ?? "rgb"
        if variant == .colorization && input != "lab" {
            throw LinprobeError.config(
                "\(inputNode.path): alexnet_colorization takes Lab input (VISSL asserts INPUT_TYPE lab), got '\(input)'"
            )
        }
        if variant != .colorization && input == "lab" {
            throw LinprobeError.config(
                "\(inputNode.path): lab input is only taken by alexnet_colorization, not \(name)")
        }
        self.init(variant: variant)
    }

    public var input: Input {
        switch variant {
        case .colorization: .labL
        case .deepcluster: .sobel
        default: .rgb
        }
    }

    /// Channels entering conv1.
    public var inputChannels: Int {
        switch input {
        case .rgb: 3
        case .labL: 1
        case .sobel: 2
        }
    }

    public var poolBlock: PoolBlock {
        switch variant {
        case .bvlc: .lrnThenMaxPool
        case .jigsaw: .maxPoolThenLRN
        default: .maxPool
        }
    }

    /// The five convolution blocks.
    public var convs: [Conv] {
        let widths = variant == .rotnet ? [64, 192, 384, 256, 256] : [96, 256, 384, 384, 256]
        let grouped = variant == .bvlc || variant == .jigsaw || variant == .colorization
        let g = grouped ? 2 : 1
        let stride1 = variant == .jigsaw ? 2 : 4
        let pad1 = variant == .deepcluster || variant == .rotnet ? 2 : 0
        func bn(_ i: Int) -> Bool {
            switch variant {
            case .bvlc: false
            case .jigsaw: i >= 2
            default: true
            }
        }
        return [
            Conv(
                cin: inputChannels, cout: widths[0], kernel: 11, stride: stride1, pad: pad1, groups: 1, batchNorm: bn(0)
            ),
            Conv(cin: widths[0], cout: widths[1], kernel: 5, stride: 1, pad: 2, groups: g, batchNorm: bn(1)),
            Conv(cin: widths[1], cout: widths[2], kernel: 3, stride: 1, pad: 1, groups: 1, batchNorm: bn(2)),
            Conv(cin: widths[2], cout: widths[3], kernel: 3, stride: 1, pad: 1, groups: g, batchNorm: bn(3)),
            Conv(cin: widths[3], cout: widths[4], kernel: 3, stride: 1, pad: 1, groups: g, batchNorm: bn(4)),
        ]
    }

    public var description: String { variant.rawValue }

    public var provenance: JSONValue {
        ["NAME": .string(variant.rawValue), "INPUT": .string(input.rawValue)]
    }

    // MARK: - Shapes

    static func outSize(_ n: Int, kernel: Int, stride: Int, pad: Int) -> Int {
        let span = n + 2 * pad - kernel
        return span < 0 ? 0 : span / stride + 1
    }

    /// `[C, H, W]` of every tap (flatten as `[C·H·W, 1, 1]`); nil when the input is too small.
    public func tapShapes(inputHeight: Int, inputWidth: Int) -> [String: [Int]]? {
        var h = inputHeight, w = inputWidth
        var shapes: [String: [Int]] = [:]
        let convs = convs
        func conv(_ i: Int) {
            let c = convs[i]
            h = Self.outSize(h, kernel: c.kernel, stride: c.stride, pad: c.pad)
            w = Self.outSize(w, kernel: c.kernel, stride: c.stride, pad: c.pad)
            shapes["conv\(i + 1)"] = [c.cout, h, w]
        }
        func pool(_ name: String, _ c: Int) {
            h = Self.outSize(h, kernel: 3, stride: 2, pad: 0)
            w = Self.outSize(w, kernel: 3, stride: 2, pad: 0)
            shapes[name] = [c, h, w]
        }
        conv(0)
        pool("pool1", convs[0].cout)
        conv(1)
        pool("pool2", convs[1].cout)
        conv(2)
        conv(3)
        conv(4)
        pool("pool5", convs[4].cout)
        guard h >= 1, w >= 1 else { return nil }
        shapes["flatten"] = [convs[4].cout * h * w, 1, 1]
        return shapes
    }

    // MARK: - Parameters

    /// Every tensor, by VISSL's names without `_feature_blocks.` (`{i}.0.weight` conv,
    /// `{i}.1.*` BatchNorm). DeepCluster's Sobel constants are not parameters (VISSL's converted
    /// checkpoints leave them out; they are fixed in the network).
    public var parameters: [TrunkParameter] {
        var out: [TrunkParameter] = []
        for (i, c) in convs.enumerated() {
            let p = "\(Self.convBlockIndex[i])"
            let fanIn = (c.cin / c.groups) * c.kernel * c.kernel
            out.append(
                TrunkParameter(
                    name: p + ".0.weight", shape: [c.cout, c.cin / c.groups, c.kernel, c.kernel],
                    initialisation: .uniform(fanIn: fanIn)))
            out.append(TrunkParameter(name: p + ".0.bias", shape: [c.cout], initialisation: .uniform(fanIn: fanIn)))
            if c.batchNorm {
                for (n, ones) in [("weight", true), ("bias", false), ("running_mean", false), ("running_var", true)] {
                    out.append(
                        TrunkParameter(name: "\(p).1.\(n)", shape: [c.cout], initialisation: ones ? .ones : .zeros))
                }
            }
        }
        return out
    }
}
