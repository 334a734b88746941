import Foundation
import LibPQ
import LiandongCore
import Testing

/// `liandongd silence add|list|expire` against a running daemon: matching events are stored and
/// correlated but make no task message, and are counted.
@Suite("Silences (daemon)")
struct SilenceIntegrationTests {
    @Test("a camera under maintenance: its alerts are stored without a task; another camera's make one; expired, tasks again")
    func maintenanceWindow() throws {
        let s = try Scene()
        let url = s.daemon.database
        let quiet = "62092200001320000004", loud = "62092200001320000005"
        let added = try liandongd(["silence", "add", "--device", quiet, "--duration", "2h", "--comment", "lens cleaning", "--by", "ops-1"],
                                  database: url)
        #expect(added.status == 0 && added.stdout.hasPrefix("silence 1 until"), "\(added.stdout) \(added.stderr)")
        let listed = try liandongd(["silence", "list"], database: url)
        #expect(listed.stdout.contains("1\tactive") && listed.stdout.contains("device \(quiet)*") && listed.stdout.contains("lens cleaning"))

        // Other grids of the township, kilometres apart: where the probes and the later alert go.
        let spots = try s.db.query("""
            SELECT grid_code FROM liandong.grids WHERE grid_code LIKE '620922102%' AND grid_code <> $1
            ORDER BY ST_Distance(ST_Centroid(geom)::geography, (SELECT ST_Centroid(geom)::geography FROM liandong.grids WHERE grid_code = $1)) DESC
            LIMIT 2
            """, [Scene.ruralGrid]).rows.map { try Scene.centre(of: $0[0]!, s.db) }
        #expect(spots.count == 2)
        // The writer looks at the table at most once a second: probe until a silenced alert is counted
        // (the probes make one incident of their own, far away).
        try s.daemon.probe("the silence in effect", send: {
            try s.send("alert", Wire.alert(id: "probe-\($0)", device: quiet, priority: 3, at: Date().timeIntervalSince1970,
                                           position: spots[0]))
        }, until: {
            try s.daemon.metric("liandong_events_silenced_total") >= 1
        })
        let silencedBefore = try s.daemon.metric("liandong_events_silenced_total")

        // Two alerts of the silenced camera at one place, another camera far away.
        let far = offset(s.centre, east: 5000)
        let now = Date().timeIntervalSince1970
        try s.send("alert", Wire.alert(id: "q-1", device: quiet, priority: 3, at: now, position: s.centre))
        try s.send("alert", Wire.alert(id: "q-2", device: quiet, priority: 3, at: now + 1, position: s.centre))
        try s.send("alert", Wire.alert(id: "l-1", device: loud, priority: 3, at: now, position: far))
        try s.daemon.waitUntil(timeout: 10, "the three events and the silenced count") {
            let stored = try s.db.int("SELECT count(*) FROM liandong.events WHERE source_id IN ('q-1', 'q-2', 'l-1')")
            return try stored == 3 && s.daemon.metric("liandong_events_silenced_total") == silencedBefore + 2
        }
        let incident = try #require(try s.db.query("SELECT incident_id FROM liandong.events WHERE source_id = 'q-1'").scalar)
        #expect(try s.db.int("SELECT alert_count FROM liandong.incidents WHERE id = $1", [incident]) == 2,
                "silenced events are correlated as always")
        try s.daemon.waitUntil(timeout: 10, "the other camera's task") {
            try s.db.int("SELECT count(*) FROM liandong.feed WHERE (body->'evidence'->'alerts')::jsonb ? 'l-1'") == 1
        }
        #expect(try s.db.int("SELECT count(*) FROM liandong.tasks WHERE incident_id = $1", [incident]) == 0)

        // A grid worker's report joins the silenced incident: not silenced, so the task comes, with all the evidence.
        try s.send("report", Wire.report(id: "r-1", category: "闯入", severity: 2, at: now + 2, position: s.centre))
        try s.daemon.waitUntil(timeout: 10, "the joint dispatch") {
            try s.db.int("SELECT count(*) FROM liandong.tasks WHERE incident_id = $1", [incident]) == 1
        }
        let joint = try s.db.query("""
            SELECT body->>'kind' AS kind, body->'evidence'->>'alert_count' AS alerts FROM liandong.feed
            WHERE body->>'incident_id' = $1
            """, [incident])
        #expect(joint.count == 1 && joint[0, "kind"] == "joint_dispatch" && joint[0, "alerts"] == "2")

