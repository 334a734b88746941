import Foundation
import LiandongCore
import ZeroMQ

/// A dispatcher's side of the task feed that misses nothing: it subscribes to a topic prefix, and
/// whenever the heartbeat's head seq is ahead of what it has caught up to, it asks the replay
/// ROUTER for every message after that point (from PostgreSQL). Live messages are delivered at
/// once; replayed ones fill what the subscription missed (slow joiner, high-water mark, time away).
/// Each seq is delivered once. Use it from one thread.
public final class FeedClient {
    public struct Item: Sendable {
        public let seq: Int64
        public let topic: String
        public let body: String
        /// True when it came from the replay socket rather than the live feed.
        public let replayed: Bool
    }

    private let sub: ZMQSocket
    /// Recreated after a replay endpoint did not answer (a CURVE handshake refused while this
    /// client's key was out of the peers file is never retried by libzmq on that socket).
    private var replay: ZMQSocket
    /// When `replay` was opened: a socket that found no endpoint is kept for `replayHandshake`
    /// seconds (its CURVE handshake may still be under way on a loaded daemon), then opened afresh.
    private var replayOpenedAt = Date()
    static let replayHandshake: TimeInterval = 10
    private let context: ZMQContext
    private let curve: CurveClientKeys?
    private var replayEndpoints: [String]
    /// Times a heartbeat's catch-up found no replay endpoint answering (retried with backoff).
    public private(set) var replayUnavailable = 0
    private var replayRetryAt = Date.distantPast
    private var replayBackoff = Backoff(first: 1, limit: 30)
    public let prefix: String
    /// Every message for the prefix with seq <= caughtUp has been delivered.
    public private(set) var caughtUp: Int64
    private var delivered = Set<Int64>()
    public private(set) var replayedCount = 0
    public private(set) var liveCount = 0
    /// Times the feed connection was opened afresh after `silence` seconds without a heartbeat.
    public private(set) var reconnects = 0
    private var lastHeard = Date()
    static let silence: TimeInterval = 5

    /// - Parameters:
    ///   - feed: liandongd's feed.bind; replay: its feed.replay_bind.
    ///   - since: the last seq this dispatcher processed before (0: everything still in the feed table).
    ///   - curve: the daemon's and this dispatcher's keys when liandongd runs with security.curve.
    public init(context: ZMQContext, feed: String, replay replayEndpoint: String, prefix: String = "task.", since: Int64 = 0,
                curve: CurveClientKeys? = nil) throws
    {
        sub = try ZMQSocket(context: context, type: .sub)
        try curve?.apply(to: sub)
        try sub.setLinger(milliseconds: 0)
        try sub.subscribe(prefix)
        try sub.subscribe("hb")
        try sub.connect(feed)
        self.context = context
        self.curve = curve
        replayEndpoints = [replayEndpoint]
        replay = try Self.replaySocket(context: context, curve: curve, endpoints: replayEndpoints)
        self.prefix = prefix
        caughtUp = since
    }

