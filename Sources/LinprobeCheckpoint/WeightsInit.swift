import Foundation
import LinprobeCore

/// VISSL's `MODEL.WEIGHTS_INIT` settings, with VISSL's defaults for absent keys.
public struct WeightsInit: Sendable, Hashable {
    /// Path of the weights file; empty means a seeded random initialisation.
    public var paramsFile: String
    /// Keys leading to the state dict (`[]` = the file is a flat state dict). The single key
    /// `classy_state_dict` selects VISSL's nested layout `classy_state_dict → base_model → model → trunk`.
    public var stateDictKeyName: [String]
    /// Parameters whose name contains one of these strings are not loaded (they keep their
    /// initial value, as in VISSL).
    public var skipLayers: [String]
    /// Removed from the start of every key (first; not with `classy_state_dict`).
    public var removePrefix: String
    /// Prepended to every key (after `removePrefix`; not with `classy_state_dict`).
    public var appendPrefix: String

    public init(
        paramsFile: String = "", stateDictKeyName: [String] = ["classy_state_dict"],
        skipLayers: [String] = ["num_batches_tracked"], removePrefix: String = "", appendPrefix: String = ""
    ) {
        self.paramsFile = paramsFile
        self.stateDictKeyName = stateDictKeyName
        self.skipLayers = skipLayers
        self.removePrefix = removePrefix
        self.appendPrefix = appendPrefix
    }

