import Foundation
import LinprobeTestSupport
import Testing

@testable import LinprobeCore

@Suite struct VISSLKeyTreeTests {
    @Test func generatedTreeHoldsVISSLDefaults() throws {
        let tree = VISSLKeyTree.shared
        #expect(tree.entries.count > 600)
        #expect(VISSLKeyTree.sourceCommit.count == 40)
        #expect(tree.entry("DATA.TRAIN.BATCHSIZE_PER_REPLICA")?.defaultValue == 256)
        #expect(tree.entry("SVM.costs.costs_list")?.defaultValue == [0.1, 0.01])
        #expect(tree.entry("MODEL.HEAD.BATCHNORM_EPS")?.kind == .float)  // written 1e-5 in VISSL
        #expect(tree.entry("MODEL.HEAD.BATCHNORM_EPS")?.defaultValue == .double(1e-5))
        #expect(tree.entry("MODEL.HEAD.PARAMS_MULTIPLIER")?.defaultValue == .double(1.0))
        #expect(tree.entry("MODEL.TRUNK.RESNETS")?.kind == .mapping)
        #expect(tree.entry("MODEL.TRUNK.REGNET")?.kind == .open)
        #expect(tree.entry("LOSS.cross_entropy_multiple_output_single_target.weight")?.kind == .null)
        #expect(tree.entry("MACHINE.DEVICE")?.defaultValue == "gpu")
        #expect(tree.entry("DISTRIBUTED.NUM_PROC_PER_NODE")?.defaultValue == 8)
        #expect(tree.entry("OPTIMIZER.nesterov")?.defaultValue == false)
        #expect(tree.children[""]?.contains("SVM") == true)
        #expect(tree.legacy["MONITOR_PERF_STATS"] != nil)
        #expect(VISSLKeyTree.rootKeys.contains("engine_name"))
    }
}

@Suite struct LinprobeKeysTests {
    @Test func registryPathsAreUniqueAndDocumented() {
        let paths = LinprobeKeys.all.map(\.path)
        #expect(Set(paths).count == paths.count)
        for key in LinprobeKeys.all {
            #expect(!key.doc.isEmpty && !key.doc.contains("\n"), "\(key.path)")
            let parts = key.path.split(separator: ".", omittingEmptySubsequences: false)
            #expect(parts.allSatisfy { !$0.isEmpty }, "\(key.path)")
        }
    }

