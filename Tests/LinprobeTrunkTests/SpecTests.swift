import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

@testable import LinprobeTrunk

@Suite("ResNet spec from VISSL config")
struct SpecTests {
    static func model(_ json: String) throws -> ConfigNode {
        ConfigNode(path: "MODEL", value: try JSONValue.parse(json))
    }

    @Test("defaults are VISSL's (ResNet-50, width 1, rgb)")
    func defaults() throws {
        let spec = try ResNetSpec(model: Self.model("{}"))
        #expect(spec == (try ResNetSpec()))
        #expect(spec.depth == 50 && spec.widthMultiplier == 1 && spec.inputType == .rgb && spec.layer4Stride == 2)
    }

    @Test("RESNETS and the older TRUNK_PARAMS.RESNETS both work")
    func bothLayouts() throws {
        let a = try ResNetSpec(
            model: Self.model(#"{"TRUNK": {"NAME": "resnet", "RESNETS": {"DEPTH": 101, "WIDTH_MULTIPLIER": 2}}}"#))
        let b = try ResNetSpec(
            model: Self.model(
                #"{"TRUNK": {"NAME": "resnet", "TRUNK_PARAMS": {"RESNETS": {"DEPTH": 101, "WIDTH_MULTIPLIER": 2.0}}}}"#)
        )
        #expect(a == b)
        #expect(a.depth == 101 && a.widthMultiplier == 2)
        #expect(a.stemChannels == 128 && a.featureChannels == 4096)
    }

    @Test("ResNet-50 has torchvision's 23,508,032 trunk parameters and ~4.09 GMAC at 224²")
    func counts() throws {
        let spec = try ResNetSpec(depth: 50)
        let learnable = spec.parameters.filter {
            !$0.name.hasSuffix("running_mean") && !$0.name.hasSuffix("running_var")
        }
        let count50: Int = learnable.reduce(0) { $0 + $1.shape.reduce(1, *) }
        #expect(count50 == 23_508_032)
        // 4.089 GMAC with the fc layer (2048·1000), as measured for the GEMM-only bound.
        let macs: Int = spec.multiplyAccumulates(inputHeight: 224, inputWidth: 224)
        #expect(macs + 2_048_000 == 4_089_184_256)
        let r18 = try ResNetSpec(depth: 18)
        let r18Learnable = r18.parameters.filter {
            !$0.name.hasSuffix("running_mean") && !$0.name.hasSuffix("running_var")
        }
        let count18: Int = r18Learnable.reduce(0) { $0 + $1.shape.reduce(1, *) }
        #expect(count18 == 11_689_512 - 513_000)
    }

    @Test("tap shapes at 224² match the protocol table")
    func tapShapes() throws {
        let shapes = try #require(try ResNetSpec(depth: 50).tapShapes(inputHeight: 224, inputWidth: 224))
        #expect(shapes[.conv1] == [64, 112, 112])
        #expect(shapes[.res1] == [64, 56, 56])
        #expect(shapes[.res2] == [256, 56, 56])
        #expect(shapes[.res3] == [512, 28, 28])
        #expect(shapes[.res4] == [1024, 14, 14])
        #expect(shapes[.res5] == [2048, 7, 7])
        #expect(shapes[.res5avg] == [2048, 1, 1])
        let s1 = try #require(try ResNetSpec(depth: 50, layer4Stride: 1).tapShapes(inputHeight: 224, inputWidth: 224))
        #expect(s1[.res5] == [2048, 14, 14])
    }

    @Test(
        "unsupported settings are config errors naming the key",
        arguments: [
            (#"{"TRUNK": {"NAME": "efficientnet"}}"#, "MODEL.TRUNK.NAME"),
            (#"{"TRUNK": {"RESNETS": {"DEPTH": 42}}}"#, "MODEL.TRUNK.RESNETS.DEPTH"),
            (#"{"TRUNK": {"RESNETS": {"NORM": "GroupNorm"}}}"#, "MODEL.TRUNK.RESNETS.NORM"),
            (#"{"TRUNK": {"RESNETS": {"LAYER4_STRIDE": 3}}}"#, "MODEL.TRUNK.RESNETS.LAYER4_STRIDE"),
            (#"{"TRUNK": {"RESNETS": {"WIDTH_MULTIPLIER": 1.5}}}"#, "MODEL.TRUNK.RESNETS.WIDTH_MULTIPLIER"),
            (#"{"TRUNK": {"RESNETS": {"DEPTH": 18, "GROUPS": 32}}}"#, "MODEL.TRUNK.RESNETS"),
            (#"{"TRUNK": {"RESNETS": {"DEPHT": 50}}}"#, "MODEL.TRUNK.RESNETS.DEPHT"),
            (#"{"INPUT_TYPE": "lab"}"#, "MODEL.INPUT_TYPE"),
            (#"{"INPUT_TYPE": "yuv"}"#, "MODEL.INPUT_TYPE"),
        ])
    func unsupported(json: String, key: String) throws {
        let error = #expect(throws: LinprobeError.self) { try TrunkFamilies.architecture(model: Self.model(json)) }
        #expect(error?.exitCode == 64)
        #expect(error?.message.hasPrefix(key) == true, "\(error?.message ?? "")")
    }

    @Test("ResNeXt widths follow torchvision (32×4d: 128 inner channels in layer1)")
    func resnextWidths() throws {
        let spec = try ResNetSpec(depth: 50, groups: 32, widthPerGroup: 4)
        #expect(spec.bottleneckWidth(stage: 0) == 128)
        #expect(spec.bottleneckWidth(stage: 3) == 1024)
        let conv2 = try #require(spec.parameters.first { $0.name == "layer1.0.conv2.weight" })
        #expect(conv2.shape == [128, 4, 3, 3])
    }
}

@Suite("Trunk configuration from the MODEL mapping")
struct TrunkConfigurationTests {
    @Test("VISSL's RN50-w2 IN1k model file configures the trunk, map and weights in one go")
    func visslModelFile() throws {
        let model = try JSONValue.parse(
            """
            {"FEATURE_EVAL_SETTINGS": {"LINEAR_EVAL_FEAT_POOL_OPS_MAP": [
                ["conv1", ["AvgPool2d", [[20, 20], 13, 4]]], ["res2", ["AvgPool2d", [[32, 32], 8, 0]]],
                ["res3", ["AvgPool2d", [[13, 13], 7, 0]]], ["res4", ["AvgPool2d", [[8, 8], 6, 0]]],
                ["res5", ["AdaptiveAvgPool2d", [[2, 1]]]]]},
             "TRUNK": {"NAME": "resnet", "RESNETS": {"DEPTH": 50, "WIDTH_MULTIPLIER": 2}},
             "WEIGHTS_INIT": {"PARAMS_FILE": "", "STATE_DICT_KEY_NAME": "classy_state_dict"}}
            """)
        let cfg = try TrunkConfiguration(model: ConfigNode(path: "MODEL", value: model))
        let outputs = try cfg.outputs(inputHeight: 224, inputWidth: 224)
        // Pooled dims of protocol §1.9 (RN50-w2): 8192, 8192, 9216, 8192, 8192.
        #expect(outputs.map(\.dimension) == [8192, 8192, 9216, 8192, 8192])
        #expect(outputs.map(\.shapeCHW) == [[128, 8, 8], [512, 4, 4], [1024, 3, 3], [2048, 2, 2], [4096, 2, 1]])
        #expect(cfg.provenance["trunk"]?["WIDTH_MULTIPLIER"]?.intValue == 2)
        #expect(cfg.provenance["pool_ops"]?.arrayValue?.count == 5)
        #expect(cfg.weights.paramsFile.isEmpty)
    }

    @Test("a bad key anywhere in the trunk settings is a config error with its path")
    func badKey() throws {
        let model = try JSONValue.parse(
            #"{"FEATURE_EVAL_SETTINGS": {"LINEAR_EVAL_FEAT_POOL_OPS_MAP": [["res9", ["Identity", []]]]}}"#)
        let error = #expect(throws: LinprobeError.self) {
            try TrunkConfiguration(model: ConfigNode(path: "MODEL", value: model))
        }
        #expect(
            error?.message.hasPrefix("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP[0][0]") == true,
            "\(error?.message ?? "")")
    }
}
