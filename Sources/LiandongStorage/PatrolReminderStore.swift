import Foundation
import LiandongCore
import LibPQ

/// Reminders for grids not patrolled by workers.patrol_due (liandong.patrol_reminders and the
/// feed, in one transaction): one per grid and day.
package enum PatrolReminderStore {
    /// For `due` (the day's patrol due time and the CST day, `PatrolReminder.due`, passed at
    /// `now`): every grid in service with no on_patrol position that day so far and no reminder
    /// yet gets one, recorded and appended to the feed. Returns the feed messages to publish.
    package static func send(_ db: PGConnection, due: (at: Double, day: String), now: Double) throws -> [FeedMessage] {
        precondition(now >= due.at, "patrol reminders before the patrol was due")
        return try db.transaction { db in
            let rows = try db.query("""
                WITH day AS (
                    SELECT $1::date AS day, $1::date::timestamp AT TIME ZONE 'Asia/Shanghai' AS day_start
                ), ins AS (
                    INSERT INTO liandong.patrol_reminders (grid_code, day, worker_id, message_id, sent_at)
                    SELECT g.grid_code, d.day, (SELECT min(w.worker_id) FROM liandong.grid_workers w WHERE w.grid_code = g.grid_code),
                           gen_random_uuid(), to_timestamp($2::float8)
                    FROM liandong.grids g CROSS JOIN day d
                    WHERE (g.valid_to IS NULL OR g.valid_to > now())
                      AND NOT EXISTS (SELECT 1 FROM liandong.worker_positions p
                                      WHERE p.grid_code = g.grid_code AND p.state = 'on_patrol'
                                        AND p.at >= d.day_start AND p.at < d.day_start + interval '1 day')
                    ON CONFLICT (grid_code, day) DO NOTHING
                    RETURNING grid_code, worker_id, message_id
                )
                SELECT i.grid_code, i.worker_id, i.message_id, g.name, g.village_code,
                       (SELECT d.name FROM liandong.divisions d WHERE d.code = g.village_code),
                       (SELECT d.name FROM liandong.divisions d WHERE d.code = left(g.village_code, 9))
                FROM ins i JOIN liandong.grids g USING (grid_code)
                ORDER BY i.grid_code
                """, [due.day, String(now)])
            let emitted = Timestamp.formatCST(now), dueText = Timestamp.formatCST(due.at)
            let reminders = try rows.typed.map { v in
                PatrolReminder(messageID: try v.string(2), day: due.day, patrolDue: dueText, gridCode: try v.string(0),
                               gridName: try v.string(3), villageCode: try v.string(4), villageName: v[5], townshipName: v[6],
                               workerID: v[1], emittedAt: emitted)
            }
            return try TaskStore.appendFeed(db, reminders)
        }
    }
}
