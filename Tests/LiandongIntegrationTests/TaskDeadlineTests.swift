import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Testing

/// The sweeper's queries select exactly the tasks the core says are due (`TaskRecord.isDue`) or
/// owe an update (`owesUpdate`), on every combination of state, overdue and deadlines around the
/// sweeper's clock, the boundaries included.
@Suite("Task deadlines: the due query mirrors the core", .serialized)
struct TaskDeadlineTests {
    @Test("TaskDeadlines.due and .owing select exactly the tasks TaskRecord.isDue and .owesUpdate name")
    func dueQueryMirrorsCore() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        defer { db.close() }
        let now = 1_796_000_000.0, reannounce = 3600.0
        struct Row: Encodable {
            let id, incident: String
            let state: String
            let overdue: Bool
            let respond, resolve, announced: Double
            let due: Double?
        }
        var rows: [Row] = []
        let offsets: [Double] = [-7200, -3600, -1, 0, 1, 3600]
        for state in TaskState.allCases {
            for overdue in [false, true] {
                for respond in offsets {
                    for resolve in offsets where resolve >= respond {
                        let k = rows.count
                        rows.append(Row(id: UUID().uuidString.lowercased(), incident: UUID().uuidString.lowercased(), state: state.rawValue,
                                        overdue: overdue, respond: now + respond, resolve: now + resolve,
                                        announced: now + offsets[k % offsets.count] - (k % 2 == 0 ? 0 : reannounce),
                                        due: k % 3 == 0 ? nil : now + offsets[(k / 3) % offsets.count]))
                    }
                }
            }
        }
        try db.query("""
            WITH x AS (
                SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, incident uuid, state text, overdue boolean, respond float8,
                                                                  resolve float8, announced float8, due float8)
            ), i AS (
                INSERT INTO liandong.incidents (id, category, priority, geog, grid_code, village_code, first_observed_at,
                                                last_observed_at, alert_count, report_count)
                SELECT x.incident, 'intrusion', 3, ST_SetSRID(ST_MakePoint(95.78, 40.52), 4326)::geography, $2, left($2, 12),
                       to_timestamp($3::float8), to_timestamp($3::float8), 1, 0
                FROM x
            )
            INSERT INTO liandong.tasks (id, incident_id, kind, state, tier, division_code, grid_code, category, priority,
                                        respond_by, resolve_by, overdue, last_announced_at, update_due_at)
            SELECT x.id, x.incident, 'verify', x.state, 'village', left($2, 12), $2, 'intrusion', 3, to_timestamp(x.respond),
                   to_timestamp(x.resolve), x.overdue, to_timestamp(x.announced), to_timestamp(x.due)
            FROM x
            """, [try TaskStore.json(rows), Scene.ruralGrid, String(now - 60)])
        let loaded = try TaskStore.load(db, taskIDs: rows.map(\.id)).compactMap(\.task)
        #expect(loaded.count == rows.count)
        let due = Set(try TaskDeadlines.due(db, at: now, reannounce: reannounce, limit: 10_000))
        let expectedDue = Set(loaded.filter { $0.isDue(at: now, reannounce: reannounce) }.map(\.id))
        #expect(due == expectedDue, "\(due.symmetricDifference(expectedDue).count) tasks differ")
        #expect(expectedDue.count > 20 && expectedDue.count < loaded.count - 20, "both kinds are exercised: \(expectedDue.count)")
        let owing = Set(try TaskDeadlines.owing(db, at: now, limit: 10_000))
        let expectedOwing = Set(loaded.filter { $0.owesUpdate(at: now) }.map(\.id))
        #expect(owing == expectedOwing && !owing.isEmpty)
        // Locked only while still due.
        let someDue = try #require(expectedDue.first), notDue = try #require(loaded.first { !expectedDue.contains($0.id) }?.id)
        #expect(try db.transaction { try TaskDeadlines.lockIfDue($0, task: someDue, at: now, reannounce: reannounce) })
        #expect(try !db.transaction { try TaskDeadlines.lockIfDue($0, task: notDue, at: now, reannounce: reannounce) })
    }
}
