import Foundation

/// What the feed outbox carries: a task message or a reminder, each with its seq once committed.
public protocol FeedEntry: Sendable {
    var seq: Int64? { get set }
    var topic: String { get }
    var messageID: String { get }
    /// liandong.feed.kind: verify, dispatch, joint_dispatch, escalation, update or reminder.
    var feedKind: String { get }
    /// The task it is about (nil: a reminder).
    var feedTaskID: String? { get }
    /// The message as published (with its seq).
    func jsonText() -> String
}

extension TaskMessage: FeedEntry {
    public var feedKind: String { kind.rawValue }
    public var feedTaskID: String? { taskID }
}

/// liandong.reminder.v1 on topic `reminder.<village code>`: a grid had no patrol (巡查) by
/// workers.patrol_due; one per grid and day, to the village that runs the grid's worker.
public struct PatrolReminder: Sendable, Equatable, Codable, FeedEntry {
    public static let schemaName = "liandong.reminder.v1"
    public var schema = PatrolReminder.schemaName
    public var seq: Int64?
    public var topic: String
    public var messageID: String
    /// Why: "patrol_due" (no patrol by the time of day set).
    public var reason = "patrol_due"
    /// The day (CST, YYYY-MM-DD) and the time the patrol was due by.
    public var day: String
    public var patrolDue: String
    public var gridCode: String
    public var gridName: String
    public var villageCode: String
    public var villageName: String?
    public var townshipName: String?
    /// The grid's worker (none registered: left out).
    public var workerID: String?
    public var emittedAt: String

    enum CodingKeys: String, CodingKey {
        case schema, seq, topic, reason, day
        case messageID = "message_id", patrolDue = "patrol_due", gridCode = "grid_code", gridName = "grid_name"
        case villageCode = "village_code", villageName = "village_name", townshipName = "township_name"
        case workerID = "worker_id", emittedAt = "emitted_at"
    }

    public init(messageID: String, day: String, patrolDue: String, gridCode: String, gridName: String, villageCode: String,
                villageName: String?, townshipName: String?, workerID: String?, emittedAt: String)
    {
        topic = Self.topic(village: villageCode)
        self.messageID = messageID
        self.day = day
        self.patrolDue = patrolDue
        self.gridCode = gridCode
        self.gridName = gridName
        self.villageCode = villageCode
        self.villageName = villageName
        self.townshipName = townshipName
        self.workerID = workerID
        self.emittedAt = emittedAt
    }

    public static func topic(village: String) -> String { "reminder." + village }

    public var feedKind: String { "reminder" }
    public var feedTaskID: String? { nil }

    /// Keys sorted, optional fields left out when nil (as `TaskMessage.jsonText`).
    public func jsonText() -> String {
        var out = JSONText()
        out.object {
            $0.field("day", day)
            $0.field("emitted_at", emittedAt)
            $0.field("grid_code", gridCode)
            $0.field("grid_name", gridName)
            $0.field("message_id", messageID)
            $0.field("patrol_due", patrolDue)
            $0.field("reason", reason)
            $0.field("schema", schema)
            if let seq { $0.field("seq") { o in o.raw(String(seq)) } }
            $0.field("topic", topic)
            $0.field("township_name", townshipName)
            $0.field("village_code", villageCode)
            $0.field("village_name", villageName)
            $0.field("worker_id", workerID)
        }
        return out.text
    }

    /// When the patrol of the CST day holding `now` is due, `minutes` after midnight CST, and
    /// that day (YYYY-MM-DD).
    public static func due(minutes: Int, on now: Double) -> (at: Double, day: String) {
        let offset = Double(Timestamp.chinaOffsetSeconds)
        let midnight = ((now + offset) / 86400).rounded(.down) * 86400 - offset
        return (midnight + Double(minutes * 60), String(Timestamp.formatCST(midnight).prefix(10)))
    }
}
