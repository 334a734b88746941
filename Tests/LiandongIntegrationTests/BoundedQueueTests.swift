import Foundation
import LiandongServices
import Testing

/// The queue between the ingest and the writer: what the look-ahead's timed take hands over.
@Suite("Bounded queue")
struct BoundedQueueTests {
    @Test("a timed take waits for its deadline and hands over what arrived meanwhile, in order")
    func heldUntilDeadline() throws {
        let q = BoundedQueue<Int>(capacity: 100)
        q.push(1)
        let deadline = Date(timeIntervalSinceNow: 0.3)
        let pusher = Thread { Thread.sleep(forTimeInterval: 0.1); q.push(2); q.push(3) }
        pusher.start()
        let taken = q.popBatch(max: 10, until: deadline)
        #expect(taken == [1, 2, 3])
        #expect(Date() >= deadline)
        #expect(q.count == 0)
    }

    @Test("a full batch waiting is taken at once (a backlog is never held), the rest stays")
    func backlogAtOnce() throws {
        let q = BoundedQueue<Int>(capacity: 100)
        for i in 0..<15 { q.push(i) }
        let started = Date()
        let taken = q.popBatch(max: 10, until: Date(timeIntervalSinceNow: 30))
        #expect(taken == Array(0..<10))
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(q.count == 5)
    }

    @Test("nothing by the deadline: empty; closed and drained: nil; closed with items: those at once")
    func emptyAndClosed() throws {
        let q = BoundedQueue<Int>(capacity: 100)
        #expect(q.popBatch(max: 10, until: Date(timeIntervalSinceNow: 0.05)) == [])
        q.push(7)
        q.close()
        let started = Date()
        #expect(q.popBatch(max: 10, until: Date(timeIntervalSinceNow: 30)) == [7])
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(q.popBatch(max: 10, until: Date(timeIntervalSinceNow: 30)) == nil)
    }
}
