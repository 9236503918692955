import Foundation
import LinprobeCore

/// The settings of the `knn` stage: VISSL's `NEAREST_NEIGHBOR.*` (`TOPK`, `SIGMA`, `L2_NORM_FEATS`)
/// or DINO's (`LINPROBE.KNN.DINO.*`), and Linprobe's `LINPROBE.KNN.*`.
///
/// - `vissl` (VISSL's `knn_utils`): k from `TOPK` (one value or a list), σ = `SIGMA`, features
///   L2-normalised when `L2_NORM_FEATS`; classes = the largest training label + 1; top-5 is 0 when
///   there are fewer than 5 classes (VISSL's `Accuracies.from_batch`).
/// - `dino` (DINO's `eval_knn.py`): features always L2-normalised (DINO normalises them when it
///   extracts them); k from `LINPROBE.KNN.DINO.NB_KNN` (DINO's `--nb_knn`, default 10, 20, 100,
///   200) and T from `LINPROBE.KNN.DINO.TEMPERATURE` (`--temperature`, 0.07); `NEAREST_NEIGHBOR.*`
///   is VISSL's and not read; classes = the store's `num_classes` (DINO: `--num_labels` 1000);
///   top-5 counts the first min(5, k) predictions.
public struct KNNSettings: Sendable, Equatable {
    public typealias ProtocolKind = KNNResultsDocument.ProtocolKind

    public var protocolKind: ProtocolKind = .vissl
    /// Every k, as listed; the search keeps the largest.
    public var ks: [Int] = [200]
    /// σ / T: neighbour j weighs exp(s_j / σ).
    public var temperature: Double = 0.1
    public var l2Normalize: Bool = false
    /// Memory for the test block, the similarity tiles and the heaps (`LINPROBE.KNN.MEMORY_MB`).
    public var memoryBytes: Int = 1 << 30
    /// `LINPROBE.THREADS`; 0 = every core.
    public var threads: Int = 0

    public init() {}

    /// Reads and validates the settings from the effective configuration; a bad value is one
    /// line naming the key.
    public init(config: PipelineConfig) throws {
        let kind = try config.node("LINPROBE.KNN.PROTOCOL").string(oneOf: ProtocolKind.allCases.map(\.rawValue))
        protocolKind = ProtocolKind(rawValue: kind) ?? .vissl
        let dino = protocolKind == .dino
        let kKey = dino ? "LINPROBE.KNN.DINO.NB_KNN" : "NEAREST_NEIGHBOR.TOPK"
        let tKey = dino ? "LINPROBE.KNN.DINO.TEMPERATURE" : "NEAREST_NEIGHBOR.SIGMA"
        ks = try config.node(kKey).ints()
        temperature = try config.node(tKey).double()
        l2Normalize = dino ? true : try config.node("NEAREST_NEIGHBOR.L2_NORM_FEATS").bool()
        guard !ks.isEmpty else { throw LinprobeError.config("\(kKey): give at least one k") }
        if let bad = ks.first(where: { $0 < 1 }) {
            throw LinprobeError.config("\(kKey): k = \(bad) must be at least 1")
        }
        var seen = Set<Int>()
        ks = ks.filter { seen.insert($0).inserted }
        guard temperature > 0, temperature.isFinite else {
            throw LinprobeError.config("\(tKey): \(temperature) must be a positive number")
        }
        memoryBytes = try config.node("LINPROBE.KNN.MEMORY_MB").int() << 20
        threads = try config.node("LINPROBE.THREADS").int()
    }

    /// The largest k: how many neighbours the search keeps per test row.
    public var maxK: Int { ks.max() ?? 1 }

    /// What goes into the results' fingerprint (not memory or threads: they change no number).
    public var fingerprintJSON: JSONValue {
        [
            "protocol": .string(protocolKind.rawValue),
            "topk": .array(ks.map { .int(Int64($0)) }),
            "temperature": .double(temperature),
            "l2_normalize": .bool(l2Normalize),
            "vote": .string(Self.voteVersion),
        ]
    }

    /// Bumped when the vote or the tie rule changes.
    static let voteVersion = "exp-shifted-v1"

    /// The vote and the tie rule in words, for the results document.
    public static let voteDescription =
        "neighbour j of a test row weighs exp((s_j - s_1) / T), s_1 its best similarity (the same ranking as VISSL's "
        + "exp(s_j / T), without float overflow); a class scores the sum of its neighbours' weights; equal "
        + "similarities keep the lower training row, equal scores rank the lower class index first"
}
