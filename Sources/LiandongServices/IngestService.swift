import CoreMetrics
import Foundation
import LiandongCore
import LiandongStorage
import Logging
import ServiceLifecycle
import ZeroMQ

/// Thrown when a socket cannot be set up: names the config key to change.
public struct SocketSetupError: Error, CustomStringConvertible, Sendable {
    public let key: String
    public let endpoint: String
    public let underlying: ZMQError

    public var description: String {
        if underlying.isAddressInUse {
            return "cannot bind \(key) \(endpoint): the address is already in use (errno \(underlying.errno)) "
                + "(another liandongd running? choose another port with \(key))"
        }
        return "cannot use \(key) \(endpoint): \(underlying.message) (errno \(underlying.errno)) (check \(key))"
    }
}

/// Receives alert and report messages — on the SUB socket (ingest.bind / ingest.connect) and on
/// the acknowledged ROUTER (ingest.ack_bind) — validates them and queues them for the writer.
/// The writer's answers for the ROUTER come back over an inproc socket and are forwarded to the
/// gateways. At graceful shutdown it stops reading, closes the queue so the writer drains it, and
/// keeps forwarding answers until the writer says it is done.
public final class IngestService: Service, Sendable {
    let context: ZMQContext
    let config: Config
    let queue: BoundedQueue<Inbound>
    let logger: Logger
    let metrics: Metrics
    let handles: Handles

    struct Handles {
        let received: CounterFamily
        let gaps, gapMessages, replayed, overflowed: CoreMetrics.Counter
        let buffered: CoreMetrics.Gauge

        init(_ m: Metrics) {
            received = m.counters("liandong_events_received_total", by: "path", known: ["sub", "ack", "standby"])
            gaps = m.counter("liandong_ingest_gaps_total")
            gapMessages = m.counter("liandong_ingest_gap_messages_total")
            buffered = m.gauge("liandong_ha_standby_buffer_messages")
            replayed = m.counter("liandong_ha_buffer_replayed_total")
            overflowed = m.counter("liandong_ha_standby_buffer_overflow_total")
        }
    }
    let spill: SpillFile?
    /// Gaps found on the SUB path, for the writer to record.
    let gaps: BoundedQueue<SeqGap>
    /// Highest stored seq per gateway, read when the daemon starts to lead.
    let seeds: @Sendable () throws -> [String: Int64]
    /// ha.enabled: a standby keeps the last ha.standby_buffer_s of its SUB messages, in memory.
    let role: HARole
    /// What a standby keeps in memory at most, whatever ha.standby_buffer_s says: sixty ingest
    /// queues' worth (300,000 with the default ingest.queue_capacity, ~30 s at 10,000 messages/s).
    var standbyCapacity: Int { config.queueCapacity * 60 }
    /// security.curve: sockets are CURVE servers, each message carries its sender.
    let trust: TrustBoundary?
    let stop = StopFlag()
    /// inproc endpoint where the writer sends acknowledgements.
    let ackEndpoint: String
    /// The writer sends this single frame when it has written its last batch.
    static let writerDone: [UInt8] = Array("writer-done".utf8)

    package init(context: ZMQContext, config: Config, queue: BoundedQueue<Inbound>, ackEndpoint: String, spill: SpillFile?,
                gaps: BoundedQueue<SeqGap>, seeds: @escaping @Sendable () throws -> [String: Int64], trust: TrustBoundary? = nil,
                role: HARole = .single(), metrics: Metrics, logger: Logger) {
        self.role = role
        self.trust = trust
        self.gaps = gaps
        self.seeds = seeds
        self.spill = spill
        self.metrics = metrics
        handles = Handles(metrics)
        self.context = context
        self.config = config
        self.queue = queue
        self.ackEndpoint = ackEndpoint
        self.logger = logger
    }

    public func run() async throws {
        try await runThreadService(name: "liandong-ingest", onStop: { [stop] in stop.set() }) { [self] in
            defer { queue.close() }
            try loop()
        }
    }

