import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// The epoch loop behind `LinearStage.run`.
final class Trainer {
    let train: FeatureStoreReader
    let test: FeatureStoreReader
    let settings: LinearSettings
    let layers: [StoredLayerInfo]
    let options: LinearRunOptions
    let threads: Int
    let fingerprint: String
    let files: RunFiles
    var directory: String { files.directory }
    let multiLabel: Bool
    let classes: Int
    let ignoreIndex: Int
    let temperature: Float
    let batchSize: Int
    let stepsPerEpoch: Int
    let heads: [Head]
    let trainLabels: Labels
    let testLabels: Labels
    let order: EpochOrder
    /// Stored views per training sample, and samples (= rows / views).
    let views: Int
    let samples: Int
    let windowRows: Int
    /// The last batch is skipped when it has one row and a head has a BatchNorm whose channel
    /// would then see a single value (PyTorch refuses to train on that).
    let skipSingleRowBatch: Bool

    /// `layers[i]` is the stored layer head `i` trains on (`LinearStage.pairLayers`); `fingerprint`
    /// names the run folder under `layout`.
    init(
        train: FeatureStoreReader, test: FeatureStoreReader, settings: LinearSettings, layers: [StoredLayerInfo],
        fingerprint: String, layout: WorkdirLayout, options: LinearRunOptions, threads: Int
    ) throws {
        self.train = train
        self.test = test
        self.settings = settings
        self.layers = layers
        self.options = options
        self.threads = threads
        multiLabel = settings.loss.isMultiLabel
        let outputs = settings.heads.map(\.outputs)
        classes = outputs.min() ?? 0
        if multiLabel, Set(outputs).count != 1 {
            throw LinprobeError.config(
                "MODEL.HEAD.PARAMS: multi-label heads must all have the same number of outputs, got \(outputs)")
        }
        if train.numClasses > 0, classes < train.numClasses {
            let i = outputs.firstIndex(of: classes) ?? 0
            throw LinprobeError.config(
                "\(settings.heads[i].configPath): \(classes) outputs but \(train.path) has \(train.numClasses) classes; set the last entry of dims to \(train.numClasses)"
            )
        }
        if case .crossEntropy(let ignore, let t) = settings.loss {
            ignoreIndex = ignore
            temperature = Float(t)
        } else {
            ignoreIndex = -1
            temperature = 1
        }
        trainLabels = try train.linearLabels(multiLabel: multiLabel, classes: classes, ignoreIndex: ignoreIndex)
        testLabels = try test.linearLabels(multiLabel: multiLabel, classes: classes, ignoreIndex: ignoreIndex)
        let ignored = Int32(truncatingIfNeeded: ignoreIndex)
        if case .single(let l) = trainLabels.storage, !l.contains(where: { $0 != ignored }) {
            throw LinprobeError(
                .missingInput, "\(train.path): every training row has the ignore label \(ignored); nothing to train on")
        }
        batchSize = settings.batchSize
        // With K stored views per sample (LINPROBE.TRAIN_VIEWS), an epoch visits every sample once,
        // through view `epoch mod K`: VISSL's fresh augmentation per epoch, cycled over K draws.
        views = train.views
        samples = train.sampleCount
        stepsPerEpoch = (samples + batchSize - 1) / batchSize
        self.fingerprint = fingerprint
        files = RunFiles(layout: layout, fingerprint: fingerprint)
        var made: [Head] = []
        for (i, (spec, layer)) in zip(settings.heads, layers).enumerated() {
            made.append(
                Head(
                    spec: spec, name: layer.name, shapeCHW: layer.shapeCHW, eps: settings.batchNormEps,
                    momentum: settings.batchNormMomentum, maxRows: settings.batchSize, threads: threads,
                    dropoutSeed: settings.seed &+ i))
        }
        heads = made
        let rowBytes = layers.reduce(0) { $0 + $1.dim } * 4
        let chunk = settings.shuffleChunkRows ?? max(batchSize, options.windowBudgetBytes / max(1, rowBytes))
        let blockRows = max(1, (layers.compactMap(\.chunkRows).max() ?? 256) / views)
        order = options.order ?? .shuffled(seed: settings.seed, chunkRows: chunk, blockRows: blockRows)
        windowRows = min(max(chunk, batchSize), ((samples + batchSize - 1) / batchSize) * batchSize)
        let lastRows = samples - (stepsPerEpoch - 1) * batchSize
        skipSingleRowBatch =
            lastRows == 1
            && heads.contains { h in
                (h.inputBN.map { $0.spatial == 1 } ?? false) || h.spec.useBN
            }
    }

