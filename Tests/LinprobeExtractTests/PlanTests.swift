import Foundation
import LinprobeCore
import LinprobeData
import LinprobeStore
import LinprobeTestSupport
import LinprobeTrunk
import Testing

@testable import LinprobeExtract

/// Configuration → per-split plans: layer names, fingerprints, and configuration errors.
@Suite struct ExtractPlanning {
    static func plans(_ text: String, dir: TemporaryDirectory, overrides: [String] = []) throws -> [ExtractSplitPlan] {
        try ExtractPlanner.plan(
            config: loadConfig(text, overrides: overrides), workdir: dir.file("work"), environment: [:],
            workingDirectory: dir.path)
    }

    @Test func layerNamesFollowVISSL() throws {
        #expect(ExtractPlanner.layerNames(PoolOpsMap(entries: [])) == ["heads"])
        #expect(ExtractPlanner.layerNames(.visslResNet50) == ["conv1", "res2", "res3", "res4", "res5", "res5avg"])
        let repeated = PoolOpsMap(entries: [
            .init(tap: .res5avg, op: .identity), .init(tap: .res4, op: .identity),
            .init(tap: .res5avg, op: .identity), .init(tap: .res5avg, op: .identity),
        ])
        #expect(ExtractPlanner.layerNames(repeated) == ["res5avg", "res4", "res5avg_1", "res5avg_2"])
    }

    @Test func planOfOneSplit() throws {
        let dir = try TemporaryDirectory()
        let root = try makeImageFolder(in: dir, smallLayout)
        let plans = try Self.plans(pipelineText(root: root, poolMap: "[]"), dir: dir)
        let plan = try #require(plans.first)
        #expect(plans.count == 1)
        #expect(plan.split == .test)
        #expect(plan.layers == [StoreLayer(name: "heads", shapeCHW: [512, 1, 1])])
        #expect(plan.inputHeight == 32 && plan.inputWidth == 32)
        #expect(plan.views == 1)
        #expect(plan.batchSize == 3)
        #expect(plan.weightsSHA256 == nil)
        #expect(plan.relativeStorePath == "features/\(plan.fingerprint)/test.h5")
        #expect(plan.fingerprint.count == 16)
        #expect(plan.listing.count == 9)
    }

    @Test func bothSplitsAndTrainViews() throws {
        let dir = try TemporaryDirectory()
        let root = try makeImageFolder(in: dir, smallLayout)
        let merged = try Self.plans(
            pipelineText(root: root, split: "TRAIN", transforms: randomTransforms), dir: dir,
            overrides: [
                "config.DATA.TEST.DATA_SOURCES=[disk_folder]", "config.DATA.TEST.DATA_PATHS=[\(root)]",
                "config.DATA.TEST.TRANSFORMS=\(testTransforms)", "config.LINPROBE.TRAIN_VIEWS=4",
            ])
        #expect(merged.map(\.split) == [.train, .test])
        #expect(merged.map(\.views) == [4, 1])
        #expect(merged[0].rowCount == 36)
        #expect(merged[0].relativeStorePath.hasSuffix("/train.h5"))
        #expect(merged[0].fingerprint != merged[1].fingerprint)
        #expect(merged[0].fingerprintValue["augmentation_seed"] != nil)
        #expect(merged[1].fingerprintValue["augmentation_seed"] == nil)
    }

