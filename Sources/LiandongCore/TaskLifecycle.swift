/// Where a task is in its life. `open`: waiting for the responsible unit to accept.
public enum TaskState: String, Sendable, Codable, CaseIterable {
    case open, accepted, inProgress = "in_progress", resolved, falseAlarm = "false_alarm"

    public var isTerminal: Bool { self == .resolved || self == .falseAlarm }
}

/// What a dispatcher can say about a task (liandong.task_update.v1 `action`).
public enum TaskAction: String, Sendable, Codable, CaseIterable {
    case accept, start, resolve, falseAlarm = "false_alarm", reject
    /// An operator moves an unfinished task to another division of its county (`division_code`
    /// of the update): open there, with that tier's deadlines. `liandongd task reassign`.
    case reassign
    /// A dispatcher records a note (a call made, what was seen): the task's state does not
    /// change; a task_history row `noted` and an `update` message carry it.
    case note
    /// 督办 by hand: a duty officer moves an unfinished task one tier up with a reason, open there
    /// with that tier's deadlines (task_history `escalated` naming the officer).
    case escalate
}

/// The outcome of applying an action.
public enum TaskTransition: Sendable, Equatable {
    /// The task moves to a new state at its current tier.
    case moved(to: TaskState)
    /// The unit declines: the task climbs to `tier` (上报), open again there.
    case escalate(to: Tier)
}

/// Why an action was refused; `message` is what the dispatcher receives as `error`.
public struct TaskRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The task state machine, pure: the allowed transitions and the precise reason for each refusal.
/// - accept: open -> accepted
/// - start: accepted -> in_progress
/// - resolve, false_alarm: open | accepted | in_progress -> resolved | false_alarm
/// - reject: open -> one tier up, open there; the county cannot reject
/// - reassign: any unfinished state -> open at the named division (TaskPlanner.apply takes it)
/// - note: any unfinished state, unchanged
/// - escalate: any unfinished state -> one tier up, open there; the county cannot escalate
/// Resolved and false-alarmed tasks accept nothing more.
public struct TaskLifecycle: Sendable, Equatable {
    public private(set) var state: TaskState
    public private(set) var tier: Tier

    public init(state: TaskState, tier: Tier) {
        self.state = state
        self.tier = tier
    }

    public mutating func apply(_ action: TaskAction) -> Result<TaskTransition, TaskRefusal> {
        if state.isTerminal {
            return .failure(TaskRefusal("task is already \(state.rawValue); it accepts no more updates"))
        }
        switch action {
        case .accept:
            guard state == .open else { return .failure(TaskRefusal("task is already \(state.rawValue)")) }
            state = .accepted
        case .start:
            guard state == .accepted else {
                return .failure(TaskRefusal(state == .open ? "task must be accepted before it is started"
                                                           : "task is already \(state.rawValue)"))
            }
            state = .inProgress
        case .resolve:
            state = .resolved
        case .falseAlarm:
            state = .falseAlarm
        case .reassign:
            state = .open
        case .note:
            break
        case .escalate:
            guard let up = tier.next else {
                return .failure(TaskRefusal("the task is at the county, the top tier: it cannot be escalated further; reassign it or resolve it"))
            }
            tier = up
            state = .open
            return .success(.escalate(to: up))
        case .reject:
            guard state == .open else {
                return .failure(TaskRefusal("task was \(state.rawValue); only an open task can be rejected"))
            }
            guard let up = tier.next else {
                return .failure(TaskRefusal("the county platform cannot reject a task; resolve it or mark it false_alarm"))
            }
            tier = up
            return .success(.escalate(to: up))
        }
        return .success(.moved(to: state))
    }

    /// A missed deadline: one tier up and open again there, or nil at the county (mark overdue).
    public mutating func escalateForDeadline() -> Tier? {
        guard !state.isTerminal, let up = tier.next else { return nil }
        tier = up
        state = .open
        return up
    }
}

extension Tier {
    /// The tier of a division code: 6 digits county, 9 township, 12 village (nil otherwise).
    public init?(divisionCode code: String) {
        guard code.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
        switch code.utf8.count {
        case 6: self = .county
        case 9: self = .township
        case 12: self = .village
        default: return nil
        }
    }

    /// The tier above, nil for the county.
    public var next: Tier? {
        switch self {
        case .village: .township
        case .township: .county
        case .county: nil
        }
    }

    /// The responsible division's code at this tier, from a village code (codes nest: 6/9/12 digits).
    public func divisionCode(village: String) -> String {
        switch self {
        case .village: village
        case .township: String(village.prefix(9))
        case .county: String(village.prefix(6))
        }
    }
}
