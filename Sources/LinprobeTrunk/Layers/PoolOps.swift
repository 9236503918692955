import Foundation
import LinprobeCore

/// A pair of spatial values (height, width), as PyTorch's `_pair` arguments.
public struct Pair: Sendable, Hashable, CustomStringConvertible {
    public var h: Int
    public var w: Int
    public init(_ h: Int, _ w: Int) { self.h = h; self.w = w }
    public init(_ both: Int) { self.init(both, both) }
    public var description: String { h == w ? "\(h)" : "(\(h), \(w))" }
    var json: JSONValue { .array([.int(Int64(h)), .int(Int64(w))]) }
}

/// One of VISSL's pool ops (`vissl/models/model_helpers.py` POOL_OPS), with PyTorch's
/// semantics: floor mode unless `ceilMode`, zero padding counted in averages unless
/// `countIncludePad` is false, adaptive bins [⌊i·H/o⌋, ⌈(i+1)·H/o⌉).
public enum PoolOp: Sendable, Hashable, CustomStringConvertible {
    case identity
    case avgPool(
        kernel: Pair, stride: Pair, padding: Pair, ceilMode: Bool, countIncludePad: Bool, divisorOverride: Int?)
    case maxPool(kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, ceilMode: Bool)
    /// Output size per axis; nil keeps the input size (PyTorch's `None`).
    case adaptiveAvgPool(outH: Int?, outW: Int?)
    case adaptiveMaxPool(outH: Int?, outW: Int?)

    public static let names = ["AvgPool2d", "MaxPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Identity"]

    public var name: String {
        switch self {
        case .identity: return "Identity"
        case .avgPool: return "AvgPool2d"
        case .maxPool: return "MaxPool2d"
        case .adaptiveAvgPool: return "AdaptiveAvgPool2d"
        case .adaptiveMaxPool: return "AdaptiveMaxPool2d"
        }
    }

    /// `[OpName, [args]]` with every argument explicit (provenance and fingerprints).
    public var provenance: JSONValue {
        func opt(_ v: Int?) -> JSONValue { v.map { .int(Int64($0)) } ?? .null }
        switch self {
        case .identity: return .array(["Identity", .array([])])
        case let .avgPool(k, s, p, ceil, cip, div):
            return .array(["AvgPool2d", .array([k.json, s.json, p.json, .bool(ceil), .bool(cip), opt(div)])])
        case let .maxPool(k, s, p, d, ceil):
            return .array(["MaxPool2d", .array([k.json, s.json, p.json, d.json, .bool(false), .bool(ceil)])])
        case let .adaptiveAvgPool(h, w): return .array(["AdaptiveAvgPool2d", .array([.array([opt(h), opt(w)])])])
        case let .adaptiveMaxPool(h, w):
            return .array(["AdaptiveMaxPool2d", .array([.array([opt(h), opt(w)]), .bool(false)])])
        }
    }

    public var description: String {
        switch self {
        case .identity: return "Identity"
        case let .avgPool(k, s, p, ceil, cip, div):
            var t = "AvgPool2d(kernel \(k), stride \(s), padding \(p)"
            if ceil { t += ", ceil_mode" }
            if !cip { t += ", count_include_pad=False" }
            if let div { t += ", divisor_override=\(div)" }
            return t + ")"
        case let .maxPool(k, s, p, d, ceil):
            return "MaxPool2d(kernel \(k), stride \(s), padding \(p)" + (d != Pair(1) ? ", dilation \(d)" : "")
                + (ceil ? ", ceil_mode" : "") + ")"
        case let .adaptiveAvgPool(h, w):
            return "AdaptiveAvgPool2d((\(h.map(String.init) ?? "None"), \(w.map(String.init) ?? "None")))"
        case let .adaptiveMaxPool(h, w):
            return "AdaptiveMaxPool2d((\(h.map(String.init) ?? "None"), \(w.map(String.init) ?? "None")))"
        }
    }

    // MARK: - Parsing `[OpName, [args]]`

