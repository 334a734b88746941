import CoreMetrics
import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Logging
import ServiceLifecycle
import ZeroMQ

/// Receives liandong.task_update.v1 messages on a ROUTER (DEALER and REQ clients alike), applies
/// each in one transaction, answers {"ok":true} only after commit (or {"ok":false,"error":...}),
/// and hands the resulting feed messages to the publisher. The same update_id gets the same answer.
public final class UpdateService: Service, Sendable {
    let context: ZMQContext
    let config: Config
    let output: BoundedQueue<FeedMessage>
    let logger: Logger
    let metrics: Metrics
    let planner: TaskPlanner
    let updates: CounterFamily
    let trust: TrustBoundary?
    let stop = StopFlag()
    /// ha.enabled: starts once this daemon leads.
    let role: HARole

    public init(context: ZMQContext, config: Config, output: BoundedQueue<FeedMessage>, trust: TrustBoundary? = nil,
                role: HARole = .single(), metrics: Metrics, logger: Logger) {
        self.role = role
        self.trust = trust
        self.metrics = metrics
        planner = TaskPlanner(rules: config.rules)
        updates = metrics.counters("liandong_task_updates_total", by: "result", known: ["ok", "refused"])
        self.context = context
        self.config = config
        self.output = output
        self.logger = logger
    }

    public func run() async throws {
        try await runThreadService(name: "liandong-updates", onStop: { [stop] in stop.set() }) { [self] in try loop() }
    }

    private func loop() throws {
        guard role.waitForLead({ stop.isSet }) else { return }
        let socket = try ZMQSocket(context: context, type: .router)
        try socket.setReceiveTimeout(milliseconds: 100)
        try socket.setLinger(milliseconds: 1000)
        try socket.setMaxMessageSize(config.socketLimits.updatesFrame)
        try trust?.protect(socket)
        do { try socket.bind(config.updatesBind) } catch let e as ZMQError {
            throw SocketSetupError(key: "updates.bind", endpoint: config.updatesBind, underlying: e)
        }
        let session = DatabaseSession(conninfo: config.databaseURL, name: "updates", logger: logger, stop: stop, fence: role.fence)
        logger.info("updates listening", metadata: ["zmq.bind": "\(config.updatesBind)"])
        var peersRevision = trust?.registry.revision(of: [.dispatcher]) ?? 0
        while !stop.isSet {
            if let trust, trust.registry.revision(of: [.dispatcher]) != peersRevision {
                peersRevision = trust.registry.revision(of: [.dispatcher])
                try socket.dropConnections()
                logger.notice("dispatchers changed in the peers file: update connections closed; they reconnect and authenticate again")
            }
            guard let message = try socket.receiveMessage(), !message.frames.isEmpty else { continue }
            let (envelope, body) = RouterEnvelope.split(message.frames)
            let answer: TaskUpdateAnswer
            do {
                if let trust, case .forbidden(let why) = TrustPolicy.updates(trust.peer(of: message)) {
                    trust.refused(.forbidden, who: message.userID ?? "", "updates: \(why)")
                    answer = TaskUpdateAnswer(ok: false, updateID: nil, error: "forbidden: \(why)")
                } else {
                    answer = try handle(body, peer: trust?.peer(of: message), session: session)
                }
            } catch {
                // Nothing was committed: the client may retry with the same update_id.
                logger.error("task update failed", metadata: ["error": "\(error)"])
                answer = TaskUpdateAnswer(ok: false, updateID: nil, error: "temporary failure, retry: \(error)")
            }
            updates.increment(answer.ok ? "ok" : "refused")
            try socket.send(envelope + [answer.json()])
        }
        logger.info("updates stopped")
    }


