import Foundation
import LinprobeCore

/// The architecture of VISSL's `regnet`, `regnet_fsdp` and `regnet_v2` trunks (ClassyVision's
/// AnyNet with RegNet widths): a stem (`conv1`), stages exposed as `res2`, `res3`, …, then
/// `avgpool` (N×C×1×1) and `flatten`. Blocks are ClassyVision's `ResBottleneckBlock`: 1×1 →
/// grouped 3×3 (stride here) → squeeze-and-excitation → 1×1, projection shortcut when the shape
/// changes, ReLU after the sum.
public struct RegNetSpec: Sendable, CustomStringConvertible {
    public enum StemType: String, Sendable, CaseIterable {
        /// 3×3 stride 2 conv, BN, ReLU (the default; every RegNet checkpoint).
        case simpleStemIn = "simple_stem_in"
        /// 7×7 stride 2 conv, BN, ReLU, 3×3 stride 2 max pool.
        case resStemIn = "res_stem_in"
        /// 3×3 stride 1 conv, BN, ReLU.
        case resStemCifar = "res_stem_cifar"
    }

    public enum InputType: String, Sendable, CaseIterable {
        case rgb, bgr
    }

    /// One block with everything that fixes its tensors' shapes and names.
    public struct Block: Sendable, Hashable {
        /// Parameter-name prefix, e.g. `res2.block1-0` or `res4.block3-part1.block3-9`.
        public let prefix: String
        public let widthIn: Int
        public let widthOut: Int
        public let stride: Int
        /// Width of the 3×3 convolution (`int(round(W_out · b))`).
        public let bottleneckWidth: Int
        public let groups: Int
        /// Squeeze width (`int(round(se_ratio · W_in))`), nil without SE.
        public let seWidth: Int?
        public var hasProjection: Bool { widthIn != widthOut || stride != 1 }
    }

    /// VISSL's trunk name (`regnet`, `regnet_fsdp`, `regnet_v2`).
    public let trunkName: String
    /// `MODEL.TRUNK.REGNET` as given (lower-case VISSL keys), for provenance.
    public let settings: JSONValue
    public let stages: [RegNetStage]
    public let stemType: StemType
    public let stemWidth: Int
    /// nil: no squeeze-and-excitation (`use_se: false`, RegNetX).
    public let seRatio: Double?
    public let bnEpsilon: Double
    public let inputType: InputType
    /// Block-group boundaries per stage (`stage_checkpoints`); non-nil for the `regnet_fsdp` /
    /// `regnet_v2` key layout, which puts every block inside a `block{s}-part{g}` group.
    public let stageCheckpoints: [[Int]]?

    public init(
        trunkName: String = "regnet", settings: JSONValue = .null, stages: [RegNetStage],
        stemType: StemType = .simpleStemIn, stemWidth: Int = 32, seRatio: Double? = 0.25, bnEpsilon: Double = 1e-5,
        inputType: InputType = .rgb, stageCheckpoints: [[Int]]? = nil, keyPath: String = "MODEL.TRUNK.REGNET"
    ) throws {
        guard !stages.isEmpty else { throw LinprobeError.config("\(keyPath): the trunk has no stages") }
        for (i, s) in stages.enumerated() {
            guard s.width >= 1, s.width <= 1 << 20, s.depth >= 1, s.depth <= 4096, s.stride >= 1, s.stride <= 64,
                s.groupWidth >= 1, s.bottleneckMultiplier > 0, s.bottleneckMultiplier <= 64
            else {
                throw LinprobeError.config("\(keyPath): stage \(i + 1) (\(s)) is not a valid RegNet stage")
            }
            let wb = Int((Double(s.width) * s.bottleneckMultiplier).rounded(.toNearestOrEven))
            guard wb >= s.groupWidth, wb % s.groupWidth == 0 else {
                throw LinprobeError.config(
                    "\(keyPath): stage \(i + 1) has bottleneck width \(wb), not a multiple of its group width \(s.groupWidth) (PyTorch would refuse the grouped convolution)"
                )
            }
        }
        guard stemWidth >= 1, stemWidth <= 1 << 16 else {
            throw LinprobeError.config("\(keyPath).stem_width: \(stemWidth) must be at least 1")
        }
        guard bnEpsilon > 0, bnEpsilon.isFinite else {
            throw LinprobeError.config("\(keyPath).bn_epsilon: \(bnEpsilon) must be positive")
        }
        if let r = seRatio, !(r > 0 && r <= 64) {
            throw LinprobeError.config("\(keyPath).se_ratio: \(r) must be positive")
        }
        if let cp = stageCheckpoints {
            for (i, groups) in cp.enumerated() where i < stages.count {
                guard groups == groups.sorted(), groups.allSatisfy({ $0 >= 1 && $0 <= stages[i].depth }) else {
                    throw LinprobeError.config(
                        "\(keyPath).stage_checkpoints[\(i)]: \(groups) must be sorted block counts within 1…\(stages[i].depth)"
                    )
                }
            }
        }
        self.trunkName = trunkName
        self.settings = settings
        self.stages = stages
        self.stemType = stemType
        self.stemWidth = stemWidth
        self.seRatio = seRatio
        self.bnEpsilon = bnEpsilon
        self.inputType = inputType
        self.stageCheckpoints = stageCheckpoints
    }

