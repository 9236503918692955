import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How one input ended.
public enum FuzzOutcome: Sendable, Equatable {
    case parsed
    case rejected
    /// Killed by a signal or an unexpected exit; `allocation` when it died allocating past the limit.
    case crashed(signal: Int32, allocation: Bool)
    /// Still running after the time cap.
    case hung
    /// A crash or hang inside a native library that cannot be trusted with a corrupt file
    /// (`Upstream`: libhdf5, case 8 of issue 19).
    case upstreamCrash
}

/// Counts for one target, printed as its summary line.
public struct FuzzSummary: Sendable {
    public let target: String
    public var seeds = 0
    public var mutants = 0
    public var parsed = 0
    public var rejected = 0
    public var crashes = 0
    public var hangs = 0
    public var allocations = 0
    public var upstream = 0
    public var seconds = 0.0
    /// Files written to the findings folder.
    public var findings: [String] = []

    /// Rejection messages (numbers and the scratch path blanked) → how many inputs got them.
    public var reasons: [String: Int] = [:]

    mutating func count(reason: String) {
        var text = reason.split(separator: "\n").first.map(String.init) ?? ""
        if let dot = text.range(of: ".input") { text = String(text[dot.upperBound...]) }
        text = String(text.map { $0.isNumber ? "#" : $0 }.prefix(110))
        reasons[text, default: 0] += 1
    }

    /// Crashes, hangs and allocation bombs of Linprobe's own code (upstream crashes excluded).
    public var failures: Int { crashes + hangs + allocations }

    public var line: String {
        var text = "\(target): \(seeds + mutants) inputs (\(seeds) seeds + \(mutants) mutants), "
        text += "\(rejected) rejected with an error, \(parsed) parsed, \(crashes) crashes, \(hangs) hangs, "
        text += "\(allocations) over the memory limit"
        if upstream > 0 {
            text += ", \(upstream) crashes or hangs inside libhdf5 (upstream, counted apart)"
        }
        return text + String(format: " in %.0f s", seconds)
    }
}

/// Runs mutants of a target's seeds, each in a forked child with an address-space limit
/// (`RLIMIT_AS`) and a time cap, so that a crash, a hang or an allocation bomb is recorded as a
/// finding instead of ending the loop.
public struct FuzzRunner: Sendable {
    public var repositoryRoot: String
    public var findingsFolder: String
    public var seed: UInt64 = 1
    public var timeoutSeconds: UInt32 = 5
    public var memoryLimitBytes: Int = 2 << 30
    public var mutator = Mutator()
    /// Tally the rejection messages (`FuzzSummary.reasons`), to see how deep the mutants get.
    public var collectReasons = false
    /// Called with each finding's message as it happens.
    public var log: @Sendable (String) -> Void = { print($0) }

    public init(repositoryRoot: String, findingsFolder: String) {
        self.repositoryRoot = repositoryRoot
        self.findingsFolder = findingsFolder
    }

    /// Runs the seeds of `target`, then `iterations` mutants.
    public func run(_ target: FuzzTarget, iterations: Int) throws -> FuzzSummary {
        let started = Date()
        let seeds = try target.seeds(root: repositoryRoot)
        let scratch = (findingsFolder as NSString).appendingPathComponent(".scratch")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let input = (scratch as NSString).appendingPathComponent("\(target.name).input")
        let stderrPath = (scratch as NSString).appendingPathComponent("\(target.name).stderr")
        // Lazy statics (the key space, codec handles) are built here once, not in every child.
        if target.warmsUp { for s in seeds { try? target.run(s, path: input) } }
        var summary = FuzzSummary(target: target.name)
        summary.seeds = seeds.count
        summary.mutants = iterations
        for i in 0..<(seeds.count + iterations) {
            var bytes = seeds[i % seeds.count]
            if i >= seeds.count {
                bytes = mutator.mutant(iteration: i - seeds.count, seed: seed, seeds: seeds, hotspots: target.hotspots)
                if i % 2 == 0 { bytes = target.repair(bytes) }
            }
            try Data(bytes).write(to: URL(fileURLWithPath: input))
            let outcome = classify(
                target, path: input, stderrPath: stderrPath, outcome: runChild(target, bytes, input, stderrPath))
            try record(outcome, target, index: i, bytes: bytes, stderrPath: stderrPath, into: &summary)
        }
        summary.seconds = Date().timeIntervalSince(started)
        return summary
    }

