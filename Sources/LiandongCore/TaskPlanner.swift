import Foundation

/// A task as the planner sees it: typed fields, times in Unix seconds. Formatting (UTC text for
/// PostgreSQL, CST for the feed) happens only at the edges.
public struct TaskRecord: Sendable, Equatable {
    public var id: String
    public var incidentID: String
    public var kind: TaskKind
    public var state: TaskState
    public var tier: Tier
    /// The responsible division at `tier` (village, township or county code).
    public var divisionCode: String
    public var gridCode: String
    public var category: String
    public var priority: Int
    public var departments: [String]
    public var respondBy: Double
    public var resolveBy: Double
    /// Missed a deadline at the county (nothing higher to climb to), since `overdueSince`.
    public var overdue: Bool
    public var overdueSince: Double?
    /// When the last message carrying the incident's counts went out (any kind): coalescing
    /// measures `Rules.updateIntervalSeconds` from it.
    public var countsSentAt: Double
    /// An evidence update held back by coalescing is due then (nil: none pending).
    public var updateDueAt: Double?
    /// Tiers climbed so far (deadlines missed, rejections, reassignments).
    public var escalations = 0
    /// When a step of its life was last announced (created, upgraded, escalated, ...; evidence
    /// updates do not count): an overdue task is announced again `reannounce_minutes` after it.
    public var lastAnnouncedAt: Double = 0
    /// When it reached resolved or false_alarm.
    public var closedAt: Double?

    public init(id: String, incidentID: String, kind: TaskKind, state: TaskState = .open, tier: Tier, divisionCode: String,
                gridCode: String, category: String, priority: Int, departments: [String], respondBy: Double,
                resolveBy: Double, overdue: Bool = false, overdueSince: Double? = nil, countsSentAt: Double = 0,
                updateDueAt: Double? = nil)
    {
        self.countsSentAt = countsSentAt
        self.updateDueAt = updateDueAt
        self.id = id
        self.incidentID = incidentID
        self.kind = kind
        self.state = state
        self.tier = tier
        self.divisionCode = divisionCode
        self.gridCode = gridCode
        self.category = category
        self.priority = priority
        self.departments = departments
        self.respondBy = respondBy
        self.resolveBy = resolveBy
        self.overdue = overdue
        self.overdueSince = overdueSince
    }

    /// Its feed topic (see `TaskMessage.topic`).
    public var topic: String { TaskMessage.topic(kind: MessageKind(kind), tier: tier, divisionCode: divisionCode, gridCode: gridCode) }

    /// Whether a deadline calls for the sweeper (`TaskPlanner.deadline`) at `now`: unfinished and
    /// past respond_by while open or past resolve_by; or, overdue at the county already,
    /// announced last `reannounce` seconds ago or more. `TaskDeadlines.due` selects exactly these.
    public func isDue(at now: Double, reannounce: Double) -> Bool {
        guard !state.isTerminal else { return false }
        if overdue { return lastAnnouncedAt <= now - reannounce }
        return (state == .open && respondBy <= now) || resolveBy <= now
    }

    /// Whether a coalesced evidence update is owed at `now` (`TaskPlanner.dueUpdate`).
    public func owesUpdate(at now: Double) -> Bool { updateDueAt.map { $0 <= now } ?? false }
}

/// An incident with what a task message carries about it, and its task if it has one.
public struct IncidentState: Sendable, Equatable {
    public var id: String
    public var category: String
    public var gridCode: String
    /// The grid's village: the divisions of every tier derive from it.
    public var villageCode: String
    /// Most urgent priority among its events (1 most urgent).
    public var priority: Int
    public var lon: Double
    public var lat: Double
    /// The grid's worker.
    public var workerID: String?
    /// Counts and the most recent ids.
    public var evidence: TaskEvidence
    public var task: TaskRecord?
    /// Incidents it could not join without breaking their bounds (max_span_m, max_duration_s).
    public var relatedIncidentIDs: [String]
    /// Names, description, camera and media for its messages.
    public var context = IncidentContext()
    /// A resident's request (liandong.citizen_requests) is among its events: it gets a task even
    /// when minor - an unanswered request climbs village -> township -> county like any task.
    public var residentRequest = false

