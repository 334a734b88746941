import Foundation
import LibPQ
import Testing

/// Startup and shutdown never hang: a service that cannot start ends the daemon with one clear
/// error and a non-zero status within seconds; SIGTERM ends it quickly in every state, standby
/// and database outage included, with nothing received lost.
@Suite("Startup and shutdown never hang")
struct StartStopTests {
    /// Endpoints of their own for a second daemon on the same database.
    func ownEndpoints() throws -> [String: String] {
        let id = UUID().uuidString.prefix(8)
        return [
            "LIANDONG_INGEST_BIND": "ipc://\(Scratch.directory)/ld-\(id)-ingest", "LIANDONG_INGEST_ACK_BIND": "ipc://\(Scratch.directory)/ld-\(id)-ack",
            "LIANDONG_FEED_BIND": "ipc://\(Scratch.directory)/ld-\(id)-feed", "LIANDONG_FEED_REPLAY_BIND": "ipc://\(Scratch.directory)/ld-\(id)-replay",
            "LIANDONG_UPDATES_BIND": "ipc://\(Scratch.directory)/ld-\(id)-updates", "LIANDONG_METRICS_BIND": "127.0.0.1:\(try freePort())",
        ]
    }

    @Test("a second daemon whose ingest port is taken exits 1 within seconds, naming the key, while the first keeps the writer lock",
          arguments: ["port in use", "address not on this machine"])
    func ingestCannotBind(_ what: String) throws {
        let url = try TestDatabase.create()
        // The first daemon holds the writer lock, so the second one's writer stands by: the
        // state in which it used to block for ever once its ingest thread had failed.
        let first = try DaemonProcess(database: url)
        var env = try ownEndpoints()
        // TEST-NET-1 (RFC 5737): a valid address no interface here has, so only the bind fails.
        env["LIANDONG_INGEST_BIND"] = what == "port in use" ? "tcp://127.0.0.1:\(try heldPort())" : "tcp://192.0.2.1:7601"
        let started = Date()
        let r = try liandongd(["run", "--migrations", TestDatabase.migrations], database: url, environment: env, timeout: 20)
        let seconds = Date().timeIntervalSince(started)
        #expect(r.status == 1, "stderr: \(r.stderr)")
        #expect(seconds < 10, "took \(seconds) s")
        #expect(r.stderr.contains("liandongd: error:") && r.stderr.contains("ingest.bind"), "\(r.stderr)")
        #expect(r.stderr.contains(what == "port in use" ? "already in use" : "Cannot assign requested address"), "\(r.stderr)")
        #expect(r.stderr.contains("errno"), "\(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"))
        #expect(try first.stop() == 0)
    }

    @Test("an endpoint libzmq could never use is refused before anything starts")
    func badScheme() throws {
        let r = try liandongd(["run", "--migrations", TestDatabase.migrations], database: try TestDatabase.create(),
                              environment: ["LIANDONG_INGEST_BIND": "htp://nowhere"], timeout: 20)
        #expect(r.status == 1 && r.stderr.contains("config key ingest.bind: \"htp://nowhere\": unknown transport"), "\(r.stderr)")
    }

    @Test("a standby says so on /readyz, keeps what it receives in its spill, stops at once on SIGTERM, and writes it later")
    func standby() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        let first = try DaemonProcess(database: url)
        let spill = "\(Scratch.directory)/ld-standby-\(UUID().uuidString.prefix(8)).spill"
        var env = ["LIANDONG_INGEST_SPILL_PATH": spill]
        let standby = try DaemonProcess(database: url, environment: env)
        try standby.waitUntil(timeout: 10, "the standby to report itself") {
            let ready = try httpGet(port: standby.metricsPort, "/readyz")
            return ready.status == 503 && ready.body.hasPrefix("standby")
        }
        #expect(try standby.metric("liandong_writer_standby") == 1)
        #expect(try first.metric("liandong_writer_standby") == 0)
        let n = 300
        try standby.sendAlerts(around: centre, count: n, id: "sb", now: Date().timeIntervalSince1970)
        try standby.waitUntilReceived(n, "the standby to spill what it received") {
            DaemonProcess.metric("liandong_spill_pending_bytes", in: $0) > 0
        }
        let started = Date()
        #expect(try standby.stop(timeout: 20) == 0, "log:\n\(standby.log)")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(standby.log.contains("in the spill file"))
        #expect(try db.int("SELECT count(*) FROM liandong.events") == 0)

        // The first daemon stops; the standby's successor, on the same spill, writes it all.
        #expect(try first.stop() == 0)
        env["LIANDONG_INGEST_SPILL_PATH"] = spill
        let successor = try DaemonProcess(database: url, environment: env)
        try successor.waitUntil(timeout: 30, "the spilled events") { try db.int("SELECT count(*) FROM liandong.events") == n }
        #expect(try db.int("SELECT count(DISTINCT source_id) FROM liandong.events") == n)
        #expect(try successor.stop() == 0)
    }

    @Test("SIGTERM during a database outage ends the daemon at once with exit 0; what it received is written at the next start")
    func sigtermDuringOutage() throws {
        let scene = try OutageScene(environment: ["LIANDONG_INGEST_QUEUE_CAPACITY": "100"])
        let (cluster, daemon, centre, now) = (scene.cluster, scene.daemon, scene.centre, scene.now)
        try cluster.stop()
        let n = 500
        try daemon.sendAlerts(around: centre, count: n, id: "t", now: now)
        try daemon.waitUntilReceived(n, "the outage to be ridden out in the spill") {
            DaemonProcess.metric("liandong_database_up", in: $0) == 0
        }
        let started = Date()
        #expect(try daemon.stop(timeout: 40) == 0, "log:\n\(daemon.log)")
        #expect(Date().timeIntervalSince(started) < 5, "took \(Date().timeIntervalSince(started)) s")
        #expect(daemon.log.contains("in the spill file"))
        try cluster.start()
        try daemon.crashAndRestart()  // not running: starts it again on the same spill
        let db = try PGConnection(conninfo: cluster.conninfo)
        try daemon.waitUntil(timeout: 60, "every message written") { try db.int("SELECT count(*) FROM liandong.events") >= n }
        #expect(try db.int("SELECT count(DISTINCT source_id) FROM liandong.events") == n)
        #expect(try daemon.stop() == 0)
    }
}