        // Expired: the camera's next alert, elsewhere, makes a task again.
        #expect(try liandongd(["silence", "expire", "1"], database: url).stdout == "silence 1 ended\n")
        try s.daemon.probe("a task for the camera again", send: {
            try s.send("alert", Wire.alert(id: "q-after-\($0)", device: quiet, priority: 3, at: Date().timeIntervalSince1970,
                                           position: spots[1]))
        }, until: {
            try s.db.int("SELECT count(*) FROM liandong.feed WHERE body->'evidence'->>'alerts' LIKE '%q-after-%'") >= 1
        })
        #expect(try liandongd(["silence", "list"], database: url).stdout == "no silences\n")
        #expect(try liandongd(["silence", "list", "--all"], database: url).stdout.contains("lens cleaning"))
    }

    @Test("a camera's tamper alarm inhibits its analytics alarms for correlation.inhibit_s, also after a restart; other cameras are not affected")
    func inhibition() throws {
        let s = try Scene(environment: ["LIANDONG_CORRELATION_INHIBIT_S": "300", "LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "0"])
        let camera = "62092200001320000004", other = "62092200001320000005"
        let now = Date().timeIntervalSince1970
        // The tamper alarm is itself a task (someone must look at the camera).
        try s.send("alert", Wire.alert(id: "tamper-1", device: camera, method: 2, type: 2, priority: 2, at: now - 60, position: s.centre))
        try s.daemon.waitUntil(timeout: 10, "the tamper task") {
            try s.db.int("SELECT count(*) FROM liandong.feed WHERE body->>'category' = 'tamper'") == 1
        }
        // Its intrusion alarms a minute later: stored, correlated, no task; another camera's: a task.
        let far = try Scene.centre(of: try #require(try s.db.query(
            "SELECT min(grid_code) FROM liandong.grids WHERE grid_code LIKE '620922102%' AND grid_code <> $1", [Scene.ruralGrid]).scalar), s.db)
        try s.send("alert", Wire.alert(id: "blind-1", device: camera, priority: 3, at: now, position: s.centre))
        try s.send("alert", Wire.alert(id: "seeing-1", device: other, priority: 3, at: now, position: far))
        try s.daemon.waitUntil(timeout: 10, "the inhibited alarm counted and the other camera's task") {
            let seeing = try s.db.int("SELECT count(*) FROM liandong.feed WHERE body->'evidence'->>'alerts' LIKE '%seeing-1%'")
            return try seeing == 1 && s.daemon.metric("liandong_events_inhibited_total") == 1
        }
        #expect(try s.db.int("SELECT count(*) FROM liandong.feed WHERE body->'evidence'->>'alerts' LIKE '%blind-%'") == 0)
        #expect(try s.db.int("SELECT count(*) FROM liandong.events WHERE source_id = 'blind-1'") == 1)

        // A restart remembers the tamper alarm from the stored events.
        try s.daemon.crashAndRestart()
        try s.send("alert", Wire.alert(id: "blind-2", device: camera, priority: 3, at: now + 1, position: offset(s.centre, north: 400)))
        try s.daemon.waitUntil(timeout: 15, "the inhibited alarm after the restart") {
            try s.daemon.metric("liandong_events_inhibited_total") == 1
        }
        // Beyond inhibit_s after the tamper alarm, the camera's alarms count again.
        try s.send("alert", Wire.alert(id: "seeing-again", device: camera, priority: 3, at: now + 300, position: far))
        try s.daemon.waitUntil(timeout: 10, "a task for the camera again") {
            try s.db.int("SELECT count(*) FROM liandong.feed WHERE body->'evidence'->>'alerts' LIKE '%seeing-again%'") == 1
        }
        #expect(try s.db.int("SELECT count(*) FROM liandong.feed WHERE body->'evidence'->>'alerts' LIKE '%blind-%'") == 0)
    }

    @Test("a silence needs a matcher, a reason and an end after its start")
    func refusals() throws {
        let url = try TestDatabase.create()
        let everything = try liandongd(["silence", "add", "--duration", "1h", "--comment", "x"], database: url)
        #expect(everything.status != 0 && everything.stderr.contains("at least one of --device, --division, --category"))
        let backwards = try liandongd(["silence", "add", "--division", "620922102", "--starts", "2026-12-02T10:00:00",
                                       "--until", "2026-12-02T09:00:00", "--comment", "drill"], database: url)
        #expect(backwards.status != 0 && backwards.stderr.contains("end before it starts"))
        let nowhere = try liandongd(["silence", "add", "--division", "9999", "--duration", "1h", "--comment", "x"], database: url)
        #expect(nowhere.status != 0 && nowhere.stderr.contains("matches no division"))
        let badDuration = try liandongd(["silence", "add", "--category", "fire", "--duration", "2 hours", "--comment", "x"], database: url)
        #expect(badDuration.status != 0 && badDuration.stderr.contains("90m, 2h, 1d"))
        // A misspelt category would silence nothing and look as if it worked; so would a window in the past.
        let misspelt = try liandongd(["silence", "add", "--category", "fires", "--duration", "1h", "--comment", "x"], database: url)
        #expect(misspelt.status != 0 && misspelt.stderr.contains("--category fires is not a category") && misspelt.stderr.contains("fire,"),
                "\(misspelt.stderr)")
        let past = try liandongd(["silence", "add", "--category", "fire", "--starts", "2025-01-01T08:00:00", "--duration", "2h",
                                  "--comment", "x"], database: url)
        #expect(past.status != 0 && past.stderr.contains("before now: it would silence nothing"), "\(past.stderr)")
        let db = try PGConnection(conninfo: url)
        #expect(try db.int("SELECT count(*) FROM liandong.silences") == 0)
        // A window still running is fine.
        let running = try liandongd(["silence", "add", "--category", "fire", "--starts", Timestamp.formatCST(Date().timeIntervalSince1970 - 3600),
                                     "--duration", "2h", "--comment", "drill"], database: url)
        #expect(running.status == 0, "\(running.stderr)")
    }
}