    public init(id: String, category: String, gridCode: String, villageCode: String, priority: Int, lon: Double, lat: Double,
                workerID: String?, evidence: TaskEvidence, task: TaskRecord? = nil, relatedIncidentIDs: [String] = [])
    {
        self.relatedIncidentIDs = relatedIncidentIDs
        self.id = id
        self.category = category
        self.gridCode = gridCode
        self.villageCode = villageCode
        self.priority = priority
        self.lon = lon
        self.lat = lat
        self.workerID = workerID
        self.evidence = evidence
        self.task = task
    }
}

/// task_history.event: what happened to a task.
public enum TaskEvent: String, Sendable, CaseIterable {
    case created, upgraded, accepted, started, resolved, falseAlarm = "false_alarm", rejected, escalated, overdue, reannounced, reassigned
    /// A resident rated the outcome 1 or 2 (liandong.citizen_feedback): open again where it was closed.
    case reopened
    /// A dispatcher's note (task_update `note`): the task is as it was.
    case noted
}

/// One step of a task's life as the planner decided it: the task after the step, the history row
/// that records it (`event` nil: nothing recorded, an evidence update) and the message announcing it.
/// The store writes the task row as it is here (`TaskStore.write`): every time in it is the
/// planner's, none is the database's.
public struct TaskStep: Sendable, Equatable {
    public var task: TaskRecord
    public var event: TaskEvent?
    /// When the step was taken (the planner's clock): task_history.at, the task's updated_at.
    public var at: Double
    /// The task climbed a tier (task_history.from_division_code is then `fromDivision`).
    public var escalated: Bool
    public var fromDivision: String?
    /// Who acted: a dispatcher's actor, or "liandong".
    public var actor: String
    public var note: String?
    public var updateID: String?
    public var message: TaskMessage

    /// The system's own name as an actor.
    public static let system = "liandong"
}

/// What new evidence on an incident with a task (or none yet) comes to.
public enum EvidenceOutcome: Sendable, Equatable {
    /// A message now: a new task, an upgrade, or an update (material, or the first after a quiet
    /// `Rules.updateIntervalSeconds`).
    case announce(TaskStep)
    /// An update held back (coalesced): the task (`updateDueAt` set) owes one, with the counts
    /// of then (`TaskPlanner.dueUpdate`, sent by the sweeper). Written, not announced.
    case coalesced(TaskRecord)

    /// The step announced, nil when coalesced.
    public var announced: TaskStep? {
        if case .announce(let step) = self { step } else { nil }
    }
}

/// Owns every decision about tasks, pure: what new evidence on an incident emits (verify, joint
/// dispatch, dispatch, upgrade, update), where a task goes (tier, division, departments),
/// its deadlines, what a dispatcher's action does, and what a missed deadline does (escalation
/// up the tiers, overdue at the county, re-announcement). The stores load `IncidentState`s and
/// write the `TaskStep`s back; nothing here does I/O.
public struct TaskPlanner: Sendable {
    public let rules: Rules
    /// New task and message ids (UUIDs, lowercased; tests pass a counter).
    private let newID: @Sendable () -> String

    public init(rules: Rules, newID: @escaping @Sendable () -> String = { UUID().uuidString.lowercased() }) {
        self.rules = rules
        self.newID = newID
    }

    // MARK: evidence

