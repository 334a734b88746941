import Foundation
import LibPQ

/// Whether a commit on this database waits for a synchronous standby, read as the daemon's own
/// role sees it: `synchronous_standby_names` and `synchronous_commit` (any role may read them),
/// and the standbys attached now from `pg_stat_replication` (its sync_state needs pg_monitor or
/// pg_read_all_stats; without, how many are attached is unknown).
public struct ReplicationState: Sendable, Equatable {
    public var standbyNames: String
    public var synchronousCommit: String
    /// Standbys a commit waits for (the N of "FIRST N (...)" / "ANY N (...)", else 1).
    public var required: Int
    /// Synchronous (or quorum) standbys attached now; nil when this role may not see them.
    public var attached: Int?
    /// The server is a standby itself (the daemon reached a replica: target_session_attrs).
    public var inRecovery: Bool

    public init(standbyNames: String, synchronousCommit: String, attached: Int?, inRecovery: Bool = false) {
        self.standbyNames = standbyNames.trimmingCharacters(in: .whitespaces)
        self.synchronousCommit = synchronousCommit
        self.attached = attached
        self.inRecovery = inRecovery
        required = Self.required(by: self.standbyNames)
    }

    /// Commits wait for a standby by configuration.
    public var commitsWait: Bool {
        !standbyNames.isEmpty && ["on", "remote_write", "remote_apply"].contains(synchronousCommit)
    }

    /// Whether what is committed now is on a synchronous standby too: false when commits do not
    /// wait or too few standbys are attached; when who is attached cannot be seen, commits that
    /// wait are replicated once they return (a commit without its standby hangs instead, which
    /// the stuck-statement report shows).
    public var replicated: Bool {
        guard commitsWait else { return false }
        return attached.map { $0 >= required } ?? true
    }

    /// Why acknowledgements are not replicated (nil when they are), for /readyz and the log.
    public var problem: String? {
        if standbyNames.isEmpty {
            return "acknowledgements are not replicated: synchronous_standby_names is empty, commits do not wait for a standby"
        }
        if !commitsWait {
            return "acknowledgements are not replicated: synchronous_commit is \(synchronousCommit), commits do not wait for a standby"
        }
        if let attached, attached < required {
            return "acknowledgements are not replicated: \(attached) of the \(required) synchronous standby"
                + (required == 1 ? "" : "s") + " named in synchronous_standby_names (\(standbyNames)) attached; commits wait until one is"
        }
        return nil
    }

    /// The number of standbys `synchronous_standby_names` makes a commit wait for.
    static func required(by names: String) -> Int {
        var words = names.split(whereSeparator: { $0 == " " || $0 == "(" }).map { $0.uppercased() }
        if let first = words.first, first == "FIRST" || first == "ANY" { words.removeFirst() }
        if let n = words.first.flatMap({ Int($0) }), n > 0 { return n }
        return 1
    }

    /// Reads the state on `db`.
    public static func read(_ db: PGConnection) throws -> ReplicationState {
        let r = try db.query("""
            SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit'), pg_is_in_recovery(),
                   (SELECT count(*) FILTER (WHERE sync_state IN ('sync', 'quorum')) FROM pg_stat_replication),
                   (SELECT count(*) FILTER (WHERE sync_state IS NULL) FROM pg_stat_replication)
            """)
        let row = r.rows[0]
        let hidden = Int(row[4] ?? "0") ?? 0
        return ReplicationState(standbyNames: row[0] ?? "", synchronousCommit: row[1] ?? "on",
                                attached: hidden > 0 ? nil : Int(row[3] ?? "0"), inRecovery: row[2] == "t")
    }

    /// What the server processes `pids` wait for now (pg_stat_activity: wait_event_type/wait_event,
    /// e.g. "IPC/SyncRep", "Lock/transactionid"); a pid not waiting is left out.
    public static func waits(_ db: PGConnection, pids: [Int32]) throws -> [Int32: String] {
        guard !pids.isEmpty else { return [:] }
        let r = try db.query("""
            SELECT pid, wait_event_type || '/' || wait_event FROM pg_stat_activity
            WHERE pid = ANY($1::int[]) AND wait_event IS NOT NULL
            """, ["{" + pids.map(String.init).joined(separator: ",") + "}"])
        var out: [Int32: String] = [:]
        for row in r.rows { if let pid = Int32(row[0] ?? ""), let wait = row[1] { out[pid] = wait } }
        return out
    }

    /// A wait event in words an operator can act on.
    public static func explain(wait: String) -> String {
        switch wait {
        case "IPC/SyncRep": "waits for a synchronous standby to confirm (synchronous_standby_names names one that is not attached)"
        case let w where w.hasPrefix("Lock/"): "waits for a lock another session holds (\(w))"
        case let w where w.hasPrefix("Client/"): "waits for the network (\(w))"
        case let w where w.hasPrefix("IO/"): "waits for the disk (\(w))"
        default: "waits for \(wait)"
        }
    }
}
