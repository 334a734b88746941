import CoreMetrics
import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Logging
import ServiceLifecycle

/// Enforces deadlines from PostgreSQL (so they survive restarts): every escalation.sweep_ms it
/// escalates tasks that missed respond_by (while open) or resolve_by one tier up — village ->
/// township -> county — with new deadlines and an `escalation` (督办) message on the new
/// division's topic; at the county it marks them overdue and re-announces them every
/// escalation.reannounce_minutes. It also sends the evidence updates coalescing held back
/// (tasks.update_due_at, correlation.update_interval_s), with the counts of then. One task per
/// transaction.
public final class SweeperService: Service, Sendable {
    let config: Config
    let output: BoundedQueue<FeedMessage>
    let logger: Logger
    let metrics: Metrics
    let planner: TaskPlanner
    let escalations: CoreMetrics.Counter
    let retentionDeleted: CounterFamily
    let camerasSuppressed: CoreMetrics.Gauge
    let devicesOnline: CoreMetrics.Gauge
    let devicesTimedOut: CoreMetrics.Counter
    let stop = StopFlag()
    /// ha.enabled: starts once this daemon leads.
    let role: HARole

    public init(config: Config, output: BoundedQueue<FeedMessage>, role: HARole = .single(), metrics: Metrics, logger: Logger) {
        self.role = role
        self.metrics = metrics
        planner = TaskPlanner(rules: config.rules)
        escalations = metrics.counter("liandong_escalations_total")
        camerasSuppressed = metrics.gauge("liandong_cameras_suppressed")
        devicesOnline = metrics.gauge("liandong_devices_online")
        devicesTimedOut = metrics.counter("liandong_devices_timed_out_total")
        retentionDeleted = metrics.counters("liandong_retention_deleted_total", by: "table",
                                            known: ["events"] + Self.retentionTargets(config.retention).map(\.table))
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
        guard role.waitForLead({ stop.isSet }) else { return }
        let session = DatabaseSession(conninfo: config.databaseURL, logger: logger, stop: stop, fence: role.fence)
        let interval = Double(config.sweepMilliseconds) / 1000
        let reannounce = String(config.reannounceMinutes * 60)
        var lastStatistics = Date.distantPast
        var lastRetention = Date.distantPast
        var lastCameras = Date.distantPast
        while !stop.isSet {
            let started = Date()
            if started.timeIntervalSince(lastStatistics) >= 5 {
                try session.run { db in
                    try refreshStatistics(db)
                    try expireDevices(db)
                }
                lastStatistics = started
            }
            if started.timeIntervalSince(lastRetention) >= Self.retentionInterval {
                try session.run { db in
                    try maintainPartitions(db)
                    try enforceRetention(db)
                }
                lastRetention = started
            }
            if started.timeIntervalSince(lastCameras) >= config.cameraSuppression.checkSeconds {
                try session.run { db in try reviewCameras(db) }
                lastCameras = started
            }
            let due = try session.run { db in
                try db.query(Self.dueQuery, [reannounce]).rows.map { $0[0]! }
            }
            try publish(due, session) { id, db in try sweep(id, db: db, reannounce: reannounce) }
            let owing = try session.run { db in
                try db.query(Self.owedQuery).rows.map { $0[0]! }
            }
            try publish(owing, session) { id, db in try sendOwedUpdate(id, db: db) }
            let wait = interval - Date().timeIntervalSince(started)
            var slept = 0.0
            while slept < wait && !stop.isSet {
                Thread.sleep(forTimeInterval: min(0.05, wait - slept))
                slept += 0.05
            }
        }
        logger.info("sweeper stopped")
    }

    /// Runs `step` for each task, one transaction each, and hands the feed messages it committed
    /// to the publisher (escalations counted).
    private func publish(_ ids: [String], _ session: DatabaseSession, _ step: (String, PGConnection) throws -> [FeedMessage]) throws {
        for id in ids where !stop.isSet {
            let messages = try session.run { db in try db.transaction { db in try step(id, db) } }
            for m in messages {
                if m.kind == MessageKind.escalation.rawValue { escalations.increment() }
                metrics.feedMessages.increment(m.kind)
                output.push(m)
            }
        }
    }

    /// Retention runs at start and then hourly.
    static let retentionInterval: TimeInterval = 3600

    /// What retention removes: per table, its key (growing with insertion), the time column the
    /// days apply to (insertion time, or near it), any further condition, and the retention.* days.
    struct RetentionTarget {
        let table: String
        let key: String
        let time: String
        let condition: String
        let days: Int
    }

