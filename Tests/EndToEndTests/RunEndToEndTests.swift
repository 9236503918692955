import Foundation
import LinprobeCore
import LinprobeTestSupport
import Testing

/// A value shared between threads.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T { lock.lock(); defer { lock.unlock() }; return stored }
    func update(_ body: (inout T) -> Void) { lock.lock(); body(&stored); lock.unlock() }
}

/// `linprobe run` on the embedded demo (the built binary, as a user runs it): the whole chain,
/// reuse through the manifest, partial reruns, the report's schema, and bad paths.
@Suite("run: the demo pipeline end to end")
struct RunEndToEndTests {
    let demo = repositoryRoot.appendingPathComponent("pipelines/demo.yaml").path
    let voc = repositoryRoot.appendingPathComponent("data/demo/voc").path

    /// The demo, made smaller for the tests (fewer epochs), with absolute dataset paths.
    func run(_ workdir: String, _ extra: [String] = [], pipeline: String? = nil) throws -> ProcessResult {
        try runProcess(
            linprobeBinary(),
            [
                "run", pipeline ?? demo,
                "config.DATA.TRAIN.DATA_PATHS=[\(voc)]", "config.DATA.TEST.DATA_PATHS=[\(voc)]",
                "config.OPTIMIZER.num_epochs=4", "config.OPTIMIZER.param_schedulers.lr.milestones=[2]", "--workdir",
                workdir,
            ] + extra)
    }

    func manifestRecords(_ workdir: String) throws -> [String: JSONValue] {
        let json = try JSONValue.parse(String(contentsOfFile: workdir + "/manifest.json", encoding: .utf8))
        return json["records"]?.objectValue ?? [:]
    }

