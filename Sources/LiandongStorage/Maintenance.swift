import Foundation
import LiandongCore
import LibPQ

/// The sweeper's housekeeping statements: events day partitions ahead and behind, retention of
/// the other growing tables, and planner statistics. The sweeper decides when; this says how.
package struct Maintenance {
    package let db: PGConnection

    package init(db: PGConnection) { self.db = db }

    // MARK: day partitions (events, worker_positions)

    /// The tables partitioned by day, with the column they are partitioned on.
    package static let dayPartitioned = [(table: "events", column: "observed_at"), (table: "worker_positions", column: "at")]

    /// Creates the partitions of today and the week ahead (CST) that are missing, of every table
    /// partitioned by day; returns how many.
    package func ensurePartitionsAhead() throws -> Int {
        let today = "(now() AT TIME ZONE 'Asia/Shanghai')::date"
        return try Self.dayPartitioned.reduce(0) { n, t in
            n + (Int(try db.query("SELECT liandong.ensure_day_partitions($1, $2, \(today), \(today) + 7)", [t.table, t.column])
                .scalar ?? "0") ?? 0)
        }
    }

    /// A day partition of liandong.events or liandong.worker_positions past retention.
    package struct OldPartition {
        package let table: String
        package let name: String
        /// A DETACH ... CONCURRENTLY was interrupted: it is finished with FINALIZE.
        package let detachPending: Bool
        /// Still attached (else only the drop is left).
        package let attached: Bool
    }

    /// Day partitions of `table` whose day ended more than `days` ago, oldest first.
    package func partitions(of table: String = "events", olderThan days: Int) throws -> [OldPartition] {
        try db.query("""
            SELECT c.relname, coalesce(i.inhdetachpending, false), i.inhrelid IS NOT NULL
            FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = ('liandong.' || $2)::regclass
            WHERE c.relnamespace = 'liandong'::regnamespace AND c.relkind = 'r' AND c.relname ~ ('^' || $2 || '_[0-9]{8}$')
              AND (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
                  <= now() - make_interval(days => $1)
            ORDER BY c.relname
            """, [String(days), table]).typed.map {
            OldPartition(table: table, name: try $0.string(0), detachPending: try $0.bool(1), attached: try $0.bool(2))
        }
    }

    /// Drops a partition whole: for events, its event_keys first; then detached CONCURRENTLY
    /// (writes are never blocked) and dropped. Returns how many rows it held.
    package func drop(_ p: OldPartition) throws -> Int {
        let partition = "liandong.\(p.name)"
        let rows = Int(try db.query("SELECT count(*) FROM \(partition)").scalar ?? "0") ?? 0
        if p.table == "events" {
            try db.query("""
                DELETE FROM liandong.event_keys k USING \(partition) e
                WHERE k.source = e.source AND k.source_id = e.source_id AND k.observed_at = e.observed_at
                """)
        }
        if p.attached {
            try db.execute("ALTER TABLE liandong.\(p.table) DETACH PARTITION \(partition) \(p.detachPending ? "FINALIZE" : "CONCURRENTLY")")
        }
        try db.execute("DROP TABLE \(partition)")
        return rows
    }

    // MARK: retention of other tables

    /// What retention removes from one table: its key (growing with insertion), the time column
    /// the days apply to (insertion time, or near it), any further condition, and the days kept.
    package struct RetentionTarget: Sendable {
        package let table: String
        package let key: String
        package let time: String
        package let condition: String
        package let days: Int
    }

    /// The tables retention.* applies to besides events (whose partitions are dropped whole).
    package static func retentionTargets(feedDays: Int, taskHistoryDays: Int, deadLetterDays: Int) -> [RetentionTarget] {
        [
            // Only what was published: the feed is the outbox too.
            RetentionTarget(table: "feed", key: "seq", time: "created_at",
                            condition: "seq <= (SELECT seq FROM liandong.feed_published)", days: feedDays),
            RetentionTarget(table: "task_history", key: "id", time: "at",
                            condition: "task_id IN (SELECT id FROM liandong.tasks WHERE state IN ('resolved', 'false_alarm'))",
                            days: taskHistoryDays),
            RetentionTarget(table: "rejected_messages", key: "id", time: "received_at", condition: "true", days: deadLetterDays),
            RetentionTarget(table: "dead_letter_hours", key: "hour", time: "hour", condition: "true", days: 2),
        ]
    }

    private static func cutoff(_ target: RetentionTarget) -> String { "now() - make_interval(days => \(target.days))" }

    /// The highest key whose row was inserted before the target's cutoff, by bisection over the
    /// key range (a few dozen primary-key probes: the tables need no index on their times); nil
    /// when the oldest row is newer.
    package func retentionBoundary(_ target: RetentionTarget) throws -> String? {
        let t = "liandong.\(target.table)", key = target.key, cutoff = Self.cutoff(target)
        if target.key == "hour" { return try db.query("SELECT max(hour)::text FROM \(t) WHERE hour < \(cutoff)").scalar }
        let range = try db.query("SELECT min(\(key)), max(\(key)) FROM \(t)")
        guard var low = range[0, "min"].flatMap({ Int64($0) }), var high = range[0, "max"].flatMap({ Int64($0) }) else { return nil }
        // Is the first row at or after `key` older than the cutoff?
        func old(_ at: Int64) throws -> Bool {
            try db.query("SELECT \(target.time) < \(cutoff) FROM \(t) WHERE \(key) >= $1 ORDER BY \(key) LIMIT 1",
                         [String(at)]).scalar == "t"
        }
        guard try old(low) else { return nil }
        while low < high {
            let mid = low + (high - low + 1) / 2
            if try old(mid) { low = mid } else { high = mid - 1 }
        }
        return String(low)
    }

    /// Deletes up to `limit` rows past retention at or below `boundary`; returns how many.
    package func deleteExpired(_ target: RetentionTarget, upTo boundary: String, limit: Int = 10_000) throws -> Int {
        let t = "liandong.\(target.table)"
        return try db.query("""
            DELETE FROM \(t) WHERE \(target.key) IN (
                SELECT \(target.key) FROM \(t) WHERE \(target.key) <= $1 AND \(target.time) < \(Self.cutoff(target)) AND \(target.condition)
                ORDER BY \(target.key) LIMIT \(limit))
            """, [boundary]).affected
    }

    // MARK: statistics

    /// The hot tables whose rows changed by more than they held at their last analyze (so
    /// O(log n) times as they grow): event_keys, incidents, tasks, task_history, feed and today's
    /// events partition (the parent has no rows of its own).
    package func staleStatistics() throws -> [String] {
        try db.query("""
            SELECT relname FROM pg_stat_user_tables
            WHERE schemaname = 'liandong'
              AND (relname IN ('event_keys', 'incidents', 'tasks', 'task_history', 'feed')
                   OR relname = 'events_' || to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD'))
              AND n_mod_since_analyze >= greatest(1000, n_live_tup - n_mod_since_analyze)
            """).typed.map { try $0.string(0) }
    }

    package func analyze(_ table: String) throws { try db.execute("ANALYZE liandong.\(table)") }
}