    // MARK: - Topology

    /// The blocks of stage `s` (0-based), with VISSL's parameter-name prefixes.
    public func blocks(stage s: Int) -> [Block] {
        let stage = stages[s]
        let widthIn = s == 0 ? stemWidth : stages[s - 1].width
        let v = s + 1
        // Group index of each block (regnet_fsdp: delimiters are end indices; the last group
        // always closes the stage).
        var groupOf = [Int](repeating: 0, count: stage.depth)
        if let cp = stageCheckpoints {
            var ends = s < cp.count ? cp[s] : []
            if ends.last != stage.depth { ends.append(stage.depth) }
            var start = 0
            for (g, end) in ends.enumerated() {
                for i in start..<end { groupOf[i] = g }
                start = end
            }
        }
        return (0..<stage.depth).map { i in
            let win = i == 0 ? widthIn : stage.width
            let wb = Int((Double(stage.width) * stage.bottleneckMultiplier).rounded(.toNearestOrEven))
            let prefix =
                stageCheckpoints == nil
                ? "res\(v + 1).block\(v)-\(i)" : "res\(v + 1).block\(v)-part\(groupOf[i]).block\(v)-\(i)"
            return Block(
                prefix: prefix, widthIn: win, widthOut: stage.width, stride: i == 0 ? stage.stride : 1,
                bottleneckWidth: wb, groups: wb / stage.groupWidth,
                seWidth: seRatio.map { Int(($0 * Double(win)).rounded(.toNearestOrEven)) })
        }
    }

    /// Output width of the trunk (last stage).
    public var featureChannels: Int { stages[stages.count - 1].width }

    /// Tap names: `conv1`, `res2` … `res{n+1}`, `avgpool`, `flatten`.
    public var stageTaps: [String] { stages.indices.map { "res\($0 + 2)" } }

    public var description: String {
        let name = settings["name"]?.stringValue
        let form = name.map { $0 == "anynet" ? "AnyNet" : $0 } ?? "RegNet"
        return "\(trunkName) \(form) (widths \(stages.map { String($0.width) }.joined(separator: ",")))"
            + (inputType != .rgb ? " \(inputType.rawValue)" : "")
    }

    /// The spec as recorded in provenance and fingerprints (VISSL key names; the derived stages
    /// are included so that a change of the width algorithm changes fingerprints).
    public var provenance: JSONValue {
        .object([
            "NAME": .string(trunkName),
            "REGNET": settings,
            "INPUT_TYPE": .string(inputType.rawValue),
            "stages": .array(
                stages.map {
                    [
                        "width": .int(Int64($0.width)), "depth": .int(Int64($0.depth)),
                        "stride": .int(Int64($0.stride)), "group_width": .int(Int64($0.groupWidth)),
                        "bottleneck_multiplier": .double($0.bottleneckMultiplier),
                    ]
                }),
        ])
    }

    // MARK: - Shapes

    static func outSize(_ n: Int, kernel: Int, stride: Int, pad: Int) -> Int { (n + 2 * pad - kernel) / stride + 1 }

    /// Stem conv (kernel, stride, pad) and whether a 3×3/2 max pool follows.
    var stemGeometry: (kernel: Int, stride: Int, pad: Int, maxPool: Bool) {
        switch stemType {
        case .simpleStemIn: (3, 2, 1, false)
        case .resStemIn: (7, 2, 3, true)
        case .resStemCifar: (3, 1, 1, false)
        }
    }

    /// Spatial size after the stem.
    func stemOutput(_ n: Int) -> Int {
        let g = stemGeometry
        let c = RegNetSpec.outSize(n, kernel: g.kernel, stride: g.stride, pad: g.pad)
        return g.maxPool ? RegNetSpec.outSize(c, kernel: 3, stride: 2, pad: 1) : c
    }

