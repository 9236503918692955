import Foundation

/// Inconsistencies known in VISSL's own benchmark files, found in the composed configuration
/// before any work. VISSL itself fails on each of them (a shape error in the first batch, an
/// assertion, a trunk fed the wrong input), so each is a configuration error of one line naming
/// the files that set the values:
///
/// - an `eval_mlp` head on unflattened features whose input size is not `in_channels` × the
///   output size of its adaptive pool (`imagenet1k/models/regnet400MF.yaml`: 440 × 6 × 5 = 13200,
///   not 8640);
/// - a `*POOL*` tap (mean over all tokens) on a vision transformer with a class token
///   (`vit_h14_mae.yaml` outside ImageNet; VISSL asserts);
/// - Lab input to an AlexNet other than `alexnet_colorization`, or that trunk without Lab input
///   (`voc07/models/alexnet_colorization.yaml` names `alexnet_deepcluster`).
///
/// A trunk Linprobe does not implement yet is reported by the extract stage's trunk parser, also
/// before any image is read.
enum KnownInconsistencies {
    static func check(_ config: PipelineConfig) throws {
        try headsMatchAdaptivePools(config)
        try poolTapsNeedNoClassToken(config)
        try labInputMatchesTheTrunk(config)
    }

    // MARK: Head sizes against the pool map

    private static func headsMatchAdaptivePools(_ config: PipelineConfig) throws {
        let headsKey = "MODEL.HEAD.PARAMS", mapKey = "MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP"
        // Flattened features reach eval_mlp as C·H·W channels of 1×1: in_channels is then that size.
        guard try config.node("MODEL.FEATURE_EVAL_SETTINGS.SHOULD_FLATTEN_FEATS").boolIfPresent() == false,
            case .array(let heads)? = config.node(headsKey).value,
            case .array(let map)? = config.node(mapKey).value
        else { return }
        for (i, (head, entry)) in zip(heads, map).enumerated() {
            guard case .array(let h) = head, h.count == 2, h[0] == "eval_mlp",
                let channels = h[1]["in_channels"]?.intValue, case .array(let dims)? = h[1]["dims"],
                let inputs = dims.first?.intValue,
                let (op, cells) = adaptiveCells(entry)
            else { continue }
            let expected = channels.multipliedReportingOverflow(by: cells)
            guard !expected.overflow, expected.partialValue != inputs else { continue }
            throw LinprobeError.config(
                "\(headsKey)[\(i)] (\(config.origin(of: headsKey))): eval_mlp takes dims[0] = \(inputs) inputs, but in_channels \(channels) × the output of \(mapKey)[\(i)] (\(op), \(config.origin(of: mapKey))) is \(expected.partialValue); the head and the pool map disagree (VISSL fails on the first batch): fix one with config.\(headsKey)=… or config.\(mapKey)=…"
            )
        }
    }

    /// The op's text and its number of output cells, for `AdaptiveAvgPool2d` / `AdaptiveMaxPool2d`
    /// with an explicit output size (`n` or `[h, w]`).
    private static func adaptiveCells(_ entry: JSONValue) -> (String, Int64)? {
        guard case .array(let e) = entry, e.count == 2, case .array(let op) = e[1], op.count == 2,
            case .string(let name) = op[0], name == "AdaptiveAvgPool2d" || name == "AdaptiveMaxPool2d",
            case .array(let args) = op[1], let size = args.first
        else { return nil }
        let sides: [Int64]
        switch size {
        case .int(let n): sides = [n, n]
        case .array(let hw) where hw.count == 2: sides = hw.compactMap(\.intValue)
        default: return nil
        }
        guard sides.count == 2, sides.allSatisfy({ $0 > 0 && $0 <= 1 << 30 }) else { return nil }
        let tap = e[0].stringValue ?? "?"
        return ("\(tap) \(name) \(ConfigYAML.flowText(size))", sides[0] * sides[1])
    }

    // MARK: Token-mean taps on a class-token ViT

    private static func poolTapsNeedNoClassToken(_ config: PipelineConfig) throws {
        let nameKey = "MODEL.TRUNK.NAME", mapKey = "MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP"
        guard try config.node(nameKey).stringIfPresent() == "vision_transformer",
            case .array(let map)? = config.node(mapKey).value
        else { return }
        let tokenKey = "MODEL.TRUNK.VISION_TRANSFORMERS.USE_CLASS_TOKEN"
        // A key Linprobe reads (once a ViT family registers it), else as VISSL's files set it.
        let setting =
            config.node(tokenKey).exists
            ? IgnoredSetting(value: config.node(tokenKey).value ?? .null, origin: config.origin(of: tokenKey))
            : config.ignoredSetting(tokenKey)
        // VISSL's vision_transformer has a class token unless USE_CLASS_TOKEN is false.
        guard setting?.value != .bool(false) else { return }
        let taps = map.compactMap { $0.arrayValue?.first?.stringValue }
        guard let tap = taps.first(where: { $0.contains("POOL") }) else { return }
        let where_ = setting.map { "\($0.origin)" } ?? "default"
        throw LinprobeError.config(
            "\(mapKey) (\(config.origin(of: mapKey))): tap '\(tap)' averages all tokens, which VISSL's vision_transformer allows only without a class token, but \(tokenKey) is true (\(where_)); VISSL asserts here: use the class-token taps (lastCLS, concatCLS4) or a model without a class token"
        )
    }

    // MARK: Lab input and the colorization trunks

    private static func labInputMatchesTheTrunk(_ config: PipelineConfig) throws {
        let nameKey = "MODEL.TRUNK.NAME", inputKey = "MODEL.INPUT_TYPE"
        guard let trunk = try config.node(nameKey).stringIfPresent() else { return }
        let input = try config.node(inputKey).stringIfPresent() ?? "rgb"
        let labTrunks: Set<String> = ["alexnet_colorization", "resnet"]
        if input == "lab", trunk.hasPrefix("alexnet"), !labTrunks.contains(trunk) {
            throw LinprobeError.config(
                "\(nameKey) (\(config.origin(of: nameKey))): trunk '\(trunk)' does not take Lab input, but \(inputKey) is lab (\(config.origin(of: inputKey))); the colorization AlexNet is alexnet_colorization (VISSL's voc07/models/alexnet_colorization.yaml names \(trunk) by mistake): set config.\(nameKey)=alexnet_colorization"
            )
        }
        if trunk == "alexnet_colorization", input != "lab" {
            throw LinprobeError.config(
                "\(nameKey) (\(config.origin(of: nameKey))): trunk alexnet_colorization takes the L channel of Lab input, but \(inputKey) is \(input) (\(config.origin(of: inputKey))); set config.\(inputKey)=lab"
            )
        }
    }
}