    /// stage → [(fingerprint, finished)] of complete records.
    func completed(_ workdir: String) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for (_, r) in try manifestRecords(workdir) where r["status"]?.stringValue == "complete" {
            out[r["stage"]?.stringValue ?? "?", default: []].append(
                "\(r["fingerprint"]?.stringValue ?? "")@\(r["finished"]?.stringValue ?? "")")
        }
        return out.mapValues { $0.sorted() }
    }

    @Test("the demo runs every stage, writes a report that validates, and a rerun does no work")
    func demoAndRerun() throws {
        let dir = try TemporaryDirectory()
        let work = dir.file("runs")
        let first = try run(work)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("stages extract → train-svm → train-linear → knn → report"))
        // stdout: the results table and the report's files.
        #expect(first.stdout.contains("| layer |"))
        let html = work + "/reports/demo/report.html"
        #expect(first.stdout.contains(html))
        let reportJSON = try JSONValue.parse(
            String(contentsOfFile: work + "/reports/demo/report.json", encoding: .utf8))
        let problems = try SchemaValidator(schemaPath: schemaPath("report.schema.json")).validate(reportJSON)
        #expect(problems.isEmpty, "report.json against schemas/report.schema.json: \(problems)")
        let rows = reportJSON["rows"]?.arrayValue ?? []
        for layer in ["res3", "res4", "res5avg"] {
            #expect(
                rows.contains {
                    $0["layer"]?.stringValue == layer && $0["method"]?.stringValue == "svm"
                        && $0["metric"]?.stringValue == "mAP"
                })
            #expect(rows.contains { $0["layer"]?.stringValue == layer && $0["method"]?.stringValue != "svm" })
        }
        // Every SVM row's value is the mAP of its results.json.
        for row in rows where row["method"]?.stringValue == "svm" && row["metric"]?.stringValue == "mAP" {
            let layer = try #require(row["layer"]?.stringValue)
            let svm = try #require(
                try FileManager.default.contentsOfDirectory(atPath: work + "/svm").first { !$0.hasPrefix(".") })
            let results = try JSONValue.parse(
                String(contentsOfFile: "\(work)/svm/\(svm)/\(layer)/results.json", encoding: .utf8))
            let value = try #require(results["value"]?.doubleValue)
            #expect(abs((row["value"]?.doubleValue ?? .nan) - value) < 1e-9)
        }
        let htmlText = try String(contentsOfFile: html, encoding: .utf8)
        #expect(htmlText.contains("<svg"))
        let before = try completed(work)
        #expect(
            before["extract"]?.count == 2 && before["train-svm"]?.count == 1 && before["train-linear"]?.count == 1
                && before["knn"]?.count == 1 && before["report"]?.count == 1)
        #expect(first.stdout.contains("knn mAP k=20"))
        #expect(rows.contains { $0["method"]?.stringValue == "knn" && $0["metric"]?.stringValue == "mAP k=20" })
        let reportBytes = try Data(contentsOf: URL(fileURLWithPath: work + "/reports/demo/report.json"))

        // The same command again: no stage runs (the manifest is unchanged), the same table.
        let again = try run(work)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try completed(work) == before)
        #expect(again.stdout == first.stdout)
        #expect(again.stderr.contains("train-svm: unchanged") && again.stderr.contains("train-linear: unchanged"))
        #expect(again.stderr.contains("knn: unchanged"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: work + "/reports/demo/report.json")) == reportBytes)
    }

    @Test("changing only an SVM setting reruns only train-svm and report; a second pipeline shares the stores")
    func partialRerun() throws {
        let dir = try TemporaryDirectory()
        let work = dir.file("runs")
        let first = try run(work)
        #expect(first.status == 0, "\(first.stderr)")
        let before = try completed(work)

        let changed = try run(work, ["config.SVM.costs.costs_list=[0.1, 1.0]"])
        #expect(changed.status == 0, "\(changed.stderr)")
        let after = try completed(work)
        #expect(after["extract"] == before["extract"], "the stores are reused")
        #expect(after["train-linear"] == before["train-linear"], "the linear heads are reused")
        #expect(after["knn"] == before["knn"], "the kNN results are reused")
        #expect(after["train-svm"]?.count == 2, "a new SVM run next to the first")
        #expect(after["report"]?.count == 2, "the report is rebuilt")
        #expect(changed.stdout != first.stdout)

        // Another pipeline with the same extraction settings (SVM only): no trunk pass.
        let svmOnly = dir.file("svm_only.yaml")
        var text = try String(contentsOfFile: demo, encoding: .utf8)
        text = text.replacingOccurrences(of: "    HEAD:\n", with: "    HEAD_UNUSED_MARKER:\n")
        let start = try #require(text.range(of: "    HEAD_UNUSED_MARKER:\n"))
        let end = try #require(text.range(of: "    WEIGHTS_INIT:\n"))
        text.removeSubrange(start.lowerBound..<end.lowerBound)
        try text.write(toFile: svmOnly, atomically: true, encoding: .utf8)
        let other = try run(work, [], pipeline: svmOnly)
        #expect(other.status == 0, "\(other.stderr)")
        #expect(other.stderr.contains("stages extract → train-svm → knn → report"))
        #expect(try completed(work)["extract"] == before["extract"], "no new store")
        #expect(FileManager.default.fileExists(atPath: work + "/reports/svm_only/report.html"))
    }

    @Test("two processes running the same pipeline at once (make -j2) share the work instead of colliding")
    func concurrentRuns() throws {
        let dir = try TemporaryDirectory()
        let work = dir.file("runs")
        let results = Locked([ProcessResult?](repeating: nil, count: 2))
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let r = try? run(work, ["--threads", "1"])
            results.update { $0[i] = r }
        }
        let both = results.value.compactMap { $0 }
        #expect(both.count == 2)
        for r in both { #expect(r.status == 0, "\(r.stderr)") }
        #expect(both[0].stdout == both[1].stdout, "the same table from both")
        let done = try completed(work)
        #expect(done["extract"]?.count == 2 && done["train-svm"]?.count == 1 && done["train-linear"]?.count == 1)
    }

    @Test("a missing dataset or weights path is one line naming it")
    func missingPaths() throws {
        let dir = try TemporaryDirectory()
        let work = dir.file("runs")
        let nowhere = dir.file("no/such/VOC2007")
        let data = try runProcess(
            linprobeBinary(),
            [
                "run", demo, "config.DATA.TRAIN.DATA_PATHS=[\(nowhere)]",
                "config.DATA.TEST.DATA_PATHS=[\(voc)]", "--workdir", work,
            ])
        #expect(data.status != 0)
        let dataErrors = data.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        #expect(dataErrors.count == 1 && dataErrors[0].contains(nowhere), "\(data.stderr)")

        let weights = dir.file("missing.torch")
        let w = try run(work, ["config.MODEL.WEIGHTS_INIT.PARAMS_FILE=\(weights)"])
        #expect(w.status == 1)
        let weightErrors = w.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        #expect(weightErrors.count == 1 && weightErrors[0].contains(weights), "\(w.stderr)")
        #expect(!w.stderr.contains("Fatal") && !w.stderr.contains("Stack"))
    }

    @Test("augmented training views with the SVM protocol are refused before any extraction")
    func viewsWithSVM() throws {
        let dir = try TemporaryDirectory()
        let work = dir.file("runs")
        let r = try run(work, ["config.LINPROBE.TRAIN_VIEWS=2"])
        #expect(r.status == 64)
        let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        #expect(errors.count == 1 && errors[0].contains("LINPROBE.TRAIN_VIEWS"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: work + "/features"))
    }

    @Test("train-svm without --features names the extraction it needs")
    func trainingBeforeExtraction() throws {
        let dir = try TemporaryDirectory()
        let r = try runProcess(
            linprobeBinary(),
            [
                "train-svm", demo, "config.DATA.TRAIN.DATA_PATHS=[\(voc)]",
                "config.DATA.TEST.DATA_PATHS=[\(voc)]", "--workdir", dir.file("runs"),
            ])
        #expect(r.status == 1)
        #expect(r.stderr.contains("run 'linprobe extract demo'"), "\(r.stderr)")
    }
}
