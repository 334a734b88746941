import CLibPQ
import Foundation
import Synchronization

/// What one connection is doing, readable and cancellable from any thread: the statement it is
/// waiting for and since when, and a way to ask the server to cancel it (PQcancel, which libpq
/// makes safe from another thread). A statement cancelled this way fails with a `.cancelled`
/// error even when the server answered it - a COMMIT cancelled while it waited for a synchronous
/// standby is committed locally but maybe not replicated, so its outcome is not a success.
public final class PGActivity: Sendable {
    /// The server process of this session (pg_stat_activity.pid).
    public let backendPID: Int32
    private let canceller: Canceller
    private let state = Mutex(State())

    struct State {
        var statement: String? = nil
        var since: Double = 0
        var cancelRequested = false
        var closed = false
    }

    /// The statement running now and how long it has, when one is.
    public struct Running: Sendable {
        public let statement: String
        public let seconds: Double
        public let backendPID: Int32
        /// When it began (seconds since 1970): with the pid, which statement this is.
        public let since: Double
    }

    init(handle: OpaquePointer) {
        backendPID = PQbackendPID(handle)
        canceller = Canceller(PQgetCancel(handle))
    }

    /// The statement waiting for the server now (nil between statements and once closed).
    public var running: Running? {
        state.withLock { s in
            guard let statement = s.statement, !s.closed else { return nil }
            return Running(statement: statement, seconds: Date().timeIntervalSince1970 - s.since, backendPID: backendPID, since: s.since)
        }
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Asks the server to cancel the statement running now; false when none is (nothing sent).
    /// The statement then fails with a `.cancelled` error whatever the server answers.
    @discardableResult
    public func cancel() -> Bool {
        let running = state.withLock { s -> Bool in
            guard s.statement != nil, !s.closed else { return false }
            s.cancelRequested = true
            return true
        }
        guard running else { return false }
        return canceller.cancel()
    }

    func begin(_ statement: String) {
        state.withLock { s in
            s.statement = statement
            s.since = Date().timeIntervalSince1970
            s.cancelRequested = false
        }
    }

    /// Ends the statement; true when a cancel was asked for while it ran.
    func end() -> Bool {
        state.withLock { s in
            s.statement = nil
            return s.cancelRequested
        }
    }

    func closed() {
        state.withLock { $0.closed = true; $0.statement = nil }
    }
}

/// libpq's cancel object: independent of the connection (it may outlive it), freed once.
private final class Canceller: @unchecked Sendable {
    // @unchecked: PQcancel is documented thread-safe; the pointer is set once and freed in deinit.
    private let pointer: OpaquePointer?

    init(_ pointer: OpaquePointer?) { self.pointer = pointer }

    func cancel() -> Bool {
        guard let pointer else { return false }
        var buffer = [CChar](repeating: 0, count: 256)
        return PQcancel(pointer, &buffer, Int32(buffer.count)) == 1
    }

    deinit { if let pointer { PQfreeCancel(pointer) } }
}

extension PGActivity {
    /// A statement's first words on one line, for logs ("COMMIT", "COPY liandong.events ...").
    public static func summary(_ sql: String, limit: Int = 60) -> String {
        let words = sql.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).joined(separator: " ")
        return words.count <= limit ? words : String(words.prefix(limit)) + "..."
    }
}
