/// Reads model weights without executing anything: PyTorch `torch.save` files (zip format of
/// PyTorch ≥ 1.6 and the legacy format), safetensors, and VISSL's nested checkpoints, with
/// VISSL's key handling (`STATE_DICT_KEY_NAME`, prefixes, `SKIP_LAYERS`).
public enum LinprobeCheckpoint {}
