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
