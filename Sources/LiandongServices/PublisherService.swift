import CoreMetrics
import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Logging
import ServiceLifecycle
import ZeroMQ

/// Publishes committed feed messages on the feed PUB socket ([topic][JSON]) strictly in seq order,
/// records how far it got in liandong.feed_published, and sends a heartbeat on topic `hb` with the head seq every second.
/// Several services commit feed messages; one that committed seq N but has not handed it over yet
/// holds back N+1 for at most `gapWait`, after which N is read from the feed table. At start it
/// republishes rows a previous run committed but did not publish. At graceful shutdown (it is the
/// last service to stop) it publishes what is left and exits.
public final class PublisherService: Service, Sendable {
    let context: ZMQContext
    let config: Config
    let input: BoundedQueue<FeedMessage>
    let logger: Logger
    let feedHead: CoreMetrics.Gauge
    let gapWait: TimeInterval = 0.5
    /// security.curve: the feed is an XPUB applying only the subscriptions a peer's scope allows.
    let trust: TrustBoundary?
    /// ha.enabled: binds the feed once this daemon leads.
    let role: HARole

    public init(context: ZMQContext, config: Config, input: BoundedQueue<FeedMessage>, trust: TrustBoundary? = nil,
                role: HARole = .single(), metrics: Metrics, logger: Logger) {
        self.role = role
        self.trust = trust
        feedHead = metrics.gauge("liandong_feed_head")
        self.context = context
        self.config = config
        self.input = input
        self.logger = logger
    }

    public func run() async throws {
        try await runThreadService(name: "liandong-publisher", onStop: { [input] in input.close() }) { [self] in try loop() }
    }

    func openSocket() throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: trust == nil ? .pub : .xpub)
        try socket.setLinger(milliseconds: 2000)
        try socket.setSendHighWaterMark(100_000)
        try socket.setMaxMessageSize(config.socketLimits.feedFrame)  // subscribers send topic prefixes only
        if let trust {
            try socket.setXPubManual()
            try trust.protect(socket)
        }
        do { try socket.bind(config.feedBind) } catch let e as ZMQError {
            throw SocketSetupError(key: "feed.bind", endpoint: config.feedBind, underlying: e)
        }
        return socket
    }

    private func loop() throws {
        guard role.waitForLead({ input.isClosed }) else { return }
        let socket = try openSocket()
        let cursor = FeedCursor(conninfo: config.databaseURL, feedHead: feedHead, fence: role.fence, logger: logger)
        // What a previous run committed but did not publish, and the head; retried while the
        // database is away (or failing over), until the daemon stops.
        guard let (pending, head) = try cursor.start({ input.isClosed }) else { return }
        if !pending.isEmpty {
            logger.notice("republishing feed messages committed but not published", metadata: ["feed.count": "\(pending.count)"])
            try cursor.send(pending, socket)
        }
        var next = head + 1
        logger.info("feed publishing", metadata: ["zmq.bind": "\(config.feedBind)", "feed.head": "\(next - 1)"])
        feedHead.record(next - 1)
        var waiting: [Int64: FeedMessage] = [:]
        var waitingSince: Date? = nil
        var lastBeat = Date.distantPast
        var peersRevision = trust?.registry.revision(of: [.dispatcher, .observer]) ?? 0
        while true {
            if let trust {
                if trust.registry.revision(of: [.dispatcher, .observer]) != peersRevision {
                    peersRevision = trust.registry.revision(of: [.dispatcher, .observer])
                    try socket.dropConnections()
                    logger.notice("dispatchers or observers changed in the peers file: feed connections closed; subscribers reconnect, authenticate and subscribe again")
                }
                try applySubscriptions(socket, trust)
            }
            let batch = input.popBatch(max: 1000, idle: 0.1, linger: 0)
            for message in batch ?? [] where message.seq >= next { waiting[message.seq] = message }
            var ready: [FeedMessage] = []
            while let m = waiting.removeValue(forKey: next) {
                ready.append(m)
                next += 1
            }
            if waiting.isEmpty {
                waitingSince = nil
            } else if waitingSince == nil {
                waitingSince = Date()
            }
            // A hole that does not fill: read the committed rows from the table (their producer
            // may have died between commit and hand-over), or at shutdown, publish what we have.
            if let since = waitingSince, Date().timeIntervalSince(since) > gapWait || batch == nil,
                let first = waiting.keys.min()
            {
                do {
                    ready += try FeedStore(db: try cursor.database()).confirmed { try $0.messages(from: next, to: first) }
                    next = first
                    while let m = waiting.removeValue(forKey: next) {
                        ready.append(m)
                        next += 1
                    }
                    waitingSince = waiting.isEmpty ? nil : Date()
                } catch {
                    logger.warning("cannot read the feed to fill a hole; retrying", metadata: ["db.error": "\(error)"])
                    if batch == nil { Thread.sleep(forTimeInterval: 0.5) }
                }
            }
            if !ready.isEmpty {
                try cursor.send(ready, socket)
            } else {
                cursor.markPublishedIfDue()
            }
            if Date().timeIntervalSince(lastBeat) >= 1 {
                let beat = Heartbeat(head: next - 1, at: Timestamp.formatCST(Date().timeIntervalSince1970))
                try socket.send([Array("hb".utf8), beat.json()])
                lastBeat = Date()
            }
            if batch == nil && waiting.isEmpty { break }
        }
        cursor.markPublished()
        logger.info("publisher drained", metadata: ["feed.head": "\(next - 1)"])
    }

    /// XPUB with manual subscriptions: each (un)subscription a peer sent is applied to its
    /// connection only when its role and scope allow the prefix; others are counted and logged.
    private func applySubscriptions(_ socket: ZMQSocket, _ trust: TrustBoundary) throws {
        while let message = try socket.receiveMessageNow() {
            guard let frame = message.frames.first, let kind = frame.first, kind <= 1 else { continue }
            let prefix = String(decoding: frame.dropFirst(), as: UTF8.self)
            let peer = trust.peer(of: message)
            guard TrustPolicy.subscription(peer, prefix: prefix) else {
                if kind == 1 {
                    trust.refused(peer == nil || peer?.role == .gateway ? .forbidden : .outOfScope, who: message.userID ?? "",
                                  key: prefix, "feed subscription \"\(prefix)\" not applied: beyond what \(peer?.label ?? "this connection") may read")
                }
                continue
            }
            if kind == 1 { try socket.subscribe(prefix) } else { try socket.unsubscribe(prefix) }
        }
    }

}

