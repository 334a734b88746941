import Foundation
import LiandongCore
import LibPQ
import Logging
import ServiceLifecycle

/// Enforces deadlines from PostgreSQL (so they survive restarts): every escalation.sweep_ms it
/// escalates tasks that missed respond_by (while open) or resolve_by one tier up — village ->
/// township -> county — with new deadlines and an `escalation` (督办) message on the new
/// division's topic; at the county it marks them overdue and re-announces them every
/// escalation.reannounce_minutes. One task per transaction.
public final class SweeperService: Service, Sendable {
    let config: Config
    let output: BoundedQueue<FeedMessage>
    let logger: Logger
    let metrics: Metrics
    let stop = StopFlag()

    public init(config: Config, output: BoundedQueue<FeedMessage>, metrics: Metrics, logger: Logger) {
        self.metrics = metrics
        self.config = config
        self.output = output
        self.logger = logger
    }

    public func run() async throws {
        try await runThreadService(name: "liandong-sweeper", onStop: { [stop] in stop.set() }) { [self] in try loop() }
    }

    static let dueCondition = """
        t.state NOT IN ('resolved', 'false_alarm')
        AND ((NOT t.overdue AND ((t.state = 'open' AND t.respond_by <= now()) OR t.resolve_by <= now()))
             OR (t.overdue AND t.last_announced_at <= now() - make_interval(secs => $1::float8)))
        """

    /// The tasks `dueCondition` selects, found by range scans on tasks_next_deadline_idx and
    /// tasks_reannounce_idx (migration 013) rather than by filtering every unfinished task.
    static let dueQuery = """
        SELECT id FROM (
            SELECT t.id, t.respond_by FROM liandong.tasks t
            WHERE NOT t.overdue AND t.state NOT IN ('resolved', 'false_alarm')
              AND (CASE WHEN t.state = 'open' THEN least(t.respond_by, t.resolve_by) ELSE t.resolve_by END) <= now()
            UNION ALL
            SELECT t.id, t.respond_by FROM liandong.tasks t
            WHERE t.overdue AND t.state NOT IN ('resolved', 'false_alarm')
              AND t.last_announced_at <= now() - make_interval(secs => $1::float8)
        ) due
        ORDER BY respond_by LIMIT 500
        """

    private func loop() throws {
        let session = DatabaseSession(conninfo: config.databaseURL, logger: logger, stop: stop)
        let interval = Double(config.sweepMilliseconds) / 1000
        let reannounce = String(config.reannounceMinutes * 60)
        var lastStatistics = Date.distantPast
        var lastRetention = Date.distantPast
        while !stop.isSet {
            let started = Date()
            if started.timeIntervalSince(lastStatistics) >= 5 {
                try session.run { db in try refreshStatistics(db) }
                lastStatistics = started
            }
            if started.timeIntervalSince(lastRetention) >= Self.retentionInterval {
                try session.run { db in try enforceRetention(db) }
                lastRetention = started
            }
            let due = try session.run { db in
                try db.query(Self.dueQuery, [reannounce]).rows.map { $0[0]! }
            }
            for id in due where !stop.isSet {
                let messages = try session.run { db in
                    try db.transaction { db in try sweep(id, db: db, reannounce: reannounce) }
                }
                for m in messages {
                    metrics.increment("liandong_escalations_total")
                    metrics.increment("liandong_feed_messages_total", ["kind": m.kind])
                    output.push(m)
                }
            }
            let wait = interval - Date().timeIntervalSince(started)
            var slept = 0.0
            while slept < wait && !stop.isSet {
                Thread.sleep(forTimeInterval: min(0.05, wait - slept))
                slept += 0.05
            }
        }
        logger.info("sweeper stopped")
    }

    /// Retention runs at start and then hourly.
    static let retentionInterval: TimeInterval = 3600

    /// What retention removes, per table: the rows a batch deletes (at most 10,000, oldest first
    /// found through the BRIN indexes of migration 017) and the retention.* days that apply.
    static func retentionStatements(_ r: Config.Retention) -> [(table: String, days: Int, sql: String)] {
        [
            ("events", r.eventsDays, """
                DELETE FROM liandong.events WHERE id IN (
                    SELECT id FROM liandong.events WHERE observed_at < now() - make_interval(days => $1::int) LIMIT 10000)
                """),
            // Only what was published: the feed is the outbox too.
            ("feed", r.feedDays, """
                DELETE FROM liandong.feed WHERE seq IN (
                    SELECT seq FROM liandong.feed WHERE created_at < now() - make_interval(days => $1::int)
                      AND seq <= (SELECT seq FROM liandong.feed_published) LIMIT 10000)
                """),
            ("task_history", r.taskHistoryDays, """
                DELETE FROM liandong.task_history WHERE id IN (
                    SELECT h.id FROM liandong.task_history h JOIN liandong.tasks t ON t.id = h.task_id
                    WHERE h.at < now() - make_interval(days => $1::int) AND t.state IN ('resolved', 'false_alarm') LIMIT 10000)
                """),
            ("rejected_messages", r.deadLetterDays, """
                DELETE FROM liandong.rejected_messages WHERE id IN (
                    SELECT id FROM liandong.rejected_messages WHERE received_at < now() - make_interval(days => $1::int) LIMIT 10000)
                """),
            ("dead_letter_hours", 2, "DELETE FROM liandong.dead_letter_hours WHERE hour < now() - make_interval(days => $1::int)"),
        ]
    }