    /// Reads `MODEL.WEIGHTS_INIT` (the node points at the WEIGHTS_INIT mapping).
    public init(config node: ConfigNode) throws {
        self.init()
        if node.exists {
            let known: Set<String> = [
                "PARAMS_FILE", "STATE_DICT_KEY_NAME", "SKIP_LAYERS", "REMOVE_PREFIX", "APPEND_PREFIX",
            ]
            for key in try node.keys() where !known.contains(key) {
                throw LinprobeError.config(
                    "\(node.path).\(key): unknown key (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
        paramsFile = try node["PARAMS_FILE"].stringIfPresent() ?? ""
        let keyNode = node["STATE_DICT_KEY_NAME"]
        if keyNode.exists {
            if case .array? = keyNode.value {
                stateDictKeyName = try keyNode.strings()
            } else {
                let s = try keyNode.string()
                stateDictKeyName = s.isEmpty ? [] : [s]
            }
        }
        if node["SKIP_LAYERS"].exists {
            if case .array? = node["SKIP_LAYERS"].value {
                skipLayers = try node["SKIP_LAYERS"].strings().filter { !$0.isEmpty }
            } else {
                let s = try node["SKIP_LAYERS"].string()
                skipLayers = s.isEmpty ? [] : [s]
            }
        }
        removePrefix = try node["REMOVE_PREFIX"].stringIfPresent() ?? ""
        appendPrefix = try node["APPEND_PREFIX"].stringIfPresent() ?? ""
    }

    /// The settings as recorded in provenance.
    public var provenance: JSONValue {
        .object([
            "PARAMS_FILE": .string(paramsFile),
            "STATE_DICT_KEY_NAME": .array(stateDictKeyName.map { .string($0) }),
            "SKIP_LAYERS": .array(skipLayers.map { .string($0) }),
            "REMOVE_PREFIX": .string(removePrefix),
            "APPEND_PREFIX": .string(appendPrefix),
        ])
    }
}

/// The trunk's tensors taken out of a checkpoint with VISSL's key handling, renamed to the
/// torchvision names of the ResNet (`conv1.weight`, `layer1.0.bn1.running_mean`, ...).
public struct TrunkStateDict: @unchecked Sendable {
    public struct Entry: @unchecked Sendable {
        /// The key as stored in the file (for messages).
        public let originalKey: String
        public let tensor: CheckpointTensor

        public init(originalKey: String, tensor: CheckpointTensor) {
            self.originalKey = originalKey
            self.tensor = tensor
        }
    }

    /// Canonical (torchvision) name → tensor.
    public var tensors: [String: Entry]
    /// Canonical names in file order.
    public var order: [String]
    /// Keys left out because they are not trunk tensors: heads, non-tensor values.
    public var ignoredKeys: [String]
    /// Keys left out because `SKIP_LAYERS` matches them.
    public var skippedKeys: [String] = []
    /// Canonical names matched by `SKIP_LAYERS` (VISSL leaves those parameters at their initial value).
    public var skippedNames: [String]
    /// Human-readable remarks about how the keys were read (recorded in provenance).
    public var notes: [String]

    public init(
        tensors: [String: Entry] = [:], order: [String] = [], ignoredKeys: [String] = [],
        skippedNames: [String] = [], notes: [String] = []
    ) {
        self.tensors = tensors
        self.order = order
        self.ignoredKeys = ignoredKeys
        self.skippedNames = skippedNames
        self.notes = notes
    }

    /// Prefixes that wrap a trunk's torchvision names in the files users bring: VISSL's feature
    /// extractor (`trunk.base_model._feature_blocks.`), DataParallel (`module.`).
    public static let wrapperPrefixes = ["module.", "trunk.", "base_model.", "_feature_blocks."]

    /// Strips the wrapper prefixes (in any order, repeatedly) from a key.
    public static func canonicalName(_ key: String) -> String {
        var name = Substring(key)
        var changed = true
        while changed {
            changed = false
            for p in wrapperPrefixes where name.hasPrefix(p) {
                name = name.dropFirst(p.count)
                changed = true
            }
        }
        return String(name)
    }

    /// Selects the state dict inside `checkpoint` and renames its keys as VISSL's
    /// `init_model_from_consolidated_weights` does, then strips the wrapper prefixes.
    /// `moduleName` gives a parameter's name in VISSL's model, which `SKIP_LAYERS` substrings match
    /// (default: the ResNet's `trunk.base_model._feature_blocks.<name>`).
    public static func select(
        from checkpoint: Checkpoint, settings: WeightsInit,
        moduleName: (String) -> String = { "trunk.base_model._feature_blocks." + $0 }
    ) throws -> TrunkStateDict {
        let path = checkpoint.path
        guard case .dict(let top) = checkpoint.root else {
            throw LinprobeError(
                .incompatible, "\(path): the checkpoint holds a \(checkpoint.root.typeName), not a dict of tensors")
        }
        if top["type"]?.stringValue == "shard_list" {
            throw LinprobeError(
                .unsupported,
                "\(path): a sharded (FSDP) VISSL checkpoint; consolidate it first with VISSL's extra_scripts/convert_sharded_checkpoint.py"
            )
        }
        var notes: [String] = []
        var keyed: [(key: String, value: PickleValue)] = []
        func keysText(_ d: PickleDict) -> String {
            let k = d.keyDescriptions
            return k.prefix(8).joined(separator: ", ") + (k.count > 8 ? ", … (\(k.count) keys)" : "")
        }
        func looksLikeStateDict(_ d: PickleDict) -> Bool {
            d.values.contains {
                if case .tensor = $0 { return true }; return false
            }
        }
        let names = settings.stateDictKeyName
        if names == ["classy_state_dict"], checkpoint.format != .safetensors, top["classy_state_dict"] != nil {
            // VISSL checkpoint: classy_state_dict → base_model → model → {trunk, heads}.
            var node: PickleValue = .dict(top)
            var where_ = ""
            for k in ["classy_state_dict", "base_model", "model", "trunk"] {
                guard case .dict(let d) = node, let next = d[k] else {
                    let shown: String
                    if case .dict(let d) = node { shown = " (keys: \(keysText(d)))" } else { shown = "" }
                    throw LinprobeError(
                        .incompatible,
                        "\(path): no key '\(k)' under '\(where_.isEmpty ? "<top>" : where_)'\(shown); this is not a VISSL checkpoint — set MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME"
                    )
                }
                node = next
                where_ += (where_.isEmpty ? "" : ".") + k
            }
            guard case .dict(let trunk) = node else {
                throw LinprobeError(
                    .incompatible, "\(path): classy_state_dict.base_model.model.trunk is a \(node.typeName), not a dict"
                )
            }
            for (k, v) in zip(trunk.keys, trunk.values) {
                guard case .string(let s) = k else { continue }
                keyed.append(("trunk." + s, v))
            }
            if !settings.removePrefix.isEmpty || !settings.appendPrefix.isEmpty {
                notes.append(
                    "REMOVE_PREFIX/APPEND_PREFIX are not applied to a classy_state_dict checkpoint (as in VISSL)")
            }
        } else {
            var node = top
            var where_ = ""
            if names == ["classy_state_dict"] && top["classy_state_dict"] == nil {
                // VISSL's default key, but the file is not a VISSL checkpoint.
                if looksLikeStateDict(top) {
                    notes.append("no 'classy_state_dict' key: read as a flat state dict (STATE_DICT_KEY_NAME '')")
                } else {
                    throw LinprobeError(
                        .incompatible,
                        "\(path): no key 'classy_state_dict' (top-level keys: \(keysText(top))); set MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME to the key holding the state dict ('' for a flat file)"
                    )
                }
            } else {
                for k in names {
                    guard let next = node[k] else {
                        throw LinprobeError(
                            .incompatible,
                            "\(path): no key '\(k)' under '\(where_.isEmpty ? "<top>" : where_)' (keys: \(keysText(node))); check MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME"
                        )
                    }
                    guard case .dict(let d) = next else {
                        throw LinprobeError(
                            .incompatible,
                            "\(path): '\(where_.isEmpty ? k : where_ + "." + k)' is a \(next.typeName), not a dict of tensors"
                        )
                    }
                    node = d
                    where_ += (where_.isEmpty ? "" : ".") + k
                }
            }
            for (k, v) in zip(node.keys, node.values) {
                guard case .string(var s) = k else { continue }
                if !settings.removePrefix.isEmpty, s.hasPrefix(settings.removePrefix) {
                    s.removeFirst(settings.removePrefix.count)
                }
                keyed.append((settings.appendPrefix + s, v))
            }
        }

        var result = TrunkStateDict()
        result.notes = notes
        var origin: [String: String] = [:]
        for (key, value) in keyed {
            let name = canonicalName(key)
            guard case .tensor(let record) = value else {
                result.ignoredKeys.append(key)
                continue
            }
            if name.hasPrefix("heads.") || key.hasPrefix("heads.") {
                result.ignoredKeys.append(key)
                continue
            }
            // SKIP_LAYERS is matched against the model's parameter name, as VISSL does.
            let modelName = moduleName(name)
            if settings.skipLayers.contains(where: { modelName.contains($0) }) {
                result.skippedKeys.append(key)
                result.skippedNames.append(name)
                continue
            }
            if let other = origin[name] {
                throw LinprobeError(
                    .incompatible,
                    "\(path): keys '\(other)' and '\(key)' both name the trunk parameter \(name); set MODEL.WEIGHTS_INIT.REMOVE_PREFIX to choose one"
                )
            }
            origin[name] = key
            let tensor = try record.resolve(what: "\(path): \(key)")
            result.tensors[name] = Entry(originalKey: key, tensor: tensor)
            result.order.append(name)
        }
        return result
    }
}
