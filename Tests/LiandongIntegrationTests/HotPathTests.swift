import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Testing

/// The in-memory hot path against the database: events older than the correlation window are
/// matched in stored history, the window survives a restart, and the hot-path tables keep their
/// references although they no longer check them row by row.
@Suite("Hot path", .serialized)
struct HotPathTests {
    @Test("events observed long before the newest still join stored incidents, and each other")
    func lateEvents() throws {
        let s = try Scene()
        let old = s.now - 10 * 3600, older = s.now - 20 * 3600
        let elsewhere = offset(s.centre, east: 600)
        try s.send("alert", Wire.alert(id: "late-a1", at: old, position: s.centre))
        try s.waitProcessed(1)
        // The newest observed time moves ten hours on: the first alert is outside the window now.
        try s.send("alert", Wire.alert(id: "late-a2", at: s.now, position: elsewhere))
        try s.waitProcessed(2)
        try s.send("report", Wire.report(id: "late-r1", at: old + 60, position: offset(s.centre, north: 50)))
        // Two late events with no history: they must find each other (same batch or not).
        try s.send("alert", Wire.alert(id: "late-b1", at: older, position: elsewhere))
        try s.send("report", Wire.report(id: "late-b2", at: older + 30, position: offset(elsewhere, north: 40)))
        try s.waitProcessed(5)
        func incident(_ id: String) throws -> String {
            try s.db.query("SELECT incident_id FROM liandong.events WHERE source_id = $1", [id]).scalar ?? "missing \(id)"
        }
        #expect(try incident("late-r1") == incident("late-a1"), "joined the stored incident through the database")
        #expect(try incident("late-b2") == incident("late-b1"))
        #expect(try incident("late-a2") != incident("late-b1"), "ten hours apart at the same place: two incidents")
        #expect(try s.count("SELECT count(*) FROM liandong.incidents") == 3)
        #expect(try s.count("SELECT alert_count + report_count FROM liandong.incidents i JOIN liandong.events e ON e.incident_id = i.id WHERE e.source_id = 'late-a1'") == 2)
        var late = 0.0
        try waitUntil(timeout: 10, "the late events counted") {
            late = try s.daemon.metric("liandong_events_late_total")
            return late >= 3
        }
        #expect(late == 3, "late-r1, late-b1 and late-b2 were matched against stored history")
    }

    @Test("a late event joins the open incident nearby even when more than 64 nearer stored events belong to closed ones")
    func lateBesideClosedHistory() throws {
        let s = try Scene()
        let old = s.now - 10 * 3600
        let open = offset(s.centre, east: 120)
        try s.send("alert", Wire.alert(id: "lh-open", at: old, position: open))
        try s.waitProcessed(1)
        // Seventy stored events of closed incidents right where the late report will be.
        try s.db.query("""
            WITH inc AS (
                INSERT INTO liandong.incidents (id, category, status, priority, geog, grid_code, village_code,
                                                first_observed_at, last_observed_at, alert_count, report_count,
                                                closed_at, resolution)
                SELECT gen_random_uuid(), 'intrusion', 'closed', 3, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography,
                       $3, left($3, 12), to_timestamp($4), to_timestamp($4), 1, 0, now(), 'resolved'
                FROM generate_series(1, 70)
                RETURNING id, geog, first_observed_at)
            INSERT INTO liandong.events (source, source_id, gateway_id, device_id, category, priority, observed_at, geog,
                                         source_crs, grid_code, village_code, incident_id, payload)
            SELECT 'alert', 'lh-closed-' || row_number() OVER (), 'history', '62092200001320000004', 'intrusion', 3,
                   first_observed_at, geog, 'camera', $3, left($3, 12), id, '{}'::jsonb
            FROM inc
            """, [String(s.centre.lon), String(s.centre.lat), Scene.ruralGrid, String(old)])
        // The newest observed time moves ten hours on, so the next report is late.
        try s.send("alert", Wire.alert(id: "lh-now", at: s.now, position: offset(s.centre, east: 2000)))
        try s.waitProcessed(72)
        // A restart rebuilds the window from the last hours only: the open incident is found in
        // stored history, past the closed ones.
        try s.daemon.crashAndRestart()
        try s.send("report", Wire.report(id: "lh-late", at: old + 30, position: s.centre))
        try s.waitProcessed(73)
        let incident = { (id: String) in try s.db.query("SELECT incident_id FROM liandong.events WHERE source_id = $1", [id]).scalar }
        #expect(try incident("lh-late") == incident("lh-open"), "joined the open incident 120 m away")
    }

