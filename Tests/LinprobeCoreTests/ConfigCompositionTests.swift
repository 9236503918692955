import Foundation
import LinprobeTestSupport
import Testing

@testable import LinprobeCore

/// The composition fixture: a configs folder laid out like VISSL's (`config/benchmark/…/toyset`
/// with a base and models/, transforms/, optimizers/ groups).
private let configs = fixturePath("compose/configs")
private let group = "config/benchmark/linear_image_classification/toyset"
private let baseName = "benchmark/linear_image_classification/toyset/eval_resnet_toy_linear"
private let baseFile = "\(configs)/config/\(baseName).yaml"

/// Composes with VISSL's configs folder given explicitly (never from the environment).
private func compose(
    _ pipeline: String, _ arguments: [String] = [], configs folder: String? = configs
) throws
    -> PipelineConfig
{
    try PipelineConfig.load(
        pipeline: pipeline, overrides: arguments, configs: folder, environment: [:], searchPaths: [])
}

@Suite struct ConfigCompositionTests {
    @Test func visslBaseIsTheFileItself() throws {
        let viaName = try compose("config=\(baseName)")
        let viaPath = try compose(baseFile, configs: nil)
        #expect(viaName.canonicalJSON == viaPath.canonicalJSON)
        #expect(viaName.name == "eval_resnet_toy_linear")
        #expect(viaName.pipelinePath == baseFile)
        #expect(try viaName.node("MODEL.TRUNK.RESNETS.DEPTH").int() == 50)
        #expect(viaName.origin(of: "MODEL.TRUNK.RESNETS.DEPTH") == .file(path: baseFile, line: 47))
    }

