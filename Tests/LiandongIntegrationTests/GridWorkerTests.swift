import Foundation
import LiandongClient
import LiandongCore
import LiandongStorage
import LibPQ
import Testing
import ZeroMQ

/// Grid workers' positions through a running daemon: the nearest worker on duty on a verify
/// task, refusals as dead letters, patrol coverage against figures computed here, and the
/// reminder for a grid nobody patrolled.
@Suite("Grid workers on the map", .serialized)
struct GridWorkerTests {
    static func position(_ worker: String, at t: Double, _ p: LonLat, state: String = "on_patrol", crs: String = "wgs84") -> String {
        Wire.json(["schema": "liandong.worker_position.v1", "worker_id": worker, "lon": p.lon, "lat": p.lat, "crs": crs,
                   "at": Timestamp.formatCST(t), "state": state])
    }

    /// An on_patrol position of w-0267 at the rural grid's centre `ago` (an interval) ago, stored directly.
    static func storePatrol(_ db: PGConnection, ago: String) throws {
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        try db.query("""
            INSERT INTO liandong.worker_positions (worker_id, at, state, geog, source_crs, grid_code, home_grid_code)
            VALUES ('w-0267', now() - $4::interval, 'on_patrol', ST_SetSRID(ST_MakePoint($1::float8, $2::float8), 4326)::geography,
                    'wgs84', $3, $3)
            """, [String(centre.lon), String(centre.lat), Scene.ruralGrid, ago])
    }

