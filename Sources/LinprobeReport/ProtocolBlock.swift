import Foundation
import LinprobeCore

/// The protocol block of one run, from its results documents.
extension ReportBuilder {
    /// The feature stores (preprocessing, pool ops, trunk, weights, dataset, as the results recorded
    /// them), the SVM settings and the linear heads' hyper-parameters, keyed by fingerprint; plus a
    /// note for every store whose provenance the results do not carry.
    static func protocolBlock(_ placed: [Placed]) -> (RunProtocol, [String]) {
        var block = RunProtocol()
        var svm: [String: SVMRunProtocol] = [:]
        var linear: [String: LinearRunProtocol] = [:]
        var knn: [String: KNNRunProtocol] = [:]
        for p in placed {
            let r = p.result
            for ref in [r.trainFeatures, r.testFeatures] where !ref.fingerprint.isEmpty {
                if let provenance = ref.provenance {
                    block.features[ref.fingerprint] = FeaturesProtocol(provenance)
                } else if block.features[ref.fingerprint]?.recorded != true {
                    let path = block.features[ref.fingerprint]?.path ?? ref.path
                    block.features[ref.fingerprint] = FeaturesProtocol(recorded: false, path: path)
                }
            }
            switch r.content {
            case .svm(let doc):
                svm[r.fingerprint] = svmBlock(doc, result: r, into: svm[r.fingerprint])
            case .linear(let doc, _):
                linear[r.fingerprint] = linearBlock(doc, result: r, into: linear[r.fingerprint])
            case .knn(let doc):
                var block =
                    knn[r.fingerprint]
                    ?? KNNRunProtocol(
                        protocolName: doc.protocolKind.rawValue, settings: doc.settings, provenance: doc.provenance,
                        trainFeatures: r.trainFeatures.fingerprint, testFeatures: r.testFeatures.fingerprint)
                block.provenance.seconds = nil
                block.provenance.similaritiesPerSecond = nil
                block.layers[r.layer] = KNNLayerProtocol(results: r.path)
                knn[r.fingerprint] = block
            }
        }
        let notes = block.features.filter { !$0.value.recorded }.sorted { $0.key < $1.key }.map { fp, f in
            "features \(fp)\(f.path.map { " (\($0))" } ?? ""): the results do not record the store's provenance "
                + "(results written before format version 2); its preprocessing, pool ops and weights are not in the "
                + "protocol block."
        }
        block.svm = svm.isEmpty ? nil : svm
        block.linear = linear.isEmpty ? nil : linear
        block.knn = knn.isEmpty ? nil : knn
        return (block, notes)
    }

    /// An SVM run's block with this layer added (run-wide fields from the latest layer).
    static func svmBlock(
        _ doc: SVMResultsDocument, result r: LoadedResult, into existing: SVMRunProtocol?
    ) -> SVMRunProtocol {
        var block = existing ?? SVMRunProtocol(trainFeatures: "", testFeatures: "")
        block.protocolName = doc.protocolKind.rawValue
        block.metricDefinition = doc.metricDefinition ?? block.metricDefinition
        block.cvMetric = doc.cvMetric ?? block.cvMetric
        block.costs = doc.costs
        block.settings = doc.settings
        block.selectionRules = doc.selectionRules ?? block.selectionRules
        block.headlineRule = doc.headlineRule ?? block.headlineRule
        block.kValues = doc.kValues ?? block.kValues
        block.sampleInds = doc.sampleIndices ?? block.sampleInds
        var provenance = doc.provenance
        provenance.timings = nil
        block.provenance = provenance
        block.trainFeatures = r.trainFeatures.fingerprint
        block.testFeatures = r.testFeatures.fingerprint
        block.layers[r.layer] = SVMLayerProtocol(
            results: r.path, convergence: doc.convergence, classesInMean: doc.metrics?.classesInMean)
        return block
    }

    /// A linear run's block with this head added.
    static func linearBlock(
        _ doc: LinearResultsDocument, result r: LoadedResult, into existing: LinearRunProtocol?
    )
        -> LinearRunProtocol
    {
        var block = existing ?? LinearRunProtocol(trainFeatures: "", testFeatures: "")
        block.hyperParameters = doc.hyperParameters
        block.provenance = doc.provenance
        block.trainFeatures = r.trainFeatures.fingerprint
        block.testFeatures = r.testFeatures.fingerprint
        block.heads[doc.head] = LinearHeadProtocol(
            results: r.path, layer: r.layer, headType: doc.headType, headSpec: doc.headSpec, epochs: doc.epochs,
            bestTest: doc.bestTest)
        return block
    }
}
