import Foundation
import LinprobeTestSupport
import Testing

@testable import LinprobeCore

@Suite struct PipelineConfigLoadingTests {
    @Test func emptyPipelineGivesTheDefaults() throws {
        let config = try loadConfig("")
        #expect(try config.node("DATA.TRAIN.BATCHSIZE_PER_REPLICA").int() == 32)  // Linprobe's default (VISSL: 256)
        #expect(try config.node("SVM.costs.costs_list").doubles() == [0.1, 0.01])  // VISSL's default
        #expect(try config.node("MODEL.HEAD.BATCHNORM_EPS").double() == 1e-5)
        #expect(try config.node("LINPROBE.STORAGE_DTYPE").string() == "float32")
        #expect(try config.node("LINPROBE.STAGES").list().isEmpty)
        #expect(!config.isExplicit("SVM"))
        #expect(config.origin(of: "SVM.max_iter") == .defaultValue)
        #expect(config.ignoredKeys.isEmpty && config.ignoredKeysNote == nil)
        // Every registry key is in the effective tree, and nothing else.
        for key in LinprobeKeys.all { #expect(config.node(key.path).value == key.defaultValue, "\(key.path)") }
        #expect(try loadConfig("config:\n").canonicalJSON == config.canonicalJSON)
        #expect(try loadConfig("# @package _global_\nconfig:\n  SVM:\n").canonicalJSON == config.canonicalJSON)
    }

    @Test func pythonStyleBooleansAndYAML11Scalars() throws {
        let config = try loadConfig(
            """
            SVM:
              dual: False
              normalize: True
              force_retrain: yes
            MODEL:
              HEAD:
                BATCHNORM_EPS: 1e-3
            OPTIMIZER:
              weight_decay: 0
            """)
        #expect(try config.node("SVM.dual").bool() == false)
        #expect(try config.node("SVM.normalize").bool() == true)
        #expect(try config.node("SVM.force_retrain").bool() == true)
        #expect(config.node("MODEL.HEAD.BATCHNORM_EPS").value == .double(1e-3))
        // Integers given for a number are stored as numbers: 0 and 0.0 fingerprint the same.
        #expect(config.node("OPTIMIZER.weight_decay").value == .double(0))
        let same = try loadConfig(
            "OPTIMIZER:\n  weight_decay: 0.0\nSVM: {dual: false, normalize: true, force_retrain: true}\nMODEL: {HEAD: {BATCHNORM_EPS: 0.001}}"
        )
        #expect(same.canonicalJSON == config.canonicalJSON)
    }

    @Test func trunkParamsIsTheSameSettingAsTrunk() throws {
        let viaAlias = try loadConfig(
            "MODEL:\n  TRUNK:\n    TRUNK_PARAMS:\n      RESNETS:\n        DEPTH: 101\n        WIDTH_MULTIPLIER: 2\n")
        #expect(try viaAlias.node("MODEL.TRUNK.RESNETS.DEPTH").int() == 101)
        #expect(try viaAlias.node("MODEL.TRUNK.RESNETS.WIDTH_MULTIPLIER").int() == 2)
        #expect(viaAlias.node("MODEL.TRUNK.TRUNK_PARAMS").value == nil)
        let direct = try loadConfig("MODEL:\n  TRUNK:\n    RESNETS:\n      DEPTH: 101\n      WIDTH_MULTIPLIER: 2\n")
        #expect(direct.canonicalJSON == viaAlias.canonicalJSON)
        // Both spellings with the same value: fine.
        let both = try loadConfig(
            "MODEL:\n  TRUNK:\n    RESNETS: {DEPTH: 101}\n    TRUNK_PARAMS: {RESNETS: {DEPTH: 101}}\n")
        #expect(try both.node("MODEL.TRUNK.RESNETS.DEPTH").int() == 101)
        // Through an override too.
        let overridden = try loadConfig("", ["config.MODEL.TRUNK.TRUNK_PARAMS.RESNETS.DEPTH=152"])
        #expect(try overridden.node("MODEL.TRUNK.RESNETS.DEPTH").int() == 152)
    }

    @Test func conflictingTrunkSpellingsAreAnError() {
        expectConfigError([
            "MODEL.TRUNK.RESNETS.DEPTH", "set twice", "MODEL.TRUNK.TRUNK_PARAMS.RESNETS.DEPTH", "50", "101", "line 3",
            "line 5",
        ]) {
            _ = try loadConfig(
                "MODEL:\n  TRUNK:\n    RESNETS: {DEPTH: 50}\n    TRUNK_PARAMS:\n      RESNETS: {DEPTH: 101}\n")
        }
        expectConfigError(["MODEL.TRUNK.RESNETS.DEPTH", "set twice"]) {
            _ = try loadConfig(
                "", ["config.MODEL.TRUNK.RESNETS.DEPTH=50", "config.MODEL.TRUNK.TRUNK_PARAMS.RESNETS.DEPTH=101"])
        }
    }

    @Test func overridesOfScalarsListsAndNestedLists() throws {
        let config = try loadConfig(
            "SVM:\n  max_iter: 100\n",
            [
                "config.SVM.max_iter=500",
                "SVM.dual=False",
                "+config.SEED_VALUE=3",
                "++config.LINPROBE.THREADS=2",
                "config.SVM.costs.costs_list=[0.1,1,10]",
                "config.DATA.TRAIN.DATA_PATHS=[/data/VOC2007]",
                #"config.MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP=[["res5",["AvgPool2d",[[6,6],1,0]]]]"#,
                "config.MODEL.WEIGHTS_INIT.PARAMS_FILE=",
                #"config.MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME="model_state_dict""#,
                "config.SVM.low_shot={k_values: [1, 2], dataset_name: places}",
                "config.LINPROBE.STAGES=[extract, train-svm]",
                "config.MODEL.HEAD.BATCHNORM_EPS=1e-3",
                "config.LINPROBE.REPORT.TITLE=My run: *.jpg",
                "config.LINPROBE.DATASET_CATALOG=yes",  // Hydra: a string, not a boolean
            ])
        #expect(try config.node("SVM.max_iter").int() == 500)
        #expect(try config.node("SVM.dual").bool() == false)
        #expect(try config.node("SEED_VALUE").int() == 3)
        #expect(try config.node("LINPROBE.THREADS").int() == 2)
        #expect(config.node("SVM.costs.costs_list").value == [0.1, 1.0, 10.0])
        #expect(try config.node("DATA.TRAIN.DATA_PATHS").strings() == ["/data/VOC2007"])
        #expect(
            config.node("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP").value == [
                ["res5", ["AvgPool2d", [[6, 6], 1, 0]]]
            ])
        #expect(try config.node("MODEL.WEIGHTS_INIT.PARAMS_FILE").string() == "")
        #expect(try config.node("MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME").string() == "model_state_dict")
        #expect(try config.node("SVM.low_shot.k_values").ints() == [1, 2])
        #expect(try config.node("SVM.low_shot.dataset_name").string() == "places")
        #expect(try config.node("SVM.low_shot.sample_inds").ints() == [1, 2, 3, 4, 5])  // untouched sibling
        #expect(try config.node("LINPROBE.STAGES").strings() == ["extract", "train-svm"])
        #expect(config.node("MODEL.HEAD.BATCHNORM_EPS").value == .double(1e-3))
        #expect(try config.node("LINPROBE.REPORT.TITLE").string() == "My run: *.jpg")
        #expect(try config.node("LINPROBE.DATASET_CATALOG").string() == "yes")
        #expect(config.origin(of: "SVM.max_iter") == .override("config.SVM.max_iter=500"))
        #expect(config.isExplicit("SVM.low_shot.k_values"))
        #expect(!config.isExplicit("SVM.low_shot.sample_inds"))
    }

