import CLinprobeSVMKernels

/// The `train-svm` stage: VISSL's VOC07 linear-SVM protocol and its low-shot variants.
///
/// - `SVMSettings` — the `SVM.*` / `LINPROBE.SVM.*` settings, validated (`init(config:)`).
/// - `SVMStage` — the `train-svm` PipelineStage: every pool-op map layer of a store pair → results.json.
/// - `DualCD` — liblinear's dual coordinate-descent solver (squared hinge or hinge, shrinking).
/// - `AveragePrecision` (LinprobeCore) — scikit-learn's AP, VISSL's all-points VOC AP, VOC07 11-point AP.
/// - `StratifiedKFold` — scikit-learn's unshuffled stratified split.
public enum LinprobeSVM {
    /// Name of the vector kernels in use (`avx512`, `avx2`, `generic`).
    public static var vectorKernels: String { String(cString: lp_svm_kernel_name()) }
}