    /// What new evidence on `incident` (already counted in it) emits: a new task (`created`), an
    /// upgrade of its task (`upgraded`: a verify or dispatch task becoming a joint dispatch, open
    /// again with new deadlines), an update of its task (no event) or an update held back, or
    /// nothing (a minor report alone; a task already finished).
    ///
    /// Updates are coalesced (Alertmanager's group_interval): within `Rules.updateIntervalSeconds`
    /// of the task's last message, new evidence is held back and the task owes an update at the
    /// end of that interval, which carries the counts of then - so a camera firing four times a
    /// second makes one update per interval, and the final counts are out within one interval of
    /// the last evidence. Material changes go out at once: a more urgent priority, and the first
    /// alert or report of the other kind (which is always an upgrade: verify or dispatch becoming
    /// joint_dispatch). An incident's category never changes (events correlate within one).
    public func evidence(on incident: IncidentState, now: Double) -> EvidenceOutcome? {
        if let task = incident.task, task.state.isTerminal { return nil }
        let decision = emissionDecision(
            for: IncidentEvidence(alertCount: incident.evidence.alertCount, reportCount: incident.evidence.reportCount,
                                  priority: incident.priority, taskKind: incident.task?.kind),
            dispatchSeverity: incident.residentRequest ? 4 : rules.dispatchSeverity)
        switch decision {
        case .none:
            return nil
        case .create(let kind), .upgrade(let kind):
            let task = route(incident, kind: kind, now: now)
            return .announce(step(incident, task, event: incident.task == nil ? .created : .upgraded, kind: MessageKind(kind), now: now))
        case .update:
            let task = incident.task!
            let due = task.countsSentAt + rules.updateIntervalSeconds
            if incident.priority >= task.priority && now < due {
                var owing = task
                owing.updateDueAt = min(task.updateDueAt ?? due, due)
                return .coalesced(owing)
            }
            return .announce(countsUpdate(incident, task, now: now))
        }
    }

    /// The update a task owes after coalescing (`EvidenceOutcome.coalesced`), with the counts of
    /// now; nil when the incident has no task or its task owes none (finished meanwhile: its last
    /// message carried the counts - `TaskPlanner.forgetOwed`).
    public func dueUpdate(_ incident: IncidentState, now: Double) -> TaskStep? {
        guard let task = incident.task, !task.state.isTerminal, task.owesUpdate(at: now) else { return nil }
        return countsUpdate(incident, task, now: now)
    }

    /// A finished task that still says an update is owed: it owes none (nil: nothing to change).
    public func forgetOwed(_ incident: IncidentState) -> TaskRecord? {
        guard var task = incident.task, task.state.isTerminal, task.updateDueAt != nil else { return nil }
        task.updateDueAt = nil
        return task
    }

    /// An evidence update: the incident's counts and most urgent priority (a task's priority only
    /// rises; its tier and deadlines stay), nothing pending after it.
    private func countsUpdate(_ incident: IncidentState, _ task: TaskRecord, now: Double) -> TaskStep {
        var task = task
        task.priority = min(task.priority, incident.priority)
        return step(incident, task, event: nil, kind: .update, now: now)
    }

    /// Where a new or upgraded task goes: a verify task to the grid's village; others by the
    /// category's route (minor -> village, serious -> township, critical -> county by default),
    /// never below the tier an upgraded task already reached; deadlines from the tier's SLA.
    public func route(_ incident: IncidentState, kind: TaskKind, now: Double) -> TaskRecord {
        let route = rules.route(for: incident.category)
        var tier = kind == .verify ? Tier.village : route.startTier(priority: incident.priority)
        if let current = incident.task, current.tier > tier { tier = current.tier }
        let deadlines = rules.deadlines(tier: tier, priority: incident.priority, from: now)
        var task = TaskRecord(
            id: incident.task?.id ?? newID(), incidentID: incident.id, kind: kind, tier: tier,
            divisionCode: tier.divisionCode(village: incident.villageCode), gridCode: incident.gridCode,
            category: incident.category, priority: incident.priority, departments: route.departments,
            respondBy: deadlines.respondBy, resolveBy: deadlines.resolveBy)
        // An upgraded task is open again, not overdue, at its new deadlines; its climb so far stays.
        task.escalations = incident.task?.escalations ?? 0
        return task
    }

    // MARK: dispatchers

