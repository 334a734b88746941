import CoreMetrics
import Foundation
import LiandongStorage
import LibPQ
import Logging
import ServiceLifecycle
import Synchronization

/// database.synchronous and database.stuck_s.
public struct DatabaseGuard: Sendable {
    /// Whether an acknowledgement must mean the rows are on a synchronous standby too.
    public enum Synchronous: String, Sendable, CaseIterable {
        case off, warn, require

        var meaning: String {
            switch self {
            case .off: "not checked"
            case .warn: "checked; /readyz says degraded while acknowledgements are not replicated"
            case .require: "nothing is acknowledged while no synchronous standby is attached"
            }
        }
    }

    public var synchronous: Synchronous = .warn
    /// A statement waiting longer than this is reported (/readyz, the log every 30 s).
    public var stuckSeconds: Double = 10

    public init() {}
}

/// What the database watchdog found, shared with the writer (whether it may write, in require
/// mode) and with /readyz. Written by `DatabaseWatch`, read by anyone.
public final class DatabaseHealth: Sendable {
    struct Stuck: Sendable {
        let session: String
        let statement: String
        let seconds: Double
        /// What it waits for, in words (nil: not known yet).
        let wait: String?
    }

    struct State: Sendable {
        var replication: ReplicationState?
        /// require: why nothing is acknowledged now.
        var unavailable: String?
        var stuck: [Stuck] = []
        /// The watchdog's own query has not answered for this many seconds (0: it has).
        var watchSilentSeconds: Double = 0
        var shutdownSince: Double?
    }

    let mode: DatabaseGuard.Synchronous
    private let state: Mutex<State>

    public init(mode: DatabaseGuard.Synchronous) {
        self.mode = mode
        // require: nothing is written before the first check says a standby is attached.
        state = Mutex(State(unavailable: mode == .require ? "the database's replication has not been checked yet" : nil))
    }

    func update(_ body: (inout State) -> Void) { state.withLock { body(&$0) } }
    var snapshot: State { state.withLock { $0 } }

    /// require mode: why nothing may be acknowledged now (nil: writing is allowed).
    public var unavailable: String? { state.withLock { $0.unavailable } }

    /// The daemon is stopping (SIGTERM or SIGINT received).
    public var isStopping: Bool { state.withLock { $0.shutdownSince != nil } }

    /// The daemon began to stop: statements that keep it waiting are cancelled (see `DatabaseWatch`).
    public func shutdownBegan() {
        state.withLock { if $0.shutdownSince == nil { $0.shutdownSince = Date().timeIntervalSince1970 } }
    }

    /// What /readyz adds to "ready": nil when nothing is wrong; `ready: false` when the daemon
    /// cannot acknowledge (require without a standby, a statement stuck); `ready: true` with
    /// "degraded: ..." when it acknowledges what is not replicated (warn).
    func readiness() -> (ready: Bool, text: String)? {
        let s = snapshot
        if let stuck = s.stuck.first {
            return (false, "stuck: the \(stuck.session) session's \(stuck.statement) has waited \(Int(stuck.seconds)) s"
                + (stuck.wait.map { ": it \($0)" } ?? "") + (s.stuck.count > 1 ? " (and \(s.stuck.count - 1) more)" : ""))
        }
        if let reason = s.unavailable { return (false, "unavailable: " + reason) }
        if mode == .warn, let problem = s.replication?.problem { return (true, "degraded: " + problem) }
        return nil
    }
}

/// The database watchdog (one per daemon). Every second it looks at what each database session
/// of this process waits for (`Sessions.watch`) and, on a session of its own, whether commits
/// are replicated to a synchronous standby (database.synchronous):
/// - a statement waiting longer than database.stuck_s is reported in /readyz and in the log at
///   least every 30 s, with what it waits for (pg_stat_activity's wait event);
/// - require: while no synchronous standby is attached the writer writes nothing (it spills and
///   gateways are answered "unavailable"), and a writer statement waiting meanwhile is cancelled;
/// - once the daemon is stopping, a statement that keeps it waiting (2 s, or anything after 5 s)
///   is cancelled, so SIGTERM ends the daemon within 10 s whatever the database does. A cancelled
///   statement's outcome is unknown: its batch is not acknowledged and goes to the spill file.
/// The checks run on a thread of their own and the decisions on another that never waits for
/// the database, so a database that stops answering cannot stop the watchdog.
public final class DatabaseWatch: Service, Sendable {
    let config: Config
    let health: DatabaseHealth
    let logger: Logger
    let stop = StopFlag()
    let replicated: CoreMetrics.Gauge
    let standbys: CoreMetrics.Gauge
    let longest: CoreMetrics.Gauge
    let cancelled: CounterFamily
    /// The checker's findings, with when they were made.
    private let found = Mutex<(at: Double, replication: ReplicationState?, waits: [Int32: String])>((0, nil, [:]))

    /// After this long into a shutdown any statement is cancelled; before, those waiting this long.
    static let shutdownCancelAfter = 5.0
    static let shutdownStatementSeconds = 2.0
    static let reportEverySeconds = 30.0

    public init(config: Config, health: DatabaseHealth, metrics: Metrics, logger: Logger) {
        self.config = config
        self.health = health
        self.logger = logger
        replicated = metrics.gauge("liandong_db_acks_replicated")
        standbys = metrics.gauge("liandong_db_synchronous_standbys")
        longest = metrics.gauge("liandong_db_longest_wait_seconds")
        cancelled = metrics.counters("liandong_db_statements_cancelled_total", by: "reason", known: ["shutdown", "replication"])
    }

