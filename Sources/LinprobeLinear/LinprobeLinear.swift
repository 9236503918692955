/// The `train-linear` stage: VISSL's `mlp` and `eval_mlp` heads trained with SGD on stored
/// features, every head updated from one read of the store per epoch.
public enum LinprobeLinear {}
