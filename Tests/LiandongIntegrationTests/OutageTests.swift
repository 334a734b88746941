import Foundation
import LiandongClient
import LiandongCore
import LibPQ
import Testing
import ZeroMQ

/// The database goes away in the middle of a stream: the daemon keeps receiving (memory, then the
/// spill file), reports not ready, and writes everything exactly once when it is back.
@Suite("Database outage", .serialized)
struct OutageTests {
    @Test("acknowledged path: N acknowledged events, exactly N rows across a PostgreSQL restart and a kill -9")
    func ackedAcrossRestart() throws {
        let scene = try OutageScene()
        let (cluster, daemon, centre) = (scene.cluster, scene.daemon, scene.centre)
        let client = try IngestClient(context: daemon.context, endpoint: daemon.ack, retryAfter: 1)
        let n = 1500
        let now = Date().timeIntervalSince1970
        func send(_ range: Range<Int>) throws {
            for i in range {
                let p = offset(centre, east: Double(i % 30) * 40 - 600, north: Double(i / 30) * 20 - 500)
                try client.send(topic: "alert", body: Array(Wire.alert(id: "o-\(i)", at: now - Double(i % 600), position: p).utf8),
                                id: "o-\(i)")
            }
            try client.poll(timeout: 0.1)
        }
        try send(0..<500)
        #expect(try client.flush(timeout: 30))
        try cluster.stop()
        try send(500..<1000)
        try waitUntil(timeout: 10, "/readyz to report the outage") {
            try httpGet(port: daemon.metricsPort, "/readyz").status == 503
        }
        try client.poll(timeout: 1)
        #expect(client.unanswered > 0, "nothing can be acknowledged while the database is away")
        try cluster.start()
        // And the daemon dies before it has written what it holds.
        try daemon.crashAndRestart()
        try send(1000..<n)
        #expect(try client.flush(timeout: 120), "\(client.unanswered) unanswered")
        let db = try PGConnection(conninfo: cluster.conninfo)
        #expect(try db.int("SELECT count(*) FROM liandong.events") == n)
        #expect(try db.int("SELECT count(DISTINCT source_id) FROM liandong.events") == n)
        try waitUntil(timeout: 10, "/readyz to recover") { try httpGet(port: daemon.metricsPort, "/readyz").status == 200 }
        #expect(try daemon.stop() == 0)
    }

    @Test("SUB path: messages beyond the queue spill to disk, survive a kill -9 during the outage, and all land once")
    func spillAcrossOutageAndCrash() throws {
        let scene = try OutageScene(environment: ["LIANDONG_INGEST_QUEUE_CAPACITY": "100"])
        let (cluster, daemon, centre, now) = (scene.cluster, scene.daemon, scene.centre, scene.now)
        try cluster.stop()
        let n = 3000
        try daemon.sendAlerts(around: centre, count: n, id: "s", now: now)
        // Nothing left only in memory: what the queue held went to disk too.
        try daemon.waitUntilReceived(n, "the spill file to hold the overflow") {
            DaemonProcess.metric("liandong_spill_pending_bytes", in: $0) > 0
        }
        // Crash while the database is still away, then bring both back.
        try cluster.start()
        try daemon.crashAndRestart()
        let db = try PGConnection(conninfo: cluster.conninfo)
        try daemon.waitUntil(timeout: 120, "every message written") { try db.int("SELECT count(*) FROM liandong.events") >= n }
        #expect(try db.int("SELECT count(*) FROM liandong.events") == n)
        #expect(try db.int("SELECT count(*) FROM liandong.rejected_messages") == 0)
        try waitUntil(timeout: 10, "the spill file to empty") {
            try httpGet(port: daemon.metricsPort, "/metrics").body.contains("liandong_spill_pending_bytes 0\n")
        }
        #expect(try daemon.stop() == 0)
    }

    @Test("SUB path: with the spill full too, the reader waits (backpressure) and nothing is lost when the database returns")
    func spillFull() throws {
        let scene = try OutageScene(environment: ["LIANDONG_INGEST_QUEUE_CAPACITY": "100", "LIANDONG_INGEST_SPILL_MAX_BYTES": "1048576"])
        let (cluster, daemon, centre, now) = (scene.cluster, scene.daemon, scene.centre, scene.now)
        try cluster.stop()
        // About 1.6 MB of messages: the 1 MiB spill fills, then the queue, then the reader waits
        // and the sockets buffer the rest.
        let n = 5000
        try daemon.sendAlerts(around: centre, count: n, id: "f", now: now, extra: ["note": String(repeating: "x", count: 100)])
        try daemon.waitUntil(timeout: 20, "the spill file to fill") {
            let text = try httpGet(port: daemon.metricsPort, "/metrics").body
            let spilled = DaemonProcess.metric("liandong_spill_pending_bytes", in: text)
            return spilled > 1_000_000 && text.contains("liandong_ingest_queue_depth 100\n")
        }
        // Let the writer's reconnect loop try (and fail) to move the full queue a few times.
        try daemon.waitUntil(timeout: 20, "a few reconnect attempts") {
            daemon.log.components(separatedBy: "database unreachable").count > 6
        }
        try cluster.start()
        let db = try PGConnection(conninfo: cluster.conninfo)
        try daemon.waitUntil(timeout: 120, "every message written") { try db.int("SELECT count(*) FROM liandong.events") >= n }
        #expect(try db.int("SELECT count(DISTINCT source_id) FROM liandong.events") == n)
        #expect(try db.int("SELECT count(*) FROM liandong.events") == n)
        #expect(try daemon.stop() == 0)
    }
}