    /// Parses one op spec; `node` is the `[OpName, [args]]` list. Arguments are positional, as
    /// VISSL passes them to the PyTorch constructors.
    public init(config node: ConfigNode) throws {
        let items = try node.list()
        guard let first = items.first else {
            throw LinprobeError.config("\(node.path): empty pool op; expected [OpName, [args]]")
        }
        let name = try first.string()
        var args: [ConfigNode] = []
        if items.count >= 2 {
            if case .array? = items[1].value {
                args = try items[1].list()
            } else if items[1].exists {
                args = [items[1]]
            }
        }
        guard items.count <= 2 else {
            throw LinprobeError.config("\(node.path): expected [OpName, [args]], got \(items.count) items")
        }
        func pair(_ n: ConfigNode) throws -> Pair {
            if case .array? = n.value {
                let v = try n.ints()
                guard v.count == 2 else {
                    throw LinprobeError.config("\(n.path): expected an integer or a pair [h, w]")
                }
                return Pair(v[0], v[1])
            }
            return Pair(try n.int())
        }
        func optionalInt(_ n: ConfigNode) throws -> Int? { n.exists ? try n.int() : nil }
        func arg(_ i: Int) -> ConfigNode {
            i < args.count ? args[i] : ConfigNode(path: "\(node.path)[1][\(i)]", value: nil)
        }
        func checkCount(_ max: Int, _ signature: String) throws {
            guard args.count <= max else {
                throw LinprobeError.config(
                    "\(node.path): \(name) takes at most \(max) arguments (\(signature)), got \(args.count)")
            }
        }
        switch name {
        case "Identity":
            self = .identity
        case "AvgPool2d":
            try checkCount(6, "kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override")
            guard !args.isEmpty else { throw LinprobeError.config("\(node.path): AvgPool2d needs a kernel size") }
            let k = try pair(args[0])
            let s = arg(1).exists ? try pair(arg(1)) : k
            let p = arg(2).exists ? try pair(arg(2)) : Pair(0)
            let ceil = try arg(3).boolIfPresent() ?? false
            let cip = try arg(4).boolIfPresent() ?? true
            let div = try optionalInt(arg(5))
            if let div, div == 0 { throw LinprobeError.config("\(arg(5).path): divisor_override must not be zero") }
            self = .avgPool(
                kernel: k, stride: s, padding: p, ceilMode: ceil, countIncludePad: cip, divisorOverride: div)
        case "MaxPool2d":
            try checkCount(6, "kernel_size, stride, padding, dilation, return_indices, ceil_mode")
            guard !args.isEmpty else { throw LinprobeError.config("\(node.path): MaxPool2d needs a kernel size") }
            let k = try pair(args[0])
            let s = arg(1).exists ? try pair(arg(1)) : k
            let p = arg(2).exists ? try pair(arg(2)) : Pair(0)
            let d = arg(3).exists ? try pair(arg(3)) : Pair(1)
            if try arg(4).boolIfPresent() == true {
                throw LinprobeError.config(
                    "\(arg(4).path): return_indices=True gives a tuple, which VISSL cannot store as a feature")
            }
            let ceil = try arg(5).boolIfPresent() ?? false
            self = .maxPool(kernel: k, stride: s, padding: p, dilation: d, ceilMode: ceil)
        case "AdaptiveAvgPool2d", "AdaptiveMaxPool2d":
            try checkCount(
                name == "AdaptiveAvgPool2d" ? 1 : 2,
                name == "AdaptiveAvgPool2d" ? "output_size" : "output_size, return_indices")
            guard !args.isEmpty else { throw LinprobeError.config("\(node.path): \(name) needs an output size") }
            let o = args[0]
            var oh: Int?, ow: Int?
            if case .array? = o.value {
                let v = try o.list()
                guard v.count == 2 else {
                    throw LinprobeError.config("\(o.path): expected an integer or a pair [h, w]")
                }
                oh = try optionalInt(v[0])
                ow = try optionalInt(v[1])
            } else {
                oh = try o.int()
                ow = oh
            }
            for (v, axis) in [(oh, "height"), (ow, "width")] {
                if let v, v < 1 { throw LinprobeError.config("\(o.path): output \(axis) \(v) must be at least 1") }
            }
            if name == "AdaptiveMaxPool2d", try arg(1).boolIfPresent() == true {
                throw LinprobeError.config(
                    "\(arg(1).path): return_indices=True gives a tuple, which VISSL cannot store as a feature")
            }
            self =
                name == "AdaptiveAvgPool2d"
                ? .adaptiveAvgPool(outH: oh, outW: ow) : .adaptiveMaxPool(outH: oh, outW: ow)
        default:
            throw LinprobeError.config(
                "\(first.path): pool op '\(name)' is not supported (supported: \(PoolOp.names.joined(separator: ", ")))"
            )
        }
        try validateParameters(path: node.path)
    }