    @Test func overlayListsReplaceTheBaseListsWhole() throws {
        let config = try compose("config=\(baseName)", ["+\(group)/models=resnet18"])
        #expect(
            config.node("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP").value
                == [["res5", ["AdaptiveAvgPool2d", [[2, 1]]]]])
        #expect(config.node("MODEL.HEAD.PARAMS").value == [["eval_mlp", ["in_channels": 512, "dims": [1024, 10]]]])
        // Keys the overlay does not mention keep the base's values.
        #expect(try config.node("MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME").string() == "classy_state_dict")
        #expect(try config.node("OPTIMIZER.num_epochs").int() == 28)
        #expect(config.name == "eval_resnet_toy_linear+resnet18")
        let overlay = "\(configs)/\(group)/models/resnet18.yaml"
        #expect(config.origin(of: "MODEL.HEAD.PARAMS") == .file(path: overlay, line: 12))
        #expect(config.sources.map(\.role) == [.base, .overlay])
        #expect(config.sources.last?.path == overlay)
    }

    @Test func nestedMappingsMergeKeyByKey() throws {
        let config = try compose("config=\(baseName)", ["+\(group)/models=wide_resnet"])
        #expect(try config.node("MODEL.TRUNK.RESNETS.DEPTH").int() == 50)
        #expect(try config.node("MODEL.TRUNK.RESNETS.WIDTH_MULTIPLIER").int() == 2)
        #expect(config.origin(of: "MODEL.TRUNK.RESNETS.DEPTH") == .file(path: baseFile, line: 47))
        #expect(
            config.origin(of: "MODEL.TRUNK.RESNETS.WIDTH_MULTIPLIER")
                == .file(path: "\(configs)/\(group)/models/wide_resnet.yaml", line: 7))
        #expect(config.node("MODEL.HEAD.PARAMS").value?.arrayValue?.count == 3)
    }

    @Test func overlaysApplyInCommandLineOrder() throws {
        let modelsLast = try compose(baseFile, ["+transforms=resize320_224", "+models=resnet18"])
        let transformsLast = try compose(baseFile, ["+models=resnet18", "+transforms=resize320_224"])
        #expect(try modelsLast.node("DATA.TRAIN.BATCHSIZE_PER_REPLICA").int() == 64)
        #expect(try transformsLast.node("DATA.TRAIN.BATCHSIZE_PER_REPLICA").int() == 16)
        // The transforms list is the overlay's, whole; the other split keeps its own keys.
        let names = try transformsLast.node("DATA.TRAIN.TRANSFORMS").list().map { try $0["name"].string() }
        #expect(names == ["Resize", "RandomResizedCrop"])
        #expect(try transformsLast.node("DATA.TEST.BATCHSIZE_PER_REPLICA").int() == 32)
    }

    @Test func overridesComeAfterEveryOverlayWhereverTheyAreWritten() throws {
        let config = try compose(
            "config=\(baseName)",
            [
                "config.MODEL.TRUNK.RESNETS.DEPTH=101", "+\(group)/models=resnet18",
                "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=8",
            ])
        #expect(try config.node("MODEL.TRUNK.RESNETS.DEPTH").int() == 101)
        #expect(try config.node("DATA.TRAIN.BATCHSIZE_PER_REPLICA").int() == 8)
        #expect(config.origin(of: "MODEL.TRUNK.RESNETS.DEPTH") == .override("config.MODEL.TRUNK.RESNETS.DEPTH=101"))
        #expect(config.sources.map(\.role) == [.base, .overlay, .override, .override])
    }

    @Test func floatsWithoutADotAreNumbersAsInOmegaConf() throws {
        let config = try compose(baseFile, ["+optimizers=ep100"])
        #expect(try config.node("OPTIMIZER.param_schedulers.lr.values").doubles() == [0.01, 0.001, 0.0001, 1e-5])
        #expect(try config.node("OPTIMIZER.weight_decay").double() == 1e-4)
        #expect(try config.node("OPTIMIZER.param_schedulers.lr.milestones").ints() == [28, 56, 84])
        #expect(try config.node("OPTIMIZER.momentum").double() == 0.9)  // from the base
    }

    @Test func theSameRunSpelledTwoWaysIsTheSameConfiguration() throws {
        let vissl = try compose(
            "config=\(baseName)", ["+\(group)/models=resnet18", "+\(group)/optimizers=ep100", "SEED_VALUE=3"])
        let short = try compose(baseFile, ["+models=resnet18", "+optimizers=ep100", "config.SEED_VALUE=3"])
        #expect(vissl.canonicalJSON == short.canonicalJSON)
        #expect(vissl.jsonText == short.jsonText)
        #expect(vissl.name == short.name)
        #expect(vissl.defaultCatalogPath == short.defaultCatalogPath)
        // Hand-merged into one file, the values are the same too.
        let merged = try loadConfig(vissl.yamlText)
        #expect(merged.canonicalJSON == vissl.canonicalJSON)
    }

    @Test func aMissingOptionSuggestsTheNearestName() {
        expectUsageError(["'+\(group)/models=resnet19'", "no option 'resnet19'", "models", "did you mean 'resnet18'"]) {
            _ = try compose("config=\(baseName)", ["+\(group)/models=resnet19"])
        }
        expectUsageError([
            "no option 'alexnet'", "there: efficientnet_b0, head_mismatch, regnet16Gf, resnet18, wide_resnet",
        ]) {
            _ = try compose(baseFile, ["+models=alexnet"])
        }
    }

    @Test func namesAreCaseSensitiveOnEveryFileSystem() {
        expectUsageError(["no option 'regnet16gf'", "did you mean 'regnet16Gf'? (names are case-sensitive)"]) {
            _ = try compose("config=\(baseName)", ["+\(group)/models=regnet16gf"])
        }
        expectUsageError(["no config group", "no folder 'Models'", "did you mean 'models'"]) {
            _ = try compose(baseFile, ["+Models=resnet18"])
        }
        expectUsageError(["no option 'Eval_resnet_toy_linear'", "did you mean 'eval_resnet_toy_linear'"]) {
            _ = try compose("config=benchmark/linear_image_classification/toyset/Eval_resnet_toy_linear")
        }
    }

    @Test func groupsNeedAPlusAndVISSLNamesNeedTheConfigsFolder() {
        expectUsageError(["'models=resnet18'", "add its option with +models=resnet18"]) {
            _ = try compose(baseFile, ["models=resnet18"])
        }
        expectUsageError(["a config group option is added with '+'", "+\(group)/models=resnet18"]) {
            _ = try compose(baseFile, ["\(group)/models=resnet18"])
        }
        expectUsageError(["--configs DIR", "LINPROBE_VISSL_CONFIGS"]) {
            _ = try compose("config=\(baseName)", configs: nil)
        }
        expectUsageError(["not a VISSL configs folder", "did you mean \(configs)"]) {
            _ = try compose("config=\(baseName)", configs: fixturePath("compose"))
        }
        expectUsageError(["config=PATH names the base configuration", "first argument"]) {
            _ = try compose(baseFile, ["config=\(baseName)"])
        }
        expectUsageError(["an overlay is read next to a pipeline file"]) {
            _ = try loadConfig("SEED_VALUE: 1\n", ["+models=resnet18"])
        }
    }

    @Test func theConfigsFolderComesFromTheEnvironmentToo() throws {
        let config = try PipelineConfig.load(
            pipeline: "config=\(baseName)", overrides: ["+\(group)/models=resnet18"],
            environment: ["LINPROBE_VISSL_CONFIGS": configs], searchPaths: [])
        #expect(try config.node("MODEL.TRUNK.RESNETS.DEPTH").int() == 18)
        #expect(config.defaultCatalogPath == "\(configs)/config/dataset_catalog.json")
    }

    @Test func addingAKeyWithPlusIsAcceptedAndIgnored() throws {
        let config = try compose(baseFile, ["+config.MY_NEW_KEY=7", "+SEED_VALUE=4"])
        #expect(config.ignoredKeys.contains("MY_NEW_KEY"))
        #expect(try config.node("SEED_VALUE").int() == 4)
        expectConfigError(["unknown key 'MY_NEW_KEY'"]) { _ = try compose(baseFile, ["config.MY_NEW_KEY=7"]) }
    }

    @Test func aListCannotMergeIntoAMapping() throws {
        let tmp = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: tmp.file("g"), withIntermediateDirectories: true)
        try "SVM:\n  costs: {costs_list: [1.0]}\n".write(toFile: tmp.file("p.yaml"), atomically: true, encoding: .utf8)
        try "SVM:\n  costs: [1, 2]\n".write(toFile: tmp.file("g/bad.yaml"), atomically: true, encoding: .utf8)
        expectConfigError(["SVM.costs: cannot merge a list", "g/bad.yaml line 2", "into a mapping", "p.yaml line 2"]) {
            _ = try compose(tmp.file("p.yaml"), ["+g=bad"], configs: nil)
        }
        // A scalar or null replaces a mapping, as in OmegaConf; the key is then checked as usual.
        try "SVM:\n  costs:\n".write(toFile: tmp.file("g/empty.yaml"), atomically: true, encoding: .utf8)
        let emptied = try compose(tmp.file("p.yaml"), ["+g=empty"], configs: nil)
        #expect(try emptied.node("SVM.costs.costs_list").doubles() == [0.1, 0.01])
    }

    @Test func explainNamesTheOriginOfEveryValueAndLoadsBack() throws {
        let config = try compose(
            "config=\(baseName)", ["+\(group)/models=wide_resnet", "config.SEED_VALUE=9"])
        let text = config.explainText
        #expect(text.contains("#   base     eval_resnet_toy_linear.yaml   \(baseFile)\n"))
        #expect(text.contains("#   overlay  models/wide_resnet.yaml   \(configs)/\(group)/models/wide_resnet.yaml\n"))
        #expect(text.contains("#   override config.SEED_VALUE=9\n"))
        #expect(text.contains("        DEPTH: 50  # eval_resnet_toy_linear.yaml line 47\n"))
        #expect(text.contains("        WIDTH_MULTIPLIER: 2  # models/wide_resnet.yaml line 7\n"))
        #expect(text.contains("  SEED_VALUE: 9  # override config.SEED_VALUE=9\n"))
        #expect(text.contains("    STORAGE_DTYPE: float32  # default\n"))
        #expect(text.contains("#   METERS.accuracy_list_meter.num_meters: 3  # eval_resnet_toy_linear.yaml line 32"))
        #expect(try loadConfig(text).canonicalJSON == config.canonicalJSON)
    }
}

