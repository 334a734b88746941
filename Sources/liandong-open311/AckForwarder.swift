import Foundation
import LiandongClient
import LiandongCore
import LiandongServices
import Synchronization
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// liandongd's acknowledged ingest path for the HTTP handlers: one thread owns the DEALER
/// (`IngestClient`, which resends what is not answered: nothing acknowledged is lost, a repeated
/// id has one effect); handlers hand it messages and wait for liandongd's answer, which comes
/// only after commit. A pipe wakes the thread when a message is handed over.
final class AckForwarder: Sendable {
    typealias Answer = IngestClient.Answer

    private struct Waiter {
        let token: Int
        let continuation: CheckedContinuation<Answer?, Never>
    }

    private struct State {
        var inbox: [(topic: String, body: [UInt8], id: String)] = []
        var waiting: [String: [Waiter]] = [:]
        var nextToken = 0
        var unanswered = 0
    }

    private let state = Mutex(State())
    private let stopped = Atomic<Bool>(false)
    private let wakeup: WakePipe
    private let endpoints: [String]
    private let curve: CurveClientKeys?

    init(endpoints: [String], curve: CurveClientKeys?) throws {
        wakeup = try WakePipe()
        self.endpoints = endpoints
        self.curve = curve
    }

    /// Messages handed to liandongd and not yet answered.
    var unanswered: Int { state.withLock { $0.unanswered } }

    /// Runs the socket thread until `stop`; throws what made it fail.
    func run() throws {
        let context = try ZMQContext()
        let client = try IngestClient(context: context, endpoint: endpoints[0], retryAfter: 2, curve: curve)
        for endpoint in endpoints.dropFirst() { try client.connect(endpoint) }
        while !stopped.load(ordering: .relaxed) {
            let events = try ZMQPoll.wait([client.pollItem, .fd(wakeup.readFD)], timeoutMilliseconds: 50)
            if events[1].readable { wakeup.drain() }
            let batch = state.withLock { s in
                let taken = s.inbox
                s.inbox = []
                return taken
            }
            for m in batch { try client.send(topic: m.topic, body: m.body, id: m.id) }
            let answers = try client.poll(timeout: 0)
            let unanswered = client.unanswered
            let resumed = state.withLock { s -> [(Waiter, Answer)] in
                s.unanswered = unanswered
                var out: [(Waiter, Answer)] = []
                // "unavailable: ..." is no answer: the message stays pending and is sent again.
                for a in answers where !IngestAnswer.isUnavailable(a.error) {
                    for w in s.waiting.removeValue(forKey: a.id) ?? [] { out.append((w, a)) }
                }
                return out
            }
            for (w, a) in resumed { w.continuation.resume(returning: a) }
        }
        _ = try client.flush(timeout: 5)
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        wakeup.wake()
    }

    /// Sends a message and waits for liandongd's answer for up to `timeout` seconds (nil: none came
    /// in time; the message stays pending and is resent until liandongd answers it).
    func send(topic: String, body: [UInt8], id: String, timeout: Double) async -> Answer? {
        await withCheckedContinuation { continuation in
            let token = state.withLock { s in
                s.nextToken += 1
                s.waiting[id, default: []].append(Waiter(token: s.nextToken, continuation: continuation))
                s.inbox.append((topic, body, id))
                return s.nextToken
            }
            wakeup.wake()
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [self] in
                let expired = self.state.withLock { s -> Waiter? in
                    guard var list = s.waiting[id], let i = list.firstIndex(where: { $0.token == token }) else { return nil }
                    let w = list.remove(at: i)
                    s.waiting[id] = list.isEmpty ? nil : list
                    return w
                }
                expired?.continuation.resume(returning: nil)
            }
        }
    }
}