    private func setupError(_ key: String, _ endpoint: String, _ body: () throws -> Void) throws {
        do { try body() } catch let e as ZMQError { throw SocketSetupError(key: key, endpoint: endpoint, underlying: e) }
    }

    /// Opens the SUB socket; throws SocketSetupError naming the config key at fault.
    func openSubscriber() throws -> ZMQSocket? {
        guard !config.ingestBind.isEmpty || !config.ingestConnect.isEmpty else { return nil }
        let socket = try ZMQSocket(context: context, type: .sub)
        try socket.setLinger(milliseconds: 0)
        // Per connected gateway. The ingest thread never waits on the database (it spills), so
        // this only absorbs its own hiccups; 10,000 is 0.4 s at 25,000 events/s and ~6 MiB. It was
        // 100,000: a 60,000-message burst then sat in libzmq's buffers (+36 MiB resident).
        try socket.setReceiveHighWaterMark(10_000)
        // libzmq drops frames above the limit before we see them; keep headroom so our own
        // check can dead-letter oversized bodies with a reason (SocketLimits).
        try socket.setMaxMessageSize(config.socketLimits.ingestFrame)
        for topic in MessageDecoder.topics { try socket.subscribe(topic) }
        try trust?.protect(socket)
        if !config.ingestBind.isEmpty { try setupError("ingest.bind", config.ingestBind) { try socket.bind(config.ingestBind) } }
        for endpoint in config.ingestConnect {
            try setupError("ingest.connect", endpoint) { try socket.connect(endpoint) }
        }
        return socket
    }

    func openRouter() throws -> ZMQSocket? {
        guard !config.ingestAckBind.isEmpty else { return nil }
        let socket = try ZMQSocket(context: context, type: .router)
        try socket.setLinger(milliseconds: 1000)
        try socket.setMaxMessageSize(config.socketLimits.ingestFrame)
        try trust?.protect(socket)
        try setupError("ingest.ack_bind", config.ingestAckBind) { try socket.bind(config.ingestAckBind) }
        return socket
    }