    static func retentionTargets(_ r: Config.Retention) -> [RetentionTarget] {
        [
            // Only what was published: the feed is the outbox too.
            RetentionTarget(table: "feed", key: "seq", time: "created_at",
                            condition: "seq <= (SELECT seq FROM liandong.feed_published)", days: r.feedDays),
            RetentionTarget(table: "task_history", key: "id", time: "at",
                            condition: "task_id IN (SELECT id FROM liandong.tasks WHERE state IN ('resolved', 'false_alarm'))",
                            days: r.taskHistoryDays),
            RetentionTarget(table: "rejected_messages", key: "id", time: "received_at", condition: "true", days: r.deadLetterDays),
            RetentionTarget(table: "dead_letter_hours", key: "hour", time: "hour", condition: "true", days: 2),
        ]
    }

    /// Removes what retention.* no longer keeps, in batches of short transactions (the writer is
    /// never held up for long), and says what it removed. The boundary - the highest key inserted
    /// before the cutoff - is found by a binary search on the primary key (keys grow with
    /// insertion time), so the tables ingest writes need no index on their times.
    private func enforceRetention(_ db: PGConnection) throws {
        for target in Self.retentionTargets(config.retention) where target.days > 0 {
            let cutoff = "now() - make_interval(days => \(target.days))"
            let t = "liandong.\(target.table)"
            guard let boundary = try retentionBoundary(db, target, cutoff: cutoff) else { continue }
            var removed = 0
            while !stop.isSet {
                let n = try db.query("""
                    DELETE FROM \(t) WHERE \(target.key) IN (
                        SELECT \(target.key) FROM \(t) WHERE \(target.key) <= $1 AND \(target.time) < \(cutoff) AND \(target.condition)
                        ORDER BY \(target.key) LIMIT 10000)
                    """, [boundary]).affected
                removed += n
                if n < 10_000 { break }
            }
            guard removed > 0 else { continue }
            retentionDeleted.increment(target.table, by: removed)
            logger.notice("retention: old rows removed",
                          metadata: ["db.table": "\(target.table)", "db.rows": "\(removed)", "retention.days": "\(target.days)"])
        }
    }

    /// Day partitions of events (migration 018): the week ahead is created before it is needed
    /// (the writer creates a past day's on demand), and days that ended more than
    /// retention.events_days ago are dropped whole - their event_keys first, then the partition
    /// detached CONCURRENTLY (ingest is never blocked) and dropped. A detach interrupted before
    /// is finished first; a partition detached but not dropped is dropped.
    private func maintainPartitions(_ db: PGConnection) throws {
        let today = "(now() AT TIME ZONE 'Asia/Shanghai')::date"
        let created = Int(try db.query("SELECT liandong.ensure_event_partitions(\(today), \(today) + 7)").scalar ?? "0") ?? 0
        if created > 0 { logger.info("events partitions created ahead", metadata: ["db.partitions": "\(created)"]) }
        let days = config.retention.eventsDays
        guard days > 0 else { return }
        let old = try db.query("""
            SELECT c.relname, coalesce(i.inhdetachpending, false), i.inhrelid IS NOT NULL
            FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'liandong.events'::regclass
            WHERE c.relnamespace = 'liandong'::regnamespace AND c.relkind = 'r' AND c.relname ~ '^events_[0-9]{8}$'
              AND (to_date(substr(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
                  <= now() - make_interval(days => $1)
            ORDER BY c.relname
            """, [String(days)])
        var removed = 0, dropped: [String] = []
        for row in old.rows where !stop.isSet {
            let name = row[0]!, partition = "liandong.\(row[0]!)"
            let rows = Int(try db.query("SELECT count(*) FROM \(partition)").scalar ?? "0") ?? 0
            try db.query("""
                DELETE FROM liandong.event_keys k USING \(partition) e
                WHERE k.source = e.source AND k.source_id = e.source_id AND k.observed_at = e.observed_at
                """)
            if row[2] == "t" {
                try db.execute("ALTER TABLE liandong.events DETACH PARTITION \(partition) \(row[1] == "t" ? "FINALIZE" : "CONCURRENTLY")")
            }
            try db.execute("DROP TABLE \(partition)")
            removed += rows
            dropped.append(name)
        }
        guard !dropped.isEmpty else { return }
        retentionDeleted.increment("events", by: removed)
        logger.notice("retention: old rows removed", metadata: [
            "db.table": "events", "db.rows": "\(removed)", "db.partitions": "\(dropped.joined(separator: ","))",
            "retention.days": "\(days)",
        ])
    }

