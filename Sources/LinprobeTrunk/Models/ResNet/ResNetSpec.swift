import Foundation
import LinprobeCore

/// VISSL's feature taps of the ResNe(X)t trunk, in trunk order (VISSL `resnext.py`):
/// `conv1` after conv+BN+ReLU (before max-pool), `res1` after max-pool, `res2`…`res5` the four
/// stages, `res5avg` the global average pool (N×C×1×1), `flatten` the same as N×C.
public enum Tap: String, CaseIterable, Sendable, Comparable, Codable {
    case conv1, res1, res2, res3, res4, res5, res5avg, flatten

    /// Position in the trunk (the forward pass stops after the deepest requested tap).
    public var depthIndex: Int {
        switch self {
        case .conv1: 0
        case .res1: 1
        case .res2: 2
        case .res3: 3
        case .res4: 4
        case .res5: 5
        case .res5avg: 6
        case .flatten: 7
        }
    }

    public static func < (a: Tap, b: Tap) -> Bool { a.depthIndex < b.depthIndex }
}

/// The architecture of VISSL's `resnet` trunk: torchvision's ResNet (v1.5: stride in the 3×3
/// convolution) with VISSL's SimCLR-style width multiplier (stem 64·w), ResNeXt groups and
/// a choice of stride for the last stage.
public struct ResNetSpec: Sendable, Hashable, CustomStringConvertible {
    public enum InputType: String, Sendable, CaseIterable {
        case rgb, bgr
    }

    public static let supportedDepths = [18, 34, 50, 101, 152, 200]

    public let depth: Int
    public let widthMultiplier: Int
    public let groups: Int
    public let widthPerGroup: Int
    public let layer4Stride: Int
    public let inputType: InputType

    /// Builds and validates a spec. Errors are configuration errors naming the VISSL key.
    public init(
        depth: Int = 50, widthMultiplier: Int = 1, groups: Int = 1, widthPerGroup: Int = 64,
        layer4Stride: Int = 2, inputType: InputType = .rgb, keyPath: String = "MODEL.TRUNK.RESNETS"
    ) throws {
        guard ResNetSpec.supportedDepths.contains(depth) else {
            throw LinprobeError.config(
                "\(keyPath).DEPTH: \(depth) is not supported (supported: \(ResNetSpec.supportedDepths.map(String.init).joined(separator: ", ")))"
            )
        }
        guard (1...16).contains(widthMultiplier) else {
            throw LinprobeError.config("\(keyPath).WIDTH_MULTIPLIER: \(widthMultiplier) is outside 1…16")
        }
        guard groups >= 1, groups <= 4096 else {
            throw LinprobeError.config("\(keyPath).GROUPS: \(groups) must be at least 1")
        }
        guard widthPerGroup >= 1, widthPerGroup <= 4096 else {
            throw LinprobeError.config("\(keyPath).WIDTH_PER_GROUP: \(widthPerGroup) must be at least 1")
        }
        if depth < 50 && (groups != 1 || widthPerGroup != 64) {
            throw LinprobeError.config(
                "\(keyPath): DEPTH \(depth) uses basic blocks, which support only GROUPS 1 and WIDTH_PER_GROUP 64 (got \(groups) and \(widthPerGroup)), as in torchvision"
            )
        }
        guard layer4Stride == 1 || layer4Stride == 2 else {
            throw LinprobeError.config("\(keyPath).LAYER4_STRIDE: \(layer4Stride) is not supported (supported: 1, 2)")
        }
        self.depth = depth
        self.widthMultiplier = widthMultiplier
        self.groups = groups
        self.widthPerGroup = widthPerGroup
        self.layer4Stride = layer4Stride
        self.inputType = inputType
    }

    /// Reads the trunk from VISSL's `MODEL` mapping (`TRUNK.NAME` is `resnet`; see `TrunkFamilies`),
    /// `TRUNK.RESNETS` (or the older `TRUNK.TRUNK_PARAMS.RESNETS`) and `INPUT_TYPE`.
    public init(model: ConfigNode) throws {
        let trunk = model["TRUNK"]
        let resnets = trunk["TRUNK_PARAMS"]["RESNETS"].exists ? trunk["TRUNK_PARAMS"]["RESNETS"] : trunk["RESNETS"]
        let inputNode = model["INPUT_TYPE"]
        let input = try inputNode.stringIfPresent() ?? "rgb"
        guard let inputType = InputType(rawValue: input) else {
            throw LinprobeError.config(
                "\(inputNode.path): '\(input)' is not supported (supported: rgb, bgr)\(input == "lab" ? "; LAB-input colorization trunks are not implemented" : "")"
            )
        }
        try self.init(resnets: resnets, inputType: inputType)
    }