    /// A dispatcher's action on the incident's task: the step, or why it is refused.
    /// `reassignTo`: with `.reassign`, the division that takes the task (of the incident's county).
    public func apply(_ action: TaskAction, to incident: IncidentState, actor: String, note: String?, updateID: String,
                      reassignTo: String? = nil, now: Double) -> Result<TaskStep, TaskRefusal>
    {
        guard var task = incident.task else { return .failure(TaskRefusal("incident \(incident.id) has no task")) }
        var lifecycle = TaskLifecycle(state: task.state, tier: task.tier)
        if action == .reassign {
            guard let division = reassignTo, let tier = Tier(divisionCode: division) else {
                return .failure(TaskRefusal("reassign needs division_code: a division code of 6, 9 or 12 digits"))
            }
            guard division.prefix(6) == task.divisionCode.prefix(6) else {
                return .failure(TaskRefusal("division \(division) is not in the task's county \(task.divisionCode.prefix(6))"))
            }
            guard division != task.divisionCode else { return .failure(TaskRefusal("the task is at \(division) already")) }
            if case .failure(let refusal) = lifecycle.apply(.reassign) { return .failure(refusal) }
            let from = task.divisionCode
            let deadlines = rules.deadlines(tier: tier, priority: task.priority, from: now)
            task.tier = tier
            task.divisionCode = division
            task.state = .open
            task.respondBy = deadlines.respondBy
            task.resolveBy = deadlines.resolveBy
            return .success(step(incident, task, event: .reassigned, kind: .escalation, now: now, escalated: true, from: from,
                                 actor: actor, note: note, updateID: updateID,
                                 reason: "reassigned by \(actor) from \(from) to \(division): \(note ?? "")"))
        }
        switch lifecycle.apply(action) {
        case .failure(let refusal):
            return .failure(refusal)
        case .success(.moved(let state)):
            task.state = state
            let event: TaskEvent = switch action {
            case .accept: .accepted
            case .start: .started
            case .resolve: .resolved
            case .falseAlarm: .falseAlarm
            case .reject: .rejected
            case .reassign: .reassigned
            case .note: .noted
            case .escalate: .escalated
            }
            return .success(step(incident, task, event: event, kind: .update, now: now, actor: actor, note: note,
                                 updateID: updateID, reason: note))
        case .success(.escalate(let tier)):
            let from = task.divisionCode
            hand(&task, to: tier, village: incident.villageCode, now: now)
            let byHand = action == .escalate
            return .success(step(incident, task, event: byHand ? .escalated : .rejected, kind: .escalation, now: now,
                                 escalated: true, from: from, actor: actor, note: note, updateID: updateID,
                                 reason: (byHand ? "escalated by \(actor) from \(from): " : "rejected by \(actor) at \(from): ") + (note ?? "")))
        }
    }

    // MARK: deadlines

    /// A task past a deadline - respond_by missed while open, or resolve_by; when overdue already,
    /// its re-announcement interval passed (the sweeper selects these in PostgreSQL, under the
    /// task's row lock, by `TaskDeadlines.dueCondition`): one tier up with new deadlines (督办, `escalated`), marked overdue
    /// at the county (`overdue`), or, overdue already, announced again (`reannounced`). Every step
    /// is an `escalation` message on the responsible division's topic. Nil without an unfinished task.
    public func deadline(_ incident: IncidentState, now: Double) -> TaskStep? {
        guard var task = incident.task, !task.state.isTerminal else { return nil }
        if task.overdue {
            let since = task.overdueSince.map(Timestamp.formatCST) ?? "?"
            return step(incident, task, event: .reannounced, kind: .escalation, now: now,
                        note: "overdue at the county since \(since)", reason: "overdue at the county since \(since)")
        }
        let missedRespond = task.state == .open && task.respondBy <= now
        let missed = missedRespond ? "respond_by" : "resolve_by"
        let missedAt = Timestamp.formatCST(missedRespond ? task.respondBy : task.resolveBy)
        let from = task.divisionCode
        var lifecycle = TaskLifecycle(state: task.state, tier: task.tier)
        if let tier = lifecycle.escalateForDeadline() {
            hand(&task, to: tier, village: incident.villageCode, now: now)
            let reason = "\(missed) \(missedAt) missed at \(from)"
            return step(incident, task, event: .escalated, kind: .escalation, now: now, escalated: true, from: from,
                        note: reason, reason: reason)
        }
        task.overdue = true
        task.overdueSince = now
        let reason = "\(missed) \(missedAt) missed at the county: overdue"
        return step(incident, task, event: .overdue, kind: .escalation, now: now, note: reason, reason: reason)
    }

