import Foundation
import LibPQ

/// The one way a Liandong process opens a database session: warnings only in its notices, and
/// TCP keepalives so that the server ends the session (and releases its locks) when this client
/// vanishes without closing - a network partition, a kill -9.
package enum Sessions {
    /// How soon a vanished client is noticed: `standard` within about half a minute (10 s idle,
    /// then 3 probes 5 s apart); `fast` within about 5 s (the leadership session, whose lock
    /// decides who leads).
    package enum Keepalive: Sendable {
        case standard, fast

        var settings: String {
            switch self {
            case .standard: "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3"
            case .fast: "SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3"
            }
        }
    }

    /// Opens a session and runs `prepare` on it (ha: the lease must name this daemon) before it
    /// is used.
    package static func open(_ conninfo: String, keepalive: Keepalive = .standard,
                             prepare: (PGConnection) throws -> Void = { _ in }) throws -> PGConnection {
        let db = try PGConnection(conninfo: conninfo)
        do {
            try db.execute("SET client_min_messages = warning")
            try db.execute(keepalive.settings)
            try prepare(db)
        } catch {
            db.close()
            throw error
        }
        return db
    }
}
