import Foundation

/// A one-line progress display on stderr (rate and ETA), shown only when stderr is a terminal;
/// otherwise silent, so logs and pipes stay clean. Thread-safe.
public final class ProgressLine: @unchecked Sendable {
    private let label: String
    private let total: Int
    private let unit: String
    private let start = Date()
    private var last = Date.distantPast
    private var done = 0
    private let lock = NSLock()
    public let enabled: Bool

    public init(label: String, total: Int, unit: String = "images", enabled: Bool? = nil) {
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled ?? (isatty(STDERR_FILENO) == 1)
    }

    /// Adds `n` finished items and redraws at most a few times per second.
    public func advance(by n: Int = 1) {
        lock.lock()
        defer { lock.unlock() }
        done += n
        guard enabled else { return }
        let now = Date()
        if now.timeIntervalSince(last) < 0.25 && done < total { return }
        last = now
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line(now: now))".utf8))
    }

    /// Ends the line (prints a newline if anything was drawn).
    public func finish() {
        lock.lock()
        defer { lock.unlock() }
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line(now: Date()))\n".utf8))
    }

    /// Items per second so far.
    public var rate: Double {
        lock.lock()
        defer { lock.unlock() }
        let elapsed = Date().timeIntervalSince(start)
        return elapsed > 0 ? Double(done) / elapsed : 0
    }

    private func line(now: Date) -> String {
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var text = "\(label): \(done)/\(total) \(unit)"
        if rate > 0 {
            text += String(format: ", %.1f %@/s", rate, unit)
            let remaining = Double(max(0, total - done)) / rate
            text += ", ETA " + ProgressLine.clock(remaining)
        }
        return text
    }

    public static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
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
