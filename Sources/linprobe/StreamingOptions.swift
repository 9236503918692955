import ArgumentParser
import Foundation

/// How extraction streams images: decode threads and store flushes (`extract` and `run`).
struct StreamingOptions: ParsableArguments {
    @Option(
        name: .customLong("decode-workers"), parsing: .unconditional,
        help:
            "Threads decoding and transforming images while the trunk runs (default: 2 on 2+ cores; 0 = decode between batches)."
    )
    var decodeWorkers: Int?

    @Option(
        name: .customLong("flush-seconds"),
        help: ArgumentHelp(
            "Seconds between flushes of the store (0 = after every batch). A flush keeps whole chunks only "
                + "(the store's chunk_rows rows: a whole number of batches, at most 256 or one batch): a crash loses the "
                + "rows since the last flush plus the rows of an unfinished chunk, so up to one chunk of work "
                + "even with 0."))
    var flushSeconds: Double = 5

    func validate() throws {
        if let decodeWorkers, decodeWorkers < 0 { throw ValidationError("--decode-workers must be 0 or more") }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if let decodeWorkers, decodeWorkers > ThreadOptions.maximumPerCore * cores {
            throw ValidationError(
                "--decode-workers \(decodeWorkers) is more than \(ThreadOptions.maximumPerCore) per core on this machine's \(cores) core(s); each holds a batch of decoded images"
            )
        }
        if flushSeconds < 0 || !flushSeconds.isFinite { throw ValidationError("--flush-seconds must be 0 or more") }
    }
}
