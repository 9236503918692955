import Foundation
import LinprobeCore

/// `state.json` of a train-linear run: how many epochs are committed and whether the run finished.
/// Written after each epoch's checkpoints and metrics, so it is the commit point of the epoch.
struct LinearRunState: Codable, Equatable {
    static let format = "linprobe.linear-run"
    static let currentVersion = 2
    static let supportedVersions = 1...2

    enum Status: String, Codable { case running, complete, failed }

    struct HeadEntry: Codable, Equatable {
        var name: String
        var kind: LinearResultsDocument.HeadType
        /// The stored layer (tap) the head reads; absent in version 1 (where it was the head's name).
        var layer: String?
    }

    var format: String = Self.format
    var formatVersion: Int = Self.currentVersion
    var fingerprint: String
    var epochsDone: Int
    var numEpochs: Int
    var status: Status
    var heads: [HeadEntry]
    /// The stores' identities as fingerprinted (`LinearStage.storeIdentity`).
    var trainFeatures: JSONValue
    var testFeatures: JSONValue
    /// `LinearSettings.json`.
    var settings: JSONValue
    var provenance: LinearResultsDocument.Tool
    /// Why a failed run stopped.
    var message: String?

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case fingerprint
        case epochsDone = "epochs_done"
        case numEpochs = "num_epochs"
        case status, heads
        case trainFeatures = "train_features"
        case testFeatures = "test_features"
        case settings, provenance, message
    }
}

/// The files of one run, where `WorkdirLayout` puts them: `linear/<fp>/state.json`, and per head
/// `linear/<fp>/<head>/{metrics.json, results.json, checkpoint_epoch<E>.lpck}`.
struct RunFiles {
    let layout: WorkdirLayout
    let fingerprint: String

    var directory: String { layout.path(.linearRun(fingerprint: fingerprint)) }
    var statePath: String { Paths.join(directory, "state.json") }
    func headDirectory(_ head: String) -> String { layout.path(.linearHead(fingerprint: fingerprint, head: head)) }
    func metricsPath(_ head: String) -> String { Paths.join(headDirectory(head), "metrics.json") }
    func resultsPath(_ head: String) -> String { WorkdirLayout.resultsFile(in: headDirectory(head)) }
    func checkpointPath(_ head: String, epoch: Int) -> String {
        Paths.join(headDirectory(head), "checkpoint_epoch\(epoch).lpck")
    }

    private var retrain: String { "delete \(directory) to retrain from scratch" }

    func writeState(_ state: LinearRunState) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(String(decoding: try encoder.encode(state), as: UTF8.self) + "\n", to: statePath)
    }

    /// The run's state, nil when the run never started; a damaged or foreign state is an error.
    func readState() throws -> LinearRunState? {
        guard FileManager.default.fileExists(atPath: statePath) else { return nil }
        guard let data = FileManager.default.contents(atPath: statePath),
            let state = try? JSONDecoder().decode(LinearRunState.self, from: data),
            state.format == LinearRunState.format, LinearRunState.supportedVersions.contains(state.formatVersion)
        else {
            throw LinprobeError(.corruptInput, "\(statePath): unreadable run state; \(retrain)")
        }
        guard state.fingerprint == fingerprint else {
            throw LinprobeError(
                .corruptInput, "\(statePath): belongs to another run (fingerprint differs); delete \(directory)")
        }
        return state
    }

    func readMetrics(_ head: String, upTo epochs: Int) throws -> [LinearEpochMetrics] {
        let doc: LinearMetricsDocument
        do { doc = try LinearMetricsDocument.read(path: metricsPath(head)) } catch let e as LinprobeError
            where e.code == .unsupported
        {
            throw e
        } catch {
            throw LinprobeError(.corruptInput, "\(metricsPath(head)): missing or unreadable; \(retrain)")
        }
        return doc.epochs.map(LinearEpochMetrics.init(document:)).filter { $0.epoch <= epochs }
    }
}

extension HeadSpec {
    /// The head as `results.json` records it.
    var document: LinearResultsDocument.HeadSpec {
        LinearResultsDocument.HeadSpec(
            name: kind.documentType, dims: dims, useBN: useBN, useReLU: useReLU, inChannels: inChannels,
            useDropout: kind == .mlp ? useDropout : nil, useBias: kind == .mlp ? useBias : nil,
            skipLastLayerReLUBN: kind == .mlp ? skipLastLayerReLUBN : nil)
    }
}

extension HeadSpec.Kind {
    var documentType: LinearResultsDocument.HeadType {
        switch self {
        case .evalMLP: return .evalMLP
        case .mlp: return .mlp
        }
    }

    init(_ type: LinearResultsDocument.HeadType) {
        switch type {
        case .evalMLP: self = .evalMLP
        case .mlp: self = .mlp
        }
    }
}