    /// Everything that changes the features changes the fingerprint; nothing else does.
    @Test func fingerprintCoversWhatDeterminesTheFeatures() throws {
        let dir = try TemporaryDirectory()
        let root = try makeImageFolder(in: dir, smallLayout)
        let base = pipelineText(root: root)
        func fp(_ text: String = base, _ overrides: [String] = []) throws -> String {
            try Self.plans(text, dir: dir, overrides: overrides)[0].fingerprint
        }
        let reference = try fp()
        #expect(try fp() == reference, "stable")
        // Same features: batch size, threads, catalog, a moved dataset folder.
        #expect(try fp(base, ["config.DATA.TEST.BATCHSIZE_PER_REPLICA=17"]) == reference)
        #expect(try fp(base, ["config.LINPROBE.THREADS=1"]) == reference)
        let moved = try makeImageFolder(in: dir, smallLayout, name: "moved-copy")
        #expect(try fp(pipelineText(root: moved)) == reference)
        // Other features.
        let changed = [
            try fp(base, ["config.LINPROBE.STORAGE_DTYPE=float16"]),
            try fp(base, ["config.LINPROBE.DEFLATE=4"]),
            try fp(base, ["config.DATA.TEST.DEFAULT_GRAY_IMG_SIZE=100"]),
            try fp(base, ["config.DATA.TEST.DATA_LIMIT=5"]),
            try fp(
                base,
                [#"config.MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP=[["res5avg", ["Identity", []]]]"#]),
            try fp(base, ["config.MODEL.TRUNK.RESNETS.DEPTH=34"]),
            try fp(base, ["config.MODEL.INPUT_TYPE=bgr"]),
            try fp(
                pipelineText(
                    root: root,
                    transforms: #"[{name: Resize, size: 40}, {name: CenterCrop, size: 32}, {name: ToTensor}]"#)),
            try fp(pipelineText(root: root, split: "TRAIN")),
        ]
        #expect(!changed.contains(reference))
        #expect(Set(changed).count == changed.count)
        // A renamed image changes the listing digest.
        try FileManager.default.moveItem(atPath: moved + "/a/gray_50x70.jpg", toPath: moved + "/a/gray_renamed.jpg")
        #expect(try fp(pipelineText(root: moved)) != reference)
    }

    @Test func weightsEnterByContentNotPath() throws {
        let dir = try TemporaryDirectory()
        let root = try makeImageFolder(in: dir, smallLayout)
        let one = dir.file("one.pt"), copy = dir.file("copy.pt"), other = dir.file("other.pt")
        try FileManager.default.copyItem(atPath: fixturePath("trunk/checkpoints/small_zip.pt"), toPath: one)
        try FileManager.default.copyItem(atPath: one, toPath: copy)
        try FileManager.default.copyItem(atPath: fixturePath("trunk/checkpoints/small_legacy.pt"), toPath: other)
        func plan(_ file: String, _ more: [String] = []) throws -> ExtractSplitPlan {
            try Self.plans(
                pipelineText(root: root), dir: dir, overrides: ["config.MODEL.WEIGHTS_INIT.PARAMS_FILE=\(file)"] + more)[
                    0]
        }
        let a = try plan(one), b = try plan(copy), c = try plan(other)
        #expect(a.weightsSHA256 == (try Fingerprint.sha256(ofFile: one)))
        #expect(a.fingerprint == b.fingerprint)
        #expect(a.fingerprint != c.fingerprint)
        #expect(try plan(one, ["config.MODEL.WEIGHTS_INIT.REMOVE_PREFIX=module."]).fingerprint != a.fingerprint)
        #expect(
            try plan(one, ["config.SEED_VALUE=5"]).fingerprint == a.fingerprint,
            "loaded weights and deterministic transforms do not use the seed")
        #expect(
            try plan(one, ["config.SEED_VALUE=5", "config.MODEL.WEIGHTS_INIT.SKIP_LAYERS=[layer4]"]).fingerprint
                != (try plan(one, ["config.MODEL.WEIGHTS_INIT.SKIP_LAYERS=[layer4]"]).fingerprint),
            "skipped layers keep their seeded random values")
        #expect(try plan("one.pt").weightsInit.paramsFile == one, "relative to the working directory")
        let random = try Self.plans(pipelineText(root: root), dir: dir)[0]
        #expect(random.fingerprint != a.fingerprint)
        #expect(
            try Self.plans(pipelineText(root: root), dir: dir, overrides: ["config.SEED_VALUE=3"])[0].fingerprint
                != random.fingerprint,
            "random weights depend on the seed")
    }

    struct BadConfig: CustomTestStringConvertible, Sendable {
        var name: String
        var overrides: [String]
        var transforms: String = testTransforms
        /// Text the one-line message must contain.
        var mentions: [String]
        var code: LinprobeError.Code = .invalidConfig
        var testDescription: String { name }
    }

    static let badConfigs: [BadConfig] = [
        BadConfig(
            name: "pool kernel larger than the map",
            overrides: [
                #"config.MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP=[["res5", ["AvgPool2d", [[6, 6], 1, 0]]]]"#
            ],
            mentions: ["res5", "AvgPool2d", "1×1"]),
        BadConfig(
            name: "unknown transform", overrides: [], transforms: "[{name: ColorJitter}, {name: ToTensor}]",
            mentions: ["TRANSFORMS[0]", "ColorJitter"]),
        BadConfig(
            name: "unknown transform argument", overrides: [],
            transforms: "[{name: Resize, size: 40, colour: red}, {name: CenterCrop, size: 32}, {name: ToTensor}]",
            mentions: ["TRANSFORMS[0]", "colour"]),
        BadConfig(
            name: "images of varying size", overrides: [], transforms: "[{name: Resize, size: 40}, {name: ToTensor}]",
            mentions: ["TRANSFORMS", "varying size"]),
        BadConfig(name: "no tensor conversion", overrides: [], transforms: "[]", mentions: ["TRANSFORMS", "ToTensor"]),
        BadConfig(
            name: "input size disagrees", overrides: ["config.LINPROBE.INPUT_SIZE=224"],
            mentions: ["LINPROBE.INPUT_SIZE", "32×32"]),
        BadConfig(
            name: "weights URL", overrides: ["config.MODEL.WEIGHTS_INIT.PARAMS_FILE=https://x/y.torch"],
            mentions: ["PARAMS_FILE", "URL"]),
        BadConfig(
            name: "missing weights file", overrides: ["config.MODEL.WEIGHTS_INIT.PARAMS_FILE=nowhere/rn50.torch"],
            mentions: ["nowhere/rn50.torch", "not found", "PARAMS_FILE"], code: .missingInput),
        BadConfig(
            name: "paths without a source", overrides: ["config.DATA.TRAIN.DATA_PATHS=[/data/x]"],
            mentions: ["DATA.TRAIN.DATA_PATHS", "DATA_SOURCES"]),
        BadConfig(
            name: "unknown trunk", overrides: ["config.MODEL.TRUNK.NAME=vit"], mentions: ["MODEL.TRUNK.NAME", "vit"]),
        BadConfig(
            name: "unknown tap",
            overrides: [
                #"config.MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP=[["res6", ["Identity", []]]]"#
            ],
            mentions: ["res6"]),
        BadConfig(
            name: "batch larger than a store chunk", overrides: ["config.DATA.TEST.BATCHSIZE_PER_REPLICA=1000000000"],
            mentions: ["DATA.TEST.BATCHSIZE_PER_REPLICA", "1000000000", "4 GiB", "at most 2097151"]),
        BadConfig(
            name: "batch of Int.max", overrides: ["config.DATA.TEST.BATCHSIZE_PER_REPLICA=9223372036854775807"],
            mentions: ["DATA.TEST.BATCHSIZE_PER_REPLICA", "9223372036854775807", "4 GiB"]),
        BadConfig(
            name: "batch of zero", overrides: ["config.DATA.TEST.BATCHSIZE_PER_REPLICA=0"],
            mentions: ["DATA.TEST.BATCHSIZE_PER_REPLICA", "at least 1"]),
    ]

    /// A batch larger than the split (but within a store chunk) is one batch of every row: the
    /// extraction's buffers are sized by the rows, not by the configured batch.
    @Test func batchLargerThanTheSplitIsCappedByItsRows() throws {
        let dir = try TemporaryDirectory()
        let root = try makeImageFolder(in: dir, smallLayout)
        let plans = try Self.plans(
            pipelineText(root: root, poolMap: "[]"), dir: dir,
            overrides: ["config.DATA.TEST.BATCHSIZE_PER_REPLICA=1000000"])
        let plan = try #require(plans.first)
        #expect(plan.batchSize == 1_000_000)
        #expect(plan.rowCount == 9)
        #expect(plan.effectiveBatchSize == 9)
    }

    @Test(arguments: badConfigs)
    func configurationErrorsNameTheKey(_ bad: BadConfig) throws {
        let dir = try TemporaryDirectory()
        let root = try makeImageFolder(in: dir, smallLayout)
        do {
            _ = try Self.plans(pipelineText(root: root, transforms: bad.transforms), dir: dir, overrides: bad.overrides)
            Issue.record("accepted: \(bad.name)")
        } catch let error as LinprobeError {
            #expect(error.code == bad.code, "\(error.message)")
            for m in bad.mentions { #expect(error.message.contains(m), "'\(m)' missing from: \(error.message)") }
            #expect(!oneLine(error).contains("\n"))
        }
    }

    @Test func noSplitConfigured() throws {
        let dir = try TemporaryDirectory()
        let text = "config:\n  MODEL:\n    TRUNK: {NAME: resnet}\n"
        #expect(throws: LinprobeError.self) { try Self.plans(text, dir: dir) }
        do { _ = try Self.plans(text, dir: dir) } catch let e as LinprobeError {
            #expect(e.exitCode == 64)
            #expect(e.message.contains("DATA_SOURCES"))
        }
    }
}
