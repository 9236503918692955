import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// One piece of a `train-svm` run split over processes (`linprobe slurm`'s job array): the
/// cross-validation and refit fits of a contiguous chunk of one layer's classes. A piece writes its
/// fits to a log of its own (`fits-piece-<i>-of-<n>.log`) and its refit models to the layer's
/// `models/`; the ordinary run afterwards takes every piece's fits into the layer's fit log and does
/// only what no piece did — the costs' choice, the test scores and `results.json` — which are then
/// exactly those of a run in one process (a resumed run reproduces an uninterrupted one).
public struct SVMPiece: Sendable, Equatable {
    /// Piece index over (layer × class chunk): layer `index / chunks`, chunk `index % chunks`.
    public let index: Int
    /// Class chunks per layer.
    public let chunks: Int

    public init(index: Int, chunks: Int) {
        self.index = index
        self.chunks = chunks
    }

    /// The pieces of a run over `layers` layers.
    public static func count(layers: Int, chunks: Int) -> Int { layers * chunks }

    /// Positions `lo..<hi` of `classes` classes this piece trains (contiguous, the last ones longer).
    public func classPositions(classes: Int) -> Range<Int> {
        let chunk = index % chunks
        return (chunk * classes / chunks)..<((chunk + 1) * classes / chunks)
    }

    static let logPrefix = "fits-piece-"

    var logName: String { "\(Self.logPrefix)\(index)-of-\(chunks).log" }
}

extension SVMStage {
    /// Trains one piece (no manifest record: the run that assembles the pieces has it).
    /// - Returns: the layer and the number of classes trained.
    public func trainPiece(_ piece: SVMPiece, note: @escaping @Sendable (String) -> Void) throws -> (String, Int) {
        guard !settings.lowShot else {
            throw LinprobeError(.usage, "train-svm --piece: the low-shot protocol runs in one process (no --piece)")
        }
        let pieces = SVMPiece.count(layers: layers.count, chunks: piece.chunks)
        guard piece.chunks >= 1, (0..<pieces).contains(piece.index) else {
            throw LinprobeError(
                .usage,
                "train-svm --piece \(piece.index): must be 0…\(pieces - 1) (\(layers.count) layers × \(piece.chunks) chunks)"
            )
        }
        let name = layers[piece.index / piece.chunks]
        let directory = layout.path(.svmLayer(fingerprint: fingerprint, layer: name))
        try Paths.ensureDirectory(directory)
        let context = LayerContext(
            layer: name, train: train, test: test, settings: settings, directory: directory,
            fingerprint: fingerprint, threads: threads, gramBudgetBytes: gramBudgetBytes, layout: solverLayout,
            featureProvenance: SVMResultsDocument.FeatureProvenancePair(
                train: train.featureProvenance, test: test.featureProvenance),
            progress: { _, _, _ in }, warn: { note("train-svm: \(name): \($0)") })
        let trained = try StandardProtocol.runPiece(context, piece: piece)
        return (name, trained)
    }
}

extension StandardProtocol {
    /// The CV fits and refits of one piece's classes, into the piece's own log.
    static func runPiece(_ ctx: LayerContext, piece: SVMPiece) throws -> Int {
        let journal = LayerJournal(ctx)
        let all = try ClassProblems(ctx, journal: journal)
        let problems = all.restricted(toPositions: piece.classPositions(classes: all.classes.count))
        let log = try FitLog(path: ctx.file(piece.logName))
        let modelsFolder = ctx.file("models")
        try Paths.ensureDirectory(modelsFolder)
        let solver = try SolverSetup(ctx, rows: problems.rows)
        let blasBefore = BLAS.threads
        defer { BLAS.setThreads(blasBefore) }
        try CrossValidation.run(problems, log: log, solver: solver, ctx: ctx, journal: journal)
        let choice = CostChoice(problems, log: log, settings: ctx.settings, journal: journal)
        _ = try Refit.run(
            problems, choice: choice, log: log, modelsFolder: modelsFolder, solver: solver, ctx: ctx, journal: journal)
        solver.release()
        return problems.problems.count
    }

    /// Takes the fits of every piece's log in the layer folder into `log` (discarding the piece logs
    /// when the run starts fresh).
    static func absorbPieces(_ ctx: LayerContext, into log: FitLog) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: ctx.directory)) ?? []
        for name in names.sorted() where name.hasPrefix(SVMPiece.logPrefix) && name.hasSuffix(".log") {
            if ctx.settings.forceRetrain {
                try? FileManager.default.removeItem(atPath: ctx.file(name))
            } else {
                try log.absorb(FitLog(path: ctx.file(name)))
            }
        }
    }
}

extension ClassProblems {
    /// The problems of the classes at `positions` of the class list (the others left out).
    func restricted(toPositions positions: Range<Int>) -> ClassProblems {
        let chosen = Set(classes[positions.clamped(to: classes.indices)])
        return ClassProblems(
            classes: classes.filter { chosen.contains($0) }, problems: problems.filter { chosen.contains($0.index) },
            skipped: skipped.filter { chosen.contains($0.key) }, rows: rows, width: width)
    }
}

extension FitLog {
    /// Appends every record of `other` this log lacks.
    func absorb(_ other: FitLog) throws {
        for (key, record) in other.allRecords where self.record(key) == nil { try append(record) }
    }
}
