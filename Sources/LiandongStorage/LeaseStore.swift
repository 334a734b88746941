import Foundation
import LiandongCore
import LibPQ

/// Leadership in PostgreSQL (ha.enabled; see `Leadership`): the advisory lock on the leadership
/// session, the lease row (liandong.ha_lease), the takeover record, and ending a former leader's
/// sessions. Every session of a daemon carries its name as application_name.
public enum LeaseStore {
    /// Session advisory lock of the leader ("liandonh": one past the writer lock's "liandong").
    public static let lockKey: Int64 = EventStore.writerLockKey + 1

    /// Prepares the leadership session: statements end after `statementTimeoutMs` (a renewal
    /// never hangs past its deadline). Returns the session's application_name.
    package static func prepareSession(_ db: PGConnection, statementTimeoutMs: Int) throws -> String {
        try db.query("SELECT set_config('statement_timeout', $1, false)", [String(statementTimeoutMs)])
        return try db.query("SELECT current_setting('application_name')").scalar ?? ""
    }

    public static func tryLock(_ db: PGConnection) throws -> Bool {
        try db.query("SELECT pg_try_advisory_lock($1::bigint)", [String(lockKey)]).scalar == "t"
    }

    /// The lease row, aged by the database's clock (nil: nobody has led yet).
    public static func lease(_ db: PGConnection) throws -> Leadership.Lease? {
        let r = try db.query("SELECT holder, epoch, extract(epoch FROM clock_timestamp() - renewed_at) FROM liandong.ha_lease")
        guard r.count == 1, let holder = r.rows[0][0], let epoch = Int64(r.rows[0][1] ?? ""), let age = Double(r.rows[0][2] ?? "")
        else { return nil }
        return Leadership.Lease(holder: holder, epoch: epoch, age: age)
    }

    /// Holding the lock: writes the lease for `me` and records the takeover, then ends the previous
    /// holder's sessions (waiting up to a second for each to go). Returns how many were ended.
    @discardableResult
    public static func take(_ db: PGConnection, _ t: Leadership.Takeover, me: String) throws -> Int {
        try db.transaction { db in
            try db.query("""
                INSERT INTO liandong.ha_lease (holder, epoch, acquired_at, renewed_at) VALUES ($1, $2, now(), now())
                ON CONFLICT (singleton) DO UPDATE SET holder = $1, epoch = $2, acquired_at = now(), renewed_at = now()
                """, [me, String(t.epoch)])
            try db.query("""
                INSERT INTO liandong.ha_takeovers (epoch, holder, previous_holder, reason, lease_age_s)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (epoch) DO NOTHING
                """, [String(t.epoch), me, t.previous?.holder, t.reason.rawValue, t.previous.map { String($0.age) }])
        }
        guard let previous = t.previous, previous.holder != me else { return 0 }
        return try terminate(db, holder: previous.holder)
    }

    /// Takes the lease from `lease.holder` if it still names it at that epoch and is still older
    /// than `expiry` (another standby or a late renewal wins otherwise); then ends its sessions,
    /// which releases its lock. Returns whether the lease was taken.
    public static func evict(_ db: PGConnection, _ lease: Leadership.Lease, me: String, expiry: Double) throws -> Bool {
        let taken = try db.query("""
            UPDATE liandong.ha_lease SET holder = $1, renewed_at = now()
            WHERE holder = $2 AND epoch = $3 AND renewed_at < now() - make_interval(secs => $4::float8)
            """, [me, lease.holder, String(lease.epoch), String(expiry)]).affected == 1
        if taken { try terminate(db, holder: lease.holder) }
        return taken
    }

    /// The leader's renewal: false when the lease no longer names it at its epoch.
    public static func renew(_ db: PGConnection, me: String, epoch: Int64) throws -> Bool {
        try db.query("UPDATE liandong.ha_lease SET renewed_at = now() WHERE holder = $1 AND epoch = $2",
                     [me, String(epoch)]).affected == 1
    }

    /// Ends every session named `holder` but this one, waiting up to a second for each (the
    /// leadership session's short statement_timeout does not apply: cut short, a former leader's
    /// session could outlive the takeover).
    @discardableResult
    public static func terminate(_ db: PGConnection, holder: String) throws -> Int {
        try db.transaction { db in
            try db.execute("SET LOCAL statement_timeout = 0")
            return Int(try db.query("""
                SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 1000)) FROM pg_stat_activity
                WHERE application_name = $1 AND pid <> pg_backend_pid()
                """, [holder]).scalar ?? "0") ?? 0
        }
    }

    /// Refuses a session of a daemon the lease does not name (at its epoch): checked by every
    /// session a leader opens, so one opened after a takeover cannot write.
    public static func fence(_ db: PGConnection, me: String, epoch: Int64) throws {
        let lease = try lease(db)
        guard let lease, lease.holder == me, lease.epoch == epoch else {
            throw LeadershipLost(holder: lease?.holder, me: me)
        }
    }
}

/// A daemon found the lease in another's hands: it is no longer the leader and must not write.
public struct LeadershipLost: Error, CustomStringConvertible, Sendable {
    public let holder: String?
    public let me: String
    public var description: String {
        "this daemon (\(me)) no longer leads: the lease names \(holder ?? "nobody"); it must not write"
    }
}