    /// Kernel, stride, padding, dilation and output sizes above this are refused (no feature map
    /// comes near it, and the shape arithmetic stays far from overflow).
    public static let maxParameter = 1 << 30

    private func validateParameters(path: String) throws {
        func positive(_ p: Pair, _ what: String) throws {
            guard p.h > 0, p.w > 0 else { throw LinprobeError.config("\(path): \(name) \(what) \(p) must be positive") }
        }
        for (value, what) in sizeParameters where value > PoolOp.maxParameter {
            throw LinprobeError.config("\(path): \(name) \(what) \(value) exceeds \(PoolOp.maxParameter)")
        }
        switch self {
        case let .avgPool(k, s, p, _, _, _):
            try positive(k, "kernel")
            try positive(s, "stride")
            guard p.h >= 0, p.w >= 0, p.h <= k.h / 2, p.w <= k.w / 2 else {
                throw LinprobeError.config(
                    "\(path): AvgPool2d padding \(p) must be between 0 and half the kernel \(k) (PyTorch's rule)")
            }
        case let .maxPool(k, s, p, d, _):
            try positive(k, "kernel")
            try positive(s, "stride")
            try positive(d, "dilation")
            guard p.h >= 0, p.w >= 0, p.h <= ((k.h - 1) * d.h + 1) / 2, p.w <= ((k.w - 1) * d.w + 1) / 2 else {
                throw LinprobeError.config(
                    "\(path): MaxPool2d padding \(p) must be between 0 and half the effective kernel (PyTorch's rule)")
            }
        default:
            break
        }
    }

    /// Every size-like argument, named (for the range check).
    private var sizeParameters: [(Int, String)] {
        switch self {
        case .identity:
            return []
        case let .avgPool(k, s, p, _, _, _):
            return [
                (k.h, "kernel"), (k.w, "kernel"), (s.h, "stride"), (s.w, "stride"),
                (p.h, "padding"), (p.w, "padding"),
            ]
        case let .maxPool(k, s, p, d, _):
            return [
                (k.h, "kernel"), (k.w, "kernel"), (s.h, "stride"), (s.w, "stride"),
                (p.h, "padding"), (p.w, "padding"), (d.h, "dilation"), (d.w, "dilation"),
            ]
        case let .adaptiveAvgPool(oh, ow), let .adaptiveMaxPool(oh, ow):
            return [(oh ?? 0, "output height"), (ow ?? 0, "output width")]
        }
    }

    // MARK: - Shapes

    /// PyTorch's `pooling_output_shape`.
    static func pooledSize(_ input: Int, kernel: Int, stride: Int, pad: Int, dilation: Int, ceil: Bool) -> Int {
        let numerator = input + 2 * pad - dilation * (kernel - 1) - 1 + (ceil ? stride - 1 : 0)
        var out = Int((Double(numerator) / Double(stride)).rounded(.down)) + 1
        if ceil && (out - 1) * stride >= input + pad { out -= 1 }
        return out
    }

    /// `[C, H, W]` after the op, or nil when the map is too small for it.
    public func outputShape(_ input: [Int]) -> [Int]? {
        let (c, h, w) = (input[0], input[1], input[2])
        switch self {
        case .identity:
            return input
        case let .avgPool(k, s, p, ceil, _, _):
            let oh = PoolOp.pooledSize(h, kernel: k.h, stride: s.h, pad: p.h, dilation: 1, ceil: ceil)
            let ow = PoolOp.pooledSize(w, kernel: k.w, stride: s.w, pad: p.w, dilation: 1, ceil: ceil)
            return oh >= 1 && ow >= 1 ? [c, oh, ow] : nil
        case let .maxPool(k, s, p, d, ceil):
            let oh = PoolOp.pooledSize(h, kernel: k.h, stride: s.h, pad: p.h, dilation: d.h, ceil: ceil)
            let ow = PoolOp.pooledSize(w, kernel: k.w, stride: s.w, pad: p.w, dilation: d.w, ceil: ceil)
            return oh >= 1 && ow >= 1 ? [c, oh, ow] : nil
        case let .adaptiveAvgPool(oh, ow), let .adaptiveMaxPool(oh, ow):
            return [c, oh ?? h, ow ?? w]
        }
    }
}

// MARK: - The pool-op map

