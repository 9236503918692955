import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

/// VISSL's spelling through the built binary: `config=PATH` and `+group=option` overlays over a
/// configs folder (`--configs` or LINPROBE_VISSL_CONFIGS), `--explain`, and the same artifacts
/// for the same run spelled two ways.
@Suite struct ComposeEndToEndTests {
    let configs = fixturePath("compose/configs")
    let base = "config=benchmark/linear_image_classification/toyset/eval_resnet_toy_linear"
    let models = "+config/benchmark/linear_image_classification/toyset/models"

    /// The environment without a configs folder of the caller's (only what a test gives).
    private func run(
        _ arguments: [String], environment: [String: String] = [:], in folder: String? = nil
    ) throws
        -> ProcessResult
    {
        try runProcess(
            linprobeBinary(), arguments, environment: ["LINPROBE_VISSL_CONFIGS": ""].merging(environment) { $1 },
            currentDirectory: folder)
    }

    @Test func explainNamesTheFileOfEachValue() throws {
        let r = try run([
            "config", base, "\(models)=resnet18", "config.SEED_VALUE=5", "--configs", configs, "--explain",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let overlay = "\(configs)/config/benchmark/linear_image_classification/toyset/models/resnet18.yaml"
        #expect(r.stdout.contains("#   overlay  models/resnet18.yaml   \(overlay)\n"))
        #expect(r.stdout.contains("        DEPTH: 18  # models/resnet18.yaml line 10\n"))
        #expect(r.stdout.contains("      NAME: resnet  # eval_resnet_toy_linear.yaml line 45\n"))
        #expect(r.stdout.contains("  SEED_VALUE: 5  # override config.SEED_VALUE=5\n"))
        let both = try run(["config", base, "--json", "--explain", "--configs", configs])
        #expect(both.status == 64)
    }

    @Test func theConfigsFolderComesFromTheEnvironmentAndBothSpellingsAgree() throws {
        let vissl = try run(
            ["config", base, "\(models)=resnet18", "--json"], environment: ["LINPROBE_VISSL_CONFIGS": configs])
        #expect(vissl.status == 0, "\(vissl.stderr)")
        let file = "\(configs)/config/benchmark/linear_image_classification/toyset/eval_resnet_toy_linear.yaml"
        let short = try run(["config", file, "+models=resnet18", "--json"])
        #expect(short.status == 0, "\(short.stderr)")
        #expect(vissl.stdout == short.stdout)
    }

    @Test func aNearMissIsOneLineWithTheRightName() throws {
        let r = try run(["config", base, "\(models)=Resnet18", "--configs", configs])
        #expect(r.status == 64)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("no option 'Resnet18'") && r.stderr.contains("did you mean 'resnet18'?"))
        let noFolder = try run(["config", base])
        #expect(noFolder.status == 64)
        #expect(noFolder.stderr.contains("--configs DIR or LINPROBE_VISSL_CONFIGS"))
    }

    @Test func anUnimplementedTrunkIsNamedBeforeAnyWork() throws {
        let tmp = try TemporaryDirectory()
        let r = try run(
            ["extract", base, "\(models)=efficientnet_b0", "--configs", configs, "--workdir", tmp.file("work")])
        #expect(r.status == 64)
        #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }.count == 1)
        #expect(r.stderr.contains("MODEL.TRUNK.NAME: trunk 'efficientnet' is not supported"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tmp.file("work/features")))
    }

    /// `extract` spelled VISSL's way, then as a pipeline file with a short overlay: the second
    /// run reuses the first one's store (the fingerprint depends on the composed result only).
    @Test func theSameRunSpelledTwoWaysReusesItsArtifacts() throws {
        let tmp = try TemporaryDirectory("linprobe-compose-e2e")
        let data = tmp.file("data")
        for (cls, image) in [("cat", "photo_500x375.jpg"), ("dog", "photo_375x500.jpg")] {
            try FileManager.default.createDirectory(atPath: "\(data)/\(cls)", withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: fixturePath("images/files/\(image)"), toPath: "\(data)/\(cls)/a.jpg")
        }
        let folder = tmp.file("configs/config/bench/toy")
        try FileManager.default.createDirectory(atPath: folder + "/models", withIntermediateDirectories: true)
        let transforms = "[{name: Resize, size: 40}, {name: CenterCrop, size: 32}, {name: ToTensor}]"
        try ("# @package _global_\n" + extractionPipelineText(root: data, transforms: transforms, batch: 2))
            .write(toFile: folder + "/base.yaml", atomically: true, encoding: .utf8)
        let overlay = """
            # @package _global_
            config:
              MODEL:
                FEATURE_EVAL_SETTINGS:
                  LINEAR_EVAL_FEAT_POOL_OPS_MAP: [["res5avg", ["Identity", []]]]
            """
        try overlay.write(toFile: folder + "/models/res5avg.yaml", atomically: true, encoding: .utf8)
        let work = tmp.file("work")

        let first = try run(
            [
                "extract", "config=bench/toy/base", "+config/bench/toy/models=res5avg", "--configs",
                tmp.file("configs"),
                "--workdir", work,
            ])
        #expect(first.status == 0, "\(first.stderr)")
        let store = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try FeatureStoreReader(path: store).layers.map(\.name) == ["res5avg"])  // the list was replaced

        let second = try run(["extract", folder + "/base.yaml", "+models=res5avg", "--workdir", work])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout == first.stdout)
        #expect(second.stderr.contains("reused \(store)"), "\(second.stderr)")
    }
}
