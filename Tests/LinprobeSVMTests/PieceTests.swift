import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport
import Testing

@testable import LinprobeSVM

@Suite struct SVMPieceTests {
    @Test func piecesCoverEveryClassOfEveryLayerOnce() {
        for (classes, chunks) in [(20, 4), (10, 3), (3, 3), (7, 1)] {
            var seen: [Int] = []
            for p in 0..<chunks { seen += Array(SVMPiece(index: p, chunks: chunks).classPositions(classes: classes)) }
            #expect(seen == Array(0..<classes))
            // Piece p of layer l is piece l·K + p.
            #expect(SVMPiece(index: chunks + 0, chunks: chunks).classPositions(classes: classes).lowerBound == 0)
        }
    }

    /// Pieces (any order) then the assembling run give the one-process results, timings aside.
    @Test func assembledPiecesEqualOneRun() throws {
        let dir = try TemporaryDirectory()
        let (train, test) = try makeToyStores(dir, rows: 120, dim: 40)
        let settings = try visslSettings(["cross_val_folds": 3])
        let whole = try firstResults(try runSVM(train: train, test: test, settings: settings, workdir: dir.file("one")))

        let layout = WorkdirLayout(dir.file("pieces"))
        let stage = try SVMStage(
            train: try FeatureStoreReader(path: train), test: try FeatureStoreReader(path: test), settings: settings,
            layers: [], pipeline: "test", layout: layout, threads: 2)
        for p in [1, 0] {
            let (layer, classes) = try stage.trainPiece(SVMPiece(index: p, chunks: 2), note: { _ in })
            #expect(layer == "feat" && classes > 0)
        }
        let assembled = try firstResults(
            try runSVM(train: train, test: test, settings: settings, workdir: dir.file("pieces")))
        #expect(assembled.withoutTimings == whole.withoutTimings)
        // The assembling run fitted nothing itself: every CV fit and refit came from the pieces.
        #expect(whole.provenance.timings?["cross_validation_seconds"] != nil)
        #expect(assembled.provenance.timings?["cross_validation_seconds"] == nil)
        #expect(assembled.provenance.timings?["refit_seconds"] == nil)
        #expect(throws: LinprobeError.self) { try stage.trainPiece(SVMPiece(index: 2, chunks: 2), note: { _ in }) }
    }
}