    /// Reads a `RESNETS` mapping (absent keys take VISSL's defaults).
    public init(resnets node: ConfigNode, inputType: InputType = .rgb) throws {
        let known: Set<String> = [
            "DEPTH", "WIDTH_MULTIPLIER", "NORM", "GROUPNORM_GROUPS", "STANDARDIZE_CONVOLUTIONS",
            "GROUPS", "ZERO_INIT_RESIDUAL", "WIDTH_PER_GROUP", "LAYER4_STRIDE",
        ]
        if node.exists {
            for key in try node.keys() where !known.contains(key) {
                throw LinprobeError.config(
                    "\(node.path).\(key): unknown key (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
        let norm = try node["NORM"].stringIfPresent() ?? "BatchNorm"
        guard norm == "BatchNorm" else {
            throw LinprobeError.config("\(node.path).NORM: '\(norm)' is not supported (supported: BatchNorm)")
        }
        if try node["STANDARDIZE_CONVOLUTIONS"].boolIfPresent() == true {
            // VISSL's resnet trunk ignores this key too; keep it visible rather than silent.
        }
        let wNode = node["WIDTH_MULTIPLIER"]
        var width = 1
        if wNode.exists {
            let w = try wNode.double()
            guard w == w.rounded(), w >= 1 else {
                throw LinprobeError.config(
                    "\(wNode.path): \(w) must be a whole number ≥ 1 (VISSL builds 64·w channels)")
            }
            width = Int(w)
        }
        try self.init(
            depth: try node["DEPTH"].intIfPresent() ?? 50,
            widthMultiplier: width,
            groups: try node["GROUPS"].intIfPresent() ?? 1,
            widthPerGroup: try node["WIDTH_PER_GROUP"].intIfPresent() ?? 64,
            layer4Stride: try node["LAYER4_STRIDE"].intIfPresent() ?? 2,
            inputType: inputType, keyPath: node.path)
    }

    // MARK: - Topology

    public var isBottleneck: Bool { depth >= 50 }
    public var expansion: Int { isBottleneck ? 4 : 1 }

    /// Blocks per stage.
    public var blockCounts: [Int] {
        switch depth {
        case 18: return [2, 2, 2, 2]
        case 34: return [3, 4, 6, 3]
        case 50: return [3, 4, 6, 3]
        case 101: return [3, 4, 23, 3]
        case 152: return [3, 8, 36, 3]
        default: return [3, 24, 36, 3]
        }
    }

    /// Output channels of the stem (conv1): 64·w.
    public var stemChannels: Int { 64 * widthMultiplier }

    /// `planes` of stage i (0-based): 64·w·2^i.
    public func planes(stage i: Int) -> Int { (64 * widthMultiplier) << i }

    /// Output channels of stage i.
    public func outputChannels(stage i: Int) -> Int { planes(stage: i) * expansion }

    /// Inner width of the bottleneck in stage i (torchvision: ⌊planes·WIDTH_PER_GROUP/64⌋·GROUPS).
    public func bottleneckWidth(stage i: Int) -> Int { (planes(stage: i) * widthPerGroup / 64) * groups }

    public func stride(stage i: Int) -> Int { i == 0 ? 1 : (i == 3 ? layer4Stride : 2) }

    /// Output channels of the trunk (res5 / res5avg / flatten).
    public var featureChannels: Int { outputChannels(stage: 3) }

    public var description: String {
        "ResNet-\(depth)" + (widthMultiplier != 1 ? " w\(widthMultiplier)" : "")
            + (groups != 1 || widthPerGroup != 64 ? " \(groups)x\(widthPerGroup)d" : "")
            + (layer4Stride != 2 ? " layer4-stride \(layer4Stride)" : "")
            + (inputType != .rgb ? " \(inputType.rawValue)" : "")
    }

    /// The spec as recorded in provenance and fingerprints (VISSL key names).
    public var provenance: JSONValue {
        .object([
            "NAME": "resnet",
            "DEPTH": .int(Int64(depth)),
            "WIDTH_MULTIPLIER": .int(Int64(widthMultiplier)),
            "GROUPS": .int(Int64(groups)),
            "WIDTH_PER_GROUP": .int(Int64(widthPerGroup)),
            "LAYER4_STRIDE": .int(Int64(layer4Stride)),
            "NORM": "BatchNorm",
            "INPUT_TYPE": .string(inputType.rawValue),
        ])
    }

    // MARK: - Shapes

    /// Spatial size after a convolution or pool (floor mode).
    static func outSize(_ n: Int, kernel: Int, stride: Int, pad: Int) -> Int {
        (n + 2 * pad - kernel) / stride + 1
    }

    /// `[C, H, W]` of every tap for an input of `height`×`width`; nil when the input is too small
    /// for the trunk.
    public func tapShapes(inputHeight height: Int, inputWidth width: Int) -> [Tap: [Int]]? {
        guard height >= 1, width >= 1 else { return nil }
        var h = ResNetSpec.outSize(height, kernel: 7, stride: 2, pad: 3)
        var w = ResNetSpec.outSize(width, kernel: 7, stride: 2, pad: 3)
        guard h >= 1, w >= 1 else { return nil }
        var shapes: [Tap: [Int]] = [.conv1: [stemChannels, h, w]]
        h = ResNetSpec.outSize(h, kernel: 3, stride: 2, pad: 1)
        w = ResNetSpec.outSize(w, kernel: 3, stride: 2, pad: 1)
        shapes[.res1] = [stemChannels, h, w]
        let stageTaps: [Tap] = [.res2, .res3, .res4, .res5]
        for i in 0..<4 {
            let s = stride(stage: i)
            h = ResNetSpec.outSize(h, kernel: 3, stride: s, pad: 1)
            w = ResNetSpec.outSize(w, kernel: 3, stride: s, pad: 1)
            shapes[stageTaps[i]] = [outputChannels(stage: i), h, w]
        }
        shapes[.res5avg] = [featureChannels, 1, 1]
        shapes[.flatten] = [featureChannels, 1, 1]
        return shapes
    }

    /// Multiply-accumulates of one image's forward pass up to and including `tap`.
    public func multiplyAccumulates(inputHeight: Int, inputWidth: Int, through tap: Tap = .flatten) -> Int {
        var total = 0
        var h = ResNetSpec.outSize(inputHeight, kernel: 7, stride: 2, pad: 3)
        var w = ResNetSpec.outSize(inputWidth, kernel: 7, stride: 2, pad: 3)
        total += h * w * stemChannels * 3 * 49
        if tap <= .res1 { return total }
        h = ResNetSpec.outSize(h, kernel: 3, stride: 2, pad: 1)
        w = ResNetSpec.outSize(w, kernel: 3, stride: 2, pad: 1)
        var inplanes = stemChannels
        let stageTaps: [Tap] = [.res2, .res3, .res4, .res5]
        for i in 0..<4 {
            for b in 0..<blockCounts[i] {
                let s = b == 0 ? stride(stage: i) : 1
                let oh = ResNetSpec.outSize(h, kernel: 3, stride: s, pad: 1)
                let ow = ResNetSpec.outSize(w, kernel: 3, stride: s, pad: 1)
                let out = outputChannels(stage: i)
                if isBottleneck {
                    let width = bottleneckWidth(stage: i)
                    total += h * w * width * inplanes
                    total += oh * ow * width * (width / groups) * 9
                    total += oh * ow * out * width
                } else {
                    total += oh * ow * out * inplanes * 9
                    total += oh * ow * out * out * 9
                }
                if b == 0 && (s != 1 || inplanes != out) { total += oh * ow * out * inplanes }
                inplanes = out
                h = oh
                w = ow
            }
            if tap <= stageTaps[i] { return total }
        }
        return total
    }

    // MARK: - Parameters

    /// Every tensor the trunk needs, in torchvision's state-dict order (without
    /// `num_batches_tracked`, which inference does not use).
    public var parameters: [TrunkParameter] {
        var out: [TrunkParameter] = []
        func conv(_ name: String, _ cout: Int, _ cinPerGroup: Int, _ k: Int) {
            out.append(
                TrunkParameter(
                    name: name + ".weight", shape: [cout, cinPerGroup, k, k],
                    initialisation: .uniform(fanIn: cinPerGroup * k * k)))
        }
        func bn(_ name: String, _ c: Int) {
            for p in ["weight", "bias", "running_mean", "running_var"] {
                let ones = p == "weight" || p == "running_var"
                out.append(TrunkParameter(name: "\(name).\(p)", shape: [c], initialisation: ones ? .ones : .zeros))
            }
        }
        conv("conv1", stemChannels, 3, 7)
        bn("bn1", stemChannels)
        var inplanes = stemChannels
        for i in 0..<4 {
            let outC = outputChannels(stage: i)
            for b in 0..<blockCounts[i] {
                let p = "layer\(i + 1).\(b)"
                let s = b == 0 ? stride(stage: i) : 1
                if isBottleneck {
                    let width = bottleneckWidth(stage: i)
                    conv(p + ".conv1", width, inplanes, 1)
                    bn(p + ".bn1", width)
                    conv(p + ".conv2", width, width / groups, 3)
                    bn(p + ".bn2", width)
                    conv(p + ".conv3", outC, width, 1)
                    bn(p + ".bn3", outC)
                } else {
                    conv(p + ".conv1", outC, inplanes, 3)
                    bn(p + ".bn1", outC)
                    conv(p + ".conv2", outC, outC, 3)
                    bn(p + ".bn2", outC)
                }
                if b == 0 && (s != 1 || inplanes != outC) {
                    conv(p + ".downsample.0", outC, inplanes, 1)
                    bn(p + ".downsample.1", outC)
                }
                inplanes = outC
            }
        }
        return out
    }
}
