import Foundation
import LiandongServices
import Testing

/// The writer's look-ahead take (`popBatch(max:until:timeout:)`): a full batch at once, otherwise
/// what is queued once the batch in flight is written, never a wait beyond its timeout.
@Suite("Bounded queue")
struct BoundedQueueTests {
    @Test("a full batch is taken at once; otherwise the take waits for the release and then takes what is queued")
    func takeUntilReleased() throws {
        let queue = BoundedQueue<Int>(capacity: 100)
        for n in 1...5 { queue.push(n) }
        var started = Date()
        #expect(queue.popBatch(max: 5, until: { false }, timeout: 10) == [1, 2, 3, 4, 5])
        #expect(Date().timeIntervalSince(started) < 1, "five queued for a batch of five: no wait")

        for n in 6...7 { queue.push(n) }
        let released = StopFlag()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) {
            queue.push(8)
            released.set()
            queue.wake()
        }
        started = Date()
        #expect(queue.popBatch(max: 5, until: { released.isSet }, timeout: 10) == [6, 7, 8], "what was queued when released")
        let waited = Date().timeIntervalSince(started)
        #expect(waited >= 0.25 && waited < 5, "waited for the release: \(waited) s")

        started = Date()
        #expect(queue.popBatch(max: 5, until: { false }, timeout: 0.2) == [], "nothing queued: [] after the timeout")
        #expect(Date().timeIntervalSince(started) >= 0.15)
        queue.push(9)
        queue.close()
        #expect(queue.popBatch(max: 5, until: { false }, timeout: 10) == [9], "closed: what is left at once")
        #expect(queue.popBatch(max: 5, until: { false }, timeout: 10) == nil, "closed and drained")
    }
}
