import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Logging
import ServiceLifecycle
import ZeroMQ

/// Answers dispatchers that missed feed messages: a request {"since":N,"prefix":P,"limit":L} on the
/// replay ROUTER (feed.replay_bind) gets, from PostgreSQL, every feed message with seq > N whose
/// topic starts with P, in seq order, one frame each, then {"end":true,"head":H,"more":...}.
public final class ReplayService: Service, Sendable {
    let context: ZMQContext
    let config: Config
    let logger: Logger
    let trust: TrustBoundary?
    let stop = StopFlag()
    /// ha.enabled: starts once this daemon leads.
    let role: HARole
    public static let maxLimit = ReplayRequest.maxLimit

    public init(context: ZMQContext, config: Config, trust: TrustBoundary? = nil, role: HARole = .single(), logger: Logger) {
        self.role = role
        self.trust = trust
        self.context = context
        self.config = config
        self.logger = logger
    }

    public func run() async throws {
        try await runThreadService(name: "liandong-replay", onStop: { [stop] in stop.set() }) { [self] in try loop() }
    }

    private func loop() throws {
        guard role.waitForLead({ stop.isSet }) else { return }
        let socket = try ZMQSocket(context: context, type: .router)
        try socket.setReceiveTimeout(milliseconds: 100)
        try socket.setLinger(milliseconds: 1000)
        try socket.setSendHighWaterMark(0)
        try socket.setMaxMessageSize(config.socketLimits.replayFrame)
        try trust?.protect(socket)
        do { try socket.bind(config.replayBind) } catch let e as ZMQError {
            throw SocketSetupError(key: "feed.replay_bind", endpoint: config.replayBind, underlying: e)
        }
        let session = DatabaseSession(conninfo: config.databaseURL, name: "replay", logger: logger, stop: stop, fence: role.fence)
        logger.info("replay listening", metadata: ["zmq.bind": "\(config.replayBind)"])
        var peersRevision = trust?.registry.revision(of: [.dispatcher, .observer]) ?? 0
        while !stop.isSet {
            if let trust, trust.registry.revision(of: [.dispatcher, .observer]) != peersRevision {
                peersRevision = trust.registry.revision(of: [.dispatcher, .observer])
                try socket.dropConnections()
                logger.notice("dispatchers or observers changed in the peers file: replay connections closed")
            }
            guard let message = try socket.receiveMessage(), message.frames.count >= 2 else { continue }
            let (envelope, request) = RouterEnvelope.split(message.frames)
            let reply: [[UInt8]]
            do {
                reply = try answer(request.last ?? [], from: message, session: session)
            } catch {
                reply = [ReplayEnd.error("temporary failure, retry: \(error)").json()]
            }
            try socket.send(envelope + reply)
        }
        logger.info("replay stopped")
    }

    private func answer(_ body: [UInt8], from message: ZMQMessage, session: DatabaseSession) throws -> [[UInt8]] {
        let request: ReplayRequest
        guard body.count <= config.socketLimits.replayBody else {
            return [ReplayEnd.error("the request is \(body.count) bytes, limit \(config.socketLimits.replayBody)").json()]
        }
        switch ReplayRequest.decode(body) {
        case .success(let r): request = r
        case .failure(let e): return [ReplayEnd.error(e.message).json()]
        }
        if let trust, case .forbidden(let why) = TrustPolicy.replay(trust.peer(of: message), prefix: request.prefix) {
            let role = trust.peer(of: message)?.role
            trust.refused(role == nil || role == .gateway ? .forbidden : .outOfScope, who: message.userID ?? "", key: request.prefix,
                          "replay: \(why)")
            return [ReplayEnd.error("forbidden: \(why)").json()]
        }
        let (since, prefix, limit) = (request.since, request.prefix, request.limit)
        let (bodies, head) = try session.run { db in try FeedStore(db: db).replay(since: since, prefix: prefix, limit: limit + 1) }
        let more = bodies.count > limit
        var frames = bodies.prefix(limit).map { Array($0.utf8) }
        frames.append(ReplayEnd.end(head: head, more: more).json())
        return frames
    }
}