    // MARK: Files

    private var provenance: LinearResultsDocument.Tool {
        LinearResultsDocument.Tool(
            version: LinprobeVersion.string, blas: BLAS.config, blasCore: BLAS.coreName,
            threads: threads)
    }

    private func writeState(epochsDone: Int, status: LinearRunState.Status, message: String? = nil) throws {
        try files.writeState(
            LinearRunState(
                fingerprint: fingerprint, epochsDone: epochsDone, numEpochs: settings.optimizer.numEpochs,
                status: status,
                heads: zip(heads, layers).map { .init(name: $0.name, kind: $0.spec.kind.documentType, layer: $1.name) },
                trainFeatures: LinearStage.storeIdentity(train), testFeatures: LinearStage.storeIdentity(test),
                settings: settings.json, provenance: provenance, message: message))
    }

    private func writeMetrics(_ h: Head, _ history: [LinearEpochMetrics]) throws {
        let doc = LinearMetricsDocument(
            head: h.name, headType: h.spec.kind.documentType, layer: h.name,
            fingerprint: fingerprint, epochs: history.map(\.document))
        try doc.write(to: files.metricsPath(h.name))
    }

    private func writeCheckpoint(_ h: Head, epoch: Int) throws {
        let meta: JSONValue = [
            "head": .string(h.name), "head_type": .string(h.spec.kind.rawValue), "spec": h.spec.json,
            "epochs_done": .int(Int64(epoch)), "fingerprint": .string(fingerprint),
            "dropout_rng": .array(h.dropoutRNG.words.map { .string(String($0)) }),
            "num_batches_tracked": .object(h.batchCounters.mapValues { .int($0) }),
        ]
        let tensors = h.tensors(optimizer: true).map {
            HeadCheckpoint.Tensor(name: $0.name, shape: $0.shape, buffer: $0.buffer)
        }
        try HeadCheckpoint.write(path: files.checkpointPath(h.name, epoch: epoch), tensors: tensors, meta: meta)
    }

    private func loadCheckpoint(_ h: Head, epoch: Int) throws {
        let path = files.checkpointPath(h.name, epoch: epoch)
        let (meta, tensors) = try HeadCheckpoint.read(path: path)
        guard meta["fingerprint"]?.stringValue == fingerprint, meta["epochs_done"]?.intValue == Int64(epoch) else {
            throw LinprobeError(
                .corruptInput, "\(path): checkpoint does not belong to this run or epoch; delete \(directory)")
        }
        try h.load(tensors, optimizer: true, source: path)
        if let words = meta["dropout_rng"]?.arrayValue?.compactMap({ $0.stringValue.flatMap { UInt64($0) } }),
            words.count == 4
        {
            h.dropoutRNG = Xoshiro256(words: words)
        }
        h.setBatchCounters((meta["num_batches_tracked"]?.objectValue ?? [:]).compactMapValues(\.intValue))
    }

    // MARK: The run

    /// Where a run starts: epoch 0, or the last committed epoch of an interrupted run.
    private struct Start {
        var epoch = 0
        var histories: [[LinearEpochMetrics]]
        var resumedFrom: Int? = nil
    }

    func run() throws -> LinearRunResult {
        let numEpochs = settings.optimizer.numEpochs
        var start = Start(histories: Array(repeating: [], count: heads.count))
        if let state = try files.readState() {
            if state.status == .complete && state.epochsDone == numEpochs, let reused = try reuse() { return reused }
            if state.epochsDone > 0 { start = try resume(at: min(state.epochsDone, numEpochs)) }
        }
        for h in heads { try Paths.ensureDirectory(files.headDirectory(h.name)) }
        if start.resumedFrom == nil {
            try initializeHeads()
            try writeState(epochsDone: 0, status: .running)
        }

        BLAS.setThreads(threads)
        let stream = BatchStream(store: train, layers: layers, batchSize: batchSize, windowRows: windowRows)
        var epochsThisRun = 0
        var epoch = start.epoch
        while epoch < numEpochs {
            try runEpoch(epoch, histories: &start.histories, stream: stream)
            epoch += 1
            epochsThisRun += 1
            if let stop = options.stopAfterEpochs, epochsThisRun >= stop, epoch < numEpochs { break }
        }
        if epochsThisRun == 0 && epoch == numEpochs {
            // Every epoch had finished but the results were not written (killed at the very end).
            for (i, h) in heads.enumerated() { try writeResults(h, start.histories[i]) }
            try writeState(epochsDone: numEpochs, status: .complete)
        }
        return result(histories: start.histories, epochsDone: epoch, resumedFrom: start.resumedFrom, reused: false)
    }

