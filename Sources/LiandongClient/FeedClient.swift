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
    private let replay: ZMQSocket
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
        replay = try ZMQSocket(context: context, type: .dealer)
        try curve?.apply(to: replay)
        try replay.setLinger(milliseconds: 0)
        try replay.setReceiveTimeout(milliseconds: 10_000)
        try replay.setSendTimeout(milliseconds: 10_000)
        try replay.setImmediate()
        try replay.connect(replayEndpoint)
        self.prefix = prefix
        caughtUp = since
    }

    /// Listens to another daemon's feed and replay endpoints too (an active/standby pair: every
    /// daemon of it; only the leader binds them). Each seq is still delivered once.
    public func connect(feed: String, replay replayEndpoint: String) throws {
        try sub.connect(feed)
        try replay.connect(replayEndpoint)
    }

    /// Waits up to `timeout` seconds for messages; returns those not delivered before, in seq order.
    public func next(timeout: TimeInterval) throws -> [Item] {
        var out: [Item] = []
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            let wait = Int(max(0, min(deadline.timeIntervalSinceNow, 0.1)) * 1000)
            if Date().timeIntervalSince(lastHeard) > Self.silence {
                // liandongd beats every second: a silent feed is a connection libzmq gave up (a
                // refused handshake is never retried) or lost unnoticed. Connect afresh.
                try sub.dropConnections()
                lastHeard = Date()
                reconnects += 1
            }
            guard try ZMQSocket.poll([sub], timeoutMilliseconds: wait)[0] else { continue }
            while let frames = try sub.receiveNow(), frames.count == 2 {
                lastHeard = Date()
                let topic = String(decoding: frames[0], as: UTF8.self)
                if topic == "hb" {
                    if let beat = Heartbeat(json: frames[1]), beat.head > caughtUp { out += try catchUp() }
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

    /// Asks the replay socket for everything after `caughtUp` until it says there is no more.
    public func catchUp() throws -> [Item] {
        var out: [Item] = []
        while true {
            try replay.send([ReplayRequest(since: caughtUp, prefix: prefix).json()])
            guard let frames = try replay.receive(), let last = frames.last, let end = ReplayEnd(json: last) else {
                throw ReplayError(message: "no answer from the replay socket")
            }
            guard case .end(let head, let more) = end else {
                if case .error(let message) = end { throw ReplayError(message: message) }
                return out
            }
            var maxSeq = caughtUp
            for frame in frames.dropLast() {
                guard case .object(let o)? = try? JSONValue.parse(frame), let seq = o["seq"]?.int64Value else { continue }
                maxSeq = max(maxSeq, seq)
                if delivered.insert(seq).inserted {
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
}

public struct ReplayError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { "replay: \(message)" }
}