    private static func replaySocket(context: ZMQContext, curve: CurveClientKeys?, endpoints: [String]) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: .dealer)
        try curve?.apply(to: socket)
        try socket.setLinger(milliseconds: 0)
        try socket.setReceiveTimeout(milliseconds: 10_000)
        try socket.setSendTimeout(milliseconds: 10_000)
        try socket.setImmediate()
        for endpoint in endpoints { try socket.connect(endpoint) }
        return socket
    }

    /// Listens to another daemon's feed and replay endpoints too (an active/standby pair: every
    /// daemon of it; only the leader binds them). Each seq is still delivered once.
    public func connect(feed: String, replay replayEndpoint: String) throws {
        try sub.connect(feed)
        try replay.connect(replayEndpoint)
        replayEndpoints.append(replayEndpoint)
    }

    /// Waits up to `timeout` seconds for messages; returns those not delivered before, in seq order.
    public func next(timeout: TimeInterval) throws -> [Item] {
        var out: [Item] = []
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            let wait = Int(max(0, min(deadline.timeIntervalSinceNow, 0.1)) * 1000)
            guard try ZMQSocket.poll([sub], timeoutMilliseconds: wait)[0] else {
                // liandongd beats every second: a silent feed is a connection libzmq gave up (a
                // refused handshake is never retried) or lost unnoticed. Connect afresh - only
                // after finding nothing queued (a caller away for a while has beats waiting).
                if Date().timeIntervalSince(lastHeard) > Self.silence {
                    try sub.dropConnections()
                    lastHeard = Date()
                    reconnects += 1
                }
                continue
            }
            while let frames = try sub.receiveNow(), frames.count == 2 {
                lastHeard = Date()
                let topic = String(decoding: frames[0], as: UTF8.self)
                if topic == "hb" {
                    if let beat = Heartbeat(json: frames[1]), beat.head > caughtUp, Date() >= replayRetryAt {
                        out += try catchUpOrBackOff()
                    }
                } else if let seq = Self.field("seq", of: frames[1])?.int64Value, seq > caughtUp, delivered.insert(seq).inserted {
                    liveCount += 1
                    out.append(Item(seq: seq, topic: topic, body: String(decoding: frames[1], as: UTF8.self), replayed: false))
                }
            }
        } while Date() < deadline && out.isEmpty
        return out.sorted { $0.seq < $1.seq }
    }

    /// One top-level field of a JSON object (nil when `bytes` is not one or lacks it).
    static func field(_ key: String, of bytes: [UInt8]) -> JSONValue? {
        guard case .object(let o)? = try? JSONValue.parse(bytes) else { return nil }
        return o[key]
    }

    /// A heartbeat's catch-up: a replay endpoint that does not answer (daemon away, this client's
    /// key refused for a while) is not an error of the feed; it is tried again later (1 s, doubling
    /// to 30 s), with a fresh socket, while live messages keep coming. What the daemon refuses
    /// (a prefix beyond this client's scope) still throws.
    private func catchUpOrBackOff() throws -> [Item] {
        do {
            let items = try catchUp(peerWait: 1)
            replayBackoff.reset()
            return items
        } catch let error as ReplayError where error.unavailable {
            replayUnavailable += 1
            replayRetryAt = Date().addingTimeInterval(replayBackoff.next())
            return []
        }
    }

    /// Asks the replay socket for everything after `caughtUp` until it says there is no more.
    /// Throws a ReplayError that is `unavailable` when no replay endpoint took the request within
    /// `peerWait` seconds or answered within 10 s (the socket is then opened afresh - after a
    /// missing endpoint, once it has had `replayHandshake` seconds to connect - so a later call
    /// reaches a daemon that is back or a key that was re-admitted).
    public func catchUp(peerWait: TimeInterval = 10) throws -> [Item] {
        var out: [Item] = []
        while true {
            do {
                try replay.setSendTimeout(milliseconds: Int32(max(0, min(peerWait, 60)) * 1000))
                try replay.send([ReplayRequest(since: caughtUp, prefix: prefix).json()])
            } catch let error as ZMQError where error.isTimeout {
                // Opened afresh only when it has had time to connect: renewing it after every short
                // wait restarted a handshake that a loaded daemon needed more than the wait for.
                if Date().timeIntervalSince(replayOpenedAt) >= Self.replayHandshake { try renewReplaySocket() }
                throw ReplayError(message: "no replay endpoint connected (\(replayEndpoints.joined(separator: ", ")))", unavailable: true)
            }
            guard let frames = try replay.receive() else {
                try renewReplaySocket()
                throw ReplayError(message: "no answer from the replay socket within 10 s", unavailable: true)
            }
            guard let last = frames.last, let end = ReplayEnd(json: last) else {
                throw ReplayError(message: "an answer of the replay socket that is not a replay end")
            }
            guard case .end(let head, let more) = end else {
                if case .error(let message) = end { throw ReplayError(message: message) }
                return out
            }
            var maxSeq = caughtUp
            for frame in frames.dropLast() {
                guard case .object(let o)? = try? JSONValue.parse(frame), let seq = o["seq"]?.int64Value else { continue }
                maxSeq = max(maxSeq, seq)
                if seq > caughtUp, delivered.insert(seq).inserted {
                    replayedCount += 1
                    out.append(Item(seq: seq, topic: o["topic"]?.stringValue ?? "", body: String(decoding: frame, as: UTF8.self),
                                    replayed: true))
                }
            }
            caughtUp = more ? maxSeq : max(maxSeq, head)
            delivered = delivered.filter { $0 > caughtUp }
            if !more { return out }
        }
    }

    private func renewReplaySocket() throws {
        replay = try Self.replaySocket(context: context, curve: curve, endpoints: replayEndpoints)
        replayOpenedAt = Date()
    }
}

public struct ReplayError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// No replay endpoint took or answered the request (as opposed to an answer refusing it).
    public var unavailable = false
    public var description: String { "replay: \(message)" }
}
