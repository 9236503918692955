import Foundation
import LinprobeCore

extension RegNetSpec {
    /// Keys shared by the parametric and `anynet` forms (ClassyVision's defaults).
    static let commonKeys: Set<String> = [
        "stem_type", "stem_width", "block_type", "activation", "use_se", "se_ratio", "bn_epsilon", "bn_momentum",
    ]
    static let parametricKeys: Set<String> = [
        "depth", "w_0", "w_a", "w_m", "group_width", "bottleneck_multiplier",
    ]
    static let anynetKeys: Set<String> = [
        "name", "depths", "widths", "group_widths", "bottleneck_multipliers", "strides",
    ]

    /// Reads `MODEL.TRUNK.REGNET` and `MODEL.INPUT_TYPE` as VISSL's `regnet` (named ClassyVision
    /// model, parametric RegNet or `anynet`) or `regnet_fsdp` / `regnet_v2` (parametric or
    /// `anynet`, with `stage_checkpoints` deciding the `-part{g}` key layout) does.
    public init(model: ConfigNode, trunkName: String) throws {
        let node = model["TRUNK"]["REGNET"]
        let inputNode = model["INPUT_TYPE"]
        let input = try inputNode.stringIfPresent() ?? "rgb"
        guard let inputType = InputType(rawValue: input) else {
            throw LinprobeError.config(
                "\(inputNode.path): '\(input)' is not supported by \(trunkName) (VISSL asserts rgb or bgr)")
        }
        guard node.exists else {
            throw LinprobeError.config(
                "\(node.path): missing; give a ClassyVision name (name: regnet_y_16gf), RegNet parameters (depth, w_0, w_a, w_m, group_width) or name: anynet with per-stage lists"
            )
        }
        let keys = Set(try node.keys().filter { RegNetSpec.isGiven(node[$0]) })
        let fsdp = trunkName != "regnet"
        let name = RegNetSpec.isGiven(node["name"]) ? try node["name"].stringIfPresent() : nil
        try RegNetSpec.checkKeys(keys, node: node, name: name, trunkName: trunkName)
        if let name, name != "anynet" {
            try self.init(named: name, node: node, trunkName: trunkName, inputType: inputType)
            return
        }
        let stages = try name == nil ? RegNetSpec.parametricStages(node) : RegNetSpec.anynetStages(node)
        let stem = try RegNetSpec.blockSettings(node)
        let useSE = try node["use_se"].boolIfPresent() ?? true
        let ratio = try node["se_ratio"].doubleIfPresent() ?? 0.25
        var checkpoints: [[Int]]?
        if fsdp {
            checkpoints =
                try node["stage_checkpoints"].exists ? node["stage_checkpoints"].list().map { try $0.ints() } : []
        }
        try self.init(
            trunkName: trunkName,
            settings: .object(Dictionary(uniqueKeysWithValues: keys.compactMap { k in node[k].value.map { (k, $0) } })),
            stages: stages, stemType: stem,
            stemWidth: try node["stem_width"].intIfPresent() ?? 32, seRatio: useSE && ratio != 0 ? ratio : nil,
            bnEpsilon: try node["bn_epsilon"].doubleIfPresent() ?? 1e-5, inputType: inputType,
            stageCheckpoints: checkpoints, keyPath: node.path)
    }

    /// What the effective configuration holds for a key nobody set ("", 0, -1, [] for the keys
    /// without a ClassyVision default; ClassyVision's default otherwise).
    static let unsetValues: [String: JSONValue] = [
        "name": "", "depth": 0, "w_0": 0, "w_a": -1, "w_m": 0, "group_width": 0, "bottleneck_multiplier": 1,
        "stem_type": "simple_stem_in", "stem_width": 32, "block_type": "res_bottleneck_block", "activation": "relu",
        "use_se": true, "se_ratio": 0.25, "bn_epsilon": 1e-5, "bn_momentum": 0.1, "depths": [], "widths": [],
        "group_widths": [], "bottleneck_multipliers": [], "strides": [], "stage_checkpoints": [],
    ]

    /// Whether a key holds a value other than the unset one.
    static func isGiven(_ node: ConfigNode) -> Bool {
        guard node.exists, let value = node.value else { return false }
        let key = String(node.path.split(separator: ".").last ?? "")
        guard let unset = unsetValues[key] else { return true }
        if let a = value.doubleValue, let b = unset.doubleValue, value.stringValue == nil { return a != b }
        return value != unset
    }

    /// Which keys the form allows (named, parametric or anynet; stage_checkpoints for the FSDP trunks).
    static func checkKeys(_ keys: Set<String>, node: ConfigNode, name: String?, trunkName: String) throws {
        let fsdp = trunkName != "regnet"
        var allowed: Set<String>
        if let name, name != "anynet" {
            guard !fsdp else {
                throw LinprobeError.config(
                    "\(node.path).name: \(trunkName) takes RegNet parameters or name: anynet, not a named model ('\(name)'; VISSL asserts)"
                )
            }
            allowed = ["name"]
        } else {
            allowed = RegNetSpec.commonKeys.union(name == nil ? RegNetSpec.parametricKeys : RegNetSpec.anynetKeys)
        }
        if fsdp { allowed.insert("stage_checkpoints") }
        for key in keys.sorted() where !allowed.contains(key) {
            var why = "not a key of this form (known: \(allowed.sorted().joined(separator: ", ")))"
            if name != nil && name != "anynet" { why = "VISSL ignores every key but name for a named model; remove it" }
            if key == "stage_checkpoints" { why = "only regnet_fsdp / regnet_v2 read it (VISSL's regnet ignores it)" }
            throw LinprobeError.config("\(node.path).\(key): \(why)")
        }
    }

