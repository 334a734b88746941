import Foundation
import LiandongClient
import LiandongCore
import LiandongServices
import Synchronization
import ZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// The console's updates DEALER, owned by one thread: an action from a page is a
/// liandong.task_update.v1 with a fresh update_id, answered by the leading daemon after commit.
/// Unanswered after 5 s it is sent again with the same update_id (one effect: a pair's new leader
/// answers it) until the handler's deadline; a pipe wakes the thread when an update is handed over.
final class UpdateSender: Sendable {
    private struct Pending {
        var body: [UInt8]
        var sentAt: Double
        var continuation: CheckedContinuation<TaskUpdateAnswer?, Never>
        var deadline: Double
    }

    private struct State {
        var inbox: [(id: String, body: [UInt8], continuation: CheckedContinuation<TaskUpdateAnswer?, Never>, deadline: Double)] = []
        var pending: [String: Pending] = [:]
    }

    private let state = Mutex(State())
    private let stopped = Atomic<Bool>(false)
    private let wakeup: WakePipe
    private let endpoints: [String]
    private let curve: CurveClientKeys?
    static let resendAfter = 5.0

    init(endpoints: [String], curve: CurveClientKeys?) throws {
        wakeup = try WakePipe()
        self.endpoints = endpoints
        self.curve = curve
    }

    func run() throws {
        let context = try ZMQContext()
        let dealer = try ZMQSocket(context: context, type: .dealer)
        try curve?.apply(to: dealer)
        try dealer.setLinger(milliseconds: 0)
        try dealer.setImmediate()  // only to a daemon that is up: a standby binds updates when it leads
        try dealer.setReceiveTimeout(milliseconds: 0)
        for endpoint in endpoints { try dealer.connect(endpoint) }
        while !stopped.load(ordering: .relaxed) {
            let events = try ZMQPoll.wait([.socket(dealer), .fd(wakeup.readFD)], timeoutMilliseconds: 100)
            if events[1].readable { wakeup.drain() }
            let now = Date().timeIntervalSince1970
            var answered: [(CheckedContinuation<TaskUpdateAnswer?, Never>, TaskUpdateAnswer?)] = []
            if events[0].readable {
                while let reply = try dealer.receive() {
                    guard let answer = TaskUpdateAnswer(json: reply.last ?? []), let id = answer.updateID else { continue }
                    // "unavailable: ..." is no answer: the update stays pending and is sent again.
                    if IngestAnswer.isUnavailable(answer.error) { continue }
                    if let p = state.withLock({ $0.pending.removeValue(forKey: id) }) { answered.append((p.continuation, answer)) }
                }
            }
            let (fresh, resend) = state.withLock { s -> ([(String, [UInt8])], [[UInt8]]) in
                var fresh: [(String, [UInt8])] = []
                for m in s.inbox {
                    s.pending[m.id] = Pending(body: m.body, sentAt: now, continuation: m.continuation, deadline: m.deadline)
                    fresh.append((m.id, m.body))
                }
                s.inbox = []
                var resend: [[UInt8]] = []
                for (id, p) in s.pending {
                    if p.deadline <= now {
                        s.pending.removeValue(forKey: id)
                        answered.append((p.continuation, nil))
                    } else if now - p.sentAt >= Self.resendAfter {
                        s.pending[id]?.sentAt = now
                        resend.append(p.body)
                    }
                }
                return (fresh, resend)
            }
            for (_, body) in fresh { try dealer.send([body]) }
            for body in resend { try dealer.send([body]) }
            for (c, a) in answered { c.resume(returning: a) }
        }
        let left = state.withLock { s in
            let all = s.pending.values.map(\.continuation) + s.inbox.map(\.continuation)
            s = State()
            return all
        }
        for c in left { c.resume(returning: nil) }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        wakeup.wake()
    }

    /// Sends an update and waits up to `timeout` seconds for the daemon's answer (nil: none came).
    func send(_ body: [UInt8], id: String, timeout: Double) async -> TaskUpdateAnswer? {
        if stopped.load(ordering: .relaxed) { return nil }
        return await withCheckedContinuation { continuation in
            state.withLock { $0.inbox.append((id, body, continuation, Date().timeIntervalSince1970 + timeout)) }
            wakeup.wake()
        }
    }
}