    /// Removes what retention.* no longer keeps, in batches of short transactions (the writer is
    /// never held up for long), and says what it removed.
    private func enforceRetention(_ db: PGConnection) throws {
        for (table, days, sql) in Self.retentionStatements(config.retention) where days > 0 {
            var removed = 0
            while !stop.isSet {
                let n = try db.query(sql, [String(days)]).affected
                removed += n
                if n < 10_000 { break }
            }
            guard removed > 0 else { continue }
            metrics.increment("liandong_retention_deleted_total", ["table": table], by: Double(removed))
            logger.notice("retention: old rows removed", metadata: ["db.table": "\(table)", "db.rows": "\(removed)", "retention.days": "\(days)"])
        }
    }

    /// Keeps planner statistics in step with fast-growing tables (autovacuum looks only once a
    /// minute): ANALYZE each hot table whose rows changed by more than it held at its last analyze,
    /// so O(log n) times as it grows. Each table on its own: tasks analyzed while empty next to a
    /// million stored events made the cached foreign-key checks on tasks scan it (a fresh county
    /// with imported history). Here, not in the writer, so ingest never waits for it.
    private func refreshStatistics(_ db: PGConnection) throws {
        let rows = try db.query("""
            SELECT relname FROM pg_stat_user_tables
            WHERE schemaname = 'liandong' AND relname IN ('events', 'incidents', 'tasks', 'task_history', 'feed')
              AND n_mod_since_analyze >= greatest(1000, n_live_tup - n_mod_since_analyze)
            """)
        for row in rows.rows {
            try db.execute("ANALYZE liandong.\(row[0]!)")
            logger.debug("statistics refreshed", metadata: ["db.table": "\(row[0]!)"])
        }
    }

    /// Escalates or re-announces one task if it is still due (checked under its row lock).
    private func sweep(_ id: String, db: PGConnection, reannounce: String) throws -> [FeedMessage] {
        let locked = try db.query(
            "SELECT extract(epoch FROM t.overdue_since) FROM liandong.tasks t WHERE t.id = $2::uuid AND \(Self.dueCondition) FOR UPDATE",
            [reannounce, id])
        guard locked.count == 1, let snapshot = try TaskStore.load(db, taskIDs: [id]).first, var task = snapshot.task else {
            return []
        }
        let now = Date().timeIntervalSince1970
        let from = task.division_code
        let missed = task.taskState == .open && Timestamp.parse(task.respond_by)! <= now ? "respond_by" : "resolve_by"
        let missedAt = Timestamp.formatCST(Timestamp.parse(missed == "respond_by" ? task.respond_by : task.resolve_by)!)
        var lifecycle = TaskLifecycle(state: task.taskState, tier: task.taskTier)
        let change: TaskChange
        let reason: String
        if task.overdue {
            let since = locked.scalar.flatMap(Double.init).map(Timestamp.formatCST) ?? "?"
            reason = "overdue at the county since \(since)"
            change = TaskChange(task, event: "reannounced", note: reason)
        } else if let tier = lifecycle.escalateForDeadline() {
            let deadlines = config.rules.deadlines(tier: tier, priority: task.priority, from: now)
            task.tier = tier.rawValue
            task.division_code = tier.divisionCode(village: snapshot.villageCode)
            task.state = TaskState.open.rawValue
            task.respond_by = Timestamp.formatUTC(deadlines.respondBy)
            task.resolve_by = Timestamp.formatUTC(deadlines.resolveBy)
            reason = "\(missed) \(missedAt) missed at \(from)"
            change = TaskChange(task, event: "escalated", escalated: true, from: from, note: reason)
        } else {
            task.overdue = true
            reason = "\(missed) \(missedAt) missed at the county: overdue"
            change = TaskChange(task, event: "overdue", note: reason)
        }
        try TaskStore.apply(db, [change])
        logger.notice("task escalated", metadata: [
            "task.id": "\(task.id)", "task.event": "\(change.event)", "task.division": "\(task.division_code)",
        ])
        return try TaskStore.appendFeed(db, [TaskStore.message(snapshot, task, kind: .escalation, now: now, reason: reason,
                                                                previousDivision: change.escalated ? from : nil)])
    }
}