    @Test("after a kill -9 the window is rebuilt from the database: the next report joins the open incident")
    func windowAfterRestart() throws {
        let s = try Scene()
        try s.send("alert", Wire.alert(id: "rs-a1", at: s.now - 60, position: s.centre))
        try s.waitProcessed(1)
        try s.daemon.crashAndRestart()
        try s.send("report", Wire.report(id: "rs-r1", at: s.now, position: offset(s.centre, east: 80)))
        try s.waitProcessed(2)
        #expect(try s.count("SELECT count(DISTINCT incident_id) FROM liandong.events") == 1)
        #expect(try s.count("SELECT count(*) FROM liandong.tasks WHERE kind = 'joint_dispatch'") == 1)
    }

    @Test("hot-path rows reference existing grids, divisions, incidents and tasks; deleting a referenced grid, incident or task is refused")
    func references() throws {
        let s = try Scene()
        for i in 0..<20 {
            try s.send("alert", Wire.alert(id: "ref-a\(i)", at: s.now - Double(i * 200), position: offset(s.centre, east: Double(i * 30))))
        }
        try s.send("report", Wire.report(id: "ref-r1", at: s.now, position: s.centre))
        try s.waitProcessed(21)
        for orphans in [
            "SELECT count(*) FROM liandong.events e WHERE NOT EXISTS (SELECT 1 FROM liandong.incidents i WHERE i.id = e.incident_id)",
            "SELECT count(*) FROM liandong.events e WHERE NOT EXISTS (SELECT 1 FROM liandong.grids g WHERE g.grid_code = e.grid_code AND g.village_code = e.village_code)",
            "SELECT count(*) FROM liandong.incidents i WHERE NOT EXISTS (SELECT 1 FROM liandong.grids g WHERE g.grid_code = i.grid_code AND g.village_code = i.village_code)",
            "SELECT count(*) FROM liandong.feed f WHERE NOT EXISTS (SELECT 1 FROM liandong.tasks t WHERE t.id = f.task_id)",
            "SELECT count(*) FROM liandong.tasks t WHERE NOT EXISTS (SELECT 1 FROM liandong.incidents i WHERE i.id = t.incident_id)",
            "SELECT count(*) FROM liandong.tasks t WHERE NOT EXISTS (SELECT 1 FROM liandong.grids g WHERE g.grid_code = t.grid_code)",
            "SELECT count(*) FROM liandong.tasks t WHERE NOT EXISTS (SELECT 1 FROM liandong.divisions d WHERE d.code = t.division_code)",
            "SELECT count(*) FROM liandong.task_history h WHERE NOT EXISTS (SELECT 1 FROM liandong.tasks t WHERE t.id = h.task_id)",
            "SELECT count(*) FROM liandong.task_history h WHERE NOT EXISTS (SELECT 1 FROM liandong.divisions d WHERE d.code = h.division_code)",
        ] {
            #expect(try s.count(orphans) == 0, "\(orphans)")
        }
        #expect(try s.count("SELECT count(*) FROM liandong.feed") > 0)
        #expect(throws: PQError.self) { try s.db.query("DELETE FROM liandong.grids WHERE grid_code = $1", [Scene.ruralGrid]) }
        let refused = try? s.db.query("DELETE FROM liandong.incidents")
        #expect(refused == nil, "incidents with events cannot be deleted")
        // A task is referenced by its history and feed messages.
        #expect { try s.db.query("DELETE FROM liandong.tasks") } throws: { ($0 as? PQError)?.sqlState == "23503" }
        #expect(try s.count("SELECT count(*) FROM liandong.tasks") > 0)
        #expect(try s.count("SELECT count(*) FROM liandong.grids WHERE grid_code = '\(Scene.ruralGrid)'") == 1)
    }