    /// A complete run with every results file in place, as found; nil when a results file is missing.
    private func reuse() throws -> LinearRunResult? {
        let numEpochs = settings.optimizer.numEpochs
        let histories = try heads.map { try files.readMetrics($0.name, upTo: numEpochs) }
        let fm = FileManager.default
        guard heads.allSatisfy({ fm.fileExists(atPath: files.resultsPath($0.name)) }) else { return nil }
        return result(histories: histories, epochsDone: numEpochs, resumedFrom: nil, reused: true)
    }

    /// Loads every head's checkpoint and history of epoch `epoch`.
    private func resume(at epoch: Int) throws -> Start {
        var start = Start(epoch: epoch, histories: [], resumedFrom: epoch)
        for h in heads {
            try loadCheckpoint(h, epoch: epoch)
            start.histories.append(try files.readMetrics(h.name, upTo: epoch))
        }
        return start
    }

    /// Trains epoch `epoch`, evaluates when due, and commits it: checkpoints and metrics first, then
    /// the state that points at them.
    private func runEpoch(_ epoch: Int, histories: inout [[LinearEpochMetrics]], stream: BatchStream) throws {
        let numEpochs = settings.optimizer.numEpochs
        let metrics = try trainEpoch(epoch, stream: stream)
        for (i, h) in heads.enumerated() {
            guard h.isFinite else {
                try failDiverged(head: h, epoch: epoch, step: nil, lastGood: epoch)
            }
            histories[i].append(metrics[i])
        }
        if (epoch + 1) % settings.testEveryEpochs == 0 || epoch + 1 == numEpochs {
            let testMetrics = try evaluateTest(epoch)
            for i in heads.indices {
                let last = histories[i].count - 1
                histories[i][last].test = testMetrics[i].metrics
                histories[i][last].testLoss = testMetrics[i].loss
                histories[i][last].testPerClassAP = testMetrics[i].perClass
            }
        }
        for (i, h) in heads.enumerated() {
            try writeCheckpoint(h, epoch: epoch + 1)
            try writeMetrics(h, histories[i])
        }
        let finished = epoch + 1 == numEpochs
        if finished {
            for (i, h) in heads.enumerated() { try writeResults(h, histories[i]) }
        }
        try writeState(epochsDone: epoch + 1, status: finished ? .complete : .running)
        for h in heads where epoch > 0 {
            try? FileManager.default.removeItem(atPath: files.checkpointPath(h.name, epoch: epoch))
        }
    }

    private func result(
        histories: [[LinearEpochMetrics]], epochsDone: Int, resumedFrom: Int?, reused: Bool
    ) -> LinearRunResult {
        let metric = multiLabel ? "mAP" : "top_1"
        let heads = zip(self.heads, histories).map { h, history in
            LinearHeadResult(
                name: h.name, kind: h.spec.kind, layer: h.name, metric: metric,
                value: history.last(where: { $0.test != nil })?.test?[metric] ?? .nan,
                history: history, directory: files.headDirectory(h.name))
        }
        return LinearRunResult(
            fingerprint: fingerprint, directory: directory, heads: heads, epochsDone: epochsDone,
            resumedFromEpoch: resumedFrom, reused: reused, complete: epochsDone == settings.optimizer.numEpochs)
    }

    private func initializeHeads() throws {
        if let given = options.initialWeights {
            guard given.count == heads.count else {
                throw LinprobeError(.usage, "initial weights for \(given.count) heads, the run has \(heads.count)")
            }
            for (h, tensors) in zip(heads, given) { try h.load(tensors, optimizer: false, source: "initial weights") }
        } else {
            for h in heads { h.initialize(seed: settings.seed, multiplier: settings.paramsMultiplier) }
        }
    }

    private func failDiverged(head h: Head, epoch: Int, step: Int?, lastGood: Int) throws -> Never {
        let at = step.map { "epoch \(epoch + 1), step \($0 + 1)" } ?? "epoch \(epoch + 1)"
        let kept =
            lastGood > 0
            ? "the last good checkpoint (epoch \(lastGood)) is kept in \(directory)"
            : "no epoch had finished, nothing was kept"
        let message =
            "head \(h.name) (\(h.spec.kind.rawValue)) diverged at \(at): the loss or the weights became NaN/infinite; \(kept); lower the learning rate (OPTIMIZER.param_schedulers.lr) and rerun"
        try? writeState(epochsDone: lastGood, status: .failed, message: message)
        throw LinprobeError(.numerical, message)
    }