/// How far the feed went out, on the publisher's thread: the highest seq sent (strictly in seq
/// order) and the highest recorded in liandong.feed_published - recorded at most every
/// `markEvery` after a send, at once when the publisher drains, or as soon as the database is
/// back - and the connection for it, reopened on demand: publishing
/// what is in memory never waits for the database, only marking rows published and filling
/// holes do.
private final class FeedCursor {
    let conninfo: String
    let feedHead: CoreMetrics.Gauge
    let logger: Logger
    private var connection: PGConnection?
    private var sentThrough: Int64 = 0
    private var markedThrough: Int64 = 0

    let fence: (PGConnection) throws -> Void

    init(conninfo: String, feedHead: CoreMetrics.Gauge, fence: @escaping (PGConnection) throws -> Void, logger: Logger) {
        self.fence = fence
        self.conninfo = conninfo
        self.feedHead = feedHead
        self.logger = logger
    }

    func database() throws -> PGConnection {
        if let c = connection, c.isOK { return c }
        connection = nil
        let c = try Sessions.open(conninfo, name: "publisher", prepare: fence)
        connection = c
        return c
    }

    /// The messages committed but not published and the head, read when the publisher starts;
    /// nil when `stopping` says so while the database cannot be read. Confirmed: rows a cancelled
    /// commit left on this server alone are not published before its standby has them.
    func start(_ stopping: () -> Bool) throws -> ([FeedMessage], Int64)? {
        var backoff = Backoff()
        while true {
            do {
                return try FeedStore(db: try database()).confirmed { (try $0.unpublished(), try $0.head()) }
            } catch let error as PQError where error.isConnectionFailure {
                connection = nil
                if stopping() { return nil }
                let delay = backoff.next()
                logger.error("database unreachable, retrying", metadata: ["db.error": "\(error)", "retry.s": "\(delay)"])
                let deadline = Date(timeIntervalSinceNow: delay)
                while !stopping() && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            }
        }
    }

    func send(_ messages: [FeedMessage], _ socket: ZMQSocket) throws {
        for message in messages {
            try socket.send(strings: [message.topic, message.body])
        }
        if let last = messages.last {
            sentThrough = max(sentThrough, last.seq)
            feedHead.record(last.seq)
        }
        markPublishedIfDue()
    }

    /// How far the feed went out is recorded at most this often (and when the publisher drains):
    /// once per batch it was ~470 UPDATEs a second in a storm, each a round trip, a commit and
    /// WAL, competing with the writer (issue 31). A restart republishes at most this much again,
    /// with the same message_id and seq.
    static let markEvery: TimeInterval = 0.1
    private var lastMarked = Date.distantPast

    func markPublishedIfDue() {
        if Date().timeIntervalSince(lastMarked) >= Self.markEvery { markPublished() }
    }

    func markPublished() {
        guard markedThrough < sentThrough else { return }
        do {
            try FeedStore(db: try database()).markPublished(through: sentThrough, at: Date().timeIntervalSince1970)
            markedThrough = sentThrough
            lastMarked = Date()
        } catch {
            // Sent but not recorded yet: retried each round; a restart before that republishes
            // them with the same message_id and seq.
            logger.warning("could not record how far the feed was published",
                           metadata: ["db.error": "\(error)", "feed.seq": "\(sentThrough)"])
        }
    }
}
