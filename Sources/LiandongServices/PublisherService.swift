import Foundation
import LiandongCore
import LibPQ
import Logging
import ServiceLifecycle
import ZeroMQ

/// Publishes committed feed messages on the feed PUB socket ([topic][JSON]), marks them published,
/// and sends a heartbeat on topic `hb` with the head seq every second. At start it republishes
/// feed rows a previous run committed but did not publish. Runs until the writer closes its queue.
public final class PublisherService: Service, @unchecked Sendable {
    // @unchecked: immutable after init; socket and connection live only inside the dedicated thread.
    let context: ZMQContext
    let config: Config
    let input: BoundedQueue<FeedMessage>
    let logger: Logger

    public init(context: ZMQContext, config: Config, input: BoundedQueue<FeedMessage>, logger: Logger) {
        self.context = context
        self.config = config
        self.input = input
        self.logger = logger
    }

    public func run() async throws {
        try await runOnDedicatedThread(name: "liandong-publisher") { [self] in try loop() }
        // Stay in the group until it is our turn to stop, so shutdown runs in order.
        try? await gracefulShutdown()
    }

    func openSocket() throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: .pub)
        try socket.setLinger(milliseconds: 2000)
        try socket.setSendHighWaterMark(100_000)
        do { try socket.bind(config.feedBind) } catch let e as ZMQError {
            throw SocketSetupError(key: "feed.bind", endpoint: config.feedBind, underlying: e)
        }
        return socket
    }

    private func loop() throws {
        let socket = try openSocket()
        let db = try PGConnection(conninfo: config.databaseURL)
        var head = Int64(try db.query("SELECT seq FROM liandong.feed_head").scalar ?? "0") ?? 0
        let pending = try db.query(
            "SELECT seq, topic, body FROM liandong.feed WHERE published_at IS NULL ORDER BY seq")
        if pending.count > 0 {
            logger.notice("republishing feed messages committed but not published", metadata: ["feed.count": "\(pending.count)"])
            try publish(pending.rows.map { FeedMessage(seq: Int64($0[0]!)!, topic: $0[1]!, body: $0[2]!) }, socket, db)
        }
        logger.info("feed publishing", metadata: ["zmq.bind": "\(config.feedBind)", "feed.head": "\(head)"])
        var lastBeat = Date.distantPast
        while true {
            let batch = input.popBatch(max: 1000, idle: 0.25, linger: 0)
            if let batch, !batch.isEmpty {
                try publish(batch, socket, db)
                head = max(head, batch.map(\.seq).max()!)
            }
            if Date().timeIntervalSince(lastBeat) >= 1 {
                try socket.send(strings: ["hb", "{\"head\":\(head),\"at\":\"\(Timestamp.formatCST(Date().timeIntervalSince1970))\"}"])
                lastBeat = Date()
            }
            if batch == nil { break }
        }
        logger.info("publisher drained", metadata: ["feed.head": "\(head)"])
    }

    private func publish(_ messages: [FeedMessage], _ socket: ZMQSocket, _ db: PGConnection) throws {
        for message in messages {
            try socket.send(strings: [message.topic, message.body])
        }
        let seqs = "{" + messages.map { String($0.seq) }.joined(separator: ",") + "}"
        do {
            try db.query("UPDATE liandong.feed SET published_at = now() WHERE seq = ANY($1::bigint[])", [seqs])
        } catch {
            // Published but not marked: a restart republishes with the same message_id and seq.
            logger.warning("could not mark feed messages published", metadata: ["db.error": "\(error)"])
        }
    }
}
