/// The frozen trunk on the CPU: VISSL's ResNe(X)t with its feature taps and pool ops,
/// convolutions through OpenBLAS with BatchNorm folded in at load time.
public enum LinprobeTrunk {}
