import Foundation

/// A validated liandong.task_update.v1 message from a dispatcher.
public struct TaskUpdate: Sendable, Equatable {
    public static let schema = "liandong.task_update.v1"

    public var updateID: String
    public var taskID: String
    public var action: TaskAction
    public var actor: String
    public var at: Double
    public var note: String?
    /// With `reassign`: the division that takes the task.
    public var divisionCode: String?
    /// The JSON as received.
    public var body: String

    /// Decodes one body. On failure returns the refusal and, when it could be read, the update_id
    /// (so the answer can name it). An `at` more than `maxFutureSeconds` after `now` is refused: a
    /// dispatcher's clock that far ahead would falsify the assessment's times to accept and resolve.
    public static func decode(_ bytes: [UInt8], now: Double, maxFutureSeconds: Double) -> Result<TaskUpdate, TaskUpdateError> {
        guard let text = String(validating: bytes, as: UTF8.self) else { return .failure(TaskUpdateError(updateID: nil, message: "body is not valid UTF-8")) }
        let parsed: JSONValue
        do { parsed = try JSONValue.parse(bytes) } catch {
            return .failure(TaskUpdateError(updateID: nil, message: "body is not valid JSON: \(error)"))
        }
        guard case .object(let o) = parsed else {
            return .failure(TaskUpdateError(updateID: nil, message: "body is not a JSON object"))
        }
        var updateID: String? = nil
        if case .string(let s)? = o["update_id"], !s.isEmpty, s.utf8.count <= 128 { updateID = s }
        func fail(_ message: String) -> Result<TaskUpdate, TaskUpdateError> {
            .failure(TaskUpdateError(updateID: updateID, message: message))
        }
        guard o["schema"] == .string(schema) else { return fail("schema must be \(schema)") }
        guard let updateID else { return fail("update_id is required (a string of 1-128 bytes)") }
        guard case .string(let taskID)? = o["task_id"], !taskID.isEmpty else { return fail("task_id is required") }
        guard case .string(let actionText)? = o["action"], let action = TaskAction(rawValue: actionText) else {
            return fail("action must be one of " + TaskAction.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard case .string(let actor)? = o["actor"], !actor.isEmpty else { return fail("actor is required") }
        guard case .string(let atText)? = o["at"], let at = Timestamp.parse(atText) else {
            return fail("at must be an RFC 3339 time")
        }
        guard at <= now + maxFutureSeconds else {
            return fail("at \(atText) is \(Int(at - now)) s in the future (more than \(Int(maxFutureSeconds)) s): check the sender's clock")
        }
        var note: String? = nil
        switch o["note"] {
        case nil, .null?: break
        case .string(let s)?: note = s
        default: return fail("note must be a string")
        }
        if action == .reject && (note ?? "").isEmpty { return fail("a reject needs a note giving the reason") }
        if action == .note && (note ?? "").isEmpty { return fail("a note action needs the note's text in note") }
        if action == .escalate && (note ?? "").isEmpty { return fail("an escalate needs a note giving the reason (督办)") }
        var divisionCode: String? = nil
        if action == .reassign {
            guard case .string(let code)? = o["division_code"], Tier(divisionCode: code) != nil else {
                return fail("a reassign needs division_code: the code (6, 9 or 12 digits) of the division that takes the task")
            }
            guard !(note ?? "").isEmpty else { return fail("a reassign needs a note giving the reason") }
            divisionCode = code
        }
        return .success(TaskUpdate(updateID: updateID, taskID: taskID, action: action, actor: actor, at: at,
                                   note: note, divisionCode: divisionCode, body: text))
    }

    /// The body a dispatcher sends (keys sorted): what `decode` reads.
    public static func encode(updateID: String, taskID: String, action: TaskAction, actor: String, at: Double,
                              note: String? = nil, divisionCode: String? = nil) -> [UInt8] {
        var out = JSONText()
        out.object {
            $0.field("action", action.rawValue)
            $0.field("actor", actor)
            $0.field("at", Timestamp.formatCST(at))
            if let divisionCode { $0.field("division_code", divisionCode) }
            $0.field("note", note)
            $0.field("schema", schema)
            $0.field("task_id", taskID)
            $0.field("update_id", updateID)
        }
        return Array(out.text.utf8)
    }

    public init(updateID: String, taskID: String, action: TaskAction, actor: String, at: Double, note: String?,
                divisionCode: String? = nil, body: String) {
        self.divisionCode = divisionCode
        self.updateID = updateID
        self.taskID = taskID
        self.action = action
        self.actor = actor
        self.at = at
        self.note = note
        self.body = body
    }
}

/// Why a task_update could not be read, with its update_id when that much was readable.
public struct TaskUpdateError: Error, Sendable, Equatable {
    public let updateID: String?
    public let message: String
}
