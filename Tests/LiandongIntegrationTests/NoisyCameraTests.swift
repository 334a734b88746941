import Foundation
import LibPQ
import LiandongCore
import Testing

/// Noisy cameras against a running daemon: a camera whose judged incidents were mostly false
/// alarms has its alerts stored without a task of their own, visibly, until a review lifts it.
@Suite("Noisy cameras (daemon)")
struct NoisyCameraTests {
    static let noisy = "62092200001320000004", good = "62092200001320000005"

    /// `count` spots in the township far apart (distinct grids' centres): one incident each.
    static func spots(_ s: Scene, _ count: Int) throws -> [LonLat] {
        try s.db.query("""
            SELECT grid_code FROM liandong.grids WHERE grid_code LIKE '620922102%' AND grid_code <> $1 ORDER BY grid_code LIMIT $2
            """, [Scene.ruralGrid, String(count)]).rows.map { try Scene.centre(of: $0[0]!, s.db) }
    }

    /// A daemon that recomputes the figures every second and suppresses after 3 judged incidents
    /// (plus `environment`), with the cameras judged at the first four of `count` spots.
    static func judged(_ environment: [String: String], spots count: Int) throws -> (Scene, [LonLat]) {
        let s = try Scene(environment: ["LIANDONG_CAMERAS_SUPPRESS_MIN_JUDGED": "3", "LIANDONG_CAMERAS_SUPPRESS_CHECK_S": "1"]
            .merging(environment) { $1 })
        let spots = try Self.spots(s, count)
        try judge(s, at: spots)
        return (s, spots)
    }

    /// Three false alarms of the noisy camera and one real alarm of the good one, judged by a dispatcher.
    static func judge(_ s: Scene, at spots: [LonLat]) throws {
        let now = Date().timeIntervalSince1970
        for i in 0..<3 { try s.send("alert", Wire.alert(id: "fa-\(i)", device: noisy, priority: 3, at: now, position: spots[i])) }
        try s.send("alert", Wire.alert(id: "real-1", device: good, priority: 3, at: now, position: spots[3]))
        try s.daemon.waitUntil(timeout: 10, "four verify tasks") { try s.count("SELECT count(*) FROM liandong.tasks") == 4 }
        let d = try Dispatcher(s.daemon)
        for row in try s.db.query("""
            SELECT t.id, e.device_id FROM liandong.tasks t JOIN liandong.events e ON e.incident_id = t.incident_id
            """).rows {
            #expect(try d.send(row[0]!, row[1] == noisy ? "false_alarm" : "resolve")["ok"] as? Bool == true)
        }
    }

