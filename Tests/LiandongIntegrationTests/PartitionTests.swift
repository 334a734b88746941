import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Testing

/// Events partitioned by observed day (migration 018): each event in its day's partition, a day
/// without one gets it on demand, duplicates still have one effect, and a database holding events
/// from before the migration keeps every one of them.
@Suite("Events partitions")
struct PartitionTests {
    /// liandong.events_YYYYMMDD of the CST day `daysAgo` before today.
    static func partition(daysAgo: Int, _ db: PGConnection) throws -> String {
        try db.query("SELECT 'events_' || to_char((now() AT TIME ZONE 'Asia/Shanghai')::date - $1::int, 'YYYYMMDD')",
                     [String(daysAgo)]).scalar!
    }

    /// Waits until `count` events are stored; a timeout names the dead letters (an event refused
    /// by the database becomes one: that is what these tests guard against).
    static func waitUntilStored(_ count: Int, _ what: String, _ daemon: DaemonProcess, _ db: PGConnection) throws {
        do {
            try daemon.waitUntil(timeout: 10, what) { try db.int("SELECT count(*) FROM liandong.events") == count }
        } catch {
            let letters = try db.query("SELECT reason || ': ' || detail FROM liandong.rejected_messages").rows.map { $0[0] ?? "" }
            throw TestFailure("\(error)\ndead letters: \(letters)")
        }
    }

    @Test("an observed time's day partition is its China Standard Time date")
    func dayNames() {
        for (time, name) in [
            ("2026-12-02T05:20:00+08:00", "events_20261202"), ("2026-12-01T23:59:59+08:00", "events_20261201"),
            ("2026-12-01T16:00:00Z", "events_20261202"), ("2024-02-29T12:00:00+08:00", "events_20240229"),
            ("2000-03-01T00:00:00+08:00", "events_20000301"), ("1999-12-31T23:59:59.999+08:00", "events_19991231"),
        ] {
            #expect(EventDay(Timestamp.parse(time)!).partition == "liandong." + name, "\(time)")
        }
    }