    private func hyper(lr: Double) -> StepHyper {
        let o = settings.optimizer
        let wd = Float(o.weightDecay)
        let all = o.singleParamGroup
        return StepHyper(
            lr: Float(lr), momentum: Float(o.momentum), nesterov: o.nesterov, wdWeight: wd,
            wdBias: all || o.regularizeBias ? wd : 0,
            wdBNWeight: all || o.regularizeBN ? wd : 0,
            wdBNBias: all || (o.regularizeBN && o.regularizeBias) ? wd : 0)
    }

    private func learningRate(epoch: Int, stepInEpoch: Int) -> Double {
        let epochs = Double(settings.optimizer.numEpochs)
        switch settings.updateInterval {
        case .epoch: return settings.schedule.value(at: Double(epoch) / epochs)
        case .step:
            let total = epochs * Double(stepsPerEpoch)
            return settings.schedule.value(at: Double(epoch * stepsPerEpoch + stepInEpoch) / total)
        }
    }

    private func computeLoss(
        _ logits: UnsafePointer<Float>, n: Int, rows: UnsafeBufferPointer<Int>, labels: Labels, outputs: Int,
        gradient: UnsafeMutablePointer<Float>?
    ) -> LossResult {
        switch labels.storage {
        case .single(let l):
            return LossFunctions.crossEntropy(
                logits: logits, n: n, classes: outputs, labels: l, rows: rows, ignoreIndex: ignoreIndex,
                temperature: temperature, topK: settings.topK, dLogits: gradient)
        case .multi(let l, _):
            return LossFunctions.bceLogits(
                logits: logits, n: n, classes: outputs, labels: l, rows: rows, dLogits: gradient)
        }
    }

    private func trainEpoch(_ epoch: Int, stream: BatchStream) throws -> [LinearEpochMetrics] {
        let sampleOrder = try self.order.rows(epoch: epoch, count: samples)
        let view = epoch % views
        let order = views == 1 ? sampleOrder : sampleOrder.map { $0 * views + view }
        var lr = learningRate(epoch: epoch, stepInEpoch: 0)
        let epochLR = lr
        var lossSums = [Double](repeating: 0, count: heads.count)
        var correct = [[Int]](repeating: [Int](repeating: 0, count: settings.topK.count), count: heads.count)
        var labelled = [Int](repeating: 0, count: heads.count)
        var steps = 0
        var batchIndex = 0
        let start = Date()
        var rowsDone = 0
        try stream.forEachBatch(order) { rows in
            defer { batchIndex += 1 }
            let n = rows.count
            if n == 1 && skipSingleRowBatch { return }
            if settings.updateInterval == .step { lr = learningRate(epoch: epoch, stepInEpoch: batchIndex) }
            let h = hyper(lr: lr)
            var losses: [Double] = []
            try Array(rows).withUnsafeBufferPointer { rowPointer in
                for (i, head) in heads.enumerated() {
                    let x = UnsafePointer(stream.batchBuffers[i].pointer)
                    let logits = head.forward(x, n: n, training: true, threads: threads)
                    let r = computeLoss(
                        logits, n: n, rows: rowPointer, labels: trainLabels, outputs: head.outputs,
                        gradient: head.dLogits.pointer)
                    guard r.loss.isFinite else {
                        try failDiverged(head: head, epoch: epoch, step: batchIndex, lastGood: epoch)
                    }
                    head.backwardAndUpdate(x, n: n, hyper: h, threads: threads)
                    lossSums[i] += r.loss
                    labelled[i] += r.labelled
                    for k in r.correct.indices { correct[i][k] += r.correct[k] }
                    losses.append(r.loss)
                }
            }
            steps += 1
            rowsDone += n
            options.onStep?(
                LinearStepRecord(
                    epoch: epoch, step: epoch * stepsPerEpoch + batchIndex, learningRate: lr, losses: losses))
            if let progress = options.progress {
                let elapsed = max(1e-9, Date().timeIntervalSince(start))
                progress(
                    LinearProgress(
                        phase: .train, epoch: epoch + 1, epochs: settings.optimizer.numEpochs, batch: batchIndex + 1,
                        batches: stepsPerEpoch, rowsPerSecond: Double(rowsDone) / elapsed,
                        loss: lossSums.reduce(0, +) / Double(steps)))
            }
        }
        return heads.indices.map { i in
            var train: [String: Double] = [:]
            if !multiLabel {
                for (k, topk) in settings.topK.enumerated() {
                    train["top_\(topk)"] = visslPercent(
                        labelled[i] > 0 ? Double(correct[i][k]) / Double(labelled[i]) : 0)
                }
            }
            return LinearEpochMetrics(
                epoch: epoch + 1, learningRate: epochLR, trainLoss: steps > 0 ? lossSums[i] / Double(steps) : 0,
                train: train, testLoss: nil, test: nil, testPerClassAP: nil)
        }
    }

