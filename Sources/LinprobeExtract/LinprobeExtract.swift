/// The `extract` stage: dataset → transforms → trunk → pool ops → feature store, streamed
/// with bounded memory and resumable from the store's watermark.
public enum LinprobeExtract {}
