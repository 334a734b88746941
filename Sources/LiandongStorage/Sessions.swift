import Foundation
import LibPQ
import Synchronization

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
    /// is used. `name` says what the session is for in `watch` (writer, reader, sweeper, ...).
    package static func open(_ conninfo: String, name: String = "session", keepalive: Keepalive = .standard,
                             prepare: (PGConnection) throws -> Void = { _ in }) throws -> PGConnection {
        let db = try PGConnection(conninfo: conninfo)
        watch.register(name, db.activity)
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

extension Sessions {
    /// Every session this process opened, by what it is for: what each is waiting for (the
    /// database watchdog reports a statement stuck too long) and a way to cancel them (a shutdown
    /// that must not wait for the database).
    package static let watch = SessionWatch()
}

/// The sessions of a process (see `Sessions.watch`); closed ones are forgotten.
package final class SessionWatch: Sendable {
    private let sessions = Mutex<[(name: String, activity: PGActivity)]>([])

    package init() {}

    package func register(_ name: String, _ activity: PGActivity) {
        sessions.withLock { list in
            list.removeAll { $0.activity.isClosed }
            list.append((name, activity))
        }
    }

    /// The statements waiting for the server now, longest first.
    package func running() -> [(name: String, running: PGActivity.Running)] {
        let list = sessions.withLock { $0 }
        return list.compactMap { s in s.activity.running.map { (s.name, $0) } }.sorted { $0.running.seconds > $1.running.seconds }
    }

    /// Cancels the statements for which `which` is true; returns the sessions' names.
    @discardableResult
    package func cancel(where which: (String, PGActivity.Running) -> Bool) -> [String] {
        let list = sessions.withLock { $0 }
        var cancelled: [String] = []
        for s in list {
            guard let running = s.activity.running, which(s.name, running), s.activity.cancel() else { continue }
            cancelled.append(s.name)
        }
        return cancelled
    }
}
