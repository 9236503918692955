import Foundation
import LinprobeTestSupport
import Testing

@testable import LinprobeCore

/// VISSL's own benchmark configs and the seed's snippets load unchanged, with the values of
/// the protocol (shared/reference/vissl-protocol.md §1.2–1.5).
@Suite struct VISSLConfigFixtureTests {
    @Test(arguments: [in1kFixture, places205Fixture, inat18Fixture, voc07Fixture])
    func visslBenchmarkConfigLoads(_ fixture: String) throws {
        let config = try PipelineConfig.load(pipeline: visslFixture(fixture), searchPaths: [])
        // Common to the four: ResNet-50, ImageNet normalisation, 32 per GPU × 8 GPUs × 1 node.
        #expect(try config.node("MODEL.TRUNK.NAME").string() == "resnet")
        #expect(try config.node("MODEL.TRUNK.RESNETS.DEPTH").int() == 50)
        #expect(try config.node("DATA.TRAIN.BATCHSIZE_PER_REPLICA").int() == 32)
        #expect(try config.node("DATA.TEST.BATCHSIZE_PER_REPLICA").int() == 32)
        #expect(try config.node("DISTRIBUTED.NUM_PROC_PER_NODE").int() == 8)
        #expect(try config.node("DISTRIBUTED.NUM_NODES").int() == 1)
        #expect(try config.node("MODEL.FEATURE_EVAL_SETTINGS.EVAL_MODE_ON").bool())
        #expect(try config.node("MODEL.FEATURE_EVAL_SETTINGS.FREEZE_TRUNK_ONLY").bool())
        #expect(try config.node("MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME").string() == "classy_state_dict")
        let normalize = try #require(config.node("DATA.TEST.TRANSFORMS").list().last)
        #expect(try normalize["name"].string() == "Normalize")
        #expect(try normalize["mean"].doubles() == [0.485, 0.456, 0.406])
        #expect(try normalize["std"].doubles() == [0.229, 0.224, 0.225])
        // MACHINE.DEVICE is VISSL's, unused by Linprobe: accepted and reported.
        #expect(config.ignoredKeys.contains("MACHINE.DEVICE"))
        #expect(config.ignoredKeys.contains("DATA.TRAIN.COPY_TO_LOCAL_DISK"))
        #expect(Set(config.ignoredKeys).count == config.ignoredKeys.count)
        #expect(config.ignoredKeys == config.ignoredKeys.sorted())
        #expect(config.notes.isEmpty)
        // Keys Linprobe reads are never reported as ignored.
        for key in config.ignoredKeys { #expect(LinprobeKeys.key(key) == nil, "\(key)") }
    }

    @Test func imagenet1kLinear() throws {
        let config = try PipelineConfig.load(pipeline: visslFixture(in1kFixture), searchPaths: [])
        #expect(try config.node("SEED_VALUE").int() == 1)
        #expect(try config.node("DATA.NUM_DATALOADER_WORKERS").int() == 5)
        #expect(try config.node("DATA.TRAIN.DATA_SOURCES").strings() == ["disk_folder"])
        #expect(try config.node("DATA.TRAIN.DATASET_NAMES").strings() == ["imagenet1k_folder"])
        let train = try config.node("DATA.TRAIN.TRANSFORMS").list()
        #expect(
            try train.map { try $0["name"].string() } == [
                "RandomResizedCrop", "RandomHorizontalFlip", "ToTensor", "Normalize",
            ])
        #expect(try train[0]["size"].int() == 224)
        let test = try config.node("DATA.TEST.TRANSFORMS").list()
        #expect(try test.map { try $0["name"].string() } == ["Resize", "CenterCrop", "ToTensor", "Normalize"])
        #expect(try test[0]["size"].int() == 256)
        #expect(try test[1]["size"].int() == 224)
        #expect(try config.node("MODEL.FEATURE_EVAL_SETTINGS.SHOULD_FLATTEN_FEATS").bool() == false)

        // Six taps (res5avg twice) → 7 pool-map entries and 7 heads.
        let pool = try config.node("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP").list()
        #expect(pool.count == 7)
        #expect(
            try pool.map { try $0.list()[0].string() } == [
                "conv1", "res2", "res3", "res4", "res5", "res5avg", "res5avg",
            ])
        #expect(pool[0].value == ["conv1", ["AvgPool2d", [[10, 10], 10, 4]]])
        #expect(pool[4].value == ["res5", ["AvgPool2d", [[6, 6], 1, 0]]])
        #expect(pool[6].value == ["res5avg", ["Identity", []]])
        let heads = try config.node("MODEL.HEAD.PARAMS").list()
        #expect(heads.count == 7)
        #expect(heads[0].value == ["eval_mlp", ["in_channels": 64, "dims": [9216, 1000]]])
        #expect(heads[6].value == ["mlp", ["dims": [2048, 1000]]])