    @Test func overridesOfIgnoredVISSLKeysAreListedOnce() throws {
        let config = try loadConfig(
            "MACHINE:\n  DEVICE: gpu\n",
            [
                "config.MACHINE.DEVICE=cpu",
                "config.DISTRIBUTED.BACKEND=gloo",
                "config.MODEL.TRUNK.EFFICIENT_NETS.depth=16",  // inside an open VISSL mapping
            ])
        #expect(config.ignoredKeys == ["DISTRIBUTED.BACKEND", "MACHINE.DEVICE", "MODEL.TRUNK.EFFICIENT_NETS"])
        #expect(
            config.ignoredKeysNote
                == "note: ignoring VISSL keys Linprobe does not use: DISTRIBUTED.BACKEND, MACHINE.DEVICE, MODEL.TRUNK.EFFICIENT_NETS"
        )
        #expect(config.node("MACHINE").value == nil)
    }

    @Test func visslKeysWithNullOrEmptyDefaultsTakeAnyValue() throws {
        let config = try loadConfig(
            """
            LOSS:
              cross_entropy_multiple_output_single_target:
                weight: [1.0, 2.0]
            MODEL:
              NON_TRAINABLE_PARAMS: some_layer
              TRUNK:
                VISION_TRANSFORMERS: {name: 3}
                EFFICIENT_NETS: {depth: 16, w_0: 24}
            DATA:
              TRAIN:
                COLLATE_FUNCTION_PARAMS: {a: 1}
            """)
        #expect(config.ignoredKeys.contains("LOSS.cross_entropy_multiple_output_single_target.weight"))
        #expect(config.ignoredKeys.contains("MODEL.NON_TRAINABLE_PARAMS"))
        #expect(config.ignoredKeys.contains("MODEL.TRUNK.VISION_TRANSFORMERS.name"))
        #expect(config.ignoredKeys.contains("MODEL.TRUNK.EFFICIENT_NETS"))
        #expect(config.ignoredKeys.contains("DATA.TRAIN.COLLATE_FUNCTION_PARAMS"))
    }

    @Test func visslRootKeysBesideConfigAreIgnored() throws {
        let config = try loadConfig("engine_name: extract_features\nconfig:\n  SEED_VALUE: 4\n")
        #expect(try config.node("SEED_VALUE").int() == 4)
        #expect(config.ignoredKeys == ["engine_name"])
    }

    @Test func ignoredKeysWithAWrongShapeAreAnError() {
        expectConfigError(["MACHINE.DEVICE", "expected a single value", "[\"a\"]"]) {
            _ = try loadConfig("MACHINE:\n  DEVICE: [a]\n")
        }
        expectConfigError(["DATA.TRAIN.COLLATE_FUNCTION_PARAMS", "expected a mapping"]) {
            _ = try loadConfig("", ["config.DATA.TRAIN.COLLATE_FUNCTION_PARAMS=3"])
        }
    }
}