    // MARK: residents

    /// A resident's rating of 1 or 2 of a finished task (`CitizenFeedback.reopens`): the task is
    /// open again at the tier and division that closed it, with that tier's deadlines from now,
    /// no longer overdue (`reopened`, announced as an update with the resident's words as its
    /// reason). Nil when the task is not finished (still being worked on: nothing to reopen).
    public func reopen(_ incident: IncidentState, rating: Int, comment: String?, now: Double) -> TaskStep? {
        guard var task = incident.task, task.state.isTerminal else { return nil }
        let deadlines = rules.deadlines(tier: task.tier, priority: task.priority, from: now)
        task.state = .open
        task.respondBy = deadlines.respondBy
        task.resolveBy = deadlines.resolveBy
        task.overdue = false
        task.overdueSince = nil
        let reason = "reopened: the resident rated the outcome \(rating) of 5" + (comment.map { ": \($0)" } ?? "")
        return step(incident, task, event: .reopened, kind: .update, now: now, actor: "resident", note: reason,
                    updateID: nil, reason: reason)
    }

    // MARK: building

    /// The task handed to `tier`: its division there, open again, the tier's deadlines from now.
    private func hand(_ task: inout TaskRecord, to tier: Tier, village: String, now: Double) {
        let deadlines = rules.deadlines(tier: tier, priority: task.priority, from: now)
        task.tier = tier
        task.divisionCode = tier.divisionCode(village: village)
        task.state = .open
        task.respondBy = deadlines.respondBy
        task.resolveBy = deadlines.resolveBy
    }

    /// Every message carries the incident's counts: none is pending after it.
    private func step(_ incident: IncidentState, _ task: TaskRecord, event: TaskEvent?, kind: MessageKind, now: Double,
                      escalated: Bool = false, from: String? = nil, actor: String = TaskStep.system, note: String? = nil,
                      updateID: String? = nil, reason: String? = nil) -> TaskStep
    {
        var task = task
        task.countsSentAt = now
        task.updateDueAt = nil
        if event != nil { task.lastAnnouncedAt = now }
        if escalated { task.escalations += 1 }
        task.closedAt = task.state.isTerminal ? now : nil
        var m = TaskMessage(
            topic: task.topic, messageID: newID(), kind: kind, state: task.state, overdue: task.overdue, taskID: task.id,
            incidentID: incident.id, tier: task.tier, divisionCode: task.divisionCode, gridCode: task.gridCode,
            workerID: incident.workerID, category: incident.category, priority: task.priority, lon: incident.lon,
            lat: incident.lat, departments: task.departments, respondBy: Timestamp.formatCST(task.respondBy),
            resolveBy: Timestamp.formatCST(task.resolveBy), evidence: incident.evidence, emittedAt: Timestamp.formatCST(now))
        m.reason = reason
        m.previousDivisionCode = escalated ? from : nil
        // A dispatcher's step names the dispatcher; the system's own steps name nobody.
        m.actor = actor == TaskStep.system ? nil : actor
        m.updateID = updateID
        m.relatedIncidentIDs = incident.relatedIncidentIDs.isEmpty ? nil : incident.relatedIncidentIDs
        m.villageName = incident.context.villageName
        m.townshipName = incident.context.townshipName
        m.description = incident.context.description
        m.cameraName = incident.context.cameraName
        m.media = incident.context.media.isEmpty ? nil : incident.context.media
        return TaskStep(task: task, event: event, at: now, escalated: escalated, fromDivision: escalated ? from : nil, actor: actor,
                        note: note, updateID: updateID, message: m)
    }
}