    /// `[C, H, W]` of every tap for this input size; nil when the input is too small.
    public func tapShapes(inputHeight: Int, inputWidth: Int) -> [String: [Int]]? {
        guard inputHeight >= 1, inputWidth >= 1 else { return nil }
        var h = stemOutput(inputHeight), w = stemOutput(inputWidth)
        guard h >= 1, w >= 1 else { return nil }
        var shapes: [String: [Int]] = ["conv1": [stemWidth, h, w]]
        for (i, s) in stages.enumerated() {
            h = RegNetSpec.outSize(h, kernel: 3, stride: s.stride, pad: 1)
            w = RegNetSpec.outSize(w, kernel: 3, stride: s.stride, pad: 1)
            guard h >= 1, w >= 1 else { return nil }
            shapes[stageTaps[i]] = [s.width, h, w]
        }
        shapes["avgpool"] = [featureChannels, 1, 1]
        shapes["flatten"] = [featureChannels, 1, 1]
        return shapes
    }

    /// Multiply-accumulates of one image up to the end of stage `lastStage` (-1: stem only).
    public func multiplyAccumulates(inputHeight: Int, inputWidth: Int, lastStage: Int) -> Int {
        let g = stemGeometry
        var h = RegNetSpec.outSize(inputHeight, kernel: g.kernel, stride: g.stride, pad: g.pad)
        var w = RegNetSpec.outSize(inputWidth, kernel: g.kernel, stride: g.stride, pad: g.pad)
        var total = h * w * stemWidth * 3 * g.kernel * g.kernel
        h = stemOutput(inputHeight)
        w = stemOutput(inputWidth)
        for s in 0..<min(lastStage + 1, stages.count) {
            for b in blocks(stage: s) {
                let oh = RegNetSpec.outSize(h, kernel: 3, stride: b.stride, pad: 1)
                let ow = RegNetSpec.outSize(w, kernel: 3, stride: b.stride, pad: 1)
                let wb = b.bottleneckWidth
                total += h * w * wb * b.widthIn + oh * ow * wb * (wb / b.groups) * 9 + oh * ow * b.widthOut * wb
                if let se = b.seWidth { total += 2 * wb * se }
                if b.hasProjection { total += oh * ow * b.widthOut * b.widthIn }
                h = oh
                w = ow
            }
        }
        return total
    }

    // MARK: - Parameters

    /// Every tensor the trunk needs, by VISSL's names below `_feature_blocks.` (without
    /// `num_batches_tracked`), in state-dict order.
    public var parameters: [TrunkParameter] {
        var out: [TrunkParameter] = []
        func conv(_ name: String, _ cout: Int, _ cinPerGroup: Int, _ k: Int, bias: Bool = false) {
            out.append(
                TrunkParameter(
                    name: name + ".weight", shape: [cout, cinPerGroup, k, k],
                    initialisation: .uniform(fanIn: cinPerGroup * k * k)))
            if bias {
                out.append(
                    TrunkParameter(name: name + ".bias", shape: [cout], initialisation: .uniform(fanIn: cinPerGroup)))
            }
        }
        func bn(_ name: String, _ c: Int) {
            for p in ["weight", "bias", "running_mean", "running_var"] {
                let ones = p == "weight" || p == "running_var"
                out.append(TrunkParameter(name: "\(name).\(p)", shape: [c], initialisation: ones ? .ones : .zeros))
            }
        }
        conv("conv1.stem.0", stemWidth, 3, stemGeometry.kernel)
        bn("conv1.stem.1", stemWidth)
        for s in stages.indices {
            for b in blocks(stage: s) {
                let p = b.prefix
                if b.hasProjection {
                    conv(p + ".proj", b.widthOut, b.widthIn, 1)
                    bn(p + ".bn", b.widthOut)
                }
                conv(p + ".f.a.0", b.bottleneckWidth, b.widthIn, 1)
                bn(p + ".f.a.1", b.bottleneckWidth)
                conv(p + ".f.b.0", b.bottleneckWidth, b.bottleneckWidth / b.groups, 3)
                bn(p + ".f.b.1", b.bottleneckWidth)
                if let se = b.seWidth {
                    conv(p + ".f.se.excitation.0", se, b.bottleneckWidth, 1, bias: true)
                    conv(p + ".f.se.excitation.2", b.bottleneckWidth, se, 1, bias: true)
                }
                conv(p + ".f.c", b.widthOut, b.bottleneckWidth, 1)
                bn(p + ".f.final_bn", b.widthOut)
            }
        }
        return out
    }
}