    private func record(
        _ outcome: FuzzOutcome, _ target: FuzzTarget, index: Int, bytes: [UInt8], stderrPath: String,
        into summary: inout FuzzSummary
    ) throws {
        let kind: String
        switch outcome {
        case .parsed: summary.parsed += 1; return
        case .rejected:
            summary.rejected += 1
            if collectReasons {
                summary.count(reason: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")
            }
            return
        case .crashed(_, let allocation) where allocation: summary.allocations += 1; kind = "allocation"
        case .crashed: summary.crashes += 1; kind = "crash"
        case .hung: summary.hangs += 1; kind = "hang"
        case .upstreamCrash: summary.upstream += 1; kind = "upstream"
        }
        let folder = (findingsFolder as NSString).appendingPathComponent(target.name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let name = String(format: "%@-seed%llu-%06d", kind, seed, index)
        let file = (folder as NSString).appendingPathComponent(name + ".bin")
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let output = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        try Data("\(outcome)\n\(output.suffix(8000))".utf8).write(to: URL(fileURLWithPath: file + ".txt"))
        summary.findings.append(file)
        log("\(target.name): \(kind) on input \(index): \(file)")
    }

    /// A crash in the native library's code (its innermost frame, from the runtime's backtrace),
    /// or a crash or hang its own tool reproduces (killed by a signal, not an error exit), is upstream.
    private func classify(
        _ target: FuzzTarget, path: String, stderrPath: String, outcome: FuzzOutcome
    ) -> FuzzOutcome {
        guard let upstream = target.upstream else { return outcome }
        switch outcome {
        case .hung, .crashed(_, false): break
        default: return outcome
        }
        let output = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        let frames = output.split(separator: "\n").filter {
            $0.range(of: #"^ +[0-9]+ "#, options: .regularExpression) != nil
        }
        let innermost = frames.first { !$0.contains("libc.so") }
        if outcome != .hung, innermost?.contains(upstream.library) == true { return .upstreamCrash }
        switch spawn(upstream.tool + [path], timeout: timeoutSeconds) {
        case .hung: return .upstreamCrash
        case .crashed(let signal, _) where signal != 0: return .upstreamCrash
        default: return outcome
        }
    }

    /// Parses one input in a forked child: exit 0 parsed, exit 1 rejected.
    func runChild(_ target: FuzzTarget, _ bytes: [UInt8], _ path: String, _ stderrPath: String) -> FuzzOutcome {
        fflush(nil)
        let pid = fork()
        if pid == 0 {
            redirectOutput(to: stderrPath)
            limitChild()
            do {
                try target.parse(bytes, path)
                _exit(0)
            } catch {
                let message = Array("rejected: \(error)\n".utf8)
                _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                _exit(1)
            }
        }
        guard pid > 0 else { return .crashed(signal: 0, allocation: false) }
        return wait(pid, stderrPath: stderrPath)
    }

    /// Runs a program (its output discarded) under the same time cap.
    func spawn(_ argv: [String], timeout: UInt32) -> FuzzOutcome {
        let pid = fork()
        if pid == 0 {
            redirectOutput(to: "/dev/null")
            startAlarm(timeout)
            var cArgs = argv.map { strdup($0) } + [nil]
            execvp(argv[0], &cArgs)
            _exit(127)
        }
        guard pid > 0 else { return .crashed(signal: 0, allocation: false) }
        return wait(pid, stderrPath: nil)
    }

    private func limitChild() {
        var limit = rlimit(rlim_cur: rlim_t(memoryLimitBytes), rlim_max: rlim_t(memoryLimitBytes))
        setrlimit(resourceLimitAS, &limit)
        startAlarm(timeoutSeconds)
    }

    /// SIGALRM after `seconds`, with its default action (ending the process) even when the runner
    /// was started with it blocked or ignored (a test runner's spawned processes inherit both).
    private func startAlarm(_ seconds: UInt32) {
        signal(SIGALRM, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGALRM)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        alarm(seconds)
    }

    private func redirectOutput(to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd >= 0 {
            dup2(fd, 1)
            dup2(fd, 2)
            close(fd)
        }
    }

    private func wait(_ pid: pid_t, stderrPath: String?) -> FuzzOutcome {
        var status: Int32 = 0
        // The child's alarm ends a hang; this deadline backs it up should the child mask SIGALRM.
        let deadline = Date().addingTimeInterval(Double(timeoutSeconds) + 3)
        var pause: UInt32 = 50
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid || (done < 0 && errno != EINTR) { break }
            if Date() > deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return .hung
            }
            usleep(pause)
            pause = min(pause * 2, 5000)
        }
        let signal = status & 0x7F
        if signal == 0 {
            let code = (status >> 8) & 0xFF
            if code == 0 { return .parsed }
            if code == 1 { return .rejected }
            return .crashed(signal: 0, allocation: false)
        }
        if signal == SIGALRM { return .hung }
        let output = (stderrPath.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) } ?? "").lowercased()
        let allocation = [
            "failed to allocate", "could not allocate", "cannot allocate", "bad_alloc", "out of memory",
            "allocation failed",
        ]
        .contains { output.contains($0) }
        return .crashed(signal: signal, allocation: allocation)
    }
}

#if canImport(Glibc)
    private let resourceLimitAS = __rlimit_resource_t(RLIMIT_AS.rawValue)
#else
    private let resourceLimitAS = RLIMIT_AS
#endif