    @Test("a verify task names the nearest workers on duty, not an off-duty or stale one; bad positions are dead letters with their reason")
    func suggestedWorkers() throws {
        let scene = try Scene()
        let now = scene.now, c = scene.centre
        // Five workers of neighbouring grids, all standing in the rural grid or near it.
        try scene.send("position", Self.position("w-0266", at: now - 20, offset(c, east: 300)))
        try scene.send("position.app", Self.position("w-0267", at: now - 30, offset(c, east: -500), state: "on_task"))
        try scene.send("position", Self.position("w-0268", at: now - 10, offset(c, east: 50), state: "off_duty"))
        try scene.send("position", Self.position("w-0269", at: now - 400, offset(c, east: 20)))  // stale: presence_s 300
        try scene.send("position", Self.position("w-0270", at: now - 60, offset(c, north: 100)))
        try scene.send("position", Self.position("w-0270", at: now - 5, offset(c, north: 100), state: "off_duty"))  // went home
        // Refused: unknown worker, outside every grid, a CRS not supported, a time out of range, a bad state.
        try scene.send("position", Self.position("w-9999", at: now - 5, c))
        try scene.send("position", Self.position("w-0271", at: now - 5, LonLat(lon: 100.5, lat: 30.5)))
        try scene.send("position", Self.position("w-0272", at: now - 5, c, crs: "epsg3857"))
        try scene.send("position", Self.position("w-0273", at: now - 9 * 86_400, c))
        try scene.send("position", Self.position("w-0274", at: now - 5, c, state: "asleep"))
        try scene.daemon.waitUntil(timeout: 15, "6 positions stored and 5 refused") {
            try scene.count("SELECT count(*) FROM liandong.worker_positions") == 6
                && scene.count("SELECT count(*) FROM liandong.rejected_messages") == 5
        }
        let reasons = try scene.db.query("""
            SELECT convert_from(raw, 'UTF8')::jsonb->>'worker_id', reason FROM liandong.rejected_messages ORDER BY 1
            """).rows.map { "\($0[0]!) \($0[1]!)" }
        #expect(reasons == ["w-0271 outside_area", "w-0272 invalid_field", "w-0273 time_out_of_range", "w-0274 invalid_field",
                            "w-9999 unknown_worker"])
        // Stored where they were: the grid covering each position, and the worker's own grid.
        #expect(try scene.count("""
            SELECT count(*) FROM liandong.worker_positions WHERE worker_id = 'w-0266' AND grid_code = '\(Scene.ruralGrid)'
              AND home_grid_code = '620922102201004' AND state = 'on_patrol' AND source_crs = 'wgs84'
            """) == 1)

        // A camera alert at the grid's centre: a verify task for its worker, with the nearest on duty.
        try scene.send("alert", Wire.alert(id: "a-near", at: now, position: c))
        let task = try receiveTasks(scene.feed, count: 1, timeout: 15)[0].body
        #expect(task["kind"] as? String == "verify")
        let suggested = (task["suggested_workers"] as? [[String: Any]]) ?? []
        #expect(suggested.map { $0["worker_id"] as? String } == ["w-0266", "w-0267"],
                "w-0268 and w-0270 are off duty, w-0269 was last seen 400 s ago: \(suggested)")
        #expect(suggested.map { $0["distance_m"] as? Int }
                == [300, -500].map { Int(c.ellipsoidDistance(to: offset(c, east: $0)).rounded()) })
        #expect(suggested.first?["grid_code"] as? String == "620922102201004")
        let body = Array(try JSONSerialization.data(withJSONObject: task))
        #expect(try SchemaValidator(file: "task.v1.schema.json").problems(body).isEmpty)
        #expect(try SchemaValidator(file: "worker_position.v1.schema.json")
            .problems(Array(Self.position("w-0266", at: now, c).utf8)).isEmpty)
        #expect((suggested.first?["seen_at"] as? String).flatMap(Timestamp.parse).map { abs($0 - (now - 20)) < 0.01 } == true)
        // The feed keeps what was published (a replay carries the same).
        #expect(try scene.count("""
            SELECT count(*) FROM liandong.feed WHERE kind = 'verify' AND json_array_length(body->'suggested_workers') = 2
            """) == 1)
        #expect(try scene.daemon.metric(#"liandong_worker_positions_total{state="on_patrol"}"#) == 3)
    }

    @Test("patrol coverage of a grid and a track: km, minutes and the share within 50 m, as computed by hand; rollups to the county")
    func coverage() throws {
        let scene = try Scene()
        let now = scene.now, c = scene.centre
        // A straight walk 600 m west to east through the grid's centre, a position every 30 s at
        // 1 m/s (21 positions, 600 s), all on one CST day.
        let midnight = PatrolReminder.due(minutes: 0, on: now).at
        let start = now - midnight > 2500 ? now - 2400 : midnight - 3600
        let points = (0...20).map { offset(c, east: -300 + 30 * Double($0)) }
        for (k, p) in points.enumerated() {
            try scene.send("position", Self.position("w-0267", at: start + 30 * Double(k), p))
        }
        // Then 20 minutes of silence and one more position: no step across the gap.
        try scene.send("position", Self.position("w-0267", at: start + 600 + 1200, offset(c, north: 400)))
        try scene.daemon.waitUntil(timeout: 15, "22 positions stored") {
            try scene.count("SELECT count(*) FROM liandong.worker_positions") == 22
        }
        let day = String(Timestamp.formatCST(start).prefix(10))
        let row = try scene.db.query("""
            SELECT km::float8, minutes::float8, coverage_pct::float8, workers, positions,
                   ST_Area(ST_Transform(g.geom, 32646)) AS area
            FROM liandong.patrol_coverage($1::date, $1::date) c JOIN liandong.grids g USING (grid_code)
            WHERE c.grid_code = $2
            """, [day, Scene.ruralGrid])
        #expect(row.count == 1)
        guard row.count == 1 else { return }
        let km = Double(row[0, "km"]!)!, minutes = Double(row[0, "minutes"]!)!, pct = Double(row[0, "coverage_pct"]!)!
        let area = Double(row[0, "area"]!)!
        // By hand: 20 steps of 30 m; 20 x 30 s; a 600 m line's 50 m buffer (2 x 50 x 600 plus
        // the two half discs) and the lone position's 50 m disc, inside the grid.
        let walked = zip(points, points.dropFirst()).map { $0.ellipsoidDistance(to: $1) }.reduce(0, +)
        #expect(abs(km - walked / 1000) <= 0.01, "km \(km), by hand \(walked / 1000)")
        #expect(minutes == 10.0)
        let covered = 2 * 50 * 600 + Double.pi * 50 * 50 + Double.pi * 50 * 50
        #expect(abs(pct - 100 * covered / area) <= 0.05, "coverage \(pct) %, by hand \(100 * covered / area) % of \(area) m²")
        #expect(row[0, "workers"] == "1" && row[0, "positions"] == "22")
        // Rollups: the grid's village, township and county count it as one patrolled grid.
        let rollup = try scene.db.query("""
            SELECT level, grids, grids_patrolled, km::float8 FROM liandong.patrol_coverage_rollup($1::date, $1::date)
            WHERE division_code IN ($2, left($2, 12), left($2, 9), left($2, 6)) ORDER BY length(division_code)
            """, [day, Scene.ruralGrid]).rows
        #expect(rollup.map { $0[0]! } == ["county", "township", "village", "grid"])
        #expect(rollup.allSatisfy { $0[2] == "1" && abs(Double($0[3]!)! - km) < 0.005 })
        #expect(rollup.first?[1] == String(try scene.count("SELECT count(*) FROM liandong.grids WHERE valid_to IS NULL")))
        // The assessment report: the card, the township's row, the track on the map.
        let report = try ReportStore(db: scene.db).load(from: day, to: day, division: nil)
        let county = try #require(report.patrol.first { $0.level == "county" })
        #expect(county.gridDaysPatrolled == 1 && abs(Double(county.km)! - km) < 0.05)
        #expect(report.tracks.count == 1, "one track: the lone position after the silence is no line")
        let html = ReportHTML.html(report)
        #expect(html.contains("巡查覆盖率") && html.contains("class=\"track\"")
                && html.contains("<tr data-division=\"\(Scene.ruralGrid.prefix(9))\">"))
        // Personal data under row-level security: an operator of the grid's township sees the
        // positions, the tracks and the coverage; one of another township none of them.
        for (scope, sees) in [(String(Scene.ruralGrid.prefix(9)), true), ("620922100", false)] {
            let role = "ld_pos_\(UUID().uuidString.lowercased().prefix(8))"
            #expect(try liandongd(["operator", "grant", role, "--scope", scope], database: scene.daemon.database).status == 0)
            let op = try PGConnection(conninfo: scene.daemon.database.replacingOccurrences(of: "user=postgres", with: "user=\(role)"))
            defer { op.close() }
            #expect(try op.int("SELECT count(*) FROM liandong.worker_positions") == (sees ? 22 : 0), "scope \(scope)")
            #expect(try op.int("SELECT count(*) FROM liandong.patrol_coverage($1::date, $1::date)", [day]) == (sees ? 1 : 0), "scope \(scope)")
            #expect(try op.int("SELECT count(*) FROM liandong.patrol_track_lines(now() - interval '2 days', now())") == (sees ? 1 : 0))
        }
    }

    @Test("a grid not patrolled by workers.patrol_due gets one reminder on topic reminder.<village>, recorded; a patrolled grid none")
    func reminder() throws {
        // Due at midnight: every grid of the day is due whenever the test runs.
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        defer { db.close() }
        let daemon = try DaemonProcess(database: url, environment: ["LIANDONG_WORKERS_PATROL_DUE": "00:00"], start: false)
        // Today's patrol of the rural grid, stored before the daemon starts (as if by its predecessor).
        try Self.storePatrol(db, ago: "5 seconds")
        let village = String(Scene.ruralGrid.prefix(12))
        let sub = try ZMQSocket(context: daemon.context, type: .sub)
        try sub.subscribe("reminder.\(village)")
        try sub.connect(daemon.feed)
        try daemon.launch()
        defer { _ = try? daemon.stop() }
        let grids = try db.int("SELECT count(*) FROM liandong.grids WHERE valid_to IS NULL")
        try daemon.waitUntil(timeout: 20, "a reminder for every grid but the patrolled one") {
            try db.int("SELECT count(*) FROM liandong.patrol_reminders") == grids - 1
        }
        #expect(try db.int("SELECT count(*) FROM liandong.patrol_reminders WHERE grid_code = '\(Scene.ruralGrid)'") == 0)
        #expect(try db.int("SELECT count(*) FROM liandong.feed WHERE kind = 'reminder' AND task_id IS NULL") == grids - 1)
        // The village's reminders on its topic (the feed's replay has them all, whatever the joiner missed).
        let replay = try FeedStore(db: db).replay(since: 0, prefix: "reminder.\(village)", limit: 100)
        let villageGrids = try db.int("SELECT count(*) FROM liandong.grids WHERE valid_to IS NULL AND village_code = '\(village)'")
        #expect(replay.bodies.count == villageGrids - 1)
        for body in replay.bodies {
            let problems = try SchemaValidator(file: "reminder.v1.schema.json").problems(Array(body.utf8))
            #expect(problems.isEmpty, "\(body): \(problems)")
        }
        let first = try JSONSerialization.jsonObject(with: Data(replay.bodies[0].utf8)) as? [String: Any] ?? [:]
        #expect(first["schema"] as? String == "liandong.reminder.v1" && first["reason"] as? String == "patrol_due")
        #expect(first["topic"] as? String == "reminder.\(village)" && (first["grid_code"] as? String)?.hasPrefix(village) == true)
        #expect(first["worker_id"] as? String != nil && first["day"] as? String == String(Timestamp.formatCST(Date().timeIntervalSince1970).prefix(10)))
        #expect(try daemon.metric("liandong_patrol_reminders_total") == Double(grids - 1))
        // Once: a restart (the sweeper checks again at start) sends no second one.
        #expect(try daemon.stop() == 0)
        let checked = "patrol checked"
        let before = daemon.log.components(separatedBy: checked).count
        try daemon.restart()
        try daemon.waitUntil(timeout: 15, "the restarted sweeper checked the patrols") {
            daemon.log.components(separatedBy: checked).count > before
        }
        #expect(try db.int("SELECT count(*) FROM liandong.patrol_reminders") == grids - 1)
        #expect(try db.int("SELECT count(*) FROM liandong.feed WHERE kind = 'reminder'") == grids - 1)
    }

    @Test("retention.positions_days drops whole days of positions (personal data); today's stay")
    func positionsRetention() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        defer { db.close() }
        for ago in ["3 days", "5 seconds"] { try Self.storePatrol(db, ago: ago) }
        let old = try db.query("SELECT 'worker_positions_' || to_char((now() - interval '3 days') AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD')").scalar!
        #expect(try db.query("SELECT to_regclass('liandong.' || $1)", [old]).scalar != nil)
        let daemon = try DaemonProcess(database: url, environment: ["LIANDONG_RETENTION_POSITIONS_DAYS": "1"])
        defer { _ = try? daemon.stop() }
        // The sweeper detaches the old day, then drops it: the rows leave before the table does.
        try daemon.waitUntil(timeout: 15, "retention at start: the old day's rows and its partition gone") {
            try db.int("SELECT count(*) FROM liandong.worker_positions") == 1
                && db.query("SELECT to_regclass('liandong.' || $1)", [old]).scalar == nil
        }
        try daemon.waitUntil(timeout: 5, "the metric") {
            try daemon.metric("liandong_retention_deleted_total{table=\"worker_positions\"}") == 1
        }
    }
}