    private func loop() throws {
        let acks = try ZMQSocket(context: context, type: .pull)
        // Unbounded: a full pipe would block the writer while we wait for it (acks are few).
        try acks.setReceiveHighWaterMark(0)
        try acks.bind(ackEndpoint)
        let sub = try openSubscriber()
        var buffer = RecentBuffer<RawMessage>(seconds: config.ha.standbyBufferSeconds, capacity: standbyCapacity)
        if !role.isLeader {
            standBy(sub, &buffer)
            guard role.isLeader else {
                logger.info("ingest stopped (standby)", metadata: ["ha.buffered": "\(buffer.count)"])
                return
            }
        }
        let router = try openRouter()
        logger.info("ingest listening", metadata: [
            "zmq.bind": "\(config.ingestBind)", "zmq.connect": "\(config.ingestConnect.joined(separator: ","))",
            "zmq.ack_bind": "\(config.ingestAckBind)",
        ])
        let decoder = MessageDecoder(rules: config.rules, limits: config.limits)
        let sockets = [acks] + [sub, router].compactMap { $0 }
        var tracker = GapTracker(grace: Double(config.gapGraceMilliseconds) / 1000)
        do {
            for (gateway, seq) in try seeds() { tracker.seed(gateway: gateway, highest: seq) }
        } catch {
            // Gaps are then measured from the first message of each gateway, not from what is stored.
            logger.warning("cannot read the highest stored seq per gateway", metadata: ["db.error": "\(error)"])
        }
        // Promoted: what the SUB socket brought while standing by goes first (what the former
        // leader stored already is a duplicate: one effect), then the same socket, in order.
        let kept = buffer.drain()
        handles.buffered.record(0)
        if !kept.isEmpty {
            logger.notice("writing what arrived while standing by", metadata: ["ha.buffered": "\(kept.count)"])
            for start in stride(from: 0, to: kept.count, by: 1000) {
                acceptSub(Array(kept[start..<min(start + 1000, kept.count)]), &tracker, decoder)
            }
            handles.replayed.increment(by: kept.count)
        }
        var reading = true
        var writerDone = false
        var peersRevision = trust?.registry.revision(of: [.gateway]) ?? 0
        var drainDeadline = Date.distantFuture
        while !writerDone && Date() < drainDeadline {
            if reading && stop.isSet {
                reading = false
                queue.close()
                drainDeadline = Date().addingTimeInterval(Double(config.batchMilliseconds) / 1000 + 30)
                logger.info("ingest stopped reading")
            }
            let readable = try ZMQSocket.poll(reading ? sockets : [acks], timeoutMilliseconds: 100)
            if readable[0] {
                while let frames = try acks.receiveNow() {
                    if frames == [Self.writerDone] {
                        writerDone = true
                    } else if let router {
                        try router.send(frames, dontWait: true)
                    }
                }
            }
            guard reading else { continue }
            if let trust, trust.registry.revision(of: [.gateway]) != peersRevision {
                // A gateway was removed or changed: every connection handshakes again.
                peersRevision = trust.registry.revision(of: [.gateway])
                for socket in [sub, router].compactMap({ $0 }) { try socket.dropConnections() }
                logger.notice("gateways changed in the peers file: ingest connections closed; they reconnect and authenticate again")
            }
            for gap in tracker.due(now: Date().timeIntervalSince1970) {
                handles.gaps.increment()
                handles.gapMessages.increment(by: gap.count)
                logger.warning("messages lost before reaching liandongd", metadata: [
                    "gateway.id": "\(gap.gateway)", "gap.from": "\(gap.from)", "gap.to": "\(gap.to)",
                ])
                gaps.push(gap, timeout: 1)
            }
            if let sub, readable[1] {
                let raws = try readSub(sub)
                handles.received.increment("sub", by: raws.count)
                acceptSub(raws, &tracker, decoder)
            }
            if let router, readable[sub == nil ? 1 : 2] {
                var received = 0
                defer { handles.received.increment("ack", by: received) }
                for _ in 0..<1000 {
                    guard let message = try router.receiveMessageNow(), message.frames.count >= 2 else { break }
                    received += 1
                    let (envelope, body) = RouterEnvelope.split(message.frames)
                    let raw = RawMessage(endpoint: "ingest.ack", frames: body, receivedAt: Date().timeIntervalSince1970,
                                         replyEnvelope: envelope, sender: trust?.sender(of: message))
                    enqueue(Inbound(raw, decodedBy: decoder))
                }
            }
        }
        logger.info("ingest stopped", metadata: ["writer.done": "\(writerDone)"])
    }

    /// A standby: reads the SUB socket into `buffer` (the last ha.standby_buffer_s) and binds
    /// nothing else, until this daemon leads or is stopped.
    private func standBy(_ sub: ZMQSocket?, _ buffer: inout RecentBuffer<RawMessage>) {
        logger.info("standing by: only the SUB ingest is bound; keeping what arrives", metadata: [
            "zmq.bind": "\(config.ingestBind)", "ha.standby_buffer_s": "\(config.ha.standbyBufferSeconds)",
        ])
        var overflowed = 0
        // While nobody leads (the database is away), nothing ages out; beyond the buffer's
        // capacity what it holds goes to the spill file, written when this daemon leads. While
        // a leader lives, the oldest just go (the leader stored them). Checked at every message
        // kept: one read from the socket can bring more than the buffer holds.
        func spillIfLeaderless() {
            guard let spill, buffer.count >= standbyCapacity - min(1000, standbyCapacity / 10),
                  Date().timeIntervalSince1970 - role.leaderLastSeen > config.ha.takeoverSeconds else { return }
            let kept = buffer.drain()
            let written = spill.appendAll(kept)
            if written < kept.count { handles.overflowed.increment(by: kept.count - written) }
            logger.warning("no leader for a while: what the standby kept went to the spill file", metadata: [
                "ha.spilled": "\(written)", "spill.bytes": "\(spill.pendingBytes)",
            ])
        }
        while !stop.isSet && !role.isLeader {
            do {
                if let sub {
                    if try ZMQSocket.poll([sub], timeoutMilliseconds: 50)[0] {
                        let raws = try readSub(sub)
                        for raw in raws {
                            spillIfLeaderless()
                            buffer.append(raw, at: raw.receivedAt)
                        }
                        handles.received.increment("standby", by: raws.count)
                    }
                } else {
                    Thread.sleep(forTimeInterval: 0.05)  // only ack and connect-less: nothing to keep
                }
            } catch {
                logger.error("standby: reading the SUB socket failed", metadata: ["error": "\(error)"])
                Thread.sleep(forTimeInterval: 0.1)
            }
            buffer.trim(now: role.leaderLastSeen)
            spillIfLeaderless()
            handles.buffered.record(buffer.count)
            if buffer.overflowed > overflowed {
                handles.overflowed.increment(by: buffer.overflowed - overflowed)
                overflowed = buffer.overflowed
            }
        }
    }

