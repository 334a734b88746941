import Foundation

/// Evidence carried by a task message: the most recent ids and the totals.
public struct TaskEvidence: Sendable, Codable, Equatable {
    public var alerts: [String]
    public var reports: [String]
    public var alertCount: Int
    public var reportCount: Int

    enum CodingKeys: String, CodingKey {
        case alerts, reports
        case alertCount = "alert_count"
        case reportCount = "report_count"
    }

    public init(alerts: [String], reports: [String], alertCount: Int, reportCount: Int) {
        self.alerts = alerts
        self.reports = reports
        self.alertCount = alertCount
        self.reportCount = reportCount
    }
}

/// A v1 task message (schema liandong.task.v1). `seq` is assigned by the feed outbox.
public struct TaskMessage: Sendable, Codable, Equatable {
    public var schema = "liandong.task.v1"
    public var seq: Int64?
    public var topic: String
    public var messageID: String
    public var kind: TaskKind
    /// The task's state after the change announced (open, accepted, in_progress, resolved, false_alarm).
    public var state: TaskState
    /// True once the task missed a deadline at the county.
    public var overdue: Bool
    public var taskID: String
    public var incidentID: String
    public var tier: Tier
    public var divisionCode: String
    public var gridCode: String
    /// The grid worker asked to verify (verify tasks) or responsible for the grid.
    public var workerID: String?
    public var category: String
    public var priority: Int
    public var lon: Double
    public var lat: Double
    public var departments: [String]
    public var respondBy: String
    public var resolveBy: String
    public var evidence: TaskEvidence
    public var emittedAt: String
    /// Why (escalation: "respond_by missed", a reject's note ...), when there is a reason.
    public var reason: String?
    /// For an escalation: the division the task came from.
    public var previousDivisionCode: String?
    /// For an update caused by a dispatcher: who acted, and the update's id.
    public var actor: String?
    public var updateID: String?

    enum CodingKeys: String, CodingKey {
        case schema, seq, topic, kind, state, overdue, tier, category, priority, lon, lat, departments, evidence, reason, actor
        case previousDivisionCode = "previous_division_code"
        case updateID = "update_id"
        case messageID = "message_id"
        case taskID = "task_id"
        case incidentID = "incident_id"
        case divisionCode = "division_code"
        case gridCode = "grid_code"
        case workerID = "worker_id"
        case respondBy = "respond_by"
        case resolveBy = "resolve_by"
        case emittedAt = "emitted_at"
    }

    public init(
        topic: String, messageID: String, kind: TaskKind, state: TaskState = .open, overdue: Bool = false, taskID: String, incidentID: String, tier: Tier,
        divisionCode: String, gridCode: String, workerID: String?, category: String, priority: Int,
        lon: Double, lat: Double, departments: [String], respondBy: String, resolveBy: String,
        evidence: TaskEvidence, emittedAt: String
    ) {
        self.topic = topic
        self.messageID = messageID
        self.kind = kind
        self.state = state
        self.overdue = overdue
        self.taskID = taskID
        self.incidentID = incidentID
        self.tier = tier
        self.divisionCode = divisionCode
        self.gridCode = gridCode
        self.workerID = workerID
        self.category = category
        self.priority = priority
        self.lon = lon
        self.lat = lat
        self.departments = departments
        self.respondBy = respondBy
        self.resolveBy = resolveBy
        self.evidence = evidence
        self.emittedAt = emittedAt
    }

    /// The feed topic of a task: its grid code for a verify task still with the grid's village (the
    /// grid worker's), otherwise the responsible division's code; always under "task.".
    public static func topic(kind: TaskKind, tier: Tier = .village, divisionCode: String, gridCode: String) -> String {
        "task." + (kind == .verify && tier == .village ? gridCode : divisionCode)
    }
}