    /// The highest key whose row was inserted before `cutoff`, by bisection over the key range
    /// (a few dozen primary-key probes); nil when the oldest row is newer.
    private func retentionBoundary(_ db: PGConnection, _ target: RetentionTarget, cutoff: String) throws -> String? {
        let t = "liandong.\(target.table)", key = target.key
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

    /// Keeps planner statistics in step with fast-growing tables (autovacuum looks only once a
    /// minute): ANALYZE each hot table whose rows changed by more than it held at its last analyze,
    /// so O(log n) times as it grows. Each table on its own: tasks analyzed while empty next to a
    /// million stored events made the cached foreign-key checks on tasks scan it (a fresh county
    /// with imported history). Here, not in the writer, so ingest never waits for it.
    private func refreshStatistics(_ db: PGConnection) throws {
        let rows = try db.query("""
            SELECT relname FROM pg_stat_user_tables
            WHERE schemaname = 'liandong'
              AND (relname IN ('event_keys', 'incidents', 'tasks', 'task_history', 'feed')
                   -- today's events partition (the parent has no rows of its own)
                   OR relname = 'events_' || to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD'))
              AND n_mod_since_analyze >= greatest(1000, n_live_tup - n_mod_since_analyze)
            """)
        for row in rows.rows {
            try db.execute("ANALYZE liandong.\(row[0]!)")
            logger.debug("statistics refreshed", metadata: ["db.table": "\(row[0]!)"])
        }
    }

    /// Noisy cameras: recomputes each camera's false-alarm figures and which are suppressed
    /// (cameras.suppress_*), saying which changed.
    private func reviewCameras(_ db: PGConnection) throws {
        let s = config.cameraSuppression
        let changed = try CameraStore(db: db).recompute(.init(falseAlarmPercent: s.falseAlarmPercent, minJudged: s.minJudged, days: s.days))
        for device in changed.suppressed {
            logger.notice("camera suppressed as noisy: its alerts ask for no verify task of their own (liandong.noisy_cameras; liandongd camera review lifts it)",
                          metadata: ["camera.device_id": "\(device)"])
        }
        for device in changed.lifted {
            logger.notice("camera no longer suppressed", metadata: ["camera.device_id": "\(device)"])
        }
        camerasSuppressed.record(Double(changed.total))
    }

    /// Devices not heard from within gb28181.keepalive_timeout_s go offline here too: a bridge
    /// that is down (or a gateway that stopped forwarding keepalives) leaves no camera online.
    private func expireDevices(_ db: PGConnection) throws {
        let n = try DeviceStatusStore.expire(db, timeout: config.gb28181.keepaliveTimeoutSeconds)
        if n > 0 {
            devicesTimedOut.increment(by: n)
            logger.notice("devices offline: no registration or keepalive within gb28181.keepalive_timeout_s",
                          metadata: ["devices": "\(n)"])
        }
        devicesOnline.record(Double(try DeviceStatusStore.onlineCount(db)))
    }

    /// Tasks owing a coalesced update (tasks_update_due_idx), earliest first.
    static let owedQuery = "SELECT id FROM liandong.tasks WHERE update_due_at <= now() ORDER BY update_due_at LIMIT 500"

    /// Locks the incident of a task: the writer and the update receiver lock an incident before
    /// its task too, so none of them waits for another while holding what that one needs (the
    /// writer takes the feed head's lock before it writes tasks).
    private func lockIncident(ofTask id: String, _ db: PGConnection) throws {
        try db.query("""
            SELECT 1 FROM liandong.incidents WHERE id = (SELECT incident_id FROM liandong.tasks WHERE id = $1::uuid) FOR UPDATE
            """, [id])
    }

    /// Sends the update a task owes after coalescing (correlation.update_interval_s) with the
    /// counts of now, if it still owes one (checked under the incident's lock); a task finished
    /// meanwhile owes nothing (its last message carried the counts).
    private func sendOwedUpdate(_ id: String, db: PGConnection) throws -> [FeedMessage] {
        try lockIncident(ofTask: id, db)
        guard try db.query("SELECT 1 FROM liandong.tasks WHERE id = $1::uuid AND update_due_at <= now()", [id]).count == 1,
              let incident = try TaskStore.load(db, taskIDs: [id]).first
        else { return [] }
        let now = Date().timeIntervalSince1970
        guard let step = planner.dueUpdate(incident, now: now) else {
            if let forgotten = planner.forgetOwed(incident) { try TaskStore.write(db, TaskRows([], records: [forgotten], at: now)) }
            return []
        }
        return try TaskStore.write(db, steps: [step])
    }

    /// Escalates or re-announces one task if it is still due (checked under its row lock).
    private func sweep(_ id: String, db: PGConnection, reannounce: String) throws -> [FeedMessage] {
        try lockIncident(ofTask: id, db)
        let locked = try db.query("SELECT 1 FROM liandong.tasks t WHERE t.id = $2::uuid AND \(Self.dueCondition) FOR UPDATE",
                                  [reannounce, id])
        guard locked.count == 1, let incident = try TaskStore.load(db, taskIDs: [id]).first,
              let step = planner.deadline(incident, now: Date().timeIntervalSince1970)
        else { return [] }
        let messages = try TaskStore.write(db, steps: [step])
        logger.notice("task escalated", metadata: [
            "task.id": "\(step.task.id)", "task.event": "\(step.event?.rawValue ?? "")", "task.division": "\(step.task.divisionCode)",
        ])
        return messages
    }
}