@Suite struct KnownInconsistencyTests {
    @Test func headSizeAgainstAnAdaptivePool() {
        let overlay = "\(configs)/\(group)/models/head_mismatch.yaml"
        expectConfigError([
            "MODEL.HEAD.PARAMS[0] (\(overlay) line 14)", "dims[0] = 8640", "in_channels 440",
            "res5 AdaptiveAvgPool2d [6, 5]", "is 13200",
        ]) {
            _ = try compose("config=\(baseName)", ["+\(group)/models=head_mismatch"])
        }
        // Flattened features reach eval_mlp as C·H·W channels: in_channels is then that size.
        #expect(
            (try? compose(
                "config=\(baseName)",
                [
                    "+\(group)/models=head_mismatch", "config.MODEL.FEATURE_EVAL_SETTINGS.SHOULD_FLATTEN_FEATS=true",
                ])) != nil)
    }

    @Test func poolTapsOnAClassTokenViT() throws {
        let vit = """
            MODEL:
              TRUNK: {NAME: vision_transformer, VISION_TRANSFORMERS: {HIDDEN_DIM: 1280}}
              FEATURE_EVAL_SETTINGS:
                LINEAR_EVAL_FEAT_POOL_OPS_MAP: [["concatPOOL4", ["Identity", []]], ["lastPOOL", ["Identity", []]]]
            """
        expectConfigError(["tap 'concatPOOL4'", "only without a class token", "USE_CLASS_TOKEN is true (default)"]) {
            _ = try loadConfig(vit)
        }
        let noToken = try loadConfig(vit, ["config.MODEL.TRUNK.VISION_TRANSFORMERS.USE_CLASS_TOKEN=false"])
        // A key of the vision_transformer family: used, not ignored.
        #expect(!noToken.ignoredKeys.contains("MODEL.TRUNK.VISION_TRANSFORMERS.USE_CLASS_TOKEN"))
        #expect(try noToken.node("MODEL.TRUNK.VISION_TRANSFORMERS.USE_CLASS_TOKEN").bool() == false)
        let cls = vit.replacingOccurrences(of: "concatPOOL4", with: "concatCLS4")
            .replacingOccurrences(of: "lastPOOL", with: "lastCLS")
        #expect((try? loadConfig(cls)) != nil)
    }

    @Test func labInputAndTheColorizationTrunk() throws {
        expectConfigError([
            "MODEL.TRUNK.NAME (test.yaml line 2)", "'alexnet_deepcluster' does not take Lab input",
            "MODEL.INPUT_TYPE is lab (test.yaml line 3)", "config.MODEL.TRUNK.NAME=alexnet_colorization",
        ]) {
            _ = try loadConfig("MODEL:\n  TRUNK: {NAME: alexnet_deepcluster}\n  INPUT_TYPE: lab\n")
        }
        expectConfigError(["alexnet_colorization takes the L channel", "config.MODEL.INPUT_TYPE=lab"]) {
            _ = try loadConfig("MODEL:\n  TRUNK: {NAME: alexnet_colorization}\n")
        }
        #expect((try? loadConfig("MODEL:\n  TRUNK: {NAME: alexnet_colorization}\n  INPUT_TYPE: lab\n")) != nil)
    }
}

/// Expects a one-line usage error (exit 64) whose message contains every fragment.
private func expectUsageError(
    _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    guard let error = configError(body) else {
        Issue.record("expected a usage error containing \(fragments)", sourceLocation: sourceLocation)
        return
    }
    #expect(error.code == .usage, "\(error.code): \(error.message)", sourceLocation: sourceLocation)
    #expect(error.exitCode == 64, sourceLocation: sourceLocation)
    #expect(!error.message.contains("\n"), "one line: \(error.message)", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(error.message.contains(fragment), "'\(fragment)' in: \(error.message)", sourceLocation: sourceLocation)
    }
}