        #expect(try config.node("LOSS.name").string() == "cross_entropy_multiple_output_single_target")
        #expect(try config.node("LOSS.cross_entropy_multiple_output_single_target.ignore_index").int() == -1)
        #expect(try config.node("METERS.name").string() == "accuracy_list_meter")
        #expect(try config.node("METERS.accuracy_list_meter.topk_values").ints() == [1, 5])
        #expect(try config.node("OPTIMIZER.name").string() == "sgd")
        #expect(try config.node("OPTIMIZER.momentum").double() == 0.9)
        #expect(try config.node("OPTIMIZER.nesterov").bool())
        #expect(try config.node("OPTIMIZER.weight_decay").double() == 0.0005)
        #expect(try config.node("OPTIMIZER.regularize_bn").bool() == false)
        #expect(try config.node("OPTIMIZER.regularize_bias").bool())
        #expect(try config.node("OPTIMIZER.num_epochs").int() == 28)
        let lr = config.node("OPTIMIZER.param_schedulers.lr")
        #expect(try lr["auto_lr_scaling"]["auto_scale"].bool())
        #expect(try lr["auto_lr_scaling"]["base_value"].double() == 0.01)
        #expect(try lr["auto_lr_scaling"]["base_lr_batch_size"].int() == 256)
        #expect(try lr["name"].string() == "multistep")
        #expect(try lr["values"].doubles() == [0.01, 0.001, 0.0001, 0.00001])
        #expect(try lr["milestones"].ints() == [8, 16, 24])
        #expect(try lr["update_interval"].string() == "epoch")
        #expect(try config.node("TEST_EVERY_NUM_EPOCH").int() == 1)
        #expect(config.ignoredKeys.contains("MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN"))
        #expect(config.ignoredKeys.contains("METERS.accuracy_list_meter.num_meters"))
        #expect(config.ignoredKeys.contains("HOOKS.PERF_STATS.MONITOR_PERF_STATS"))
    }

    @Test func places205Linear() throws {
        let config = try PipelineConfig.load(pipeline: visslFixture(places205Fixture), searchPaths: [])
        #expect(try config.node("SEED_VALUE").int() == 0)
        #expect(try config.node("DATA.NUM_DATALOADER_WORKERS").int() == 8)
        #expect(try config.node("DATA.TRAIN.DATASET_NAMES").strings() == ["places205_folder"])
        let pool = try config.node("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP").list()
        #expect(try pool.map { try $0.list()[0].string() } == ["conv1", "res2", "res3", "res4", "res5"])
        let heads = try config.node("MODEL.HEAD.PARAMS").list()
        #expect(heads.count == 5)
        #expect(try heads.map { try $0.list()[1]["dims"].ints()[1] } == [205, 205, 205, 205, 205])
        #expect(try config.node("OPTIMIZER.num_epochs").int() == 14)
        #expect(try config.node("OPTIMIZER.param_schedulers.lr.milestones").ints() == [4, 8, 12])
        // Places205's file sets MONITOR_PERF_STATS at the root (an older VISSL location).
        #expect(config.ignoredKeys.contains("MONITOR_PERF_STATS"))
        #expect(config.ignoredKeys.contains("MODEL.SYNC_BN_CONFIG.GROUP_SIZE"))
    }

    @Test func inaturalist18Linear() throws {
        let config = try PipelineConfig.load(pipeline: visslFixture(inat18Fixture), searchPaths: [])
        #expect(try config.node("DATA.TRAIN.DATA_SOURCES").strings() == ["disk_filelist"])
        #expect(try config.node("DATA.TEST.LABEL_SOURCES").strings() == ["disk_filelist"])
        #expect(try config.node("DATA.TRAIN.DATASET_NAMES").strings() == ["inaturalist2018_filelist"])
        let pool = try config.node("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP").list()
        #expect(try pool.map { try $0.list()[0].string() } == ["conv1", "res2", "res3", "res4", "res5", "res5avg"])
        let heads = try config.node("MODEL.HEAD.PARAMS").list()
        #expect(heads.count == 6)
        #expect(heads[5].value == ["eval_mlp", ["in_channels": 2048, "dims": [2048, 8142]]])
        #expect(try config.node("OPTIMIZER.num_epochs").int() == 84)
        #expect(try config.node("OPTIMIZER.param_schedulers.lr.milestones").ints() == [24, 48, 72])
    }

    @Test func voc07Svm() throws {
        let config = try PipelineConfig.load(pipeline: visslFixture(voc07Fixture), searchPaths: [])
        #expect(config.name == "eval_resnet_8gpu_transfer_voc07_svm")
        let costs = try config.node("SVM.costs.costs_list").doubles()
        #expect(costs == [0.01, 0.1, 1.0, 2, 5, 10, 15, 20, 50, 100, 1000])
        #expect(try config.node("SVM.normalize").bool())
        #expect(try config.node("SVM.loss").string() == "squared_hinge")
        #expect(try config.node("SVM.penalty").string() == "l2")
        #expect(try config.node("SVM.dual").bool())
        #expect(try config.node("SVM.max_iter").int() == 2000)
        #expect(try config.node("SVM.cross_val_folds").int() == 3)
        #expect(try config.node("SVM.force_retrain").bool() == false)
        #expect(try config.node("MODEL.FEATURE_EVAL_SETTINGS.EXTRACT_TRUNK_FEATURES_ONLY").bool())
        #expect(try config.node("MODEL.FEATURE_EVAL_SETTINGS.SHOULD_FLATTEN_FEATS").bool())
        let pool = try config.node("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP").list()
        #expect(try pool.map { try $0.list()[0].string() } == ["conv1", "res2", "res3", "res4", "res5"])
        #expect(try config.node("DATA.TRAIN.DATASET_NAMES").strings() == ["voc2007"])
        // Squash to 224×224 without a crop.
        let transforms = try config.node("DATA.TRAIN.TRANSFORMS").list()
        #expect(transforms[0].value == ["name": "Resize", "size": 256])
        #expect(transforms[1].value == ["name": "Resize", "size": [224, 224]])
        #expect(try config.node("MODEL.HEAD.PARAMS").list().isEmpty)
        #expect(config.isExplicit("SVM.costs.costs_list"))
        #expect(config.origin(of: "SVM.costs.costs_list") == .file(path: visslFixture(voc07Fixture), line: 69))
        #expect(!config.isExplicit("SVM.cls_list"))
        #expect(config.isExplicit("SVM.costs"))
        #expect(!config.isExplicit("SVM.low_shot"))
        #expect(
            config.ignoredKeys == [
                "CHECKPOINT.DIR", "DATA.TEST.COPY_DESTINATION_DIR", "DATA.TEST.COPY_TO_LOCAL_DISK",
                "DATA.TEST.MMAP_MODE",
                "DATA.TRAIN.COPY_DESTINATION_DIR", "DATA.TRAIN.COPY_TO_LOCAL_DISK", "DATA.TRAIN.MMAP_MODE",
                "MACHINE.DEVICE",
            ])
        #expect(
            config.ignoredKeysNote == "note: ignoring VISSL keys Linprobe does not use: "
                + config.ignoredKeys.joined(separator: ", "))
    }

    // MARK: The seed's snippets

    @Test func seedSnippetMlpOnTrunkOutput() throws {
        // TRUNK_PARAMS: left empty, RESNETS beside it (the MODEL.TRUNK.RESNETS spelling).
        let config = try PipelineConfig.load(
            pipeline: visslFixture("seed-snippets/mlp_trunk_output.yaml"), searchPaths: [])
        #expect(
            try config.node("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP").list().map(\.value) == [
                ["res5avg", ["Identity", []]]
            ])
        #expect(try config.node("MODEL.HEAD.PARAMS").list().map(\.value) == [["mlp", ["dims": [2048, 1000]]]])
        #expect(config.isExplicit("MODEL.TRUNK.RESNETS.DEPTH"))
        #expect(try config.node("MODEL.FEATURE_EVAL_SETTINGS.SHOULD_FLATTEN_FEATS").bool() == false)
        #expect(config.ignoredKeys.isEmpty && config.notes.isEmpty)
    }

    @Test func seedSnippetEvalMlpOnSixLayers() throws {
        let config = try PipelineConfig.load(
            pipeline: visslFixture("seed-snippets/eval_mlp_multiple_layers.yaml"), searchPaths: [])
        #expect(try config.node("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP").list().count == 6)
        let heads = try config.node("MODEL.HEAD.PARAMS").list()
        #expect(try heads.map { try $0.list()[1]["in_channels"].int() } == [64, 256, 512, 1024, 2048, 2048])
    }

    @Test func seedSnippetWithRootTrunkIsReadAsModelTrunk() throws {
        let path = visslFixture("seed-snippets/svm_multiple_layers.yaml")
        let config = try PipelineConfig.load(pipeline: path, searchPaths: [])
        #expect(try config.node("MODEL.FEATURE_EVAL_SETTINGS.EXTRACT_TRUNK_FEATURES_ONLY").bool())
        #expect(try config.node("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP").list().count == 3)
        #expect(config.origin(of: "MODEL.TRUNK.RESNETS.DEPTH") == .file(path: path, line: 15))
        #expect(config.origin(of: "MODEL.TRUNK.NAME") == .file(path: path, line: 12))
        #expect(config.notes.count == 1)
        #expect(config.notes.first?.contains("as MODEL.TRUNK") == true)
    }

    @Test func seedSnippetTrunkParamsSpelling() throws {
        let path = visslFixture("seed-snippets/svm_trunk_output.yaml")
        let config = try PipelineConfig.load(pipeline: path, searchPaths: [])
        #expect(config.origin(of: "MODEL.TRUNK.RESNETS.DEPTH") == .file(path: path, line: 10))
        #expect(try config.node("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP").list().isEmpty)
        #expect(config.node("MODEL.TRUNK.TRUNK_PARAMS").value == nil)
    }

    @Test(
        arguments: [in1kFixture, places205Fixture, inat18Fixture, voc07Fixture]
            + seedSnippets.map { "seed-snippets/\($0)" })
    func printedConfigLoadsBackUnchanged(_ fixture: String) throws {
        let config = try PipelineConfig.load(pipeline: visslFixture(fixture), searchPaths: [])
        let fromYAML = try loadConfig(config.yamlText)
        #expect(fromYAML.canonicalJSON == config.canonicalJSON)
        #expect(fromYAML.ignoredKeys.isEmpty)
        let fromJSON = try loadConfig(config.jsonText)
        #expect(fromJSON.canonicalJSON == config.canonicalJSON)
        #expect(Fingerprint.sha256(of: fromYAML.canonicalJSON) == Fingerprint.sha256(of: config.canonicalJSON))
    }
}
