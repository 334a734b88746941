import Foundation
import LibPQ
import Testing

/// Day-2 data lifecycle: what retention.* no longer keeps is removed by the sweeper, and junk
/// traffic cannot fill the disk with dead-letter bytes.
@Suite("Retention")
struct RetentionTests {
    @Test("old events, published feed messages, finished tasks' history and dead letters are removed; recent ones stay")
    func oldRowsRemoved() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        let now = Date().timeIntervalSince1970
        let first = try DaemonProcess(database: url)
        // The old rows first, then the recent ones: keys grow with insertion, as in production.
        try first.send("alert", Wire.alert(id: "old-1", at: now - 60, position: centre))
        try first.send(frames: [Array("alert".utf8), Array("{junk".utf8)])
        try first.waitUntil(timeout: 10, "the first task and dead letter") {
            try db.int("SELECT count(*) FROM liandong.tasks") == 1 && db.int("SELECT count(*) FROM liandong.rejected_messages") == 1
        }
        try first.send("alert", Wire.alert(id: "new-1", at: now - 30, position: offset(centre, east: 2000)))
        try first.send(frames: [Array("alert".utf8), Array("{more junk".utf8)])
        try first.waitUntil(timeout: 10, "two tasks and two dead letters") {
            try db.int("SELECT count(*) FROM liandong.tasks") == 2 && db.int("SELECT count(*) FROM liandong.rejected_messages") == 2
                && db.int("SELECT count(*) FROM liandong.feed WHERE seq > (SELECT seq FROM liandong.feed_published)") == 0
        }
        #expect(try first.stop() == 0)
        // The first ones three days old, and the first task finished.
        try db.execute("""
            UPDATE liandong.events SET received_at = received_at - interval '3 days', observed_at = observed_at - interval '3 days'
                WHERE source_id = 'old-1';
            UPDATE liandong.event_keys SET observed_at = observed_at - interval '3 days' WHERE source_id = 'old-1';
            UPDATE liandong.tasks SET state = 'resolved' WHERE incident_id = (SELECT incident_id FROM liandong.events WHERE source_id = 'old-1');
            UPDATE liandong.task_history SET at = at - interval '3 days'
                WHERE task_id = (SELECT id FROM liandong.tasks WHERE state = 'resolved');
            UPDATE liandong.feed SET created_at = created_at - interval '3 days'
                WHERE task_id = (SELECT id FROM liandong.tasks WHERE state = 'resolved');
            UPDATE liandong.rejected_messages SET received_at = received_at - interval '3 days'
                WHERE id = (SELECT min(id) FROM liandong.rejected_messages);
            """)
        #expect(try db.int("SELECT max(seq) FROM liandong.feed WHERE task_id = (SELECT id FROM liandong.tasks WHERE state = 'resolved')")
                < db.int("SELECT min(seq) FROM liandong.feed WHERE task_id = (SELECT id FROM liandong.tasks WHERE state = 'open')"))
        let env = ["LIANDONG_RETENTION_EVENTS_DAYS": "1", "LIANDONG_RETENTION_FEED_DAYS": "1",
                   "LIANDONG_RETENTION_TASK_HISTORY_DAYS": "1", "LIANDONG_RETENTION_DEAD_LETTER_DAYS": "1"]
        let second = try DaemonProcess(database: url, environment: env)
        try second.waitUntil(timeout: 15, "retention at start") {
            try db.int("SELECT count(*) FROM liandong.events") == 1 && db.int("SELECT count(*) FROM liandong.rejected_messages") == 1
        }
        #expect(try db.query("SELECT source_id FROM liandong.events").scalar == "new-1")
        // Whole days go: the old event's partition and its deduplication key with it.
        #expect(try db.query("SELECT source_id FROM liandong.event_keys").scalar == "new-1")
        #expect(try db.query("SELECT to_regclass('liandong.' || $1)", [try PartitionTests.partition(daysAgo: 3, db)]).scalar == nil)
        #expect(try db.int("SELECT count(*) FROM liandong.feed f JOIN liandong.tasks t ON t.id = f.task_id WHERE t.state = 'resolved'") == 0)
        #expect(try db.int("SELECT count(*) FROM liandong.feed") >= 1)
        #expect(try db.int("SELECT count(*) FROM liandong.task_history h JOIN liandong.tasks t ON t.id = h.task_id WHERE t.state = 'resolved'") == 0)
        #expect(try db.int("SELECT count(*) FROM liandong.task_history") >= 1)
        // Tasks and incidents, the assessment's own rows, stay.
        #expect(try db.int("SELECT count(*) FROM liandong.tasks") == 2)
        try second.waitUntil(timeout: 5, "the metric") { try second.metric("liandong_retention_deleted_total{table=\"events\"}") == 1 }
        #expect(second.log.contains("retention: old rows removed"))
        #expect(try second.stop() == 0)
    }

    @Test("the boundary search finds exactly the old rows among many, removed in several batches")
    func manyRows() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        // 30,000 dead letters, one a minute up to now (keys grow with time): 28,560 older than a day.
        try db.execute("""
            INSERT INTO liandong.rejected_messages (received_at, endpoint, raw, raw_size, reason, detail)
            SELECT now() - make_interval(mins => 30000 - i), 'ingest.sub', '\\x00'::bytea, 1, 'malformed_json', 'test'
            FROM generate_series(1, 30000) AS i
            """)
        let old = try db.int("SELECT count(*) FROM liandong.rejected_messages WHERE received_at < now() - interval '1 day'")
        let daemon = try DaemonProcess(database: url, environment: ["LIANDONG_RETENTION_DEAD_LETTER_DAYS": "1"])
        try daemon.waitUntil(timeout: 20, "retention") {
            try daemon.metric("liandong_retention_deleted_total{table=\"rejected_messages\"}") == Double(old)
        }
        #expect(old > 20_000)
        #expect(try db.int("SELECT count(*) FROM liandong.rejected_messages") == 30_000 - old)
        #expect(try db.int("SELECT count(*) FROM liandong.rejected_messages WHERE received_at < now() - interval '1 day'") == 0)
        #expect(try daemon.stop() == 0)
    }

    @Test("beyond retention.dead_letter_bytes_per_hour a dead letter keeps its row, size and reason, not its bytes")
    func deadLetterCap() throws {
        let s = try Scene(environment: ["LIANDONG_RETENTION_DEAD_LETTER_BYTES_PER_HOUR": "1000"])
        let junk = "{" + String(repeating: "x", count: 399)  // 400 bytes, not JSON
        for _ in 0..<5 { try s.daemon.send(frames: [Array("alert".utf8), Array(junk.utf8)]) }
        try s.waitProcessed(5)
        let rows = try s.db.query("SELECT length(raw), raw_size, reason, detail FROM liandong.rejected_messages ORDER BY id").rows
        #expect(rows.map { $0[0]! } == ["400", "400", "0", "0", "0"])
        #expect(rows.allSatisfy { $0[1] == "400" && $0[2] == "malformed_json" })
        #expect(rows.suffix(3).allSatisfy { $0[3]!.contains("bytes not kept: retention.dead_letter_bytes_per_hour reached") })
        #expect(try s.db.int("SELECT bytes FROM liandong.dead_letter_hours") == 800)
    }
}