    /// The stem; block type and activation must be the implemented ones.
    static func blockSettings(_ node: ConfigNode) throws -> StemType {
        let stemNode = node["stem_type"]
        let stemName = try stemNode.stringIfPresent() ?? "simple_stem_in"
        guard let stem = StemType(rawValue: stemName.lowercased()) else {
            throw LinprobeError.config(
                "\(stemNode.path): '\(stemName)' is not a stem (supported: \(StemType.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        let block = try node["block_type"].stringIfPresent() ?? "res_bottleneck_block"
        guard block.lowercased() == "res_bottleneck_block" else {
            throw LinprobeError(
                .unsupported,
                "\(node.path).block_type: '\(block)' is not implemented (supported: res_bottleneck_block, the block of every VISSL RegNet benchmark)"
            )
        }
        let activation = try node["activation"].stringIfPresent() ?? "relu"
        guard activation.lowercased() == "relu" else {
            throw LinprobeError(
                .unsupported, "\(node.path).activation: '\(activation)' is not implemented (supported: relu)")
        }
        return stem
    }

    private init(named name: String, node: ConfigNode, trunkName: String, inputType: InputType) throws {
        guard let entry = RegNetParameters.named[name] else {
            let known = RegNetParameters.named.keys.sorted().joined(separator: ", ")
            if RegNetParameters.unsupportedNames.contains(name) {
                throw LinprobeError(
                    .unsupported, "\(node.path).name: '\(name)' (RegNetZ: linear bottleneck, SiLU) is not implemented")
            }
            throw LinprobeError.config(
                "\(node.path).name: '\(name)' is not a ClassyVision RegNet (known: anynet, \(known))")
        }
        try self.init(
            trunkName: trunkName, settings: ["name": .string(name)], stages: entry.parameters.stages,
            seRatio: entry.useSE ? 0.25 : nil, inputType: inputType, keyPath: node.path)
    }

    /// `RegNetParams` from the parametric keys (ClassyVision's assertions included).
    static func parametricStages(_ node: ConfigNode) throws -> [RegNetStage] {
        for key in ["depth", "w_0", "w_a", "w_m", "group_width"] where !isGiven(node[key]) {
            throw LinprobeError.config(
                "\(node.path).\(key): missing (RegNet parameters need depth, w_0, w_a, w_m, group_width)")
        }
        let depth = try node["depth"].int()
        let w0 = try node["w_0"].double(), wa = try node["w_a"].double(), wm = try node["w_m"].double()
        let gw = try node["group_width"].int()
        let b = try node["bottleneck_multiplier"].doubleIfPresent() ?? 1
        guard (1...4096).contains(depth) else {
            throw LinprobeError.config("\(node.path).depth: \(depth) must be 1…4096")
        }
        guard wa >= 0, w0 > 0, wm > 1, w0.truncatingRemainder(dividingBy: 8) == 0, w0 <= 1_048_576, wa <= 1_048_576,
            wm <= 64
        else {
            throw LinprobeError.config(
                "\(node.path): w_0 \(w0), w_a \(wa), w_m \(wm) are not valid RegNet settings (ClassyVision asserts w_a ≥ 0, w_0 > 0 divisible by 8, w_m > 1)"
            )
        }
        guard gw >= 1, b > 0, b <= 64 else {
            throw LinprobeError.config(
                "\(node.path): group_width \(gw) and bottleneck_multiplier \(b) must be positive")
        }
        let stages = RegNetParameters(depth: depth, w0: w0, wa: wa, wm: wm, groupWidth: gw, bottleneckMultiplier: b)
            .stages
        guard stages.allSatisfy({ $0.width >= 1 && $0.groupWidth >= 1 }) else {
            throw LinprobeError.config("\(node.path): these RegNet parameters give an empty stage")
        }
        return stages
    }

    /// `AnyNetParams`: explicit per-stage lists of the same length.
    static func anynetStages(_ node: ConfigNode) throws -> [RegNetStage] {
        let names = ["depths", "widths", "group_widths", "bottleneck_multipliers", "strides"]
        for key in names where !isGiven(node[key]) {
            throw LinprobeError.config("\(node.path).\(key): missing (anynet needs \(names.joined(separator: ", ")))")
        }
        let depths = try node["depths"].ints(), widths = try node["widths"].ints()
        let groups = try node["group_widths"].ints(), strides = try node["strides"].ints()
        let multipliers = try node["bottleneck_multipliers"].doubles()
        guard [widths.count, groups.count, strides.count, multipliers.count].allSatisfy({ $0 == depths.count }) else {
            throw LinprobeError.config("\(node.path): \(names.joined(separator: ", ")) must have the same length")
        }
        return depths.indices.map {
            RegNetStage(
                width: widths[$0], depth: depths[$0], stride: strides[$0], groupWidth: groups[$0],
                bottleneckMultiplier: multipliers[$0])
        }
    }
}