@Suite struct PipelineConfigErrorTests {
    @Test func unknownKeyInFileNamesPathAndClosestKey() {
        expectConfigError([
            "unknown key 'DATA.TRAIN.BATCH_SIZE_PER_REPLICA'", "test.yaml line 3",
            "closest valid key: DATA.TRAIN.BATCHSIZE_PER_REPLICA",
        ]) {
            _ = try loadConfig("DATA:\n  TRAIN:\n    BATCH_SIZE_PER_REPLICA: 64\n")
        }
        expectConfigError(["unknown key 'FOO'", "closest valid key:"]) {
            _ = try loadConfig("FOO: 1\n")
        }
        expectConfigError(["unknown key 'LINPROBE.STORAGE_TYPE'", "closest valid key: LINPROBE.STORAGE_DTYPE"]) {
            _ = try loadConfig("config:\n  LINPROBE:\n    STORAGE_TYPE: float16\n")
        }
    }

    @Test(arguments: [
        ("config.DATA.TRIAN.DATA_PATHS=[/x]", "DATA.TRIAN.DATA_PATHS", "DATA.TRAIN.DATA_PATHS"),
        ("config.MODEL.RESNETS.DEPTH=101", "MODEL.RESNETS.DEPTH", "MODEL.TRUNK.RESNETS.DEPTH"),
        ("config.svm.costs.costs_list=[1]", "svm.costs.costs_list", "SVM.costs.costs_list"),
        ("config.SVM.max_iters=3", "SVM.max_iters", "SVM.max_iter"),
        ("config.DATA.TRAIN.BATCH_SIZE=3", "DATA.TRAIN.BATCH_SIZE", "DATA.TRAIN.BATCHSIZE_PER_REPLICA"),
        ("config.SVM.costs.cost_list=[1]", "SVM.costs.cost_list", "SVM.costs.costs_list"),
        ("config.LINPROBE.THREAD=2", "LINPROBE.THREAD", "LINPROBE.THREADS"),
        ("config.OPTIMIZER.lr=0.1", "OPTIMIZER.lr", "OPTIMIZER.param_schedulers.lr"),
        ("config.MACHINE.DEVICE.x=1", "MACHINE.DEVICE.x", "MACHINE.DEVICE"),
        (
            "config.OPTIMIZER.param_schedulers.lr.milestone=[1]", "OPTIMIZER.param_schedulers.lr.milestone",
            "OPTIMIZER.param_schedulers.lr.milestones"
        ),
    ])
    func unknownKeyInOverrideNamesPathAndClosestKey(_ override: String, _ path: String, _ closest: String) {
        expectConfigError(["unknown key '\(path)'", "override '\(override)'", "closest valid key: \(closest)"]) {
            _ = try loadConfig("", [override])
        }
    }