    @Test("a camera registered while the daemon runs is known to the very next alert")
    func cameraAddedWhileRunning() throws {
        let s = try Scene()
        try s.send("alert", Wire.alert(id: "cam-0", at: s.now, position: s.centre))
        try s.waitProcessed(1)
        let device = "62092200001320009999"
        try s.db.query("""
            INSERT INTO liandong.cameras (device_id, name, geom, grid_code)
            VALUES ($1, 'test camera', ST_SetSRID(ST_MakePoint($2::float8, $3::float8), 4326), $4)
            """, [device, String(s.centre.lon), String(s.centre.lat), Scene.ruralGrid])
        try s.send("alert", Wire.alert(id: "cam-1", device: device, at: s.now, position: nil))
        try s.waitProcessed(2)
        #expect(try s.count("SELECT count(*) FROM liandong.rejected_messages") == 0)
        #expect(try s.db.query("SELECT source_crs, grid_code FROM liandong.events WHERE source_id = 'cam-1'").rows.first
                    == ["camera", Scene.ruralGrid])
    }

    @Test("a second liandongd on the same database waits for the first one's writer, then writes what it received")
    func oneWriterPerDatabase() throws {
        let s = try Scene()
        let second = try DaemonProcess(database: s.daemon.database)
        try second.send("alert", Wire.alert(id: "two-a1", at: s.now, position: s.centre))
        try waitUntil(timeout: 10, "the second daemon to report the busy writer lock") {
            second.log.contains("another liandongd is writing to this database")
        }
        #expect(try s.count("SELECT count(*) FROM liandong.events") == 0)
        #expect(try s.daemon.stop() == 0)
        try s.waitProcessed(1)
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source_id = 'two-a1'") == 1)
        #expect(try second.stop() == 0)
    }

    /// The statement that writes changed tasks (every batch that grows an incident with a task)
    /// must read them by key: planned for the 100 rows PostgreSQL assumes of a jsonb_to_recordset,
    /// it scanned the whole tasks table for each batch (1.3 ms at 12,000 tasks; from about 15,000
    /// the plan turns to the key by itself).
    @Test("changing a few tasks among 10,000 reads them by key, not by scanning the tasks table")
    func taskWriteByKey() throws {
        let db = try PGConnection(conninfo: try TestDatabase.create())
        try db.execute("""
            WITH g AS (SELECT grid_code, village_code, ST_PointOnSurface(geom)::geography AS p FROM liandong.grids
                       WHERE valid_to IS NULL ORDER BY grid_code LIMIT 1),
            inc AS (
                INSERT INTO liandong.incidents (category, priority, geog, grid_code, village_code, first_observed_at, last_observed_at)
                SELECT 'fire', 2, g.p, g.grid_code, g.village_code, now() - n * interval '1 minute', now() - n * interval '1 minute'
                FROM g, generate_series(1, 10000) n RETURNING id, grid_code, village_code)
            INSERT INTO liandong.tasks (incident_id, kind, state, tier, division_code, grid_code, category, priority, respond_by, resolve_by)
            SELECT id, 'verify', 'open', 'village', village_code, grid_code, 'fire', 2, now(), now() FROM inc;
            ANALYZE liandong.tasks;
            """)
        let ids = try db.query("SELECT id FROM liandong.tasks ORDER BY id LIMIT 3").rows.map { $0[0]! }
        let at = Date().timeIntervalSince1970 + 3600
        // Six times: a prepared statement is planned for its values five times, then generically.
        for round in 1...6 {
            try db.transaction { db in
                let tasks = try TaskStore.load(db, taskIDs: ids).compactMap(\.task)
                #expect(tasks.count == 3)
                let scans = try db.query("SELECT pg_stat_get_xact_numscans('liandong.tasks'::regclass)").scalar
                try TaskStore.write(db, TaskRows([], records: tasks, at: at + Double(round)))
                #expect(try db.query("SELECT pg_stat_get_xact_numscans('liandong.tasks'::regclass)").scalar == scans,
                        "round \(round): the tasks table was scanned")
            }
        }
        #expect(try db.query("SELECT count(*) FROM liandong.tasks WHERE abs(extract(epoch FROM updated_at) - $1::float8) < 0.01",
                               [String(at + 6)]).scalar == "3", "the last round's time on all three")
    }

    /// The writer's task load is a prepared statement with a generic plan (issue 31: planning it
    /// was ~0.5 ms a call, three times its execution); it names the events partition of the day
    /// its incidents' span lies in. Over midnight it runs unprepared, with the span in its text.
    @Test("the writer's task load is prepared once per day with a generic plan and reads what the unprepared load reads; over midnight it is not prepared")
    func preparedTaskLoad() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        let now = Date().timeIntervalSince1970
        let today = ((now + 8 * 3600) / 86_400).rounded(.down) * 86_400 - 8 * 3600
        let midnight = now - today > 600 ? today : today - 86_400
        try db.query("SELECT liandong.ensure_event_partitions(DATE '1970-01-01' + $1::int, DATE '1970-01-01' + $2::int)",
                     [String(EventDay(midnight - 1).number), String(EventDay(midnight).number)])
        // Incident "day": three alerts after midnight; incident "over": one before, one after.
        func incident(_ name: String, _ times: [Double]) throws -> String {
            try #require(try db.query("""
                WITH g AS (SELECT grid_code, village_code, ST_PointOnSurface(geom)::geography AS p FROM liandong.grids
                           WHERE valid_to IS NULL ORDER BY grid_code LIMIT 1),
                inc AS (
                    INSERT INTO liandong.incidents (category, priority, geog, grid_code, village_code, first_observed_at,
                                                    last_observed_at, alert_count)
                    SELECT 'intrusion', 3, g.p, g.grid_code, g.village_code, to_timestamp($2::float8), to_timestamp($3::float8),
                           cardinality($1::float8[])
                    FROM g RETURNING id, geog, grid_code, village_code),
                ev AS (
                    INSERT INTO liandong.events (source, source_id, gateway_id, device_id, category, priority, observed_at, geog,
                                                 source_crs, grid_code, village_code, incident_id, payload)
                    SELECT 'alert', $4 || '-' || k, 'gw-test', '62092200001320000004', 'intrusion', 3, to_timestamp(t), geog,
                           'camera', grid_code, village_code, id, jsonb_build_object('description', $4 || ' ' || k)
                    FROM inc, unnest($1::float8[]) WITH ORDINALITY AS x(t, k))
                SELECT id FROM inc
                """, ["{" + times.map { String($0) }.joined(separator: ",") + "}", String(times.min()!), String(times.max()!), name]).scalar)
        }
        let day = try incident("day", [midnight + 60, midnight + 120, midnight + 180])
        let over = try incident("over", [midnight - 30, midnight + 30])
        func span(_ times: [Double]) -> (first: String, last: String) { (String(times.min()!), String(times.max()!)) }
        func evidence(_ incidents: [IncidentState]) -> [[String]] {
            incidents.map { $0.evidence.alerts }
        }
        let unprepared = try PGConnection(conninfo: url)
        try db.execute("SET plan_cache_mode = force_generic_plan")
        for round in 1...3 {
            let loaded = try TaskStore.load(db, incidentIDs: [day], span: span([midnight + 60, midnight + 180]), prepared: true)
            let expected = try TaskStore.load(unprepared, incidentIDs: [day], span: span([midnight + 60, midnight + 180]))
            #expect(evidence(loaded) == [["day-3", "day-2", "day-1"]], "round \(round)")
            #expect(evidence(loaded) == evidence(expected) && loaded.map(\.context) == expected.map(\.context))
        }
        let statements = try db.query("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        #expect(statements.count == 1)
        #expect(statements[0, "statement"]?.contains(EventDay(midnight).partition + " e") == true, "it reads the day's partition")
        #expect(statements[0, "generic_plans"] == "3" && statements[0, "custom_plans"] == "0", "planned once, generically")
        // Over midnight: both days' alerts, nothing more prepared.
        let both = try TaskStore.load(db, incidentIDs: [over], span: span([midnight - 30, midnight + 30]), prepared: true)
        #expect(evidence(both) == [["over-2", "over-1"]])
        #expect(try db.query("SELECT count(*) FROM pg_prepared_statements").scalar == "1")
    }

    /// ANALYZE samples 300 rows per unit of a table's largest statistics target: one column left
    /// at the default (100) brings back the 30,000-row sample, 0.5 s of CPU beside the writer after
    /// a storm (issue 31; migrations 010 and 041).
    @Test("every column of the tables the writer fills, and of their day partitions, has statistics target 20 (0 for the JSON documents)")
    func statisticsTargets() throws {
        let db = try PGConnection(conninfo: try TestDatabase.create())
        try db.query("SELECT liandong.ensure_event_partitions(current_date + 30, current_date + 30)")
        let rows = try db.query("""
            SELECT c.relname || '.' || a.attname, a.attstattarget
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'liandong' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
              AND c.relname ~ '^(events|incidents|tasks|task_history|feed|event_keys|worker_positions)(_[0-9]{8})?$'
            """).rows
        #expect(rows.count > 100, "the hot tables and their partitions")
        let wrong = rows.filter { row in
            let json = row[0]!.hasSuffix(".payload") || row[0]! == "feed.body"
            return row[1] != (json ? "0" : "20")
        }
        #expect(wrong.isEmpty, "\(wrong.map { "\($0[0]!)=\($0[1]!)" })")
    }

    /// A task created and changed in the same write must end as changed, with both history rows
    /// (a write folding the INSERT and the UPDATE into one statement loses the change: its UPDATE
    /// does not see the rows its INSERT adds - tried in issue 31, see BENCHMARKS.md).
    @Test("a task created and escalated in one write ends escalated, with both history rows")
    func createdAndChangedInOneWrite() throws {
        let db = try PGConnection(conninfo: try TestDatabase.create())
        let id = try #require(try db.query("""
            INSERT INTO liandong.incidents (category, priority, geog, grid_code, village_code, first_observed_at, last_observed_at, alert_count)
            SELECT 'fire', 2, ST_PointOnSurface(geom)::geography, grid_code, village_code, now(), now(), 1
            FROM liandong.grids WHERE valid_to IS NULL ORDER BY grid_code LIMIT 1 RETURNING id
            """).scalar)
        let planner = TaskPlanner(rules: Rules())
        let now = Date().timeIntervalSince1970
        var incident = try #require(try TaskStore.load(db, incidentIDs: [id]).first)
        let created = try #require(planner.evidence(on: incident, now: now)?.announced)
        incident.task = created.task
        let escalated = try #require(planner.deadline(incident, now: now + 86_400))
        #expect(created.event == .created && escalated.event == .escalated)
        try db.transaction { db in _ = try TaskStore.write(db, TaskRows([created, escalated]), reservingFeed: 2) }
        let row = try db.query("SELECT tier, escalations FROM liandong.tasks WHERE id = $1", [created.task.id])
        #expect(row[0, "tier"] == escalated.task.tier.rawValue && row[0, "escalations"] == String(escalated.task.escalations))
        #expect(try db.query("SELECT string_agg(event, ',' ORDER BY id) FROM liandong.task_history WHERE task_id = $1",
                             [created.task.id]).scalar == "created,escalated")
    }
}
