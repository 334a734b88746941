import Foundation
import LiandongCore
import LibPQ
import Testing

/// Task life through the real daemon: dispatcher updates on the ROUTER, deadlines and escalation
/// village -> township -> county, closure, assessment views.
@Suite("Task lifecycle (daemon)")
struct TaskLifecycleIntegrationTests {
    /// Sends a camera-only alert and returns its verify task id.
    func verifyTask(_ s: Scene, id: String = "a-1", device: String = "62092200001320000004") throws -> String {
        try s.send("alert", Wire.alert(id: id, device: device, priority: 3, at: s.now, position: s.centre))
        var task: String? = nil
        try waitUntil(timeout: 10, "the verify task") {
            task = try s.db.query("""
                SELECT t.id FROM liandong.tasks t JOIN liandong.events e ON e.incident_id = t.incident_id
                WHERE e.source_id = $1
                """, [id]).scalar
            return task != nil
        }
        return task!
    }

    @Test("accept, start, resolve over a DEALER: answers after commit, state and history follow, incident closes")
    func happyPath() throws {
        let s = try Scene()
        let task = try verifyTask(s)
        let d = try Dispatcher(s.daemon)
        let accepted = try d.send(task, "accept", id: "u-accept")
        #expect(accepted["ok"] as? Bool == true && accepted["update_id"] as? String == "u-accept")
        #expect(try s.db.query("SELECT state FROM liandong.tasks WHERE id = $1", [task]).scalar == "accepted")
        #expect(try d.send(task, "start")["ok"] as? Bool == true)
        #expect(try d.send(task, "resolve", note: "crowd dispersed")["ok"] as? Bool == true)
        #expect(try s.db.query("SELECT state FROM liandong.tasks WHERE id = $1", [task]).scalar == "resolved")
        let incident = try s.db.query("""
            SELECT i.status, i.resolution FROM liandong.incidents i JOIN liandong.tasks t ON t.incident_id = i.id WHERE t.id = $1
            """, [task])
        #expect(incident[0, "status"] == "closed" && incident[0, "resolution"] == "resolved")
        #expect(try s.db.query("SELECT string_agg(event, ',' ORDER BY id) FROM liandong.task_history WHERE task_id = $1",
                               [task]).scalar == "created,accepted,started,resolved")
        // Every update went out on the feed, in order, after the verify.
        let messages = try receiveTasks(s.feed, count: 4)
        #expect(messages.map { $0.body["kind"] as! String } == ["verify", "update", "update", "update"])
        #expect(messages.map { $0.body["state"] as! String } == ["open", "accepted", "in_progress", "resolved"])
        #expect(messages[3].body["reason"] as? String == "crowd dispersed")
        #expect(messages[1].body["update_id"] as? String == "u-accept")
    }

    @Test("refused updates get a precise reason; the same update_id gets the same answer and one effect")
    func refusalsAndIdempotence() throws {
        let s = try Scene()
        let task = try verifyTask(s)
        let d = try Dispatcher(s.daemon)
        #expect(try d.send(task, "start")["error"] as? String == "task must be accepted before it is started")
        let first = try d.send(task, "accept", id: "same")
        let again = try d.send(task, "accept", id: "same")
        #expect(first["ok"] as? Bool == true && again["ok"] as? Bool == true)
        #expect(try s.db.int("SELECT count(*) FROM liandong.task_history WHERE task_id = $1 AND event = 'accepted'", [task]) == 1)
        let second = try d.send(task, "accept", id: "other")
        #expect(second["ok"] as? Bool == false && (second["error"] as? String ?? "").contains("already accepted"))
        #expect(try d.send(task, "accept", id: "other")["error"] as? String == second["error"] as? String)
        let unknown = try d.send("5b2d5a8e-0000-4000-8000-000000000000", "accept")
        #expect((unknown["error"] as? String ?? "").hasPrefix("unknown task"))
        #expect((try d.send("not-a-uuid", "accept")["error"] as? String ?? "").hasPrefix("unknown task"))
        #expect(try d.send(task, "false_alarm")["ok"] as? Bool == true)
        #expect((try d.send(task, "resolve")["error"] as? String ?? "").contains("already false_alarm"))
        // Garbage is answered and dead-lettered.
        let garbage = try d.raw("{\"schema\":\"liandong.task_update.v1\",\"update_id\":\"g-1\"}")
        #expect(garbage["ok"] as? Bool == false && garbage["update_id"] as? String == "g-1")
        #expect(try s.db.int("SELECT count(*) FROM liandong.rejected_messages WHERE endpoint = 'updates' AND reason = 'invalid_update'") == 1)
        #expect(try s.db.int("SELECT count(*) FROM liandong.task_updates") == 7)
    }

    @Test("a REQ client works the same (empty delimiter frame)")
    func reqClient() throws {
        let s = try Scene()
        let task = try verifyTask(s)
        let d = try Dispatcher(s.daemon, type: .req)
        #expect(try d.send(task, "accept")["ok"] as? Bool == true)
    }

    @Test("a verify task answered false_alarm closes the incident and counts against the camera")
    func falseAlarmCountsAgainstCamera() throws {
        let s = try Scene()
        let camera = "62092200001320000004"
        let task = try verifyTask(s, device: camera)
        #expect(try Dispatcher(s.daemon).send(task, "false_alarm", note: "a dog")["ok"] as? Bool == true)
        let r = try s.db.query("SELECT alerts, confirmed, false_alarms FROM liandong.camera_reliability WHERE device_id = $1", [camera])
        #expect(r[0, "alerts"] == "1" && r[0, "confirmed"] == "0" && r[0, "false_alarms"] == "1")
        // The closed incident takes no more evidence: the next alert opens a new one.
        _ = try verifyTask(s, id: "a-2", device: camera)
        #expect(try s.db.int("SELECT count(*) FROM liandong.incidents") == 2)
    }

    @Test("a report confirming a verify task upgrades it to joint_dispatch at the routed tier")
    func verifyConfirmed() throws {
        let s = try Scene()
        let task = try verifyTask(s)
        try s.send("report", Wire.report(id: "r-1", severity: 2, at: s.now, position: s.centre))
        try waitUntil { try s.db.query("SELECT kind FROM liandong.tasks WHERE id = $1", [task]).scalar == "joint_dispatch" }
        let row = try s.db.query("SELECT tier, division_code, state FROM liandong.tasks WHERE id = $1", [task])
        #expect(row[0, "tier"] == "township" && row[0, "division_code"] == "620922102" && row[0, "state"] == "open")
        let messages = try receiveTasks(s.feed, count: 2)
        #expect(messages[1].topic == "task.620922102" && messages[1].body["kind"] as? String == "joint_dispatch")
    }

    @Test("reject climbs one tier with an escalation on the new division's topic; the county cannot reject")
    func reject() throws {
        let s = try Scene()
        let task = try verifyTask(s)
        let d = try Dispatcher(s.daemon)
        #expect(try d.send(task, "reject", note: "not our grid")["ok"] as? Bool == true)
        #expect(try d.send(task, "reject", note: "beyond the township")["ok"] as? Bool == true)
        let refused = try d.send(task, "reject", note: "no")
        #expect((refused["error"] as? String ?? "").contains("county platform cannot reject"))
        let messages = try receiveTasks(s.feed, count: 3)
        #expect(messages.map(\.topic) == ["task." + Scene.ruralGrid, "task.620922102", "task.620922"])
        #expect(messages[1].body["kind"] as? String == "escalation")
        #expect(messages[1].body["previous_division_code"] as? String == "620922102201")
        #expect(try s.db.query("SELECT escalations FROM liandong.tasks WHERE id = $1", [task]).scalar == "2")
    }

    static let fastSLA = [
        "LIANDONG_SLA_VILLAGE_RESPOND_MINUTES": "0.02,0.02,0.02,0.02",
        "LIANDONG_SLA_TOWNSHIP_RESPOND_MINUTES": "0.02,0.02,0.02,0.02",
        "LIANDONG_SLA_COUNTY_RESPOND_MINUTES": "0.02,0.02,0.02,0.02",
        "LIANDONG_ESCALATION_SWEEP_MS": "100",
        "LIANDONG_ESCALATION_REANNOUNCE_MINUTES": "0.02",
    ]

    @Test("an unanswered task escalates village -> township -> county, is marked overdue and re-announced")
    func escalationLadder() throws {
        let s = try Scene(environment: Self.fastSLA)
        let task = try verifyTask(s)
        let messages = try receiveTasks(s.feed, count: 5, timeout: 30)
        #expect(messages.map { $0.body["kind"] as! String } == ["verify", "escalation", "escalation", "escalation", "escalation"])
        #expect(messages.map(\.topic) == ["task." + Scene.ruralGrid, "task.620922102", "task.620922", "task.620922", "task.620922"])
        #expect(messages[3].body["overdue"] as? Bool == true && messages[2].body["overdue"] as? Bool == false)
        #expect((messages[1].body["reason"] as? String ?? "").contains("respond_by"))
        let history = try s.db.query(
            "SELECT event, tier, division_code, from_division_code FROM liandong.task_history WHERE task_id = $1 ORDER BY id LIMIT 5",
            [task])
        #expect(history.rows.map { $0[0]! } == ["created", "escalated", "escalated", "overdue", "reannounced"])
        #expect(history.rows.map { $0[2]! } == ["620922102201", "620922102", "620922", "620922", "620922"])
        #expect(history.rows[1][3] == "620922102201" && history.rows[2][3] == "620922102")
        #expect(try s.db.int("SELECT count(*) FROM liandong.overdue_tasks WHERE task_id = $1", [task]) == 1)
        // Accepting at the county ends the respond deadline chase; the task is no longer late to respond.
        #expect(try Dispatcher(s.daemon).send(task, "resolve")["ok"] as? Bool == true)
        #expect(try s.db.int("SELECT count(*) FROM liandong.overdue_tasks") == 0)
    }

    @Test("deadlines survive a restart: a task that fell due while the daemon was down escalates on start")
    func restartMidSLA() throws {
        var env = Self.fastSLA
        env["LIANDONG_SLA_VILLAGE_RESPOND_MINUTES"] = "0.05,0.05,0.05,0.05"
        env["LIANDONG_SLA_TOWNSHIP_RESPOND_MINUTES"] = "60,60,60,60"
        let s = try Scene(environment: env)
        let task = try verifyTask(s)
        #expect(try s.daemon.stop() == 0)
        #expect(try s.db.int("SELECT count(*) FROM liandong.task_history WHERE task_id = $1 AND event = 'escalated'", [task]) == 0)
        try waitUntil(timeout: 10, "the respond_by deadline to pass while stopped") {
            try s.db.query("SELECT respond_by < now() FROM liandong.tasks WHERE id = $1", [task]).scalar == "t"
        }
        let second = try DaemonProcess(database: s.daemon.database, environment: env)
        // The sweep at start may beat any subscriber to it, so look in the feed table.
        try waitUntil(timeout: 10, "the escalation") {
            try s.db.int("SELECT count(*) FROM liandong.feed WHERE kind = 'escalation' AND topic = 'task.620922102' AND seq <= (SELECT seq FROM liandong.feed_published)") == 1
        }
        #expect(try s.db.query("SELECT tier FROM liandong.tasks WHERE id = $1", [task]).scalar == "township")
        #expect(try second.stop() == 0)
    }

    @Test("division_kpis on a known scenario: received, on time, escalations, false alarms per division")
    func kpis() throws {
        var env = Self.fastSLA
        env["LIANDONG_SLA_VILLAGE_RESPOND_MINUTES"] = "0.1,0.1,0.1,0.1"   // 6 s to accept at the village
        env["LIANDONG_SLA_TOWNSHIP_RESPOND_MINUTES"] = "60,60,60,60"
        let s = try Scene(environment: env)
        let village = "620922102201", township = "620922102"
        // Three camera-only incidents far apart in grids of the same village.
        let t1 = try verifyTask(s, id: "k-1")
        let d = try Dispatcher(s.daemon)
        try s.send("alert", Wire.alert(id: "k-2", priority: 3, at: s.now, position: try Scene.centre(of: village + "001", s.db)))
        try s.send("alert", Wire.alert(id: "k-3", priority: 3, at: s.now, position: try Scene.centre(of: village + "002", s.db)))
        try waitUntil { try s.db.int("SELECT count(*) FROM liandong.tasks") == 3 }
        let ids = try s.db.query("""
            SELECT e.source_id, t.id FROM liandong.tasks t JOIN liandong.events e ON e.incident_id = t.incident_id
            """).rows.reduce(into: [String: String]()) { $0[$1[0]!] = $1[1]! }
        #expect(try d.send(t1, "accept")["ok"] as? Bool == true)
        #expect(try d.send(t1, "resolve")["ok"] as? Bool == true)
        #expect(try d.send(ids["k-2"]!, "false_alarm")["ok"] as? Bool == true)
        // k-3 is ignored: it escalates to the township after 6 s.
        try waitUntil(timeout: 20, "k-3 to escalate") {
            try s.db.query("SELECT tier FROM liandong.tasks WHERE id = $1", [ids["k-3"]!]).scalar == "township"
        }
        let v = try s.db.query("SELECT * FROM liandong.division_kpis WHERE division_code = $1", [village])
        #expect(v.count == 1)
        #expect(v[0, "tasks_received"] == "3" && v[0, "accepted"] == "1" && v[0, "resolved"] == "1")
        #expect(v[0, "accepted_on_time_pct"] == "33.3" && v[0, "resolved_on_time_pct"] == "33.3")
        #expect(v[0, "escalations"] == "1" && v[0, "false_alarms"] == "1")
        #expect(Double(v[0, "median_minutes_to_accept"] ?? "x") != nil)
        let t = try s.db.query("SELECT tasks_received, accepted, escalations FROM liandong.division_kpis WHERE division_code = $1", [township])
        #expect(t.count == 1 && t[0, "tasks_received"] == "1" && t[0, "accepted"] == "0" && t[0, "escalations"] == "0")
    }

    @Test("liandong_operator reads, under its scope only, and writes nothing; without a scope it sees no row")
    func operatorRole() throws {
        let s = try Scene()
        _ = try verifyTask(s)
        try s.db.execute("SET ROLE liandong_operator")
        let relations = ["open_incidents", "overdue_tasks", "division_kpis", "camera_reliability", "grid_worker_load", "events", "tasks",
                         "rejected_messages", "divisions"]
        for relation in relations {
            #expect(try s.db.int("SELECT count(*) FROM liandong.\(relation)") == 0, "\(relation): no scope, no rows")
        }
        try s.db.execute("RESET ROLE")
        try s.db.query("INSERT INTO liandong.operator_scopes (role, scope) VALUES ('liandong_operator', $1)", [String(Scene.ruralGrid.prefix(9))])
        try s.db.execute("SET ROLE liandong_operator")
        #expect(try s.db.int("SELECT count(*) FROM liandong.open_incidents") == 1)
        #expect(try s.db.int("SELECT count(*) FROM liandong.tasks") == 1)
        for write in ["DELETE FROM liandong.tasks", "UPDATE liandong.incidents SET priority = 1", "TRUNCATE liandong.feed",
                      "INSERT INTO liandong.operator_scopes (role, scope) VALUES ('x', '')"] {
            #expect { try s.db.query(write) } throws: { ($0 as? PQError)?.sqlState == "42501" }
        }
        try s.db.execute("RESET ROLE")
    }

    @Test("cameras.demote lowers the priority of a noisy camera's alerts at ingest")
    func cameraDemotion() throws {
        let camera = "62092200001320000004"
        let file = try temporaryFile("cameras:\n  demote:\n    \"\(camera)\": 2\n")
        let url = try TestDatabase.create()
        let daemon = try DaemonProcess(database: url, arguments: ["--config", file])
        let db = try PGConnection(conninfo: url)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        try daemon.send("alert", Wire.alert(id: "noisy", device: camera, priority: 1, at: Date().timeIntervalSince1970, position: centre))
        try waitUntil { try db.int("SELECT count(*) FROM liandong.events") == 1 }
        #expect(try db.query("SELECT priority FROM liandong.events WHERE source_id = 'noisy'").scalar == "3")
    }
}
