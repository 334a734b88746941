import Foundation
import LibPQ
import LiandongCore
import Testing

/// The city read model on three PostgreSQL clusters of this machine: two counties (wal_level
/// logical, a daemon each) and a city, through `liandongd city attach|detach`.
@Suite("City read model (logical replication)", .serialized)
struct CityTests {
    static let logical = "-c wal_level=logical -c max_replication_slots=8 -c max_wal_senders=8"

    /// The Guazhou dataset as a second county, 620923 (codes and device ids renumbered, names marked).
    static func secondCounty() throws -> String {
        let dir = "\(Scratch.directory)/ld-county-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for file in ["divisions.csv", "grids.geojson", "cameras.csv"] {
            let text = try String(contentsOfFile: TestDatabase.data + "/" + file, encoding: .utf8)
            try text.replacingOccurrences(of: "620922", with: "620923").replacingOccurrences(of: "瓜州县", with: "测试县")
                .write(toFile: dir + "/" + file, atomically: true, encoding: .utf8)
        }
        return dir
    }

    @Test("a task in each county reaches the city views within seconds; the city down, then a county down, for a while: caught up; detach removes a county")
    func city() throws {
        let a = try PrivateCluster(serverOptions: Self.logical)
        let b = try PrivateCluster(serverOptions: Self.logical, data: try Self.secondCounty())
        let city = try PrivateCluster(serverOptions: "-c max_logical_replication_workers=8 -c max_worker_processes=16", county: false)
        let daemonA = try DaemonProcess(database: a.conninfo), daemonB = try DaemonProcess(database: b.conninfo)
        let dbA = try PGConnection(conninfo: a.conninfo)
        let centre = try Scene.centre(of: Scene.ruralGrid, dbA)
        let now = Date().timeIntervalSince1970
        try daemonA.send("alert", Wire.alert(id: "city-a1", priority: 1, at: now, position: centre))
        try daemonB.send("alert", Wire.alert(id: "city-b1", device: "62092300001320000004", priority: 1, at: now, position: centre))
        let dbB = try PGConnection(conninfo: b.conninfo)
        try waitUntil(timeout: 15, "a task in each county") {
            try dbA.int("SELECT count(*) FROM liandong.tasks") == 1 && dbB.int("SELECT count(*) FROM liandong.tasks") == 1
        }

        // Attach both; the city refuses to be a county and a county without logical WAL is refused.
        for county in [a, b] {
            let r = try liandongd(["city", "attach", "--city", city.conninfo, "--county", county.conninfo])
            #expect(r.status == 0 && r.stdout.contains("attached"), "\(r.stderr)")
        }
        let again = try liandongd(["city", "attach", "--city", city.conninfo, "--county", a.conninfo])
        #expect(again.stdout.contains("already attached"))
        let wrong = try liandongd(["city", "attach", "--city", a.conninfo, "--county", b.conninfo])
        #expect(wrong.status != 0 && wrong.stderr.contains("is a county database"), "\(wrong.stderr)")
        let cityDB = try PGConnection(conninfo: city.conninfo)
        try waitUntil(timeout: 30, "both counties' incidents in the city") {
            try cityDB.query("SELECT county_code FROM liandong.city_open_incidents ORDER BY 1").rows.map { $0[0]! } == ["620922", "620923"]
        }
        let open = try cityDB.query("SELECT county_name, task_kind, task_tier, village_name FROM liandong.city_open_incidents ORDER BY county_code")
        #expect(open[0, "county_name"] == "瓜州县" && open[1, "county_name"] == "测试县" && open[0, "task_kind"] == "verify")
        #expect(open[0, "village_name"] != nil && open[0, "village_name"] == open[1, "village_name"].map { $0.replacingOccurrences(of: "测试县", with: "瓜州县") })
        // The tables are copied one by one at first: task history may follow the incidents a moment later.
        try waitUntil(timeout: 30, "each county's first task in city_division_kpis") {
            try cityDB.query("SELECT county_code, sum(tasks_received) FROM liandong.city_division_kpis GROUP BY 1 ORDER BY 1").rows
                .map { "\($0[0]!):\($0[1]!)" } == ["620922:1", "620923:1"]
        }
        // Step ids repeat across counties (both start at 1): both kept.
        #expect(try cityDB.int("SELECT count(*) FROM liandong.task_history WHERE id = 1") == 2)
        #expect(try cityDB.int("SELECT count(*) FROM liandong.divisions") == 2 * dbA.int("SELECT count(*) FROM liandong.divisions"))

        // Live: a new task in county A reaches the city within seconds (not the initial copy).
        let sent = Date()
        try daemonA.send("alert", Wire.alert(id: "city-a2", priority: 1, at: now, position: offset(centre, east: 5000)))
        try waitUntil(timeout: 15, "the new task in the city") {
            try cityDB.int("SELECT count(*) FROM liandong.city_open_incidents WHERE county_code = '620922'") == 2
        }
        let lag = Date().timeIntervalSince(sent)
        #expect(lag < 10, "\(lag) s from the alert to the city view")

        // The city down for a while: the counties go on (their slots keep the WAL); back, it catches up.
        try city.stop()
        try daemonB.send("alert", Wire.alert(id: "city-b2", device: "62092300001320000004", priority: 1, at: now,
                                             position: offset(centre, east: -2000)))
        try waitUntil(timeout: 15, "the task in county B") { try dbB.int("SELECT count(*) FROM liandong.tasks") == 2 }
        try Dispatcher(daemonA).send(try #require(try dbA.query("SELECT id FROM liandong.tasks ORDER BY created_at LIMIT 1").scalar), "accept")
        try city.start()
        let back = try PGConnection(conninfo: city.conninfo)
        try waitUntil(timeout: 30, "the city caught up") {
            try back.int("SELECT count(*) FROM liandong.city_open_incidents WHERE county_code = '620923'") == 2
                && back.int("SELECT count(*) FROM liandong.task_history WHERE county_code = '620922' AND event = 'accepted'") == 1
        }
        #expect(try back.query("SELECT state FROM liandong.tasks WHERE county_code = '620922' ORDER BY created_at LIMIT 1").scalar == "accepted")

        // County B down for a while (its daemon spills what arrives meanwhile); back, the city gets what it wrote.
        try b.stop()
        try daemonB.send("alert", Wire.alert(id: "city-b3", device: "62092300001320000004", priority: 1, at: now,
                                             position: offset(centre, east: 5000)))
        try b.start()
        let dbB2 = try PGConnection(conninfo: b.conninfo)
        try daemonB.waitUntil(timeout: 60, "county B's daemon wrote what it spilled") {
            try dbB2.int("SELECT count(*) FROM liandong.incidents") == 3 || dbB2.int("SELECT count(*) FROM liandong.rejected_messages") > 0
        }
        #expect(try dbB2.int("SELECT count(*) FROM liandong.rejected_messages") == 0)
        try waitUntil(timeout: 60, "county B's third incident in the city") {
            try back.int("SELECT count(*) FROM liandong.city_open_incidents WHERE county_code = '620923'") == 3
        }

        // Detach A: its subscription and its rows go; B stays.
        let detached = try liandongd(["city", "detach", "--city", city.conninfo, "--county", a.conninfo])
        #expect(detached.status == 0 && detached.stdout.contains("county 620922 detached"), "\(detached.stderr)")
        #expect(try back.int("SELECT count(*) FROM liandong.incidents WHERE county_code = '620922'") == 0)
        #expect(try back.int("SELECT count(*) FROM liandong.incidents WHERE county_code = '620923'") == 3)
        #expect(try dbA.int("SELECT count(*) FROM pg_replication_slots") == 0, "the county's slot dropped with the subscription")
        _ = try daemonA.stop()
        _ = try daemonB.stop()
    }

    @Test("city attach with the documented roles (the county's owner is `liandong`, like the schema); a failed attach leaves nothing behind")
    func documentedRoles() throws {
        let county = try PrivateCluster(serverOptions: Self.logical, county: false)
        let admin = "host=127.0.0.1 port=\(county.port) user=postgres dbname=postgres sslmode=disable"
        // The DBA's setup as OPERATIONS.md has it, then the owner migrates and imports.
        let setup = try runCaptured("/usr/lib/postgresql/15/bin/psql", [admin, "-v", "db=guazhou", "-v", "owner=liandong",
                                                                         "-f", TestDatabase.repository.path + "/deploy/dba-setup.sql"])
        #expect(setup.status == 0, "\(setup.stderr)")
        try PGConnection(conninfo: admin).execute("ALTER ROLE liandong REPLICATION")
        let owner = "host=127.0.0.1 port=\(county.port) user=liandong dbname=guazhou sslmode=disable"
        #expect(try liandongd(["migrate", "--migrations", TestDatabase.migrations], database: owner).status == 0)
        for (kind, file) in [("divisions", "divisions.csv"), ("grids", "grids.geojson"), ("cameras", "cameras.csv")] {
            let imported = try liandongd(["import", kind, TestDatabase.data + "/" + file, "--migrations", TestDatabase.migrations], database: owner)
            #expect(imported.status == 0, "\(imported.stderr)")
        }
        let countyDB = try PGConnection(conninfo: owner)
        let city = try PrivateCluster(serverOptions: "-c max_logical_replication_workers=4 -c max_worker_processes=12", county: false)

        // A city database without PostGIS, owned by a role that may not create it: refused, and
        // the county's publications are gone again.
        let cityAdmin = try PGConnection(conninfo: "host=127.0.0.1 port=\(city.port) user=postgres dbname=postgres sslmode=disable")
        try cityAdmin.execute("CREATE ROLE cityop LOGIN REPLICATION")
        try cityAdmin.execute("CREATE DATABASE bare OWNER cityop")
        let asOperator = "host=127.0.0.1 port=\(city.port) user=cityop dbname=bare sslmode=disable"
        let refused = try liandongd(["city", "attach", "--city", asOperator, "--county", owner])
        #expect(refused.status != 0 && refused.stderr.contains("lacks PostGIS and this role cannot create it")
            && refused.stderr.contains("undone: publication"), "\(refused.stderr)")
        #expect(try countyDB.int("SELECT count(*) FROM pg_publication") == 0)

        // A superuser's attach creates PostGIS itself.
        let bare = "host=127.0.0.1 port=\(city.port) user=postgres dbname=bare sslmode=disable"
        let attached = try liandongd(["city", "attach", "--city", bare, "--county", owner])
        #expect(attached.status == 0 && attached.stdout.contains("county 620922 attached"), "\(attached.stderr)")
        let cityDB = try PGConnection(conninfo: bare)
        #expect(try cityDB.int("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'") == 1)
        #expect(try cityDB.query("SELECT pg_get_viewdef('liandong.city_task_assignments'::regclass)").scalar?.contains("liandong.task_history") == true)
        try waitUntil(timeout: 30, "the county's divisions in the city") {
            try cityDB.int("SELECT count(*) FROM liandong.divisions") == countyDB.int("SELECT count(*) FROM liandong.divisions")
        }
        #expect(try cityDB.int("SELECT count(*) FROM liandong.city_division_kpis") == 0)
    }

    @Test("a county whose database failed over (its logical slot stayed on the dead primary): city attach again resynchronises it - each row once, nothing missing - and says so")
    func countyFailover() throws {
        let r = try ReplicatedDatabase(serverOptions: Self.logical)
        let city = try PrivateCluster(serverOptions: "-c max_logical_replication_workers=4 -c max_worker_processes=12", county: false)
        let daemon = try DaemonProcess(database: r.url)
        let county = try PGConnection(conninfo: r.primary.conninfo)
        let centre = try Scene.centre(of: Scene.ruralGrid, county)
        let now = Date().timeIntervalSince1970
        try daemon.send("alert", Wire.alert(id: "fo-city-1", priority: 1, at: now, position: centre))
        try waitUntil(timeout: 15, "a task in the county") { try county.int("SELECT count(*) FROM liandong.tasks") == 1 }
        let attached = try liandongd(["city", "attach", "--city", city.conninfo, "--county", r.url])
        #expect(attached.status == 0 && attached.stdout.contains("county 620922 attached"), "\(attached.stderr)")
        let cityDB = try PGConnection(conninfo: city.conninfo)
        try waitUntil(timeout: 30, "the task in the city") { try cityDB.int("SELECT count(*) FROM liandong.tasks") == 1 }

        // The county fails over; the city's subscription has no slot on the new primary.
        try r.failOver()
        let promoted = try PGConnection(conninfo: r.standby.conninfo)
        try daemon.send("alert", Wire.alert(id: "fo-city-2", priority: 1, at: now, position: offset(centre, east: 5000)))
        try daemon.waitUntil(timeout: 30, "a second task on the new primary") { try promoted.int("SELECT count(*) FROM liandong.tasks") == 2 }
        try Dispatcher(daemon).send(try #require(try promoted.query("SELECT id FROM liandong.tasks ORDER BY created_at LIMIT 1").scalar), "accept")
        try daemon.waitUntil(timeout: 15, "the acceptance stored") { try promoted.int("SELECT count(*) FROM liandong.tasks WHERE state = 'accepted'") == 1 }

        let again = try liandongd(["city", "attach", "--city", city.conninfo, "--county", r.url])
        #expect(again.status == 0 && again.stdout.contains("county 620922 resynchronised"), "\(again.stdout) \(again.stderr)")
        let same = { (table: String, columns: String) in
            let sql = "SELECT \(columns) FROM liandong.\(table) ORDER BY 1"
            return try cityDB.query(sql).rows == promoted.query(sql).rows
        }
        try waitUntil(timeout: 60, "the city holds the county's rows as the new primary has them") {
            try same("tasks", "id, state, tier") && same("task_history", "id, task_id, event") && same("incidents", "id, status")
                && same("divisions", "code") && same("grids", "grid_code") && same("cameras", "device_id")
        }
        #expect(try cityDB.int("SELECT count(*) FROM liandong.tasks WHERE state = 'accepted'") == 1)
        // Attached again, it is attached: nothing more to do.
        #expect(try liandongd(["city", "attach", "--city", city.conninfo, "--county", r.url]).stdout.contains("already attached"))
    }
}