    public func run() async throws {
        let checker = Thread { [self] in check() }
        checker.name = "liandong-dbcheck"
        checker.start()
        try await runThreadService(name: "liandong-dbwatch", onStop: { [stop] in stop.set() }) { [self] in watch() }
    }

    /// The checking thread: reads the replication state and the wait events of long statements.
    /// It may block on an unanswering database; nothing waits for it.
    private func check() {
        var db: PGConnection?
        var lastLogged = ""
        while !stop.isSet {
            let stuckPIDs = Sessions.watch.running().filter { $0.running.seconds >= min(config.databaseGuard.stuckSeconds, 1) }
                .map(\.running.backendPID)
            do {
                if db == nil || db?.isOK == false {
                    db = try Sessions.open(config.databaseURL, name: "watch")
                    try db!.execute("SET statement_timeout = '3s'")
                }
                let replication = config.databaseGuard.synchronous == .off ? nil : try ReplicationState.read(db!)
                let waits = try ReplicationState.waits(db!, pids: stuckPIDs)
                found.withLock { $0 = (Date().timeIntervalSince1970, replication, waits) }
                lastLogged = ""
            } catch {
                db = nil
                if "\(error)" != lastLogged {
                    lastLogged = "\(error)"
                    logger.debug("database watchdog: cannot check", metadata: ["db.error": "\(error)"])
                }
            }
            let until = Date(timeIntervalSinceNow: 1)
            while !stop.isSet && Date() < until { Thread.sleep(forTimeInterval: 0.05) }
        }
        db?.close()
    }

    /// The deciding thread: never waits for the database.
    private func watch() {
        let bound = config.databaseGuard.stuckSeconds
        let mode = config.databaseGuard.synchronous
        var reported: [String: Double] = [:]
        var lastProblem: String? = "(not checked)"
        var cancelledAtShutdown = Set<String>()
        while !stop.isSet {
            let now = Date().timeIntervalSince1970
            let (checkedAt, replication, waits) = found.withLock { $0 }
            let running = Sessions.watch.running()
            longest.record(running.first?.running.seconds ?? 0)

            // Stopping: nothing the database does may hold the daemon back.
            if let since = health.snapshot.shutdownSince {
                let all = now - since >= Self.shutdownCancelAfter
                for name in Sessions.watch.cancel(where: { _, r in
                    (all || r.seconds >= Self.shutdownStatementSeconds) && cancelledAtShutdown.insert("\(r.backendPID)/\(r.since)").inserted
                }) {
                    cancelled.increment("shutdown")
                    logger.warning("\("stopping: cancelled a database statement that kept the daemon waiting; ")\("what it was writing is not acknowledged (gateways resend; the SUB path's part goes to the spill file)")",
                        metadata: ["db.session": "\(name)"])
                }
            }

            // Replication.
            if mode != .off, let replication {
                let problem = replication.problem
                replicated.record(problem == nil ? 1 : 0)
                standbys.record(Double(replication.attached ?? -1))
                if problem != lastProblem {
                    if let problem {
                        logger.warning(mode == .require ? "not acknowledging: \(problem)" : "\(problem)", metadata: [
                            "database.synchronous": "\(mode.rawValue)",
                            "db.synchronous_standby_names": "\(replication.standbyNames)",
                        ])
                    } else {
                        logger.notice("acknowledgements are replicated: commits wait for a synchronous standby", metadata: [
                            "db.synchronous_standby_names": "\(replication.standbyNames)",
                            "db.synchronous_standbys": "\(replication.attached.map(String.init) ?? "unknown (grant pg_monitor to see)")",
                        ])
                    }
                    lastProblem = problem
                }
                health.update { $0.replication = replication }
                if mode == .require {
                    health.update { $0.unavailable = problem }
                    if problem != nil {
                        // A commit waiting for the standby that left: its outcome is unknown; spilled.
                        for name in Sessions.watch.cancel(where: { name, r in name == "writer" && r.seconds >= 1 }) {
                            cancelled.increment("replication")
                            logger.warning("cancelled the writer's statement waiting for a synchronous standby; its batch is not acknowledged and goes to the spill file", metadata: ["db.session": "\(name)"])
                        }
                    }
                }
            }

            // Statements waiting too long.
            var stuck: [DatabaseHealth.Stuck] = []
            for (name, r) in running where r.seconds >= bound {
                let wait = waits[r.backendPID].map(ReplicationState.explain(wait:))
                let entry = DatabaseHealth.Stuck(session: name, statement: PGActivity.summary(r.statement, limit: 40),
                                                 seconds: r.seconds, wait: wait)
                stuck.append(entry)
                let key = "\(name)/\(r.backendPID)"
                if now - (reported[key] ?? 0) >= Self.reportEverySeconds {
                    reported[key] = now
                    logger.warning("a database statement is stuck", metadata: [
                        "db.session": "\(name)", "db.statement": "\(entry.statement)", "db.waited_s": "\(Int(r.seconds))",
                        "db.waits_for": "\(wait ?? "not known yet (the watchdog's own query has not answered)")",
                        "database.stuck_s": "\(bound)",
                    ])
                }
            }
            if stuck.isEmpty { reported.removeAll() }
            health.update {
                $0.stuck = stuck
                $0.watchSilentSeconds = checkedAt == 0 ? 0 : max(0, now - checkedAt - 1)
            }
            let until = Date(timeIntervalSinceNow: 0.25)
            while !stop.isSet && Date() < until { Thread.sleep(forTimeInterval: 0.05) }
        }
    }
}