    /// Up to 1,000 messages waiting on the SUB socket, stamped as received now.
    private func readSub(_ sub: ZMQSocket) throws -> [RawMessage] {
        var raws: [RawMessage] = []
        for _ in 0..<1000 {
            guard let message = try sub.receiveMessageNow() else { break }
            raws.append(RawMessage(endpoint: "ingest.sub", frames: message.frames, receivedAt: Date().timeIntervalSince1970,
                                   sender: trust?.sender(of: message)))
        }
        return raws
    }

    /// Queues messages from the SUB socket (or kept while standing by), in order; spills them
    /// while the spill holds anything or the queue is full.
    private func acceptSub(_ raws: [RawMessage], _ tracker: inout GapTracker, _ decoder: MessageDecoder) {
        // Messages bound for the spill, written together (one write, not one per message)
        // before the next message is queued and before polling again.
        var spilling: [RawMessage] = [], spillingBytes = 0
        func flush() {
            guard let spill, !spilling.isEmpty else { return }
            let written = spill.appendAll(spilling)
            // The spill is full: the rest waits in the queue (backpressure), in order.
            for raw in spilling[written...] { enqueue(Inbound(raw, decodedBy: decoder)) }
            spilling = []
            spillingBytes = 0
        }
        defer { flush() }
        for raw in raws {
            let frames = raw.frames
            // Once spilling, keep spilling until the writer has caught up, so order holds.
            // A message that arrived counts for its gateway's seq whatever else is wrong
            // with it (it is dead-lettered, not lost). What is spilled is decoded when it
            // is written: here only its gateway_id and seq are read.
            if let spill, !spilling.isEmpty || !spill.isEmpty || queue.count >= queue.capacity {
                if let (gateway, seq) = MessageDecoder.peekSequence(frames) {
                    tracker.observe(gateway: gateway, seq: seq, now: raw.receivedAt)
                }
                spilling.append(raw)
                spillingBytes += frames.reduce(0) { $0 + $1.count }
                if spillingBytes >= 256 << 10 { flush() }
                continue
            }
            let inbound = Inbound(raw, decodedBy: decoder)
            if case .event(let e, _) = inbound, let gateway = e.gatewayID, let seq = e.gatewaySeq {
                tracker.observe(gateway: gateway, seq: seq, now: raw.receivedAt)
            } else if case .rejected = inbound, let (gateway, seq) = MessageDecoder.peekSequence(frames) {
                tracker.observe(gateway: gateway, seq: seq, now: raw.receivedAt)
            }
            enqueue(inbound)
        }
    }

    /// Blocks while the writer is behind (backpressure); a stop request still gets this message in.
    private func enqueue(_ inbound: Inbound) {
        while !queue.push(inbound, timeout: 0.2) {
            if stop.isSet {
                _ = queue.push(inbound, timeout: 5)
                return
            }
        }
    }
}
