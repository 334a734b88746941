import Foundation
import LiandongCore
import LibPQ

/// The tasks the sweeper acts on: deadlines missed (`TaskRecord.isDue`, mirrored here in SQL) and
/// coalesced updates owed (`TaskRecord.owesUpdate`), found at the sweeper's clock - never the
/// database's - and locked one at a time, its incident first (the writer and the update receiver
/// lock an incident before its task too, so none of them waits for another while holding what
/// that one needs).
package enum TaskDeadlines {
    /// `TaskRecord.isDue(at: $1, reannounce: $2)` on a row `t` of liandong.tasks.
    static let dueCondition = """
        t.state NOT IN ('resolved', 'false_alarm')
        AND ((NOT t.overdue AND ((t.state = 'open' AND t.respond_by <= to_timestamp($1::float8)) OR t.resolve_by <= to_timestamp($1::float8)))
             OR (t.overdue AND t.last_announced_at <= to_timestamp($1::float8 - $2::float8)))
        """

    /// The tasks `dueCondition` selects, earliest respond_by first, found by range scans on
    /// tasks_next_deadline_idx and tasks_reannounce_idx (migration 013) rather than by filtering
    /// every unfinished task.
    package static func due(_ db: PGConnection, at now: Double, reannounce: Double, limit: Int = 500) throws -> [String] {
        try db.query("""
            SELECT id FROM (
                SELECT t.id, t.respond_by FROM liandong.tasks t
                WHERE NOT t.overdue AND t.state NOT IN ('resolved', 'false_alarm')
                  AND (CASE WHEN t.state = 'open' THEN least(t.respond_by, t.resolve_by) ELSE t.resolve_by END) <= to_timestamp($1::float8)
                UNION ALL
                SELECT t.id, t.respond_by FROM liandong.tasks t
                WHERE t.overdue AND t.state NOT IN ('resolved', 'false_alarm')
                  AND t.last_announced_at <= to_timestamp($1::float8 - $2::float8)
            ) due
            ORDER BY respond_by LIMIT $3
            """, [String(now), String(reannounce), String(limit)]).typed.map { try $0.string(0) }
    }

    /// Locks the task's incident and then the task, if it is still due (in the caller's transaction).
    package static func lockIfDue(_ db: PGConnection, task id: String, at now: Double, reannounce: Double) throws -> Bool {
        try lockIncident(ofTask: id, db)
        return try db.query("SELECT 1 FROM liandong.tasks t WHERE t.id = $3::uuid AND \(dueCondition) FOR UPDATE",
                            [String(now), String(reannounce), id]).count == 1
    }

    /// Tasks owing a coalesced update at `now` (tasks_update_due_idx), earliest first.
    package static func owing(_ db: PGConnection, at now: Double, limit: Int = 500) throws -> [String] {
        try db.query("SELECT id FROM liandong.tasks WHERE update_due_at <= to_timestamp($1::float8) ORDER BY update_due_at LIMIT $2",
                     [String(now), String(limit)]).typed.map { try $0.string(0) }
    }

    /// Locks, of the tasks `ids`, the incidents no other transaction holds (a busy one - the
    /// writer growing it - is skipped, its update is sent at a later sweep), then those of their
    /// tasks that still owe an update at `now`. The incidents first, as every writer of tasks
    /// does; without waiting for any, so a batch of them cannot deadlock with the writer.
    /// Returns the tasks locked.
    package static func lockOwing(_ db: PGConnection, tasks ids: [String], at now: Double) throws -> [String] {
        try db.query("""
            WITH incidents AS MATERIALIZED (
                SELECT i.id FROM liandong.incidents i
                WHERE i.id IN (SELECT t.incident_id FROM liandong.tasks t WHERE t.id = ANY($1::uuid[]))
                ORDER BY i.id
                FOR UPDATE SKIP LOCKED)
            SELECT t.id FROM liandong.tasks t JOIN incidents i ON i.id = t.incident_id
            WHERE t.id = ANY($1::uuid[]) AND t.update_due_at <= to_timestamp($2::float8)
            ORDER BY t.id
            FOR UPDATE OF t
            """, [TaskStore.uuidArray(ids), String(now)]).typed.map { try $0.string(0) }
    }

    private static func lockIncident(ofTask id: String, _ db: PGConnection) throws {
        try db.query("""
            SELECT 1 FROM liandong.incidents WHERE id = (SELECT incident_id FROM liandong.tasks WHERE id = $1::uuid) FOR UPDATE
            """, [id])
    }
}