    /// Evaluates every head on the whole test split (BN running statistics).
    private func evaluateTest(_ epoch: Int) throws -> [(metrics: [String: Double], loss: Double, perClass: [Double?]?)]
    {
        let buffers = layers.map { FloatBuffer(batchSize * $0.dim) }
        var lossSums = [Double](repeating: 0, count: heads.count)
        var batches = 0
        var correct = [[Int]](repeating: [Int](repeating: 0, count: settings.topK.count), count: heads.count)
        var labelled = [Int](repeating: 0, count: heads.count)
        var scores: [[Float]] = multiLabel ? heads.map { _ in [] } : []
        let total = (test.count + batchSize - 1) / batchSize
        let start = Date()
        var startRow = 0
        while startRow < test.count {
            let end = min(test.count, startRow + batchSize)
            let n = end - startRow
            for (l, layer) in layers.enumerated() {
                try test.readFiniteFeatures(
                    layer: layer.name, rows: startRow..<end,
                    into: UnsafeMutableBufferPointer(start: buffers[l].pointer, count: n * layer.dim))
            }
            let rows = Array(startRow..<end)
            rows.withUnsafeBufferPointer { rowPointer in
                for (i, head) in heads.enumerated() {
                    let logits = head.forward(buffers[i].pointer, n: n, training: false, threads: threads)
                    let r = computeLoss(
                        logits, n: n, rows: rowPointer, labels: testLabels, outputs: head.outputs, gradient: nil)
                    lossSums[i] += r.loss
                    labelled[i] += r.labelled
                    for k in r.correct.indices { correct[i][k] += r.correct[k] }
                    if multiLabel {
                        scores[i].append(contentsOf: UnsafeBufferPointer(start: logits, count: n * head.outputs))
                    }
                }
            }
            batches += 1
            startRow = end
            if let progress = options.progress {
                let elapsed = max(1e-9, Date().timeIntervalSince(start))
                progress(
                    LinearProgress(
                        phase: .test, epoch: epoch + 1, epochs: settings.optimizer.numEpochs, batch: batches,
                        batches: total, rowsPerSecond: Double(startRow) / elapsed,
                        loss: lossSums.reduce(0, +) / Double(batches)))
            }
        }
        return heads.indices.map { i in
            let loss = lossSums[i] / Double(max(1, batches))
            if multiLabel, case .multi(let targets, let c) = testLabels.storage {
                let (mAP, perClass) = MeanAP.compute(scores: scores[i], targets: targets, classes: c)
                return (["mAP": visslPercent(mAP)], loss, perClass)
            }
            var m: [String: Double] = [:]
            for (k, topk) in settings.topK.enumerated() {
                m["top_\(topk)"] = visslPercent(labelled[i] > 0 ? Double(correct[i][k]) / Double(labelled[i]) : 0)
            }
            return (m, loss, nil)
        }
    }

    // MARK: Results (DESIGN.md "Results")

    private func writeResults(_ h: Head, _ history: [LinearEpochMetrics]) throws {
        let metric: LinearResultsDocument.Metric = multiLabel ? .mAP : .top1
        guard let last = history.last, let finalTest = last.test else { return }
        let best = history.compactMap { m in m.test?[metric.rawValue].map { (m.epoch, $0) } }.max { $0.1 < $1.1 }
        let features = LinearResultsDocument.Features(train: train.featureProvenance, test: test.featureProvenance)
        let doc = LinearResultsDocument(
            head: h.name, headType: h.spec.kind.documentType, layer: h.name,
            split: test.split.isEmpty ? "test" : test.split, metric: metric, value: finalTest[metric.rawValue],
            metrics: LinearMetricValues(values: finalTest, loss: last.testLoss),
            perClass: last.testPerClassAP.map { $0.map { $0.map { 100 * $0 } } },
            bestTest: best.map { LinearResultsDocument.BestTest(epoch: $0.0, value: $0.1) }, epochs: history.count,
            hyperParameters: settings.json, headSpec: h.spec.document, fingerprint: train.fingerprint,
            testFingerprint: test.fingerprint, resultsFingerprint: fingerprint, provenance: provenance,
            featureProvenance: features)
        try doc.write(to: files.resultsPath(h.name))
    }
}
