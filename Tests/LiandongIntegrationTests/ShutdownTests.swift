import Foundation
import LiandongCore
import LibPQ
import Testing

/// SIGTERM/SIGINT: stop reading, finish the batch in flight, publish what was committed, exit 0.
@Suite("Graceful shutdown")
struct ShutdownTests {
    @Test("SIGTERM and SIGINT both exit 0 after everything received is committed and published", arguments: [SIGTERM, SIGINT])
    func gracefulExit(signal: Int32) throws {
        let s = try Scene()
        let n = 2000
        for i in 0..<n {
            let p = offset(s.centre, east: Double(i % 40) * 15, north: Double(i / 40) * 15)
            try s.send("alert", Wire.alert(id: "burst-\(i)", at: s.now - Double(i % 600), position: p))
        }
        // Signal while the burst is still being written.
        try waitUntil(timeout: 10, "the first events") { try s.count("SELECT count(*) FROM liandong.events") > 0 }
        let status = try s.daemon.stop(signal: signal)
        #expect(status == 0, "log:\n\(s.daemon.log)")
        let log = s.daemon.log
        #expect(log.contains("ingest stopped reading") && log.contains("writer drained") && log.contains("publisher drained"))
        #expect(!log.contains("Fatal error"))
        // What was committed is complete: every event has an incident, every incident its task,
        // and every feed message went out.
        let stored = try s.count("SELECT count(*) FROM liandong.events")
        #expect(stored > 0 && stored <= n)
        #expect(try s.count("SELECT count(*) FROM liandong.incidents i WHERE NOT EXISTS (SELECT 1 FROM liandong.tasks t WHERE t.incident_id = i.id)") == 0)
        #expect(try s.count("SELECT count(*) FROM liandong.feed WHERE seq > (SELECT seq FROM liandong.feed_published)") == 0)
        let tasks = try s.count("SELECT count(*) FROM liandong.tasks")
        #expect(try s.count("SELECT count(*) FROM liandong.feed") >= tasks)
    }

    @Test("after a restart on the same database, old ids stay duplicates and new events flow")
    func restart() throws {
        let url = try TestDatabase.create()
        let first = try DaemonProcess(database: url)
        let db = try PGConnection(conninfo: url)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        let now = Date().timeIntervalSince1970
        try first.send("alert", Wire.alert(id: "before", at: now - 60, position: centre))
        try waitUntil { try db.int("SELECT count(*) FROM liandong.events") == 1 }
        #expect(try first.stop() == 0)

        let second = try DaemonProcess(database: url)
        let feed = try second.subscribeFeed()
        try second.send("alert", Wire.alert(id: "before", at: now - 60, position: centre))
        try second.send("report", Wire.report(id: "after", at: now, position: centre))
        try waitUntil { try db.int("SELECT count(*) FROM liandong.events") == 2 }
        let tasks = try receiveTasks(feed, count: 1)
        #expect(tasks[0].body["kind"] as? String == "joint_dispatch")
        #expect(tasks[0].body["seq"] as? Int == 2, "seq continues across restarts")
        #expect(try db.int("SELECT count(*) FROM liandong.events WHERE source_id = 'before'") == 1)
        #expect(try second.stop() == 0)
    }
}
