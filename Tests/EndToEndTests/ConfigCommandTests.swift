import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

/// `linprobe config` through the built binary: exit codes, one-line messages, output that loads back.
@Suite struct ConfigCommandTests {
    let voc07 = fixturePath("vissl-configs/voc07/eval_resnet_8gpu_transfer_voc07_svm.yaml")

    @Test func printsTheEffectiveConfigAsYAMLWithOneIgnoredKeysNote() throws {
        let r = try runProcess(linprobeBinary(), ["config", voc07, "config.MACHINE.DEVICE=cpu"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("config:\n"))
        #expect(r.stdout.contains("costs_list: [0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0]"))
        let notes = r.stderr.split(separator: "\n").filter {
            $0.hasPrefix("note: ignoring VISSL keys Linprobe does not use: ")
        }
        #expect(notes.count == 1)
        #expect(notes.first?.contains("MACHINE.DEVICE") == true)
        #expect(notes.first?.components(separatedBy: "MACHINE.DEVICE").count == 2)  // listed once
    }

    @Test func printedYAMLAndJSONLoadBackUnchanged() throws {
        let tmp = try TemporaryDirectory()
        let overrides = [
            #"config.MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP=[["res5",["AvgPool2d",[[6,6],1,0]]]]"#,
            "config.DATA.TRAIN.DATA_PATHS=[/data/VOC2007]",
            "config.LINPROBE.STORAGE_DTYPE=float16",
        ]
        let json = try runProcess(linprobeBinary(), ["config", voc07] + overrides + ["--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let value = try JSONValue.parse(json.stdout)
        let inProcess = try PipelineConfig.load(pipeline: voc07, overrides: overrides, searchPaths: [])
        #expect(json.stdout == inProcess.jsonText + "\n")  // the canonical form fingerprints use
        #expect(
            ConfigNode(path: "", value: value).at("MODEL.FEATURE_EVAL_SETTINGS.LINEAR_EVAL_FEAT_POOL_OPS_MAP").value
                == [["res5", ["AvgPool2d", [[6, 6], 1, 0]]]])
        #expect(ConfigNode(path: "", value: value).at("LINPROBE.STORAGE_DTYPE").value == "float16")

        let yaml = try runProcess(linprobeBinary(), ["config", voc07] + overrides)
        #expect(yaml.status == 0)
        let printed = tmp.file("printed.yaml")
        try yaml.stdout.write(toFile: printed, atomically: true, encoding: .utf8)
        let reloaded = try runProcess(linprobeBinary(), ["config", printed, "--json"])
        #expect(reloaded.status == 0, "\(reloaded.stderr)")
        #expect(reloaded.stdout == json.stdout)
        #expect(reloaded.stderr.isEmpty)  // nothing ignored: only Linprobe's keys are printed
    }

    @Test func findsPipelinesByNameThroughLINPROBE_PIPELINES() throws {
        let tmp = try TemporaryDirectory()
        let folder = tmp.file("mine")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "SVM:\n  max_iter: 77\n".write(toFile: folder + "/tiny_svm.yaml", atomically: true, encoding: .utf8)
        let r = try runProcess(
            linprobeBinary(), ["config", "tiny_svm", "--json"],
            environment: ["LINPROBE_PIPELINES": folder], currentDirectory: tmp.path)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try ConfigNode(path: "", value: JSONValue.parse(r.stdout)).at("SVM.max_iter").int() == 77)
    }

    @Test(arguments: [
        (
            ["config.DATA.TRAIN.BATCH_SIZE_PER_REPLICA=64"],
            ["unknown key 'DATA.TRAIN.BATCH_SIZE_PER_REPLICA'", "closest valid key: DATA.TRAIN.BATCHSIZE_PER_REPLICA"]
        ),
        (["config.SVM.max_iter=lots"], ["SVM.max_iter", "expected an integer", "lots"]),
        (["config.SVM.costs.costs_list=[1,2"], ["bad override 'config.SVM.costs.costs_list=[1,2'", "never closed"]),
        (["config.SVM.max_iter"], ["bad override 'config.SVM.max_iter'", "no '='"]),
    ])
    func configErrorsExit64WithOneLine(_ overrides: [String], _ fragments: [String]) throws {
        let r = try runProcess(linprobeBinary(), ["config", voc07] + overrides)
        #expect(r.status == 64)
        #expect(r.stdout.isEmpty)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(lines.first?.hasPrefix("error: ") == true)
        for fragment in fragments { #expect(r.stderr.contains(fragment), "'\(fragment)' in \(r.stderr)") }
    }

    @Test func missingPipelineExits64ListingWhereItLooked() throws {
        let tmp = try TemporaryDirectory()
        let r = try runProcess(
            linprobeBinary(), ["config", "no_such_pipeline"],
            environment: ["LINPROBE_PIPELINES": tmp.path], currentDirectory: tmp.path)
        #expect(r.status == 64)
        #expect(r.stderr.hasPrefix("error: pipeline 'no_such_pipeline' not found"))
        #expect(r.stderr.contains(tmp.path + "/no_such_pipeline.yaml"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test func invalidYAMLExits64() throws {
        let tmp = try TemporaryDirectory()
        let bad = tmp.file("bad.yaml")
        try "SVM:\n  costs: [1, 2\n  dual: true\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try runProcess(linprobeBinary(), ["config", bad])
        #expect(r.status == 64)
        #expect(r.stderr.contains("not valid YAML"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }
}
