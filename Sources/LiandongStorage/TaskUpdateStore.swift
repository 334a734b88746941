import Foundation
import LiandongCore
import LibPQ

/// Dispatchers' updates as received (liandong.task_updates): each update_id is answered once,
/// and a repeat gets the first answer again.
package enum TaskUpdateStore {
    /// The answer given to `updateID` before (nil: never seen).
    package static func previousAnswer(_ db: PGConnection, updateID: String) throws -> (ok: Bool, error: String?)? {
        guard let row = try db.query("SELECT ok, error FROM liandong.task_updates WHERE update_id = $1", [updateID]).typed.first
        else { return nil }
        return (try row.bool(0), row[1])
    }

    /// Records an update and its answer (`refusal` nil: applied).
    package static func record(_ db: PGConnection, _ update: TaskUpdate, refusal: String?, peer: String?) throws {
        try db.query("""
            INSERT INTO liandong.task_updates (update_id, task_id, action, actor, at, note, ok, error, body, peer)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)
            """, [update.updateID, update.taskID, update.action.rawValue, update.actor, Timestamp.formatUTC(update.at),
                  update.note, refusal == nil ? "t" : "f", refusal, update.body, peer])
    }

    /// Whether `code` is a division of liandong.divisions.
    package static func divisionExists(_ db: PGConnection, _ code: String) throws -> Bool {
        try db.query("SELECT 1 FROM liandong.divisions WHERE code = $1", [code]).count == 1
    }
}
