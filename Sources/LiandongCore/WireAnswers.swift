/// The small messages of the wire contract besides alerts, reports, tasks and task updates: the
/// answers of the acknowledged ingest and updates ROUTERs, replay requests and their end frame,
/// and the feed heartbeat. One type each, written with `JSONText` (keys sorted, as the schemas in
/// schemas/json show them) and read with `JSONValue`, by the daemon and by LiandongClient alike.

/// Answer of the acknowledged ingest ROUTER (schemas/json/ingest_answer.v1.schema.json).
public struct IngestAnswer: Sendable, Equatable {
    public var ok: Bool
    /// alert_id or report_id; absent only for a refusal of a message too broken to have one.
    public var id: String?
    /// A repeat of a stored id (ok, no second effect).
    public var duplicate: Bool
    /// "<reason code>: <detail>" of a refusal.
    public var error: String?

    public init(ok: Bool, id: String?, duplicate: Bool = false, error: String? = nil) {
        self.ok = ok
        self.id = id
        self.duplicate = duplicate
        self.error = error
    }

    public static func stored(_ id: String) -> IngestAnswer { IngestAnswer(ok: true, id: id) }
    public static func duplicate(_ id: String) -> IngestAnswer { IngestAnswer(ok: true, id: id, duplicate: true) }
    public static func refused(_ id: String?, error: String) -> IngestAnswer { IngestAnswer(ok: false, id: id, error: error) }

    /// An answer's error that means "not now, send it again later" (`unavailable: ...`): nothing
    /// of the message was kept, unlike a refusal for what the message is.
    public static func isUnavailable(_ error: String?) -> Bool { error?.hasPrefix("unavailable:") ?? false }

    public func json() -> [UInt8] {
        var out = JSONText()
        out.object {
            if duplicate { $0.field("duplicate") { $0.raw("true") } }
            $0.field("error", error)
            $0.field("id", id)
            $0.field("ok") { $0.raw(ok ? "true" : "false") }
        }
        return Array(out.text.utf8)
    }

    public init?(json bytes: [UInt8]) {
        guard case .object(let o)? = try? JSONValue.parse(bytes), case .bool(let ok)? = o["ok"] else { return nil }
        self.init(ok: ok, id: o["id"]?.stringValue, duplicate: o["duplicate"] == .bool(true), error: o["error"]?.stringValue)
    }
}

/// Answer of the updates ROUTER to a task update (schemas/json/task_update_answer.v1.schema.json).
public struct TaskUpdateAnswer: Sendable, Equatable {
    public var ok: Bool
    public var updateID: String?
    public var error: String?

    public init(ok: Bool, updateID: String?, error: String? = nil) {
        self.ok = ok
        self.updateID = updateID
        self.error = error
    }

    public func json() -> [UInt8] {
        var out = JSONText()
        out.object {
            $0.field("error", error)
            $0.field("ok") { $0.raw(ok ? "true" : "false") }
            $0.field("update_id", updateID)
        }
        return Array(out.text.utf8)
    }

    public init?(json bytes: [UInt8]) {
        guard case .object(let o)? = try? JSONValue.parse(bytes), case .bool(let ok)? = o["ok"] else { return nil }
        self.init(ok: ok, updateID: o["update_id"]?.stringValue, error: o["error"]?.stringValue)
    }
}

/// A request to the replay ROUTER (schemas/json/replay_request.v1.schema.json).
public struct ReplayRequest: Sendable, Equatable {
    public static let defaultLimit = 1000
    public static let maxLimit = 10_000
    public var since: Int64
    public var prefix: String
    /// 1...maxLimit.
    public var limit: Int

    public init(since: Int64, prefix: String = "task.", limit: Int = ReplayRequest.defaultLimit) {
        self.since = since
        self.prefix = prefix
        self.limit = min(max(limit, 1), Self.maxLimit)
    }

    /// Reads a request; a missing prefix or limit takes its default, a limit outside 1...maxLimit
    /// is clamped. The failure is the text of the end frame that answers it.
    public static func decode(_ bytes: [UInt8]) -> Result<ReplayRequest, ReplayRequestError> {
        guard case .object(let o)? = try? JSONValue.parse(bytes) else {
            return .failure(ReplayRequestError(message: "request must be a JSON object {\"since\":N,\"prefix\":P,\"limit\":L}"))
        }
        guard case .number(let since)? = o["since"], since >= 0, since == since.rounded(), since < 9e15 else {
            return .failure(ReplayRequestError(message: "since must be a non-negative integer"))
        }
        var limit = defaultLimit
        if case .number(let l)? = o["limit"], l.isFinite { limit = Int(max(min(l, Double(maxLimit)), 1)) }
        return .success(ReplayRequest(since: Int64(since), prefix: o["prefix"]?.stringValue ?? "task.", limit: limit))
    }

    public func json() -> [UInt8] {
        var out = JSONText()
        out.object {
            $0.field("limit", integer: limit)
            $0.field("prefix", prefix)
            $0.field("since") { $0.raw(String(since)) }
        }
        return Array(out.text.utf8)
    }
}

public struct ReplayRequestError: Error, Sendable, Equatable {
    public let message: String
}

/// The last frame of a replay answer (schemas/json/replay_end.v1.schema.json).
public enum ReplayEnd: Sendable, Equatable {
    /// The feed head when the answer was read, and whether more messages match beyond the limit.
    case end(head: Int64, more: Bool)
    /// The request could not be answered.
    case error(String)

    public func json() -> [UInt8] {
        var out = JSONText()
        out.object {
            $0.field("end") { $0.raw("true") }
            switch self {
            case .end(let head, let more):
                $0.field("head") { $0.raw(String(head)) }
                $0.field("more") { $0.raw(more ? "true" : "false") }
            case .error(let message):
                $0.field("error", message)
            }
        }
        // Keys sorted: "end" < "error" and "end" < "head" < "more".
        return Array(out.text.utf8)
    }

    /// nil when `bytes` is not an end frame (a feed message).
    public init?(json bytes: [UInt8]) {
        guard case .object(let o)? = try? JSONValue.parse(bytes), o["end"] == .bool(true) else { return nil }
        if let message = o["error"]?.stringValue {
            self = .error(message)
        } else {
            guard case .number(let head)? = o["head"] else { return nil }
            self = .end(head: Int64(head), more: o["more"] == .bool(true))
        }
    }
}

/// The feed heartbeat on topic `hb` (schemas/json/heartbeat.v1.schema.json).
public struct Heartbeat: Sendable, Equatable {
    /// Highest seq published.
    public var head: Int64
    /// When it was sent (RFC 3339, China Standard Time).
    public var at: String

    public init(head: Int64, at: String) {
        self.head = head
        self.at = at
    }

    public func json() -> [UInt8] {
        var out = JSONText()
        out.object {
            $0.field("head") { $0.raw(String(head)) }
            $0.field("at", at)
        }
        return Array(out.text.utf8)
    }

    public init?(json bytes: [UInt8]) {
        guard case .object(let o)? = try? JSONValue.parse(bytes), case .number(let head)? = o["head"] else { return nil }
        self.init(head: Int64(head), at: o["at"]?.stringValue ?? "")
    }
}

extension JSONValue {
    /// The string, when this is one.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer, when this is a number without a fraction.
    public var int64Value: Int64? {
        if case .number(let d) = self, d == d.rounded(), abs(d) < 9e15 { return Int64(d) }
        return nil
    }
}
