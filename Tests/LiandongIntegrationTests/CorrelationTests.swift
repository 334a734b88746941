import Foundation
import LiandongCore
import LibPQ
import Testing

/// Correlation v1 through the real daemon: events in over ZeroMQ, incidents and tasks in PostGIS,
/// task messages out on the feed.
@Suite("Correlation", .serialized)
struct CorrelationTests {
    @Test("a camera alert and a report 100 m and 2 min apart become one incident with one joint_dispatch")
    func nearInSpaceAndTime() throws {
        let s = try Scene()
        try s.send("alert", Wire.alert(id: "a-1", at: s.now - 120, position: s.centre))
        try s.send("report", Wire.report(id: "r-1", at: s.now, position: offset(s.centre, east: 100)))
        try s.waitProcessed(2)
        #expect(try s.count("SELECT count(*) FROM liandong.incidents") == 1)
        #expect(try s.count("SELECT count(*) FROM liandong.tasks WHERE kind = 'joint_dispatch'") == 1)
        // In one batch: one joint_dispatch. In two (the alert written first): verify, then the
        // upgrade to joint_dispatch. Either way exactly one joint_dispatch, and nothing else.
        let kinds = try s.feedKinds()
        #expect(kinds == ["joint_dispatch"] || kinds == ["verify", "joint_dispatch"], "\(kinds)")
        let tasks = try receiveTasks(s.feed, count: kinds.count)
        let joint = try #require(tasks.first { $0.body["kind"] as? String == "joint_dispatch" })
        #expect(joint.body["grid_code"] as? String == Scene.ruralGrid)
        #expect(joint.body["category"] as? String == "intrusion")
        // Priority 2 (serious): the township of 三道沟镇 is responsible.
        #expect(joint.topic == "task.620922102")
        #expect(joint.body["tier"] as? String == "township")
    }

    @Test("a report 1 km away opens its own incident: verify for the camera, dispatch for the serious report")
    func farInSpace() throws {
        let s = try Scene()
        try s.send("alert", Wire.alert(id: "a-1", at: s.now - 60, position: offset(s.centre, east: -500)))
        try s.send("report", Wire.report(id: "r-1", severity: 2, at: s.now, position: offset(s.centre, east: 500)))
        try s.waitProcessed(2)
        #expect(try s.count("SELECT count(*) FROM liandong.incidents") == 2)
        #expect(try s.feedKinds().sorted() == ["dispatch", "verify"])
        let tasks = try receiveTasks(s.feed, count: 2)
        let verify = tasks.first { $0.body["kind"] as? String == "verify" }
        // A verify task goes to the grid worker: its topic is the grid code.
        #expect(verify?.topic == "task." + Scene.ruralGrid)
        #expect(verify?.body["worker_id"] as? String != nil)
    }

    @Test("the same place two hours apart is two incidents")
    func farInTime() throws {
        let s = try Scene()
        try s.send("alert", Wire.alert(id: "a-1", at: s.now - 7200, position: s.centre))
        try s.send("report", Wire.report(id: "r-1", at: s.now, position: s.centre))
        try s.waitProcessed(2)
        #expect(try s.count("SELECT count(*) FROM liandong.incidents") == 2)
        #expect(try s.count("SELECT count(*) FROM liandong.tasks WHERE kind = 'joint_dispatch'") == 0)
    }

    @Test("out of order: a report that arrives before the earlier alert still joins it")
    func outOfOrder() throws {
        let s = try Scene()
        try s.send("report", Wire.report(id: "r-1", at: s.now, position: offset(s.centre, north: 80)))
        try s.waitProcessed(1)
        try s.send("alert", Wire.alert(id: "a-1", at: s.now - 300, position: s.centre))
        try s.waitProcessed(2)
        #expect(try s.count("SELECT count(*) FROM liandong.incidents") == 1)
        #expect(try s.feedKinds() == ["dispatch", "joint_dispatch"])
        #expect(try s.count("SELECT count(*) FROM liandong.tasks") == 1)
    }