    @Test("three false alarms of three: the camera is suppressed (its alert alone makes no task, a report joining it does); a review lifts it")
    func suppressedThenReviewed() throws {
        let (s, spots) = try Self.judged(["LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "0"], spots: 9)
        try s.daemon.waitUntil(timeout: 10, "the camera suppressed") {
            try s.db.query("SELECT suppressed FROM liandong.noisy_cameras WHERE device_id = $1", [Self.noisy]).scalar == "t"
        }
        let figures = try s.db.query("SELECT device_id, judged, false_alarms, false_alarm_pct, suppressed FROM liandong.noisy_cameras")
        #expect(figures.count == 2 && figures[0, "device_id"] == Self.noisy && figures[0, "false_alarm_pct"] == "100.0")
        #expect(figures[1, "device_id"] == Self.good && figures[1, "judged"] == "1" && figures[1, "suppressed"] == "f")
        try s.daemon.waitUntil(timeout: 10, "the gauge") { try s.daemon.metric("liandong_cameras_suppressed") == 1 }
        let listed = try liandongd(["camera", "noisy"], database: s.daemon.database)
        #expect(listed.stdout.hasPrefix("\(Self.noisy)\tsuppressed since ") && listed.stdout.contains("3/3 false alarms (100.0 %)"))

        // The writer rereads the reference data at most once a second: probe (at a spot of their
        // own) until its alerts are suppressed.
        try s.daemon.probe("the suppression in effect", send: {
            try s.send("alert", Wire.alert(id: "probe-\($0)", device: Self.noisy, priority: 3, at: Date().timeIntervalSince1970,
                                           position: spots[8]))
        }, until: {
            try s.daemon.metric("liandong_events_suppressed_total") >= 1
        })
        let suppressedBefore = try s.daemon.metric("liandong_events_suppressed_total")
        // Its next alert: stored and correlated, no task.
        let now = Date().timeIntervalSince1970
        try s.send("alert", Wire.alert(id: "quiet-1", device: Self.noisy, priority: 3, at: now, position: spots[4]))
        try s.daemon.waitUntil(timeout: 10, "the alert suppressed") {
            try s.daemon.metric("liandong_events_suppressed_total") == suppressedBefore + 1
        }
        let incident = try #require(try s.db.query("SELECT incident_id FROM liandong.events WHERE source_id = 'quiet-1'").scalar)
        #expect(try s.count("SELECT count(*) FROM liandong.tasks WHERE incident_id = '\(incident)'") == 0)
        // A grid worker's report there: the joint dispatch, with the camera's alert as evidence.
        try s.send("report", Wire.report(id: "seen-1", category: "闯入", severity: 2, at: now + 1, position: spots[4]))
        try s.daemon.waitUntil(timeout: 10, "the joint dispatch") {
            try s.count("SELECT count(*) FROM liandong.feed WHERE kind = 'joint_dispatch' AND body->>'incident_id' = '\(incident)'") == 1
        }

        // Repaired: reviewed, and its alerts ask for tasks again.
        let reviewed = try liandongd(["camera", "review", Self.noisy, "--comment", "lens replaced", "--by", "ops-1"], database: s.daemon.database)
        #expect(reviewed.status == 0 && reviewed.stdout.contains("no longer suppressed"), "\(reviewed.stdout) \(reviewed.stderr)")
        #expect(try s.db.query("SELECT count(*) FROM liandong.noisy_cameras WHERE device_id = $1", [Self.noisy]).scalar == "0")
        try s.daemon.probe("a verify task for the camera again", send: {
            try s.send("alert", Wire.alert(id: "again-\($0)", device: Self.noisy, priority: 3, at: Date().timeIntervalSince1970,
                                           position: spots[5 + min($0 - 1, 2)]))
        }, until: {
            try s.count("SELECT count(*) FROM liandong.feed WHERE kind = 'verify' AND body->'evidence'->>'alerts' LIKE '%again-%'") >= 1
        })
        #expect(try s.db.query("SELECT count(*) FROM liandong.noisy_cameras WHERE device_id = $1", [Self.noisy]).scalar == "0",
                "no judged incident since the review")
        #expect(try s.db.query("SELECT comment FROM liandong.camera_reviews").scalar == "lens replaced")
        let refused = try liandongd(["camera", "review", "62092200001320009999", "--comment", "x"], database: s.daemon.database)
        #expect(refused.status != 0 && refused.stderr.contains("no camera 62092200001320009999"))
    }

    @Test("suppress_false_alarm_pct 0: the figures are kept, no camera is suppressed")
    func suppressionOff() throws {
        let (s, spots) = try Self.judged(["LIANDONG_CAMERAS_SUPPRESS_FALSE_ALARM_PCT": "0"], spots: 5)
        try s.daemon.waitUntil(timeout: 10, "the figures") {
            try s.db.query("SELECT false_alarms FROM liandong.noisy_cameras WHERE device_id = $1", [Self.noisy]).scalar == "3"
        }
        #expect(try s.db.query("SELECT count(*) FROM liandong.noisy_cameras WHERE suppressed").scalar == "0")
        try s.send("alert", Wire.alert(id: "loud-1", device: Self.noisy, priority: 3, at: Date().timeIntervalSince1970, position: spots[4]))
        try s.daemon.waitUntil(timeout: 10, "its verify task") {
            try s.count("SELECT count(*) FROM liandong.feed WHERE kind = 'verify' AND body->'evidence'->>'alerts' LIKE '%loud-1%'") == 1
        }
        #expect(try s.daemon.metric("liandong_events_suppressed_total") == 0)
    }
}
