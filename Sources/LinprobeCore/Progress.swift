import Foundation

/// The one progress reporter of every stage. On a terminal it redraws one line (a bar, count, rate
/// and ETA) at most four times a second; otherwise — a batch job's log — it writes the same figures
/// as a plain line every `interval` seconds and once when a phase that took a while ends, so a log
/// is never silent for long. A phase (`begin`) has a label, a total and a unit; beginning another ends the previous
/// one. Thread-safe.
public final class ProgressReporter: @unchecked Sendable {
    /// How it writes.
    public enum Mode: Sendable, Equatable {
        /// Redraws one line (stderr is a terminal).
        case terminal
        /// A plain line every `interval` seconds and at the end of each phase.
        case log(interval: TimeInterval)
        /// Nothing.
        case silent
    }

    private let stage: String
    private let mode: Mode
    private let sink: @Sendable (String) -> Void
    private let lock = NSLock()
    private var label = ""
    private var total = 0
    private var unit = ""
    private var done = 0
    private var start = Date()
    private var lastDraw = Date.distantPast
    private var active = false

    /// `mode` nil: a terminal bar when stderr is a terminal, otherwise a log line every
    /// `LINPROBE_PROGRESS_SECONDS` (default 30) seconds. `sink` receives each line (default: stderr;
    /// terminal redraws start with a carriage return).
    public init(stage: String, mode: Mode? = nil, sink: (@Sendable (String) -> Void)? = nil) {
        self.stage = stage
        self.mode = mode ?? ProgressReporter.defaultMode()
        self.sink = sink ?? { FileHandle.standardError.write(Data($0.utf8)) }
    }

    /// The mode for this process: a bar on a terminal, periodic lines in a log.
    public static func defaultMode(environment: [String: String] = ProcessInfo.processInfo.environment) -> Mode {
        if isatty(STDERR_FILENO) == 1 { return .terminal }
        let seconds = environment["LINPROBE_PROGRESS_SECONDS"].flatMap(Double.init) ?? 30
        return seconds > 0 && seconds.isFinite ? .log(interval: seconds) : .silent
    }

    /// Starts a phase (ending the previous one, if any).
    public func begin(_ label: String, total: Int, unit: String) {
        lock.lock()
        defer { lock.unlock() }
        endLocked()
        self.label = label
        self.total = max(0, total)
        self.unit = unit
        done = 0
        start = Date()
        lastDraw = mode == .terminal ? .distantPast : start
        active = true
    }

    /// Adds `n` finished items to the current phase.
    public func advance(by n: Int = 1) {
        lock.lock()
        defer { lock.unlock() }
        guard active else { return }
        done += n
        drawIfDue(now: Date())
    }

    /// Sets the finished count of the current phase (never lowers it).
    public func update(done newDone: Int) {
        lock.lock()
        defer { lock.unlock() }
        guard active, newDone > done else { return }
        done = newDone
        drawIfDue(now: Date())
    }

    /// For callers that report (label, done, total): a new label begins a new phase.
    public func report(_ label: String, done: Int, total: Int, unit: String) {
        lock.lock()
        let same = active && label == self.label
        lock.unlock()
        if !same { begin(label, total: total, unit: unit) }
        update(done: done)
    }

    /// Ends the current phase with a final line.
    public func finish() {
        lock.lock()
        defer { lock.unlock() }
        endLocked()
    }

    /// The current phase's line: `<stage> <label>: done/total unit (p%), rate unit/s, ETA m:ss, m:ss elapsed`.
    public func line(now: Date = Date()) -> String {
        lock.lock()
        defer { lock.unlock() }
        return text(now: now)
    }

    private func endLocked() {
        guard active else { return }
        active = false
        switch mode {
        case .terminal: sink("\r\u{1B}[K\(bar())\(text(now: Date()))\n")
        case .log(let interval):
            // A phase shorter than a few seconds says nothing: a log gets a line per phase that took time.
            let now = Date()
            if now.timeIntervalSince(start) >= min(interval, 5) { sink("\(text(now: now))\n") }
        case .silent: break
        }
    }

    private func drawIfDue(now: Date) {
        switch mode {
        case .terminal:
            guard now.timeIntervalSince(lastDraw) >= 0.25 || done >= total else { return }
            lastDraw = now
            sink("\r\u{1B}[K\(bar())\(text(now: now))")
        case .log(let interval):
            guard now.timeIntervalSince(lastDraw) >= interval, done < total else { return }
            lastDraw = now
            sink("\(text(now: now))\n")
        case .silent: break
        }
    }

    private func text(now: Date) -> String {
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var t = "\(stage)\(label.isEmpty ? "" : " " + label): \(done)/\(total) \(unit)"
        if total > 0 { t += String(format: " (%.0f%%)", 100 * Double(done) / Double(total)) }
        if rate > 0 {
            t += String(format: ", %.1f %@/s", rate, unit)
            if done < total { t += ", ETA " + ProgressReporter.clock(Double(total - done) / rate) }
        }
        t += ", " + ProgressReporter.clock(elapsed) + " elapsed"
        return t
    }

    private func bar(width: Int = 20) -> String {
        let filled = total > 0 ? min(width, width * done / total) : 0
        return "[" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled) + "] "
    }

    /// `m:ss`, or `h:mm:ss` from an hour on.
    public static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0, seconds < 1e9 else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600
            ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// A bounded, closable FIFO queue for producer/consumer pipelines (blocking put and take).
public final class BoundedQueue<Element>: @unchecked Sendable {
    private var items: [Element] = []
    private var head = 0
    private let capacity: Int
    private var closed = false
    private let condition = NSCondition()

    public init(capacity: Int) {
        precondition(capacity > 0, "queue capacity must be positive")
        self.capacity = capacity
    }

    /// Blocks while the queue is full. Returns false (dropping the item) once the queue is closed.
    @discardableResult
    public func put(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count - head >= capacity && !closed { condition.wait() }
        if closed { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// Blocks until an item is available; nil once the queue is closed and drained.
    public func take() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while items.count - head == 0 && !closed { condition.wait() }
        if items.count - head == 0 { return nil }
        let item = items[head]
        head += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return item
    }

    /// No more items will be put; waiting takers drain what is left, then get nil.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}