    @Test("an intrusion alert and a crowd report at the same place do not correlate")
    func categoryMismatch() throws {
        let s = try Scene()
        try s.send("alert", Wire.alert(id: "a-1", type: 6, at: s.now, position: s.centre))
        try s.send("report", Wire.report(id: "r-1", category: "聚集", at: s.now, position: s.centre))
        try s.waitProcessed(2)
        #expect(try s.db.query("SELECT category FROM liandong.incidents ORDER BY category").rows.map { $0[0]! }
            == ["crowd", "intrusion"])
    }

    @Test("a GCJ-02 report joins only after conversion to WGS-84")
    func gcj02Conversion() throws {
        let s = try Scene()
        // left_object correlates within 150 m; the GCJ-02 offset here is about 160 m, eastward.
        let truth = offset(s.centre, east: 40)
        let gcj = CoordinateConverter.fromWGS84(truth, to: .gcj02)
        #expect(gcj.distance(to: s.centre) > 150, "read naively as WGS-84 the phone's numbers would be too far")
        try s.send("alert", Wire.alert(id: "a-1", type: 3, at: s.now - 30, position: s.centre))
        try s.send("report", Wire.report(id: "r-1", category: "left_object", at: s.now, position: gcj, crs: "gcj02"))
        try s.waitProcessed(2)
        #expect(try s.count("SELECT count(*) FROM liandong.incidents") == 1)
        #expect(try s.feedKinds().contains("joint_dispatch"))
        let stored = try s.db.query("""
            SELECT ST_Distance(geog, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography) FROM liandong.events
            WHERE source_id = 'r-1'
            """, [String(truth.lon), String(truth.lat)])
        #expect(Double(stored.scalar!)! < 2.0)
    }

    @Test("camera-only then report: verify, then exactly one joint_dispatch, later evidence is update (coalescing off)")
    func exactlyOnceJointDispatch() throws {
        let s = try Scene(environment: ["LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "0"])
        try s.send("alert", Wire.alert(id: "a-1", at: s.now - 100, position: s.centre))
        try s.waitProcessed(1)
        try s.send("report", Wire.report(id: "r-1", at: s.now - 50, position: s.centre))
        try s.waitProcessed(2)
        // Ids may hold any character; the evidence read back from PostgreSQL keeps them intact.
        let odd = (2...4).map { "a-\($0), \"q\" {b} \\ NULL" }
        for i in 2...4 {
            try s.send("alert", Wire.alert(id: odd[i - 2], at: s.now - 40 + Double(i), position: offset(s.centre, east: 20)))
            try s.waitProcessed(i + 1)
        }
        try s.send("report", Wire.report(id: "r-2", at: s.now, position: s.centre))
        try s.waitProcessed(6)
        #expect(try s.count("SELECT count(*) FROM liandong.incidents") == 1)
        #expect(try s.count("SELECT count(*) FROM liandong.tasks") == 1)
        #expect(try s.feedKinds() == ["verify", "joint_dispatch", "update", "update", "update", "update"])
        let tasks = try receiveTasks(s.feed, count: 6)
        #expect(Set(tasks.map { $0.body["task_id"] as! String }).count == 1)
        let seqs = tasks.map { $0.body["seq"] as! Int }
        #expect(seqs == Array(1...6))
        let last = tasks.last!.body["evidence"] as! [String: Any]
        #expect(last["alert_count"] as? Int == 4 && last["report_count"] as? Int == 2)
        // Most recent first.
        #expect(last["alerts"] as? [String] == odd.reversed() + ["a-1"])
        #expect(last["reports"] as? [String] == ["r-2", "r-1"])
    }

    @Test("a minor report alone is recorded without a task; a serious one is dispatched")
    func minorAndSeriousReports() throws {
        let s = try Scene()
        try s.send("report", Wire.report(id: "r-minor", category: "治安隐患", severity: 4, at: s.now, position: s.centre))
        try s.send("report", Wire.report(id: "r-serious", category: "矛盾纠纷", severity: 1, at: s.now,
                                         position: offset(s.centre, east: 400)))
        try s.waitProcessed(2)
        #expect(try s.count("SELECT count(*) FROM liandong.incidents") == 2)
        #expect(try s.feedKinds() == ["dispatch"])
        let task = try receiveTasks(s.feed, count: 1)[0]
        #expect(task.body["category"] as? String == "dispute")
        #expect(task.body["priority"] as? Int == 1)
        #expect((task.body["departments"] as? [String])?.contains("civil_affairs") == true)
    }

    @Test("the same alert_id three times and the same report_id twice have one effect each")
    func duplicateIDs() throws {
        let s = try Scene()
        for _ in 0..<3 { try s.send("alert", Wire.alert(id: "gw-test:000001", at: s.now, position: s.centre)) }
        for _ in 0..<2 { try s.send("report", Wire.report(id: "r-dup", at: s.now, position: s.centre)) }
        try s.send("report", Wire.report(id: "r-marker", category: "聚集", at: s.now, position: s.centre))
        try waitUntil(timeout: 10, "the marker report") {
            try s.count("SELECT count(*) FROM liandong.events WHERE source_id = 'r-marker'") == 1
        }
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source <> 'report' OR source_id <> 'r-marker'") == 2)
        #expect(try s.count("SELECT count(*) FROM liandong.tasks WHERE category = 'intrusion'") == 1)
        #expect(try s.count("SELECT count(*) FROM liandong.feed WHERE kind = 'joint_dispatch'") == 1)
        #expect(try s.count("SELECT count(*) FROM liandong.feed WHERE kind = 'update'") == 0)
    }

    @Test("an alert without lon/lat is placed at its registered camera and assigned that camera's grid")
    func alertAtCameraPosition() throws {
        let s = try Scene()
        let camera = try s.db.query("SELECT device_id, grid_code FROM liandong.cameras ORDER BY device_id LIMIT 1")
        try s.send("alert", Wire.alert(id: "a-cam", device: camera[0, "device_id"]!, at: s.now))
        try s.waitProcessed(1)
        let row = try s.db.query("SELECT grid_code, source_crs FROM liandong.events WHERE source_id = 'a-cam'")
        #expect(row[0, "grid_code"] == camera[0, "grid_code"])
        #expect(row[0, "source_crs"] == "camera")
    }

    @Test("with ingest.connect the daemon subscribes to a gateway that binds its PUB")
    func ingestConnect() throws {
        let url = try TestDatabase.create()
        let daemon = try DaemonProcess(database: url, gatewayBinds: true)
        let db = try PGConnection(conninfo: url)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        try daemon.send("alert.gw-9", Wire.alert(id: "via-connect", at: Date().timeIntervalSince1970, position: centre))
        try waitUntil(timeout: 10, "the alert") {
            try db.int("SELECT count(*) FROM liandong.events WHERE source_id = 'via-connect'") == 1
        }
        #expect(try daemon.stop() == 0)
    }
}