    @Test func keyOutsideConfigIsAnError() {
        expectConfigError(["'SVM'", "move it under config:"]) {
            _ = try loadConfig("config:\n  SEED_VALUE: 1\nSVM:\n  dual: true\n")
        }
    }

    @Test func wrongTypesNameThePathExpectedTypeAndValue() {
        expectConfigError(["SVM.max_iter", "test.yaml line 2", "expected an integer", "\"many\""]) {
            _ = try loadConfig("SVM:\n  max_iter: many\n")
        }
        expectConfigError(["SVM.max_iter", "expected an integer", "2000.0"]) {
            _ = try loadConfig("SVM:\n  max_iter: 2000.0\n")
        }
        expectConfigError(["SVM.dual", "expected true or false", "\"True\""]) {
            _ = try loadConfig("SVM:\n  dual: \"True\"\n")  // quoted: a string, as in VISSL
        }
        expectConfigError([
            "DATA.TRAIN.BATCHSIZE_PER_REPLICA", "override 'config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=32x'",
            "expected an integer", "32x",
        ]) {
            _ = try loadConfig("", ["config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=32x"])
        }
        expectConfigError(["SVM.dual", "expected true or false", "\"yes\""]) {
            _ = try loadConfig("", ["config.SVM.dual=yes"])  // as Hydra reads it: the string "yes"
        }
        expectConfigError(["SVM.costs.costs_list", "expected a list of numbers", "[\"a\",\"b\"]"]) {
            _ = try loadConfig("", ["config.SVM.costs.costs_list=[a,b]"])
        }
        expectConfigError(["DATA.TEST.DATA_PATHS", "expected a list of strings"]) {
            _ = try loadConfig("DATA:\n  TEST:\n    DATA_PATHS: /data/voc\n")
        }
        expectConfigError(["SVM", "expected a mapping of keys", "3"]) {
            _ = try loadConfig("", ["config.SVM=3"])
        }
        expectConfigError(["SVM.max_iter", "takes an integer"]) {
            _ = try loadConfig("", ["config.SVM.max_iter.x=1"])
        }
    }

    @Test func valuesOutsideTheAllowedOnes() {
        expectConfigError(["SVM.loss", "hinge2", "squared_hinge, hinge", "closest: hinge"]) {
            _ = try loadConfig("SVM:\n  loss: hinge2\n")
        }
        expectConfigError(["LINPROBE.STORAGE_DTYPE", "float64", "float32, float16"]) {
            _ = try loadConfig("", ["config.LINPROBE.STORAGE_DTYPE=float64"])
        }
        expectConfigError(["LINPROBE.DEFLATE", "10 is out of range", "between 0 and 9"]) {
            _ = try loadConfig("", ["config.LINPROBE.DEFLATE=10"])
        }
        expectConfigError(["LINPROBE.STAGES", "train_svm", "closest: train-svm"]) {
            _ = try loadConfig("", ["config.LINPROBE.STAGES=[extract,train_svm]"])
        }
        expectConfigError(["MODEL.TRUNK.RESNETS.DEPTH", "51"]) {
            _ = try loadConfig("", ["config.MODEL.TRUNK.RESNETS.DEPTH=51"])
        }
    }