    /// `peer`: the authenticated dispatcher (security.curve), nil without CURVE.
    private func handle(_ frames: [[UInt8]], peer: Peer?, session: DatabaseSession) throws -> TaskUpdateAnswer {
        let now = Date().timeIntervalSince1970
        guard frames.count == 1, frames[0].count <= config.socketLimits.updateBody else {
            let raw = RawMessage(endpoint: "updates", frames: frames, receivedAt: now)
            let message = frames.count != 1 ? "expected one JSON frame after the envelope, got \(frames.count)"
                : "the update is \(frames[0].count) bytes, limit \(config.socketLimits.updateBody)"
            let reason: RejectReason = frames.count != 1 ? .wrongFrameCount : .oversized
            try session.run { db in
                try TaskStore.insertDeadLetters(db, [(Rejection(reason, message), raw)], maxBytes: config.maxDeadLetterBytes,
                                               bytesPerHour: config.retention.deadLetterBytesPerHour)
            }
            return TaskUpdateAnswer(ok: false, updateID: nil, error: message)
        }
        let update: TaskUpdate
        switch TaskUpdate.decode(frames[0], now: Date().timeIntervalSince1970, maxFutureSeconds: config.limits.maxFutureSeconds) {
        case .success(let u): update = u
        case .failure(let e):
            let raw = RawMessage(endpoint: "updates", frames: frames, receivedAt: now)
            try session.run { db in
                try TaskStore.insertDeadLetters(db, [(Rejection(.invalidUpdate, e.message), raw)], maxBytes: config.maxDeadLetterBytes,
                                               bytesPerHour: config.retention.deadLetterBytesPerHour)
            }
            return TaskUpdateAnswer(ok: false, updateID: e.updateID, error: e.message)
        }
        var messages: [FeedMessage] = []
        let answer = try session.run { db in
            try db.transaction { db -> TaskUpdateAnswer in
                messages = []
                if let previous = try TaskUpdateStore.previousAnswer(db, updateID: update.updateID) {
                    return TaskUpdateAnswer(ok: previous.ok, updateID: update.updateID, error: previous.error)
                }
                let result = try apply(update, peer: peer, db: db, now: now)
                try TaskUpdateStore.record(db, update, refusal: result.refusal, peer: peer?.name)
                if result.refusal == nil {
                    messages = try TaskStore.write(db, steps: result.steps)
                }
                return TaskUpdateAnswer(ok: result.refusal == nil, updateID: update.updateID, error: result.refusal)
            }
        }
        for m in messages {
            metrics.feedMessages.increment(m.kind)
            output.push(m)
        }
        return answer
    }

    private struct Outcome {
        var refusal: String?
        var steps: [TaskStep] = []
    }

    private func apply(_ update: TaskUpdate, peer: Peer?, db: PGConnection, now: Double) throws -> Outcome {
        guard UUID(uuidString: update.taskID) != nil,
            let incident = try TaskStore.load(db, taskIDs: [update.taskID.lowercased()], lock: true).first,
            let task = incident.task
        else {
            return Outcome(refusal: "unknown task \(update.taskID)")
        }
        if let trust, case .forbidden(let why) = TrustPolicy.update(peer, taskID: update.taskID, division: task.divisionCode) {
            trust.refused(.outOfScope, who: peer?.name ?? "", key: task.divisionCode, "updates: \(why)")
            return Outcome(refusal: "forbidden: \(why)")
        }
        if let target = update.divisionCode {
            if let trust, case .forbidden(let why) = TrustPolicy.update(peer, taskID: update.taskID, division: target) {
                trust.refused(.outOfScope, who: peer?.name ?? "", key: target, "updates: \(why)")
                return Outcome(refusal: "forbidden: \(why)")
            }
            guard try TaskUpdateStore.divisionExists(db, target) else {
                return Outcome(refusal: "unknown division \(target) (not in liandong.divisions)")
            }
        }
        switch planner.apply(update.action, to: incident, actor: update.actor, note: update.note, updateID: update.updateID,
                             reassignTo: update.divisionCode, now: now) {
        case .failure(let refusal): return Outcome(refusal: refusal.message)
        case .success(let step): return Outcome(steps: [step])
        }
    }
}