    @Test("events go to their day's partition, created on demand for a past day; a repeated id has one effect")
    func dayPartitions() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        // The migration made the week ahead; a day three days ago has no partition now.
        let old = try Self.partition(daysAgo: 3, db)
        for ahead in 0...7 {
            #expect(try db.query("SELECT to_regclass('liandong.' || $1)", [try Self.partition(daysAgo: -ahead, db)]).scalar != nil)
        }
        try db.execute("DROP TABLE liandong.\(old)")
        let daemon = try DaemonProcess(database: url)
        let now = Date().timeIntervalSince1970
        try daemon.send("alert", Wire.alert(id: "p-old", at: now - 3 * 86_400, position: centre))
        try daemon.send("alert", Wire.alert(id: "p-new", at: now - 10, position: centre))
        try Self.waitUntilStored(2, "both events stored", daemon, db)
        #expect(try db.query("SELECT tableoid::regclass::text FROM liandong.events WHERE source_id = 'p-old'").scalar == "liandong.\(old)")
        #expect(try db.query("SELECT tableoid::regclass::text FROM liandong.events WHERE source_id = 'p-new'").scalar
                == "liandong.\(try Self.partition(daysAgo: 0, db))")
        #expect(try db.int("SELECT count(*) FROM liandong.event_keys") == 2)
        // The same id again, observed at another time (another day): a duplicate, not a second event.
        try daemon.send("alert", Wire.alert(id: "p-old", at: now - 20, position: centre))
        // (Its first time is before the writer's recent keys: their "not stored" is wrong for it, the
        // database refuses the batch on event_keys, and the batch written again asks about every key.)
        try daemon.waitUntil(timeout: 10, "the duplicate counted") { try daemon.metric("liandong_events_duplicate_total") == 1 }
        #expect(try db.int("SELECT count(*) FROM liandong.events") == 2)
        #expect(try db.int("SELECT count(*) FROM liandong.rejected_messages") == 0, "a duplicate is no dead letter")
        #expect(try daemon.stop() == 0)
    }

    @Test("a day partition dropped under a running writer is created again: the next event is stored, not dead-lettered")
    func droppedUnderTheWriter() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        let daemon = try DaemonProcess(database: url)
        let now = Date().timeIntervalSince1970
        try daemon.send("alert", Wire.alert(id: "d-1", at: now - 10, position: centre))
        try daemon.waitUntil(timeout: 10, "the first event") { try db.int("SELECT count(*) FROM liandong.events") == 1 }
        // The writer knows today's partition exists; it goes (with its event and key).
        let today = try Self.partition(daysAgo: 0, db)
        try db.execute("DELETE FROM liandong.event_keys; DROP TABLE liandong.\(today)")
        try daemon.send("alert", Wire.alert(id: "d-2", at: now - 5, position: centre))
        try Self.waitUntilStored(1, "the second event", daemon, db)
        #expect(try db.query("SELECT source_id FROM liandong.events").scalar == "d-2")
        #expect(try db.query("SELECT tableoid::regclass::text FROM liandong.events").scalar == "liandong.\(today)")
        #expect(try db.int("SELECT count(*) FROM liandong.rejected_messages") == 0)
        #expect(try daemon.stop() == 0)
    }

    @Test("migration 018 moves events stored before it into day partitions, keeps ids, keys and the views")
    func migrationKeepsEvents() throws {
        let url = try TestDatabase.create(seeded: false)
        let db = try PGConnection(conninfo: url)
        // The schema as it was before 018, with the demo dataset and events of three days.
        let before = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-017-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: before, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: before) }
        for file in try FileManager.default.contentsOfDirectory(atPath: TestDatabase.migrations)
        where file.hasSuffix(".sql") && Int(file.prefix(3))! <= 17 {
            try FileManager.default.copyItem(atPath: TestDatabase.migrations + "/" + file, toPath: before.appendingPathComponent(file).path)
        }
        _ = try Migrator(directory: before.path).migrate(db)
        let importer = Importer(db: db)
        _ = try importer.importDivisions(path: TestDatabase.data + "/divisions.csv")
        _ = try importer.importGrids(path: TestDatabase.data + "/grids.geojson")
        _ = try importer.importCameras(path: TestDatabase.data + "/cameras.csv")
        try db.execute("""
            INSERT INTO liandong.incidents (id, category, priority, geog, grid_code, village_code, first_observed_at,
                                            last_observed_at, alert_count, report_count)
            SELECT gen_random_uuid(), 'intrusion', 3, ST_PointOnSurface(g.geom)::geography, g.grid_code, g.village_code,
                   now() - make_interval(days => d), now() - make_interval(days => d), 1, 0
            FROM (SELECT grid_code, village_code, geom FROM liandong.grids ORDER BY grid_code LIMIT 1) g,
                 generate_series(0, 29) d;
            INSERT INTO liandong.events (source, source_id, gateway_id, device_id, category, priority, observed_at, geog,
                                         source_crs, grid_code, village_code, incident_id, payload)
            SELECT 'alert', 'm-' || row_number() OVER (ORDER BY i.first_observed_at), 'gw', '62092200001320000004',
                   'intrusion', 3, i.first_observed_at, i.geog, 'camera', i.grid_code, i.village_code, i.id, '{}'
            FROM liandong.incidents i;
            """)
        let maxID = try db.int("SELECT max(id) FROM liandong.events")
        #expect(try db.int("SELECT count(*) FROM liandong.event_log") == 30)
        _ = try Migrator(directory: TestDatabase.migrations).migrate(db)
        #expect(try db.query("SELECT relkind FROM pg_class WHERE oid = 'liandong.events'::regclass").scalar == "p")
        #expect(try db.int("SELECT count(*) FROM liandong.events") == 30)
        #expect(try db.int("SELECT count(*) FROM liandong.event_keys") == 30)
        #expect(try db.int("SELECT max(id) FROM liandong.events") == maxID)
        // Thirty days, thirty partitions (plus the week ahead), each event in its own day.
        #expect(try db.int("SELECT count(DISTINCT tableoid) FROM liandong.events") == 30)
        #expect(try db.int("""
            SELECT count(*) FROM liandong.events
            WHERE tableoid::regclass::text <> 'liandong.events_' || to_char(observed_at AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD')
            """) == 0)
        // Views read the new table, operators still may read them.
        #expect(try db.int("SELECT count(*) FROM liandong.event_log") == 30)
        #expect(try db.int("SELECT count(*) FROM liandong.camera_reliability WHERE device_id = '62092200001320000004' AND alerts > 0") == 1)
        for view in ["event_log", "camera_reliability", "grid_worker_load"] {
            #expect(try db.query("SELECT has_table_privilege('liandong_operator', 'liandong.\(view)', 'SELECT')").scalar == "t")
        }
        // New events continue the numbering.
        #expect(try db.int("SELECT nextval('liandong.events_id_seq')") == maxID + 1)
    }
}
