/// A failed libpq operation. `description` stays free of connection secrets; the server's
/// message, SQLSTATE and detail are kept for logs and for deciding what to do.
public struct PQError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// Could not connect, or the connection broke: worth retrying later.
        case connection
        /// The server refused a statement (see `sqlState`).
        case query
        /// libpq misuse or an unexpected result shape.
        case client
        /// This process asked the server to cancel the statement (`PGActivity.cancel`): its
        /// outcome is unknown (a cancelled COMMIT may have committed locally). Worth retrying,
        /// like a broken connection; the session is closed and opened anew.
        case cancelled
    }

    public let kind: Kind
    public let message: String
    /// Five-character SQLSTATE when the server sent one (e.g. "23505", "42P01").
    public let sqlState: String?
    public let detail: String?
    public let hint: String?

    public init(kind: Kind, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil) {
        self.kind = kind
        self.message = message.trimmingTrailingNewlines()
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
    }

    public var description: String {
        var text = message
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += "; \(detail)" }
        if let hint { text += "; hint: \(hint)" }
        return text
    }

    /// True when the statement failed for the connection's sake, not for what it does: the
    /// connection is gone (class 08, a libpq connection failure, the server shutting down), or
    /// the statement was cancelled - by this process (`.cancelled`; also query_canceled, 57014,
    /// when a cancel arrived just after its statement ended and hit the next) or by a
    /// statement_timeout. Worth retrying on a fresh session; never a reason to refuse data.
    public var isConnectionFailure: Bool {
        isSessionLost || kind == .cancelled || sqlState == "57014"
    }

    /// True when the session itself is gone (class 08, a libpq connection failure, the server
    /// shutting down or ending it): its locks went with it.
    public var isSessionLost: Bool {
        kind == .connection || (sqlState?.hasPrefix("08") ?? false) || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03"
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = self
        while s.last == "\n" || s.last == " " { s.removeLast() }
        return s
    }
}
