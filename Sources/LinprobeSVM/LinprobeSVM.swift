/// The `train-svm` stage: VISSL's VOC07 linear-SVM protocol (dual coordinate-descent solver,
/// cost sweep with cross-validation by AP, test AP) and its low-shot variants.
public enum LinprobeSVM {}
