import Foundation

/// A small extraction pipeline in VISSL's form over an ImageFolder `root` for one split:
/// ResNet-`depth` trunk, the given transforms and pool map, random weights unless `weights`
/// names a file, and `extra` YAML lines appended under `config:`.
public func extractionPipelineText(
    root: String, split: String = "TEST", transforms: String, batch: Int,
    poolMap: String = #"[["res4", ["AdaptiveAvgPool2d", [[2, 1]]]], ["res5avg", ["Identity", []]]]"#,
    depth: Int = 18, weights: String = "", extra: String = ""
) -> String {
    """
    config:
      DATA:
        \(split):
          DATA_SOURCES: [disk_folder]
          LABEL_SOURCES: [disk_folder]
          DATA_PATHS: ["\(root)"]
          BATCHSIZE_PER_REPLICA: \(batch)
          TRANSFORMS: \(transforms)
      MODEL:
        TRUNK: {NAME: resnet, RESNETS: {DEPTH: \(depth)}}
        FEATURE_EVAL_SETTINGS:
          LINEAR_EVAL_FEAT_POOL_OPS_MAP: \(poolMap)
        WEIGHTS_INIT: {PARAMS_FILE: "\(weights)", STATE_DICT_KEY_NAME: ""}
    \(extra)
    """
}

/// `pipelines/demo.yaml` with its model part — from the pool-op map through `WEIGHTS_INIT` (its
/// ResNet-18 trunk and linear heads) — replaced by `model`, YAML lines at the demo's indentation
/// that name the pool map, trunk and weights. Without heads, `run` trains the SVMs only.
public func demoPipelineText(model: String) throws -> String {
    let path = repositoryRoot.appendingPathComponent("pipelines/demo.yaml").path
    var text = try String(contentsOfFile: path, encoding: .utf8)
    guard let start = text.range(of: "      LINEAR_EVAL_FEAT_POOL_OPS_MAP: ["),
        let end = text.range(of: "    WEIGHTS_INIT:\n      PARAMS_FILE: \"\"\n")
    else {
        throw CocoaError(
            .fileReadCorruptFile,
            userInfo: [NSLocalizedDescriptionKey: "\(path) no longer has the model block the tests replace"])
    }
    text.replaceSubrange(start.lowerBound..<end.upperBound, with: model)
    return text
}
