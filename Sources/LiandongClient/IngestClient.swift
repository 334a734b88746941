import Foundation
import LiandongCore
import ZeroMQ

/// A gateway's side of acknowledged ingest: sends [topic][body] to liandongd's ingest ROUTER over a
/// DEALER and keeps every message until it is answered, resending what is not answered within
/// `retryAfter` (liandongd answers only after commit, and a repeated id has one effect, so
/// resending is always safe). An answer "unavailable: ..." (database.synchronous require while
/// no standby is attached) is returned by `poll` but the message stays pending and is resent.
/// Use it from one thread.
public final class IngestClient {
    public struct Answer: Sendable {
        public let id: String
        public let ok: Bool
        public let duplicate: Bool
        public let error: String?
    }

    private let socket: ZMQSocket
    private var pending: [String: (frames: [[UInt8]], sentAt: Date, attempts: Int)] = [:]
    private var order: [String] = []
    public let retryAfter: TimeInterval
    public private(set) var resent = 0
    /// Sends libzmq could not take at once (no connection up); each is retried.
    public private(set) var notHanded = 0
    /// Times the connection was opened afresh after a silence.
    public private(set) var reconnects = 0
    /// Answers "unavailable: ..." (liandongd could not acknowledge then; the message is resent).
    public private(set) var unavailable = 0
    private var lastHeard = Date()

    /// - Parameters:
    ///   - endpoint: liandongd's ingest.ack_bind, e.g. tcp://127.0.0.1:7602.
    ///   - retryAfter: seconds without an answer before a message is sent again.
    ///   - curve: the daemon's and this gateway's keys when liandongd runs with security.curve.
    public init(context: ZMQContext, endpoint: String, retryAfter: TimeInterval = 2, curve: CurveClientKeys? = nil) throws {
        socket = try ZMQSocket(context: context, type: .dealer)
        try curve?.apply(to: socket)
        try socket.setLinger(milliseconds: 0)
        try socket.setSendHighWaterMark(0)
        try socket.setReceiveHighWaterMark(0)
        // Messages go only to daemons that are up: with an active/standby pair the standby binds
        // its ack endpoint when it leads.
        try socket.setImmediate()
        try socket.connect(endpoint)
        self.retryAfter = retryAfter
    }

    /// Connects to another daemon's ingest.ack_bind too (an active/standby pair: every daemon of
    /// it; only the leader binds, and unanswered messages are resent to whichever answers).
    public func connect(_ endpoint: String) throws {
        try socket.connect(endpoint)
    }

    /// Messages sent and not yet answered.
    public var unanswered: Int { pending.count }

    /// The DEALER, for a caller that waits on it together with its own sockets (`ZMQPoll.wait`)
    /// and then calls `poll(timeout: 0)`.
    public var pollItem: ZMQPollItem { .socket(socket) }

    /// Sends one message; `id` is its alert_id or report_id (the answer names it).
    public func send(topic: String, body: [UInt8], id: String) throws {
        let frames = [Array(topic.utf8), body]
        if pending.isEmpty { lastHeard = Date() }
        if pending[id] == nil { order.append(id) }
        pending[id] = (frames, Date(), 1)
        try transmit(frames)
    }

    /// Hands a message to libzmq without waiting: while no connection to liandongd is up (it is
    /// away, or the handshake is refused) a DEALER cannot take it, and it stays pending to be
    /// resent after `retryAfter` rather than block the gateway.
    private func transmit(_ frames: [[UInt8]]) throws {
        do {
            try socket.send(frames, dontWait: true)
        } catch let error as ZMQError where error.isTimeout {
            notHanded += 1
        }
    }

    /// Reads answers for up to `timeout` seconds (at least one poll), resending overdue messages.
    /// Returns the answers received.
    @discardableResult
    public func poll(timeout: TimeInterval) throws -> [Answer] {
        var answers: [Answer] = []
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            let wait = max(0, min(deadline.timeIntervalSinceNow, 0.05))
            if try ZMQSocket.poll([socket], timeoutMilliseconds: Int(wait * 1000))[0] {
                while let frames = try socket.receiveNow() {
                    lastHeard = Date()
                    guard let last = frames.last, let wire = IngestAnswer(json: last) else { continue }
                    let answer = Answer(id: wire.id ?? "", ok: wire.ok, duplicate: wire.duplicate, error: wire.error)
                    // "unavailable: ..." (liandongd cannot acknowledge now): kept and resent after
                    // retryAfter, like a message not answered.
                    if IngestAnswer.isUnavailable(wire.error) {
                        unavailable += 1
                    } else if let id = wire.id {
                        pending[id] = nil
                    }
                    answers.append(answer)
                }
            }
            try resendOverdue()
        } while Date() < deadline
        if pending.isEmpty { order.removeAll() }
        return answers
    }

    /// Waits until every message is answered or `timeout` passes; returns whether all were.
    public func flush(timeout: TimeInterval) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !pending.isEmpty && Date() < deadline {
            try poll(timeout: min(0.2, max(0, deadline.timeIntervalSinceNow)))
        }
        return pending.isEmpty
    }

    private func resendOverdue() throws {
        let now = Date()
        // Nothing heard for three retry periods while messages wait: connect afresh. libzmq gives
        // up a connection whose handshake was refused (a key not yet in liandongd's peers file)
        // and would never try again; a new connection handshakes anew.
        if !pending.isEmpty && now.timeIntervalSince(lastHeard) >= 3 * retryAfter {
            try socket.dropConnections()
            lastHeard = now
            reconnects += 1
        }
        order.removeAll { pending[$0] == nil }
        for id in order {
            guard var p = pending[id], now.timeIntervalSince(p.sentAt) >= retryAfter else { continue }
            p.sentAt = now
            p.attempts += 1
            pending[id] = p
            resent += 1
            try transmit(p.frames)
        }
    }
}