    @Test func visslKeysExistInVISSLWithCompatibleTypesAndDefaults() {
        let tree = VISSLKeyTree.shared
        for key in LinprobeKeys.all where key.origin == .vissl {
            guard let entry = tree.entry(key.path) else {
                // Keys VISSL reads with .get() and a default in code (USE_CLASS_TOKEN): set by VISSL's
                // own configs (legacy rows of the tree), registered with that default.
                if tree.legacy[key.path] != nil && key.explicitDefault != nil { continue }
                // Keys inside a free-form VISSL mapping (MODEL.TRUNK.REGNET, read by ClassyVision
                // with defaults in code): registered with those defaults.
                let parent = key.path.split(separator: ".").dropLast().joined(separator: ".")
                if tree.entry(parent)?.kind == .open && key.explicitDefault != nil { continue }
                Issue.record("\(key.path) is registered as a VISSL key but is not in VISSL's defaults.yaml")
                continue
            }
            #expect(entry.kind != .mapping && entry.kind != .open, "\(key.path) is a VISSL mapping")
            // VISSL's default value has the registered type (null defaults excepted).
            if entry.kind != .null {
                #expect(
                    key.type.normalize(entry.defaultValue) != nil,
                    "\(key.path): VISSL default \(entry.defaultValue.canonicalText) is not \(key.type)")
            }
            if let linprobe = key.explicitDefault {
                // A Linprobe default for a VISSL key exists only where it differs from VISSL's.
                #expect(
                    key.type.normalize(linprobe) != key.type.normalize(entry.defaultValue),
                    "\(key.path): same default as VISSL's")
            } else {
                #expect(
                    key.defaultValue == (key.type.normalize(entry.defaultValue) ?? entry.defaultValue), "\(key.path)")
            }
        }
        #expect(LinprobeKeys.key("DATA.TRAIN.BATCHSIZE_PER_REPLICA")?.defaultValue == 32)
        #expect(LinprobeKeys.key("DATA.TEST.BATCHSIZE_PER_REPLICA")?.defaultValue == 32)
    }

    @Test func linprobeKeysLiveUnderLINPROBEAndAreNotVISSLs() {
        // SVM.solver (issue 18) sits beside VISSL's SVM keys it qualifies; VISSL has no such key.
        let outsideLINPROBE: Set<String> = ["SVM.solver"]
        for key in LinprobeKeys.all where key.origin == .linprobe {
            #expect(key.path.hasPrefix("LINPROBE.") || outsideLINPROBE.contains(key.path), "\(key.path)")
            #expect(VISSLKeyTree.shared.entry(key.path) == nil)
        }
        #expect(VISSLKeyTree.shared.entry("LINPROBE") == nil)
    }

    @Test func everyDefaultPassesItsOwnChecks() {
        for key in LinprobeKeys.all {
            if case .failure = key.check(key.defaultValue) {
                Issue.record("\(key.path): default \(key.defaultValue.canonicalText) fails its own checks")
            }
        }
    }

    @Test func keysTheProtocolNeedsAreRegistered() {
        for path in [
            "DATA.TRAIN.DATA_SOURCES", "DATA.TEST.LABEL_PATHS", "DATA.TRAIN.DATA_LIMIT_SAMPLING.SKIP_NUM_SAMPLES",
            "MODEL.TRUNK.RESNETS.LAYER4_STRIDE", "MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP",
            "MODEL.WEIGHTS_INIT.SKIP_LAYERS", "MODEL.HEAD.BATCHNORM_MOMENTUM", "DISTRIBUTED.NUM_NODES",
            "OPTIMIZER.param_schedulers.lr.auto_lr_scaling.scaling_type", "OPTIMIZER.param_schedulers.lr.lengths",
            "SVM.low_shot.k_values", "LINPROBE.STORAGE_DTYPE", "LINPROBE.LINEAR.SHUFFLE_CHUNK_ROWS",
            "LINPROBE.REPORT.TITLE",
        ] {
            #expect(LinprobeKeys.key(path) != nil, "\(path)")
        }
    }
}

@Suite(.serialized) struct PipelineSchemaTests {
    static let schemaPath = repositoryRoot.appendingPathComponent("schemas/pipeline.schema.json").path

    /// Leaves of the schema's `config` definition: path → (type, leaf schema).
    private func schemaLeaves(_ node: [String: Any], prefix: String, into out: inout [String: [String: Any]]) {
        guard let properties = node["properties"] as? [String: Any] else { return }
        for (name, child) in properties {
            guard let child = child as? [String: Any] else { continue }
            let path = prefix.isEmpty ? name : "\(prefix).\(name)"
            if child["x-linprobe-alias-of"] != nil { continue }
            if child["properties"] != nil {
                schemaLeaves(child, prefix: path, into: &out)
            } else {
                out[path] = child
            }
        }
    }

    private func type(fromSchema s: [String: Any]) -> ConfigValueType? {
        if let choices = s["oneOf"] as? [[String: Any]], choices.count == 2,
            let one = type(fromSchema: choices[0]), type(fromSchema: choices[1]) == .list(one)
        {
            return .oneOrList(one)
        }
        switch s["type"] as? String {
        case nil: return .any
        case "boolean": return .bool
        case "integer": return .integer
        case "number": return .number
        case "string": return .string
        case "object": return .mapping
        case "array":
            guard let items = s["items"] as? [String: Any], let element = type(fromSchema: items) else { return nil }
            return .list(element)
        default: return nil
        }
    }