/// One requested feature: a tap and the op applied to it, with its pooled shape for the
/// configured input size.
public struct FeatureOutput: Sendable, Hashable {
    /// Position in the pool-op map (outputs come back in map order).
    public let index: Int
    /// The tap's name (repeated names are possible: IN1k uses `res5avg` twice).
    public let tap: String
    public let op: PoolOp
    /// `[C, H, W]` after pooling (the store's `shape_chw`; `[C, 1, 1]` for a vector tap).
    public let shapeCHW: [Int]
    /// Length of the flattened feature (C·H·W, NCHW order).
    public var dimension: Int { shapeCHW.reduce(1, *) }
    public var name: String { tap }

    public init(index: Int, tap: String, op: PoolOp, shapeCHW: [Int]) {
        self.index = index
        self.tap = tap
        self.op = op
        self.shapeCHW = shapeCHW
    }
}

/// VISSL's `MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP`: a list of
/// `[tap, [OpName, [args]]]`. An empty map means the trunk output (the architecture's
/// `defaultTap`). Tap names are checked against an architecture (`validate`, `outputs`).
public struct PoolOpsMap: Sendable, Hashable {
    public struct Entry: Sendable, Hashable {
        public let tap: String
        public let op: PoolOp
        /// Config path of the entry (for messages).
        public let path: String

        public init(tap: String, op: PoolOp, path: String = "") {
            self.tap = tap
            self.op = op
            self.path = path
        }
    }

    public let entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// Parses the map; an absent or empty node gives the empty map.
    public init(config node: ConfigNode) throws {
        guard node.exists else { self.entries = []; return }
        var entries: [Entry] = []
        for item in try node.list() {
            let parts = try item.list()
            guard parts.count == 2 else {
                throw LinprobeError.config("\(item.path): expected [tap, [OpName, [args]]], got \(parts.count) items")
            }
            entries.append(Entry(tap: try parts[0].string(), op: try PoolOp(config: parts[1]), path: item.path))
        }
        self.entries = entries
    }

    /// Every tap name is one `architecture` offers (config error naming the entry otherwise).
    public func validate(for architecture: any TrunkArchitecture) throws {
        for (i, e) in entries.enumerated() where !architecture.acceptsTap(e.tap) {
            let where_ = e.path.isEmpty ? "pool op \(i)" : e.path + "[0]"
            throw LinprobeError.config(
                "\(where_): '\(e.tap)' is not a tap of the \(architecture.trunkName) trunk (taps: \(architecture.tapNames.joined(separator: ", ")))"
            )
        }
    }

    /// The features the map produces for `architecture` at an input of `inputHeight`×`inputWidth`,
    /// with every pooled shape checked (a kernel larger than its map is a configuration error
    /// naming the tap). An empty map yields the architecture's default tap.
    public func outputs(
        architecture: any TrunkArchitecture, inputHeight: Int, inputWidth: Int
    ) throws -> [FeatureOutput] {
        try validate(for: architecture)
        let list =
            entries.isEmpty
            ? [
                Entry(
                    tap: architecture.defaultTap, op: .identity,
                    path: "LINEAR_EVAL_FEAT_POOL_OPS_MAP (empty: trunk output)")
            ]
            : entries
        return try list.enumerated().map { i, e in
            let where_ = e.path.isEmpty ? "pool op \(i)" : e.path
            let shape = try architecture.tapShape(e.tap, inputHeight: inputHeight, inputWidth: inputWidth)
            let tapShape = shape.chw
            if !shape.poolable, e.op != .identity {
                throw LinprobeError.config(
                    "\(where_) (\(e.tap)): the \(e.tap) tap is N×\(tapShape[0]); only Identity applies to it")
            }
            guard let out = e.op.outputShape(tapShape) else {
                throw LinprobeError.config(
                    "\(where_) (\(e.tap)): \(e.op) does not fit the \(tapShape[1])×\(tapShape[2]) map of tap \(e.tap) at input \(inputHeight)×\(inputWidth) (kernel larger than the padded map)"
                )
            }
            if let excess = MemoryBudget.excess(out + [4]) {
                throw LinprobeError.config(
                    "\(where_) (\(e.tap)): \(e.op) makes a \(out) float32 feature per image, which \(excess)")
            }
            return FeatureOutput(index: i, tap: e.tap, op: e.op, shapeCHW: out)
        }
    }

    /// The map as recorded in provenance: `[[tap, [OpName, [args…]]], …]` with every argument explicit.
    public var provenance: JSONValue {
        .array(entries.map { .array([.string($0.tap), $0.op.provenance]) })
    }
}
