import Foundation
import LibPQ
import LiandongCore
import Testing

/// Bounded incidents against a running daemon: chaining stops at max_span_m and max_duration_s.
@Suite("Bounded incidents (daemon)")
struct BoundedIncidentTests {
    @Test("16 crowd alerts 240 m apart on a line: cut into incidents no wider than max_span_m (1,000 m), the next one linked to the one it could not join")
    func chainCut() throws {
        let s = try Scene()
        let start = offset(s.centre, east: -1800)
        let now = Date().timeIntervalSince1970
        for i in 0..<16 {
            try s.send("alert", Wire.alert(id: "crowd-\(i)", device: "62092200001320000004", method: 5, type: 10, priority: 3,
                                           at: now - 300 + Double(i) * 10, position: offset(start, east: Double(i) * 240)))
        }
        try s.waitProcessed(16)
        #expect(try s.count("SELECT count(*) FROM liandong.rejected_messages") == 0)
        // Without bounds this was one incident 3.6 km wide.
        let sizes = try s.db.query("""
            SELECT count(*) FROM liandong.events GROUP BY incident_id ORDER BY min(observed_at)
            """).rows.map { Int($0[0]!)! }
        #expect(sizes == [5, 5, 5, 1])
        let widest = try s.db.query("""
            SELECT max(ST_Distance(a.geog, b.geog)) FROM liandong.events a JOIN liandong.events b USING (incident_id)
            """).scalar.flatMap(Double.init)
        #expect((widest ?? 9999) <= 1000, "widest incident \(widest ?? -1) m")
        #expect(try s.daemon.metric("liandong_events_bounded_total") == 3)
        // Each incident after the first names the one the crowd came from.
        let links = try s.db.query("""
            SELECT (SELECT count(*) FROM liandong.events e WHERE e.incident_id = ANY(i.related_incident_ids)) AS before
            FROM liandong.incidents i ORDER BY first_observed_at
            """).rows.map { Int($0[0]!)! }
        #expect(links == [0, 5, 5, 5])
        try s.daemon.waitUntil(timeout: 10, "the four verify tasks") {
            try s.count("SELECT count(*) FROM liandong.feed WHERE kind = 'verify'") == 4
        }
        let related = try s.db.query("""
            SELECT body->'related_incident_ids' FROM liandong.feed WHERE kind = 'verify' ORDER BY seq
            """).rows.map { $0[0] }
        #expect(related.first! == nil && related.dropFirst().allSatisfy { $0?.hasPrefix("[\"") == true })
    }

    @Test("events observed hours ago (matched in PostgreSQL, not the in-memory window), one batch each and across a restart, are bounded the same way")
    func lateEventsBounded() throws {
        let s = try Scene()
        let now = Date().timeIntervalSince1970
        // Something recent elsewhere: the window starts hours after the chain below.
        let elsewhere = try Scene.centre(of: try #require(try s.db.query(
            "SELECT max(grid_code) FROM liandong.grids WHERE grid_code LIKE '620922102%' AND grid_code <> $1", [Scene.ruralGrid]).scalar), s.db)
        try s.send("alert", Wire.alert(id: "recent", priority: 3, at: now, position: elsewhere))
        try s.waitProcessed(1)
        let start = offset(s.centre, east: -600)
        for i in 0..<6 {
            if i == 3 { try s.daemon.crashAndRestart() }
            try s.send("alert", Wire.alert(id: "old-crowd-\(i)", method: 5, type: 10, priority: 3, at: now - 6 * 3600 + Double(i) * 10,
                                           position: offset(start, east: Double(i) * 240)))
            try s.waitProcessed(2 + i)
        }
        let sizes = try s.db.query("""
            SELECT count(*) FROM liandong.events WHERE source_id LIKE 'old-crowd-%' GROUP BY incident_id ORDER BY min(observed_at)
            """).rows.map { Int($0[0]!)! }
        #expect(sizes == [5, 1])
        #expect(try s.daemon.metric("liandong_events_late_total") >= 1, "matched in PostgreSQL")
        #expect(try s.daemon.metric("liandong_events_bounded_total") == 1)
    }

    @Test("alerts at one spot every 800 s: the incident stops at max_duration_s (4 x 900 s), the next alert opens another")
    func durationCut() throws {
        let s = try Scene()
        let now = Date().timeIntervalSince1970
        for i in 0..<6 {
            try s.send("alert", Wire.alert(id: "slow-\(i)", priority: 3, at: now - 5000 + Double(i) * 800, position: s.centre))
        }
        try s.waitProcessed(6)
        let spans = try s.db.query("""
            SELECT count(*), extract(epoch FROM max(observed_at) - min(observed_at))::int FROM liandong.events
            GROUP BY incident_id ORDER BY min(observed_at)
            """).rows.map { [Int($0[0]!)!, Int($0[1]!)!] }
        #expect(spans == [[5, 3200], [1, 0]])
        #expect(try s.daemon.metric("liandong_events_bounded_total") == 1)
    }
}