    @Test func committedSchemaAndRegistryAgreeBothWays() throws {
        if ProcessInfo.processInfo.environment["LINPROBE_UPDATE_SCHEMA"] == "1" {
            try (PipelineSchema.document().prettyText() + "\n").write(
                toFile: Self.schemaPath, atomically: true, encoding: .utf8)
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.schemaPath))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(root["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
        let defs = try #require(root["$defs"] as? [String: Any])
        let config = try #require(defs["config"] as? [String: Any])
        var leaves: [String: [String: Any]] = [:]
        schemaLeaves(config, prefix: "", into: &leaves)

        let hint =
            "regenerate with: LINPROBE_UPDATE_SCHEMA=1 swift test -c release -Xswiftc -enable-testing --filter PipelineSchemaTests"
        let registry = Set(LinprobeKeys.all.map(\.path))
        for missing in registry.subtracting(leaves.keys).sorted() {
            Issue.record("\(missing) is in the registry but not in the schema; \(hint)")
        }
        for extra in Set(leaves.keys).subtracting(registry).sorted() {
            Issue.record("\(extra) is in the schema but not in the registry; \(hint)")
        }

        for key in LinprobeKeys.all {
            guard let leaf = leaves[key.path] else { continue }
            #expect(type(fromSchema: leaf) == key.type, "\(key.path): schema type differs; \(hint)")
            let schemaDefault = leaf["default"].map(jsonValue(fromFoundation:)) ?? .null
            #expect(
                (key.type.normalize(schemaDefault) ?? schemaDefault) == key.defaultValue,
                "\(key.path): schema default \(schemaDefault.canonicalText) ≠ \(key.defaultValue.canonicalText); \(hint)"
            )
            let enumSource =
                (leaf["items"] as? [String: Any]) ?? (leaf["oneOf"] as? [[String: Any]])?.first ?? leaf
            let schemaEnum = (enumSource["enum"] as? [Any]).map { $0.map(jsonValue(fromFoundation:)) }
            #expect(
                schemaEnum?.map { key.type.elementNormalize($0) } == key.allowed?.map { key.type.elementNormalize($0) },
                "\(key.path): enum differs; \(hint)")
            #expect(
                (enumSource["minimum"] as? NSNumber)?.doubleValue == key.minimum,
                "\(key.path): minimum differs; \(hint)")
            #expect(
                (enumSource["maximum"] as? NSNumber)?.doubleValue == key.maximum,
                "\(key.path): maximum differs; \(hint)")
            #expect(leaf["description"] as? String == key.doc, "\(key.path): description differs; \(hint)")
        }
        // The alias is documented.
        let model = (config["properties"] as? [String: Any])?["MODEL"] as? [String: Any]
        let trunk = (model?["properties"] as? [String: Any])?["TRUNK"] as? [String: Any]
        #expect((trunk?["properties"] as? [String: Any])?["TRUNK_PARAMS"] != nil)
    }

    @Test func generatedSchemaEqualsTheCommittedFile() throws {
        let committed = try JSONValue.parse(String(contentsOfFile: Self.schemaPath, encoding: .utf8))
        // Compared after the same JSON text round trip (JSON does not keep 1.0 apart from 1).
        let generated = try JSONValue.parse(PipelineSchema.document().prettyText())
        let upToDate = committed == generated
        #expect(
            upToDate,
            "schemas/pipeline.schema.json differs from the registry; regenerate with: LINPROBE_UPDATE_SCHEMA=1 swift test -c release -Xswiftc -enable-testing --filter PipelineSchemaTests"
        )
    }
}

extension ConfigValueType {
    /// Normalises one element (or scalar) the way this type stores it.
    func elementNormalize(_ v: JSONValue) -> JSONValue {
        if case .list(let element) = self { return element.normalize(v) ?? v }
        if case .oneOrList(let element) = self { return element.normalize(v) ?? v }
        return normalize(v) ?? v
    }
}
