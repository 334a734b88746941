import Foundation
import LibPQ
import LiandongCore
import Testing

/// Coalesced updates against a running daemon (correlation.update_interval_s): a storm of alerts
/// on one incident makes a few updates, the final counts go out within one interval of the last
/// alert, material changes at once, and what is owed survives a crash.
@Suite("Coalesced updates (daemon)")
struct CoalescingTests {
    /// The feed's messages about one incident, in seq order.
    struct Sent {
        let kind: String
        let at: Double
        let alerts: Int
        let priority: Int
    }

    static func sent(_ db: PGConnection, incident: String) throws -> [Sent] {
        try db.query("""
            SELECT kind, extract(epoch FROM created_at), (body->'evidence'->>'alert_count')::int, (body->>'priority')::int
            FROM liandong.feed WHERE body->>'incident_id' = $1 ORDER BY seq
            """, [incident]).rows.map { Sent(kind: $0[0]!, at: Double($0[1]!)!, alerts: Int($0[2]!)!, priority: Int($0[3]!)!) }
    }

    @Test("a camera firing 4 times a second: a verify, at most one update per interval, the final counts within one interval of the last alert; a more urgent alert at once")
    func storm() throws {
        let interval = 4.0
        let s = try Scene(environment: ["LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "4", "LIANDONG_ESCALATION_SWEEP_MS": "100"])
        let start = Date().timeIntervalSince1970
        // Six seconds at 4 alerts a second, within 40 m: one incident.
        let storm = 24
        for i in 0..<storm {
            try s.send("alert", Wire.alert(id: "storm-\(i)", priority: 3, at: start + Double(i) * 0.25,
                                           position: offset(s.centre, east: Double(i % 5) * 10)))
            usleep(250_000)
        }
        let lastSent = Date().timeIntervalSince1970
        try s.daemon.waitUntil(timeout: interval + 6, "the final counts on the feed") {
            try s.db.int("SELECT count(*) FROM liandong.feed WHERE (body->'evidence'->>'alert_count')::int = \(storm)") == 1
        }
        let finalSeen = Date().timeIntervalSince1970
        let incident = try #require(try s.db.query("SELECT incident_id FROM liandong.events WHERE source_id = 'storm-0'").scalar)
        #expect(try s.db.int("SELECT count(DISTINCT incident_id) FROM liandong.events") == 1)
        let messages = try Self.sent(s.db, incident: incident)
        #expect(messages.first?.kind == "verify")
        #expect(messages.dropFirst().allSatisfy { $0.kind == "update" })
        // 24 alerts over 6 s with a 4 s interval: the verify and at most three updates.
        #expect((2...4).contains(messages.count), "\(messages.map { ($0.kind, $0.alerts) })")
        for (a, b) in zip(messages, messages.dropFirst()) {
            #expect(b.at - a.at >= interval - 0.05, "updates \(b.at - a.at) s apart")
            #expect(b.alerts >= a.alerts)
        }
        #expect(messages.last?.alerts == storm)
        #expect(finalSeen - lastSent <= interval + 2, "final counts \(finalSeen - lastSent) s after the last alert")
        #expect(try s.daemon.metric("liandong_updates_coalesced_total") >= Double(storm - messages.count - 2))
        // The feed's subscribers got the same messages.
        let received = try receiveTasks(s.feed, count: messages.count)
        #expect(received.map { $0.body["kind"] as! String } == messages.map(\.kind))
        #expect((received.last?.body["evidence"] as? [String: Any])?["alert_count"] as? Int == storm)

        // Right after: one more alert is held back; a more urgent one goes out at once, with both counted.
        try s.send("alert", Wire.alert(id: "calm-1", priority: 3, at: lastSent, position: s.centre))
        try s.daemon.waitUntil(timeout: 10, "the alert held back") {
            try s.db.int("SELECT count(*) FROM liandong.tasks WHERE update_due_at IS NOT NULL") == 1
        }
        try s.send("alert", Wire.alert(id: "urgent-1", priority: 1, at: lastSent + 1, position: s.centre))
        try s.daemon.waitUntil(timeout: 10, "the urgent update") {
            try s.db.int("SELECT count(*) FROM liandong.feed WHERE (body->>'priority')::int = 1") == 1
        }
        let after = try Self.sent(s.db, incident: incident)
        let urgent = try #require(after.last)
        #expect(urgent.kind == "update" && urgent.alerts == storm + 2 && urgent.priority == 1)
        #expect(urgent.at - messages.last!.at < interval, "at once, not at the end of the interval")
        let task = try s.db.query("SELECT priority, update_due_at FROM liandong.tasks WHERE incident_id = $1", [incident])
        #expect(task[0, "priority"] == "1" && task[0, "update_due_at"] == nil, "the urgent update carried what was owed")
    }

    @Test("evidence on a task that owes its update already leaves the task's row as it was (not rewritten every batch)")
    func owedOnce() throws {
        let s = try Scene(environment: ["LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "120"])
        let now = Date().timeIntervalSince1970
        try s.send("alert", Wire.alert(id: "once-0", priority: 3, at: now, position: s.centre))
        try s.daemon.waitUntil(timeout: 10, "the verify") { try s.count("SELECT count(*) FROM liandong.feed") == 1 }
        try s.send("alert", Wire.alert(id: "once-1", priority: 3, at: now + 1, position: offset(s.centre, north: 20)))
        try s.daemon.waitUntil(timeout: 10, "an update owed") {
            try s.count("SELECT count(*) FROM liandong.tasks WHERE update_due_at IS NOT NULL") == 1
        }
        let owed = try s.db.query("SELECT update_due_at::text, updated_at::text, xmin::text FROM liandong.tasks")
        try s.send("alert", Wire.alert(id: "once-2", priority: 3, at: now + 2, position: offset(s.centre, east: 20)))
        try s.daemon.waitUntil(timeout: 10, "the third alert stored and counted") {
            try s.count("SELECT count(*) FROM liandong.events") == 3
                && s.count("SELECT alert_count FROM liandong.incidents") == 3
        }
        let after = try s.db.query("SELECT update_due_at::text, updated_at::text, xmin::text FROM liandong.tasks")
        #expect(after[0, "update_due_at"] == owed[0, "update_due_at"] && after[0, "updated_at"] == owed[0, "updated_at"])
        #expect(after[0, "xmin"] == owed[0, "xmin"], "the task's row was not written again")
        #expect(try s.count("SELECT count(*) FROM liandong.feed") == 1, "both held back")
        #expect(try s.daemon.metric("liandong_updates_coalesced_total") == 2, "both counted as coalesced")
    }

    @Test("what is owed survives a crash: the restarted daemon sends the update with the final counts")
    func owedAcrossRestart() throws {
        let s = try Scene(environment: ["LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "5", "LIANDONG_ESCALATION_SWEEP_MS": "100"])
        let now = Date().timeIntervalSince1970
        try s.send("alert", Wire.alert(id: "owed-0", priority: 3, at: now, position: s.centre))
        try s.daemon.waitUntil(timeout: 10, "the verify") { try s.count("SELECT count(*) FROM liandong.feed") == 1 }
        for i in 1...3 {
            try s.send("alert", Wire.alert(id: "owed-\(i)", priority: 3, at: now + Double(i), position: offset(s.centre, north: 20)))
        }
        try s.daemon.waitUntil(timeout: 10, "the three alerts stored and an update owed") {
            try s.count("SELECT count(*) FROM liandong.events") == 4
                && s.count("SELECT count(*) FROM liandong.tasks WHERE update_due_at IS NOT NULL") == 1
        }
        kill(s.daemon.process.processIdentifier, SIGKILL)
        s.daemon.process.waitUntilExit()
        #expect(try s.count("SELECT count(*) FROM liandong.feed") == 1, "nothing sent for the three alerts before the crash")
        // Down past the time the update was due.
        try waitUntil(timeout: 10, "the update overdue while the daemon is down") {
            try s.count("SELECT count(*) FROM liandong.tasks WHERE update_due_at < now()") == 1
        }
        try s.daemon.restart()
        try s.daemon.waitUntil(timeout: 15, "the owed update from the restarted daemon") {
            try s.count("SELECT count(*) FROM liandong.feed") == 2
        }
        let incident = try #require(try s.db.query("SELECT incident_id FROM liandong.events WHERE source_id = 'owed-0'").scalar)
        let messages = try Self.sent(s.db, incident: incident)
        #expect(messages.map(\.kind) == ["verify", "update"] && messages.last?.alerts == 4)
        #expect(try s.count("SELECT count(*) FROM liandong.tasks WHERE update_due_at IS NOT NULL") == 0)

        // A dispatcher's step carries the counts too: it settles what is owed.
        try s.send("alert", Wire.alert(id: "owed-5", priority: 3, at: now + 5, position: s.centre))
        try s.daemon.waitUntil(timeout: 10, "another update owed") {
            try s.count("SELECT count(*) FROM liandong.tasks WHERE update_due_at IS NOT NULL") == 1
        }
        let task = try #require(try s.db.query("SELECT id FROM liandong.tasks").scalar)
        let d = try Dispatcher(s.daemon)
        #expect(try d.send(task, "accept", id: "u-owed")["ok"] as? Bool == true)
        let accepted = try Self.sent(s.db, incident: incident).last
        #expect(accepted?.kind == "update" && accepted?.alerts == 5)
        #expect(try s.count("SELECT count(*) FROM liandong.tasks WHERE update_due_at IS NOT NULL") == 0)
    }

    /// After a storm thousands of tasks owe their update at once: they go out a batch to a
    /// transaction (issue 31: one each took the CPU new alerts needed), and an incident another
    /// transaction holds is left for a later sweep instead of being waited for.
    @Test("forty updates owed at once go out in a few transactions, each with its incident's counts; an incident another session holds is skipped until it is released")
    func owedInBatches() throws {
        let s = try Scene(environment: ["LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "6", "LIANDONG_ESCALATION_SWEEP_MS": "100"])
        let now = Date().timeIntervalSince1970, n = 40
        // Forty incidents at one place, an hour apart; each gets its verify, then a second alert
        // whose update is held back.
        for k in 0..<n { try s.send("alert", Wire.alert(id: "batch-\(k)-a", priority: 3, at: now - Double(k) * 3600, position: s.centre)) }
        try s.daemon.waitUntil(timeout: 10, "\(n) verify tasks") { try s.count("SELECT count(*) FROM liandong.feed") == n }
        for k in 0..<n {
            try s.send("alert", Wire.alert(id: "batch-\(k)-b", priority: 3, at: now - Double(k) * 3600 + 10,
                                           position: offset(s.centre, north: 20)))
        }
        try s.daemon.waitUntil(timeout: 10, "\(n) updates owed") {
            try s.count("SELECT count(*) FROM liandong.tasks WHERE update_due_at IS NOT NULL") == n
        }
        #expect(try s.count("SELECT count(DISTINCT incident_id) FROM liandong.events") == n)
        // Another session holds one incident (as the writer does while it grows one).
        let held = try #require(try s.db.query("SELECT incident_id FROM liandong.events WHERE source_id = 'batch-7-a'").scalar)
        let other = try PGConnection(conninfo: s.daemon.database)
        try other.execute("BEGIN")
        try other.query("SELECT 1 FROM liandong.incidents WHERE id = $1 FOR UPDATE", [held])
        try s.daemon.waitUntil(timeout: 15, "\(n - 1) updates sent") {
            try s.count("SELECT count(*) FROM liandong.feed WHERE kind = 'update'") == n - 1
        }
        let updates = try s.db.query("""
            SELECT count(DISTINCT created_at), min((body->'evidence'->>'alert_count')::int), max((body->'evidence'->>'alert_count')::int),
                   count(*) FILTER (WHERE body->>'incident_id' = $1)
            FROM liandong.feed WHERE kind = 'update'
            """, [held])
        let transactions = try #require(Int(updates[0, "count"] ?? ""))
        #expect(transactions <= 6, "\(n - 1) updates in \(transactions) transactions")
        #expect(updates[0, "min"] == "2" && updates[0, "max"] == "2", "each with its incident's two alerts")
        #expect(updates.rows[0][3] == "0", "the held incident's update waits")
        #expect(try s.count("SELECT count(*) FROM liandong.tasks WHERE update_due_at IS NOT NULL") == 1)
        try other.execute("ROLLBACK")
        try s.daemon.waitUntil(timeout: 10, "the held incident's update") {
            try s.count("SELECT count(*) FROM liandong.feed WHERE kind = 'update' AND body->>'incident_id' = '\(held)'") == 1
        }
        #expect(try s.count("SELECT count(*) FROM liandong.tasks WHERE update_due_at IS NOT NULL") == 0)
        #expect(try s.count("SELECT count(*) FROM liandong.feed WHERE kind = 'update'") == n)
    }
}
