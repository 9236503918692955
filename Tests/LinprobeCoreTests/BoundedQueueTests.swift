import Foundation
import LinprobeCore
import Testing

@Suite struct BoundedQueueTests {
    @Test func deliversEverythingInOrderUnderBackpressure() {
        let queue = BoundedQueue<Int>(capacity: 3)
        let producer = Thread {
            for i in 0..<1000 { queue.put(i) }
            queue.close()
        }
        producer.start()
        var received: [Int] = []
        while let x = queue.take() { received.append(x) }
        #expect(received == Array(0..<1000))
        #expect(queue.put(5) == false)
    }

    @Test func clockFormatting() {
        #expect(ProgressReporter.clock(75) == "1:15")
        #expect(ProgressReporter.clock(3725) == "1:02:05")
    }
}
