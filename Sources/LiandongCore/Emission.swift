/// The kinds of task (liandong.tasks.kind).
public enum TaskKind: String, Sendable, Codable, CaseIterable {
    /// Ask the grid's worker to check a camera alert.
    case verify
    /// A serious report alone.
    case dispatch
    /// Camera and report agree.
    case jointDispatch = "joint_dispatch"
}

/// The kinds of task message on the feed (task.v1 `kind`): a task's own kind when it is created
/// or upgraded, else what happened to it.
public enum MessageKind: String, Sendable, Codable, CaseIterable {
    case verify
    case dispatch
    case jointDispatch = "joint_dispatch"
    /// 督办: moved up a tier (or overdue at the county, or announced again while overdue).
    case escalation
    /// New evidence or state on an existing task.
    case update

    /// The message announcing a task of `kind` (created or upgraded).
    public init(_ kind: TaskKind) {
        switch kind {
        case .verify: self = .verify
        case .dispatch: self = .dispatch
        case .jointDispatch: self = .jointDispatch
        }
    }
}

/// What an incident looks like after a batch touched it.
public struct IncidentEvidence: Sendable, Equatable {
    public var alertCount: Int
    public var reportCount: Int
    /// Most urgent priority/severity among its events (1 most urgent).
    public var priority: Int
    /// The kind of the incident's task, nil when it has none yet.
    public var taskKind: TaskKind?

    public init(alertCount: Int, reportCount: Int, priority: Int, taskKind: TaskKind?) {
        self.alertCount = alertCount
        self.reportCount = reportCount
        self.priority = priority
        self.taskKind = taskKind
    }
}

/// What to publish for an incident that received new evidence.
public enum EmissionDecision: Sendable, Equatable {
    /// Record only (a minor report alone: 网格办小事).
    case none
    /// Create the incident's task with this kind and announce it.
    case create(TaskKind)
    /// The incident's existing task changes kind (verify/dispatch -> joint_dispatch) and is announced again.
    case upgrade(TaskKind)
    /// Announce the new evidence on the existing task.
    case update
}

/// The v1 emission rule, a pure function of an incident's evidence:
/// - camera only -> one `verify`;
/// - the first time camera and report agree -> exactly one `joint_dispatch` (upgrading a verify
///   or dispatch task in place: an incident never gets a second task);
/// - a report alone at `dispatchSeverity` or more urgent -> `dispatch`; a minor one is recorded only;
/// - later evidence -> `update`.
public func emissionDecision(for incident: IncidentEvidence, dispatchSeverity: Int) -> EmissionDecision {
    let both = incident.alertCount > 0 && incident.reportCount > 0
    switch incident.taskKind {
    case nil:
        if both { return .create(.jointDispatch) }
        if incident.alertCount > 0 { return .create(.verify) }
        if incident.reportCount > 0 && incident.priority <= dispatchSeverity { return .create(.dispatch) }
        return .none
    case .jointDispatch?:
        return .update
    case .some:
        return both ? .upgrade(.jointDispatch) : .update
    }
}
