import Foundation
import LiandongClient
import LiandongCore
import LibPQ
import Testing
import ZeroMQ

/// Acknowledged ingest and crash survival: every acknowledged event is stored exactly once.
@Suite("No message lost")
struct NoLossTests {
    @Test("acknowledged ingest answers after commit: ok, duplicate, or the refusal with its reason")
    func acknowledged() throws {
        let s = try Scene()
        let client = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack)
        for i in 0..<200 {
            let p = offset(s.centre, east: Double(i % 20) * 40 - 400, north: Double(i / 20) * 40 - 200)
            try client.send(topic: "alert", body: Array(Wire.alert(id: "ack-\(i)", at: s.now - Double(i), position: p).utf8), id: "ack-\(i)")
        }
        #expect(try client.flush(timeout: 30))
        #expect(try s.db.int("SELECT count(*) FROM liandong.events WHERE source_id LIKE 'ack-%'") == 200)
        // The same id again: answered ok, marked duplicate, stored once.
        try client.send(topic: "alert", body: Array(Wire.alert(id: "ack-7", at: s.now, position: s.centre).utf8), id: "ack-7")
        let dup = try answer(client, "ack-7")
        #expect(dup.ok && dup.duplicate)
        // An invalid one: refused with the reason, and dead-lettered.
        try client.send(topic: "alert", body: Array(Wire.alert(id: "ack-bad", priority: 9, at: s.now).utf8), id: "ack-bad")
        let bad = try answer(client, "ack-bad")
        #expect(!bad.ok && (bad.error ?? "").hasPrefix("invalid_field"))
        #expect(try s.db.int("SELECT count(*) FROM liandong.rejected_messages WHERE endpoint = 'ingest.ack'") == 1)
        #expect(try s.db.int("SELECT count(*) FROM liandong.events") == 200)
    }

    func answer(_ client: IngestClient, _ id: String) throws -> IngestClient.Answer {
        var found: IngestClient.Answer? = nil
        try waitUntil(timeout: 10, "the answer for \(id)") {
            found = try client.poll(timeout: 0.1).first { $0.id == id } ?? found
            return found != nil
        }
        return found!
    }

    @Test("a REQ gateway is answered the same way (empty delimiter frame)")
    func reqGateway() throws {
        let s = try Scene()
        let req = try ZMQSocket(context: s.daemon.context, type: .req)
        try req.setReceiveTimeout(milliseconds: 10_000)
        try req.connect(s.daemon.ack)
        try req.send(strings: ["report", Wire.report(id: "req-1", at: s.now, position: s.centre)])
        let reply = try #require(try req.receive())
        let o = try JSONSerialization.jsonObject(with: Data(reply[0])) as! [String: Any]
        #expect(o["ok"] as? Bool == true && o["id"] as? String == "req-1")
    }

    @Test("kill -9 in the middle of an acknowledged stream, restart: N acknowledged, exactly N rows")
    func killNineMidStream() throws {
        let s = try Scene()
        let client = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, retryAfter: 1)
        let n = 3000
        for i in 0..<n {
            let p = offset(s.centre, east: Double(i % 50) * 30 - 750, north: Double(i / 50) * 20 - 600)
            let body = i % 3 == 0
                ? Wire.report(id: "kr-\(i)", category: "闯入", severity: 2, at: s.now - Double(i % 300), position: p)
                : Wire.alert(id: "ka-\(i)", at: s.now - Double(i % 300), position: p)
            try client.send(topic: i % 3 == 0 ? "report" : "alert", body: Array(body.utf8), id: i % 3 == 0 ? "kr-\(i)" : "ka-\(i)")
        }
        try waitUntil(timeout: 30, "a third of the stream committed") {
            try client.poll(timeout: 0.05)
            return try s.db.int("SELECT count(*) FROM liandong.events") >= n / 3
        }
        try s.daemon.crashAndRestart()
        #expect(try client.flush(timeout: 120), "\(client.unanswered) unanswered")
        #expect(client.resent > 0, "the crash left messages to resend")
        #expect(try s.db.int("SELECT count(*) FROM liandong.events") == n)
        #expect(try s.db.int("SELECT count(DISTINCT source_id) FROM liandong.events") == n)
        // No incident lost its task, and everything committed went out.
        #expect(try s.db.int("""
            SELECT count(*) FROM liandong.incidents i WHERE i.alert_count > 0
            AND NOT EXISTS (SELECT 1 FROM liandong.tasks t WHERE t.incident_id = i.id)
            """) == 0)
        try waitUntil(timeout: 10, "every feed row published") {
            try s.db.int("SELECT count(*) FROM liandong.feed WHERE seq > (SELECT seq FROM liandong.feed_published)") == 0
        }
        #expect(try s.db.int("SELECT count(*) FROM liandong.feed") == s.db.int("SELECT max(seq) FROM liandong.feed"),
                "committed seqs have no holes")
    }
}

@Suite("SUB path loss is visible")
struct GapTests {
    @Test("per-gateway seq gaps are stored and counted; reordering and duplicates are not gaps")
    func gapsRecorded() throws {
        let s = try Scene(environment: ["LIANDONG_INGEST_GAP_GRACE_MS": "300"])
        for seq in [1, 2, 3, 5, 4, 7, 7, 11, 10] {
            try s.send("alert", Wire.alert(id: "gw-gap:\(seq)", at: s.now, position: s.centre,
                                           extra: ["gateway_id": "gw-gap", "seq": seq]))
        }
        try waitUntil(timeout: 10, "the gaps") { try s.db.int("SELECT count(*) FROM liandong.ingest_gaps") == 2 }
        let rows = try s.db.query("SELECT gateway_id, from_seq, to_seq, missing FROM liandong.ingest_gaps ORDER BY from_seq")
        #expect(rows.rows.map { $0.compactMap { $0 } } == [["gw-gap", "6", "6", "1"], ["gw-gap", "8", "9", "2"]])
        let text = try httpGet(port: s.daemon.metricsPort, "/metrics").body
        #expect(text.contains("liandong_ingest_gaps_total 2\n") && text.contains("liandong_ingest_gap_messages_total 3\n"))
    }

    @Test("feed rows committed but not published when the daemon stopped go out at the next start")
    func republishAtStart() throws {
        let s = try Scene()
        try s.send("alert", Wire.alert(id: "pub-1", at: s.now, position: s.centre))
        try waitUntil(timeout: 10, "the verify task published") { try s.db.int("SELECT seq FROM liandong.feed_published") == 1 }
        #expect(try s.daemon.stop() == 0)
        // As if a batch had committed and the process died before its publisher sent the message.
        try s.db.execute("""
            UPDATE liandong.feed_head SET seq = 2;
            INSERT INTO liandong.feed (seq, message_id, topic, kind, task_id, body)
            SELECT 2, gen_random_uuid(), topic, 'update', task_id, jsonb_set(body::jsonb, '{seq}', '2') FROM liandong.feed WHERE seq = 1;
            """)
        try s.daemon.crashAndRestart()
        try s.daemon.waitUntil(timeout: 10, "the committed message published") {
            try s.db.int("SELECT seq FROM liandong.feed_published") == 2
        }
        #expect(s.daemon.log.contains("republishing feed messages committed but not published"))
        #expect(try s.count("SELECT count(*) FROM liandong.feed") == 2)
    }

    @Test("loss while the daemon was down is a gap too: the highest stored seq per gateway seeds the tracker")
    func gapAcrossRestart() throws {
        let s = try Scene(environment: ["LIANDONG_INGEST_GAP_GRACE_MS": "300"])
        for seq in [1, 2, 3] {
            try s.send("alert", Wire.alert(id: "gw-r:\(seq)", at: s.now, position: s.centre,
                                           extra: ["gateway_id": "gw-r", "seq": seq]))
        }
        try s.waitProcessed(3)
        #expect(try s.count("SELECT highest_seq FROM liandong.gateway_seqs WHERE gateway_id = 'gw-r'") == 3)
        try s.daemon.crashAndRestart()
        try s.send("alert", Wire.alert(id: "gw-r:7", at: s.now, position: s.centre, extra: ["gateway_id": "gw-r", "seq": 7]))
        try waitUntil(timeout: 10, "the gap") { try s.db.int("SELECT count(*) FROM liandong.ingest_gaps") == 1 }
        let row = try s.db.query("SELECT from_seq, to_seq FROM liandong.ingest_gaps")
        #expect(row.rows.first == ["4", "6"])
        try waitUntil(timeout: 10, "the seq recorded") {
            try s.db.int("SELECT highest_seq FROM liandong.gateway_seqs WHERE gateway_id = 'gw-r'") == 7
        }
    }
}