    @Test(arguments: [
        ("config.SVM.max_iter", "no '='"),
        ("config.SVM.costs.costs_list=[1,2", "'[' is never closed"),
        ("config.SVM.costs.costs_list=[1,2]]", "unexpected ']'"),
        (#"config.LINPROBE.REPORT.TITLE="abc"#, "unterminated quote"),
        ("=3", "empty key"),
        ("config.=3", "empty key"),
        ("config.SVM..dual=true", "empty key component"),
        ("config.SVM.costs.costs_list[0]=1", "not a key name"),
        ("~config.SVM.dual", "deleting keys"),
        ("config.SVM.costs={costs_list: [1, 2}", "unbalanced"),
        ("config.SVM.max_iter=1,2", "sweep"),
        ("config.SVM.costs.costs_list=[1,2,]", "item is missing"),
        (#"config.LINPROBE.REPORT.TITLE="a"b"#, "unexpected text"),
    ])
    func badOverrideSyntaxNamesTheOverride(_ override: String, _ why: String) {
        expectConfigError(["bad override '\(override)'", why]) {
            _ = try loadConfig("", [override])
        }
    }

    @Test func interpolationsAreRefusedWhereLinprobeReadsTheValue() throws {
        expectConfigError(["MODEL.WEIGHTS_INIT.PARAMS_FILE", "${oc.env:HOME}/w.torch", "interpolation"]) {
            _ = try loadConfig("MODEL:\n  WEIGHTS_INIT:\n    PARAMS_FILE: ${oc.env:HOME}/w.torch\n")
        }
        // In a key Linprobe ignores it does not matter.
        #expect(try loadConfig("CHECKPOINT:\n  DIR: ${hydra:runtime.cwd}\n").ignoredKeys == ["CHECKPOINT.DIR"])
    }

    @Test func duplicateAndConflictingSettings() throws {
        expectConfigError(["duplicate key 'max_iter'", "line 3", "first at line 2"]) {
            _ = try loadConfig("SVM:\n  max_iter: 1\n  max_iter: 2\n")
        }
        expectConfigError(["SVM.max_iter", "set twice"]) {
            _ = try loadConfig("", ["config.SVM.max_iter=1", "SVM.max_iter=2"])
        }
        // The same value twice is harmless.
        #expect(try loadConfig("", ["config.SVM.max_iter=7", "SVM.max_iter=7"]).node("SVM.max_iter").int() == 7)
    }

    @Test func malformedDocuments() {
        expectConfigError(["test.yaml", "not valid YAML", "line "]) {
            _ = try loadConfig("SVM:\n  costs: [1, 2\n  dual: true\n")
        }
        expectConfigError(["a pipeline must be a mapping"]) {
            _ = try loadConfig("- a\n- b\n")
        }
        expectConfigError(["Hydra defaults lists are not supported"]) {
            _ = try loadConfig("defaults:\n  - _self_\nconfig:\n  SEED_VALUE: 1\n")
        }
        expectConfigError(["@package _group_", "not supported"]) {
            _ = try loadConfig("# @package _group_\nSVM:\n  dual: true\n")
        }
    }
}

@Suite struct ConfigYAMLTests {
    @Test(arguments: [
        ("True", JSONValue.bool(true)), ("False", .bool(false)), ("true", .bool(true)), ("FALSE", .bool(false)),
        ("yes", .bool(true)), ("off", .bool(false)), ("~", .null), ("null", .null), ("", .null),
        ("42", .int(42)), ("-3", .int(-3)), ("+7", .int(7)), ("1_000", .int(1000)), ("0x1F", .int(31)),
        ("010", .int(8)),
        ("0b101", .int(5)), ("08", .string("08")),
        ("1e-5", .double(1e-5)), ("1E3", .double(1000)), ("1.5e3", .double(1500)), ("1.", .double(1)),
        (".5", .double(0.5)),
        ("-0.25", .double(-0.25)), ("0.0005", .double(0.0005)), (".inf", .double(.infinity)),
        ("-.inf", .double(-.infinity)),
        ("2024-01-01", .string("2024-01-01")), ("1.2.3", .string("1.2.3")), ("e5", .string("e5")),
        ("abc", .string("abc")),
        ("/data/voc", .string("/data/voc")), ("-", .string("-")), (".", .string(".")),
    ])
    func plainScalarsResolveAsVISSLReadsThem(_ text: String, _ expected: JSONValue) {
        #expect(ConfigYAML.resolvePlain(text) == expected)
    }

    @Test func nanResolvesToNaN() {
        guard case .double(let d) = ConfigYAML.resolvePlain(".nan") else {
            Issue.record("expected a double")
            return
        }
        #expect(d.isNaN)
    }

    @Test(arguments: [
        "yes", "1e3", "a: b", "#x", "", "  spaced  ", "quote\"s", "ünïcode", "null", "[1]", "-x", "x, y", "tab\there",
        "new\nline", "0x10", "~", "1:30",
    ])
    func stringsRoundTripThroughPrintedYAML(_ title: String) throws {
        // JSON string text is valid YAML double-quoted text.
        let config = try loadConfig("LINPROBE:\n  REPORT:\n    TITLE: " + JSONValue.string(title).canonicalText + "\n")
        #expect(try config.node("LINPROBE.REPORT.TITLE").string() == title)
        let again = try loadConfig(config.yamlText)
        #expect(try again.node("LINPROBE.REPORT.TITLE").string() == title)
    }

    @Test func numbersRoundTripThroughPrintedYAML() throws {
        let config = try loadConfig("", ["config.SVM.costs.costs_list=[1e-300, 0.1, 3, 1e20, 123456789.125, 5e-324]"])
        let again = try loadConfig(config.yamlText)
        #expect(again.node("SVM.costs.costs_list").value == config.node("SVM.costs.costs_list").value)
        #expect(config.node("SVM.costs.costs_list").value == [1e-300, 0.1, 3.0, 1e20, 123456789.125, 5e-324])
    }

    @Test func printedYAMLStartsWithTheConfigRoot() throws {
        let text = try loadConfig("").yamlText
        #expect(text.hasPrefix("config:\n  DATA:\n"))
        #expect(text.hasSuffix("\n"))
    }
}

@Suite struct PipelineResolutionTests {
    @Test func findsFilesByPathAndByName() throws {
        let tmp = try TemporaryDirectory()
        let folder = tmp.file("pipelines")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "SVM:\n  max_iter: 9\n".write(toFile: folder + "/mine.yaml", atomically: true, encoding: .utf8)
        try "SVM:\n  max_iter: 8\n".write(toFile: folder + "/other.yml", atomically: true, encoding: .utf8)
        #expect(try PipelineConfig.resolve(pipeline: folder + "/mine.yaml", searchPaths: []) == folder + "/mine.yaml")
        #expect(
            try PipelineConfig.resolve(pipeline: "mine", searchPaths: ["/nonexistent", folder]) == folder + "/mine.yaml"
        )
        #expect(try PipelineConfig.resolve(pipeline: "mine.yaml", searchPaths: [folder]) == folder + "/mine.yaml")
        #expect(try PipelineConfig.resolve(pipeline: "other", searchPaths: [folder]) == folder + "/other.yml")
        let config = try PipelineConfig.load(pipeline: "mine", overrides: ["SVM.dual=false"], searchPaths: [folder])
        #expect(config.name == "mine")
        #expect(config.pipelinePath == folder + "/mine.yaml")
        #expect(try config.node("SVM.max_iter").int() == 9)
        #expect(config.origin(of: "SVM.max_iter") == .file(path: folder + "/mine.yaml", line: 2))
    }

    @Test func missingPipelineListsWhereItLooked() throws {
        let tmp = try TemporaryDirectory()
        let error = configError {
            _ = try PipelineConfig.resolve(pipeline: "nope", searchPaths: [tmp.path, "/elsewhere"])
        }
        #expect(error?.exitCode == 64)
        let message = error?.message ?? ""
        #expect(message.contains("pipeline 'nope' not found"))
        #expect(message.contains(tmp.path + "/nope.yaml"))
        #expect(message.contains("/elsewhere/nope.yaml"))
        #expect(!message.contains("\n"))
        let folderError = configError { _ = try PipelineConfig.resolve(pipeline: tmp.path, searchPaths: []) }
        #expect(folderError?.message.contains("is a folder") == true)
    }

    @Test func defaultSearchPathsInOrder() throws {
        let tmp = try TemporaryDirectory()
        // A source tree with pipelines/ and an executable at .build/release/linprobe.
        try FileManager.default.createDirectory(atPath: tmp.file("repo/pipelines"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: tmp.file("repo/.build/release"), withIntermediateDirectories: true)
        let paths = PipelineConfig.defaultSearchPaths(
            environment: ["LINPROBE_PIPELINES": "/a:/b"], currentDirectory: "/srv/here",
            executablePath: tmp.file("repo/.build/release/linprobe"))
        #expect(
            paths == [
                "/srv/here/pipelines", "/a", "/b",
                URL(fileURLWithPath: tmp.file("repo/pipelines")).standardizedFileURL.path,
            ])
        // Without a pipelines/ folder, the nominal <exe>/../../../pipelines is listed.
        let bare = PipelineConfig.defaultSearchPaths(
            environment: [:], currentDirectory: "/w", executablePath: "/x/y/z/linprobe")
        #expect(bare == ["/w/pipelines", "/x/pipelines"])
    }
}
