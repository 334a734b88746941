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
    let reminders: CoreMetrics.Counter
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
        reminders = metrics.counter("liandong_patrol_reminders_total")
        retentionDeleted = metrics.counters("liandong_retention_deleted_total", by: "table",
                                            known: Maintenance.dayPartitioned.map(\.table) + Self.retentionTargets(config.retention).map(\.table))
        self.config = config
        self.output = output
        self.logger = logger
    }

    public func run() async throws {
        try await runThreadService(name: "liandong-sweeper", onStop: { [stop] in stop.set() }) { [self] in try loop() }
    }

    private func loop() throws {
        guard role.waitForLead({ stop.isSet }) else { return }
        let session = DatabaseSession(conninfo: config.databaseURL, name: "sweeper", logger: logger, stop: stop, fence: role.fence)
        let interval = Double(config.sweepMilliseconds) / 1000
        let reannounce = Double(config.reannounceMinutes * 60)
        var lastStatistics = Date.distantPast
        var lastRetention = Date.distantPast
        var lastCameras = Date.distantPast
        var lastReminders = Date.distantPast
        var checkedDay: String?
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
            if let dueMinutes = config.workers.patrolDueMinutes, started.timeIntervalSince(lastReminders) >= Self.reminderInterval {
                try remindUnpatrolled(dueMinutes, session, checkedDay: &checkedDay)
                lastReminders = started
            }
            let due = try session.run { db in try TaskDeadlines.due(db, at: Date().timeIntervalSince1970, reannounce: reannounce) }
            try publish(due, session) { id, db in try sweep(id, db: db, reannounce: reannounce) }
            let owing = try session.run { db in
                try TaskDeadlines.owing(db, at: Date().timeIntervalSince1970, limit: max(Self.owedAtOnce, Int(Self.owedPerSecond * interval)))
            }
            try publish(owing, by: Self.owedAtOnce, session) { ids, db in try sendOwedUpdates(ids, db: db) }
            let rated = try session.run { db in try CitizenStore.pendingReopens(db) }
            try publish(rated, session) { id, db in try reopenRated(id, db: db) }
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
        try publish(ids, by: 1, session) { ids, db in try step(ids[0], db) }
    }

    /// Runs `step` for each `size` tasks at a time, one transaction each, and hands the feed
    /// messages it committed to the publisher (escalations counted).
    private func publish(_ ids: [String], by size: Int, _ session: DatabaseSession,
                         _ step: ([String], PGConnection) throws -> [FeedMessage]) throws {
        for start in stride(from: 0, to: ids.count, by: size) where !stop.isSet {
            let group = Array(ids[start..<min(start + size, ids.count)])
            let messages = try session.run { db in try db.transaction { db in try step(group, db) } }
            for m in messages {
                if m.kind == MessageKind.escalation.rawValue { escalations.increment() }
                metrics.feedMessages.increment(m.kind)
                output.push(m)
            }
        }
    }

    /// Grids are checked for a patrol this often once workers.patrol_due has passed.
    static let reminderInterval: TimeInterval = 60

    /// A grid with no patrol today by workers.patrol_due gets one reminder on the feed. Says so
    /// once a day (and whenever it sends any).
    private func remindUnpatrolled(_ dueMinutes: Int, _ session: DatabaseSession, checkedDay: inout String?) throws {
        let now = Date().timeIntervalSince1970
        let due = PatrolReminder.due(minutes: dueMinutes, on: now)
        guard now >= due.at else { return }
        let messages = try session.run { db in try PatrolReminderStore.send(db, due: due, now: now) }
        if !messages.isEmpty || checkedDay != due.day {
            logger.log(level: messages.isEmpty ? .info : .notice,
                       "patrol checked: a grid not patrolled today by workers.patrol_due has its reminder (liandong.patrol_reminders)",
                       metadata: ["patrol.day": "\(due.day)", "reminders": "\(messages.count)"])
            checkedDay = due.day
        }
        reminders.increment(by: messages.count)
        for m in messages {
            metrics.feedMessages.increment(m.kind)
            output.push(m)
        }
    }

    /// Retention runs at start and then hourly.
    static let retentionInterval: TimeInterval = 3600

    static func retentionTargets(_ r: Config.Retention) -> [Maintenance.RetentionTarget] {
        Maintenance.retentionTargets(feedDays: r.feedDays, taskHistoryDays: r.taskHistoryDays, deadLetterDays: r.deadLetterDays)
    }

    /// Removes what retention.* no longer keeps, in batches of short transactions (the writer is
    /// never held up for long), and says what it removed. The boundary - the highest key inserted
    /// before the cutoff - is found by a binary search on the primary key (keys grow with
    /// insertion time), so the tables ingest writes need no index on their times.
    private func enforceRetention(_ db: PGConnection) throws {
        let maintenance = Maintenance(db: db)
        for target in Self.retentionTargets(config.retention) where target.days > 0 {
            guard let boundary = try maintenance.retentionBoundary(target) else { continue }
            var removed = 0
            while !stop.isSet {
                let n = try maintenance.deleteExpired(target, upTo: boundary)
                removed += n
                if n < 10_000 { break }
            }
            guard removed > 0 else { continue }
            retentionDeleted.increment(target.table, by: removed)
            logger.notice("retention: old rows removed",
                          metadata: ["db.table": "\(target.table)", "db.rows": "\(removed)", "retention.days": "\(target.days)"])
        }
    }

    /// Day partitions of events (migration 018) and worker_positions (034): the week ahead is
    /// created before it is needed (the writer creates a past day's on demand), and days that
    /// ended more than retention.events_days (positions_days) ago are dropped whole
    /// (`Maintenance.drop`). A detach interrupted before is finished first; a partition detached
    /// but not dropped is dropped.
    private func maintainPartitions(_ db: PGConnection) throws {
        let maintenance = Maintenance(db: db)
        let created = try maintenance.ensurePartitionsAhead()
        if created > 0 { logger.info("day partitions created ahead", metadata: ["db.partitions": "\(created)"]) }
        for (table, days) in [("events", config.retention.eventsDays), ("worker_positions", config.retention.positionsDays)] where days > 0 {
            var removed = 0, dropped: [String] = []
            for partition in try maintenance.partitions(of: table, olderThan: days) where !stop.isSet {
                removed += try maintenance.drop(partition)
                dropped.append(partition.name)
            }
            guard !dropped.isEmpty else { continue }
            retentionDeleted.increment(table, by: removed)
            logger.notice("retention: old rows removed", metadata: [
                "db.table": "\(table)", "db.rows": "\(removed)", "db.partitions": "\(dropped.joined(separator: ","))",
                "retention.days": "\(days)",
            ])
        }
    }

    /// Keeps planner statistics in step with fast-growing tables (autovacuum looks only once a
    /// minute): ANALYZE each hot table whose rows changed by more than it held at its last analyze.
    /// Each table on its own: tasks analyzed while empty next to a million stored events made the
    /// cached foreign-key checks on tasks scan it (a fresh county with imported history). Here,
    /// not in the writer, so ingest never waits for it.
    private func refreshStatistics(_ db: PGConnection) throws {
        let maintenance = Maintenance(db: db)
        for table in try maintenance.staleStatistics() {
            try maintenance.analyze(table)
            logger.debug("statistics refreshed", metadata: ["db.table": "\(table)"])
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

    /// Owed updates sent in one transaction: after a storm thousands come due within seconds,
    /// and one transaction each (eight statements) took the CPU the writer needed for new alerts
    /// (issue 31: p99 of creating messages 38-67 ms while they went out).
    static let owedAtOnce = 32
    /// And at most this many a second (thousands owed at once drain over seconds, beside the
    /// writer, not in one burst that delays new alerts).
    static let owedPerSecond = 256.0

    /// Sends the updates the tasks `ids` owe after coalescing (correlation.update_interval_s) with
    /// the counts of now, for those that still owe one (checked under their incidents' locks; an
    /// incident the writer holds is left for a later sweep); a task finished meanwhile owes
    /// nothing (its last message carried the counts).
    private func sendOwedUpdates(_ ids: [String], db: PGConnection) throws -> [FeedMessage] {
        let now = Date().timeIntervalSince1970
        let locked = try TaskDeadlines.lockOwing(db, tasks: ids, at: now)
        guard !locked.isEmpty else { return [] }
        var steps: [TaskStep] = [], forgotten: [TaskRecord] = []
        for incident in try TaskStore.load(db, taskIDs: locked) {
            if let step = planner.dueUpdate(incident, now: now) {
                steps.append(step)
            } else if let task = planner.forgetOwed(incident) {
                forgotten.append(task)
            }
        }
        return try TaskStore.write(db, steps: steps, records: forgotten, at: now)
    }

    /// A resident's rating of 1-2 (liandong.citizen_feedback): the request's finished task is
    /// opened again where it was closed (`TaskPlanner.reopen`); one still being worked on stays
    /// as it is. The rating is marked handled in the same transaction.
    private func reopenRated(_ id: String, db: PGConnection) throws -> [FeedMessage] {
        let now = Date().timeIntervalSince1970
        guard let rating = try CitizenStore.lockPending(db, feedbackID: id) else { return [] }
        guard let incident = try TaskStore.load(db, incidentIDs: [rating.incidentID], lock: true).first, incident.task != nil else {
            try CitizenStore.handled(db, feedbackID: id, .noTask, at: now)
            return []
        }
        guard let step = planner.reopen(incident, rating: rating.rating, comment: rating.comment, now: now) else {
            try CitizenStore.handled(db, feedbackID: id, .notFinished, at: now)
            return []
        }
        let messages = try TaskStore.write(db, steps: [step])
        try CitizenStore.handled(db, feedbackID: id, .reopened, at: now)
        logger.notice("task reopened by a resident's rating", metadata: [
            "task.id": "\(step.task.id)", "task.division": "\(step.task.divisionCode)", "feedback.id": "\(id)",
            "feedback.rating": "\(rating.rating)",
        ])
        return messages
    }

    /// Escalates or re-announces one task if it is still due (checked under its row lock).
    private func sweep(_ id: String, db: PGConnection, reannounce: Double) throws -> [FeedMessage] {
        let now = Date().timeIntervalSince1970
        guard try TaskDeadlines.lockIfDue(db, task: id, at: now, reannounce: reannounce),
              let incident = try TaskStore.load(db, taskIDs: [id]).first, let step = planner.deadline(incident, now: now)
        else { return [] }
        let messages = try TaskStore.write(db, steps: [step])
        logger.notice("task escalated", metadata: [
            "task.id": "\(step.task.id)", "task.event": "\(step.event?.rawValue ?? "")", "task.division": "\(step.task.divisionCode)",
        ])
        return messages
    }
}
