import Foundation
import LiandongClient
import LiandongCore
import LiandongStorage
import LibPQ
import Testing
import ZeroMQ

/// ha.enabled: two real liandongd processes on one database, one leading. kill -9, SIGSTOP (a
/// host that stops answering) and a killed database session; gateways and a dispatcher connected
/// to both daemons.
@Suite("Active/standby pair")
struct HATests {
    static let ha = ["LIANDONG_HA_ENABLED": "true"]

    struct Pair {
        let url: String
        let db: PGConnection
        let a: DaemonProcess
        let b: DaemonProcess
    }

    /// `a` leads, then `b` stands by, on a new test database.
    func pair() throws -> Pair {
        let url = try TestDatabase.create()
        let (a, b) = try startPair(url)
        return Pair(url: url, db: try PGConnection(conninfo: url), a: a, b: b)
    }

    /// Two daemons with ha.enabled on `url`: `a` started first and leading, `b` standing by.
    func startPair(_ url: String, _ environment: [String: String] = Self.ha, curve: CurveClientKeys? = nil)
        throws -> (DaemonProcess, DaemonProcess)
    {
        let a = try DaemonProcess(database: url, environment: environment, gatewayCurve: curve)
        // Its HTTP listener may come up after its SUB socket subscribed: a refused connection is "not yet".
        try a.waitUntil(timeout: 30, "a leads") { (try? httpGet(port: a.metricsPort, "/readyz"))?.status == 200 }
        let b = try DaemonProcess(database: url, environment: environment, gatewayCurve: curve)
        try b.waitUntil(timeout: 30, "b stands by") { (try? httpGet(port: b.metricsPort, "/readyz"))?.body.hasPrefix("standby") == true }
        return (a, b)
    }

    /// A PUB gateway connected to every daemon, returned once each has subscribed.
    func gateway(to daemons: [DaemonProcess], curve: CurveClientKeys? = nil) throws -> ZMQSocket {
        let gateway = try ZMQSocket(context: daemons[0].context, type: .xpub)
        try curve?.apply(to: gateway)
        try gateway.setXPubVerbose()
        try gateway.setLinger(milliseconds: 1000)
        for daemon in daemons {
            try gateway.connect(daemon.ingest)
            guard try gateway.waitForSubscribers(covering: ["alert"], timeoutMilliseconds: 15_000) else {
                throw TestFailure("\(daemon.ingest) did not subscribe")
            }
        }
        return gateway
    }

    func endpointBound(_ endpoint: String) -> Bool {
        FileManager.default.fileExists(atPath: String(endpoint.dropFirst("ipc://".count)))
    }

    func leader(_ db: PGConnection) throws -> (holder: String, epoch: Int) {
        let r = try db.query("SELECT holder, epoch FROM liandong.ha_lease")
        guard r.count == 1 else { throw TestFailure("no lease") }
        return (r.rows[0][0]!, Int(r.rows[0][1]!)!)
    }

    /// Waits for the takeover of `epoch`; returns its reason and how long after `since` it was.
    func takeover(_ db: PGConnection, epoch: Int, since: Date, _ daemon: DaemonProcess) throws -> (reason: String, after: Double) {
        try daemon.waitUntil(timeout: 30, "the takeover of epoch \(epoch)") {
            try db.int("SELECT count(*) FROM liandong.ha_takeovers WHERE epoch = $1", [String(epoch)]) == 1
        }
        let r = try db.query("SELECT reason, extract(epoch FROM at) FROM liandong.ha_takeovers WHERE epoch = $1", [String(epoch)])
        return (r.rows[0][0]!, Double(r.rows[0][1]!)! - since.timeIntervalSince1970)
    }

    @Test("one leads, the other stands by: role in /readyz and metrics, and the standby binds only its SUB ingest")
    func roles() throws {
        let p = try pair()
        #expect(try p.a.metric("liandong_ha_leader") == 1)
        #expect(try p.b.metric("liandong_ha_leader") == 0)
        let text = try httpGet(port: p.b.metricsPort, "/metrics").body
        #expect(text.contains("\nliandong_ha_lease_age_seconds "))
        let age = DaemonProcess.metric("liandong_ha_lease_age_seconds", in: text)
        #expect(age >= 0 && age < 3, "the standby sees a lease renewed \(age) s ago")
        let ready = try httpGet(port: p.a.metricsPort, "/readyz")
        #expect(ready.status == 200 && ready.body.hasSuffix("leading (ha epoch 1)\n"), "\(ready)")
        let standby = try httpGet(port: p.b.metricsPort, "/readyz")
        let holder = try leader(p.db).holder
        #expect(standby.status == 503 && standby.body.contains(holder))
        for endpoint in [p.a.ack, p.a.feed, p.a.replay, p.a.updates] { #expect(endpointBound(endpoint), "\(endpoint)") }
        for endpoint in [p.b.ack, p.b.feed, p.b.replay, p.b.updates] { #expect(!endpointBound(endpoint), "\(endpoint) bound by a standby") }
        #expect(endpointBound(p.b.ingest))
        // Every session of a daemon carries its name.
        #expect(holder.hasPrefix("liandongd/"))
        #expect(try p.db.int("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", [holder]) >= 4)
        #expect(try p.db.query("SELECT reason FROM liandong.ha_takeovers").rows.map { $0[0]! } == ["first"])
    }

    @Test("kill -9 of the leader mid-stream: the standby leads within ha.takeover_s; N sent -> N stored on SUB and ack; every task seq reaches a dispatcher on both feeds")
    func killNineMidStream() throws {
        let p = try pair()
        let context = p.a.context
        // A gateway publishing to both daemons, an acknowledged gateway and a dispatcher on both.
        let gateway = try gateway(to: [p.a, p.b])
        let client = try IngestClient(context: context, endpoint: p.a.ack, retryAfter: 1)
        try client.connect(p.b.ack)
        let dispatcher = try FeedClient(context: context, feed: p.a.feed, replay: p.a.replay)
        try dispatcher.connect(feed: p.b.feed, replay: p.b.replay)
        var delivered = Set<Int64>()
        func listen(_ seconds: TimeInterval) {
            // A replay asked of the daemon that died is not answered: asked again next time.
            if let items = try? dispatcher.next(timeout: seconds) { delivered.formUnion(items.map(\.seq)) }
        }
        let centre = try Scene.centre(of: Scene.ruralGrid, p.db)
        let now = Date().timeIntervalSince1970
        let n = 2400, chunk = 100
        var killedAt: Date? = nil
        for start in stride(from: 0, to: n, by: chunk) {
            for i in start..<start + chunk {
                let position = offset(centre, east: Double(i % 40) * 30 - 600, north: Double(i / 40) * 20 - 600)
                let body = Wire.alert(id: "ha-sub-\(i)", at: now - Double(i % 300), position: position)
                try gateway.send(strings: ["alert", body])
                if i % 4 == 0 {
                    let id = "ha-ack-\(i / 4)"
                    let report = Wire.report(id: id, category: "闯入", severity: 2, at: now - Double(i % 300), position: position)
                    try client.send(topic: "report", body: Array(report.utf8), id: id)
                }
            }
            try client.poll(timeout: 0.05)
            listen(0.05)
            if killedAt == nil, start >= n / 3, try p.db.int("SELECT count(*) FROM liandong.events") > 0 {
                kill(p.a.process.processIdentifier, SIGKILL)
                killedAt = Date()
            }
        }
        let killed = try #require(killedAt)
        let (reason, after) = try takeover(p.db, epoch: 2, since: killed, p.b)
        #expect(reason == "lock_free")
        #expect(after >= 0 && after < 5, "the standby led \(after) s after the kill (ha.takeover_s 5)")
        print("ha: kill -9 -> leading after \(String(format: "%.2f", after)) s")
        #expect(try client.flush(timeout: 120), "\(client.unanswered) acknowledged messages unanswered")
        try p.b.waitUntil(timeout: 60, "every message sent stored") {
            try p.db.int("SELECT count(DISTINCT source_id) FROM liandong.events") == n + n / 4
        }
        #expect(try p.db.int("SELECT count(*) FROM liandong.events") == n + n / 4, "one effect each")
        #expect(try p.b.metric("liandong_ha_buffer_replayed_total") > 0)
        #expect(try p.b.metric("liandong_ha_leader") == 1)
        // Every task seq reaches the dispatcher connected to both daemons (live or replayed).
        let seqs = { Set(try p.db.query("SELECT seq FROM liandong.feed WHERE topic LIKE 'task.%'").rows.map { Int64($0[0]!)! }) }
        try p.b.waitUntil(timeout: 60, "the dispatcher has every task seq") {
            listen(0.2)
            return try seqs().isSubset(of: delivered)
        }
        #expect(try !seqs().isEmpty)
        // The supervisor restarts the old leader: it stands by.
        try p.a.restart()
        // Its SUB socket subscribes before its HTTP listener is up: a refused connection is "not yet".
        try p.a.waitUntil(timeout: 30, "the restarted daemon stands by") {
            (try? httpGet(port: p.a.metricsPort, "/readyz").body.hasPrefix("standby")) ?? false
        }
    }

    @Test("SIGSTOP of the leader (a host that stops answering): taken over within ha.takeover_s; woken, it writes nothing and exits")
    func pausedLeaderWritesNothing() throws {
        let p = try pair()
        let old = try leader(p.db).holder
        let centre = try Scene.centre(of: Scene.ruralGrid, p.db)
        let now = Date().timeIntervalSince1970
        // Connections to the leader only, made before it stops.
        let client = try IngestClient(context: p.a.context, endpoint: p.a.ack, retryAfter: 1)
        try client.send(topic: "alert", body: Array(Wire.alert(id: "before", at: now, position: centre).utf8), id: "before")
        #expect(try client.flush(timeout: 20))
        kill(p.a.process.processIdentifier, SIGSTOP)
        let stopped = Date()
        // While it sleeps, work waits for it on both of its ingest paths.
        for i in 0..<50 {
            let position = offset(centre, east: Double(i) * 20)
            try client.send(topic: "alert", body: Array(Wire.alert(id: "asleep-ack-\(i)", at: now, position: position).utf8),
                            id: "asleep-ack-\(i)")
            try p.a.send("alert", Wire.alert(id: "asleep-sub-\(i)", at: now, position: position))
        }
        let (reason, after) = try takeover(p.db, epoch: 2, since: stopped, p.b)
        #expect(reason == "lease_expired")
        #expect(after >= 0 && after < 5, "the standby led \(after) s after the leader stopped (ha.takeover_s 5)")
        print("ha: SIGSTOP -> leading after \(String(format: "%.2f", after)) s")
        #expect(try p.db.int("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", [old]) == 0,
                "the paused leader's sessions were ended")
        let counts = "SELECT (SELECT count(*) FROM liandong.events), (SELECT count(*) FROM liandong.feed), "
            + "(SELECT count(*) FROM liandong.task_history), (SELECT count(*) FROM liandong.rejected_messages)"
        let before = try p.db.query(counts).rows
        kill(p.a.process.processIdentifier, SIGCONT)
        try waitUntil(timeout: 20, "the woken leader exits") { !p.a.process.isRunning }
        #expect(p.a.process.terminationStatus == 75)
        #expect(p.a.log.contains("lost the lead"))
        let answers = try client.poll(timeout: 2)
        #expect(answers.filter(\.ok).isEmpty, "the woken leader acknowledged \(answers.filter(\.ok).map(\.id))")
        #expect(try p.db.query(counts).rows == before, "the woken leader wrote")
        #expect(try p.db.int("SELECT count(*) FROM liandong.events WHERE source_id LIKE 'asleep-%'") == 0)
        #expect(try leader(p.db).epoch == 2)
        #expect(try p.b.metric("liandong_ha_leader") == 1)
    }

    @Test("the leader's database session killed: it exits, the standby leads; a graceful stop hands over too")
    func killedSession() throws {
        let p = try pair()
        let key = LeaseStore.lockKey
        let pid = try p.db.int("""
            SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """, [String(UInt32(truncatingIfNeeded: key >> 32)), String(UInt32(truncatingIfNeeded: key))])
        let killed = Date()
        try p.db.query("SELECT pg_terminate_backend($1)", [String(pid)])
        try p.a.waitUntil(timeout: 20, "the leader without its session exits") { !p.a.process.isRunning }
        #expect(p.a.process.terminationStatus == 75)
        let (reason, after) = try takeover(p.db, epoch: 2, since: killed, p.b)
        #expect(reason == "lock_free" && after >= 0 && after < 5, "\(reason) after \(after) s")
        // Restarted, the old leader stands by; the new one stops gracefully and hands over.
        try p.a.restart()
        try p.a.waitUntil(timeout: 30, "a stands by") { (try? httpGet(port: p.a.metricsPort, "/readyz").body.hasPrefix("standby")) ?? false }
        let stopping = Date()
        #expect(try p.b.stop() == 0)
        let (handover, took) = try takeover(p.db, epoch: 3, since: stopping, p.a)
        #expect(handover == "lock_free" && took >= 0 && took < 5, "\(handover) after \(took) s")
        try p.a.waitUntil(timeout: 30, "a leads again") { try httpGet(port: p.a.metricsPort, "/readyz").status == 200 }
        #expect(endpointBound(p.a.feed) && endpointBound(p.a.ack))
    }

    @Test("the database away for longer than ha.standby_buffer_s: the leader exits, the standby keeps all that arrives, and leading once the database is back it stores everything")
    func databaseOutage() throws {
        let cluster = try PrivateCluster()
        let db = try PGConnection(conninfo: cluster.conninfo)
        let env = Self.ha.merging(["LIANDONG_HA_STANDBY_BUFFER_S": "2"]) { $1 }
        let (a, b) = try startPair(cluster.conninfo, env)
        let gateway = try gateway(to: [a, b])
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        let now = Date().timeIntervalSince1970
        func wave(_ name: String, _ count: Int) throws {
            for i in 0..<count {
                let position = offset(centre, east: Double(i % 20) * 40 - 400, north: Double(i / 20) * 30 - 150)
                try gateway.send(strings: ["alert", Wire.alert(id: "\(name)-\(i)", at: now, position: position)])
            }
        }
        try wave("before", 100)
        try a.waitUntil(timeout: 20, "the first wave stored") { try db.int("SELECT count(*) FROM liandong.events") == 100 }
        try cluster.stop()
        try waitUntil(timeout: 20, "the leader without its database session exits") { !a.process.isRunning }
        #expect(a.process.terminationStatus == 75)
        try wave("away-1", 200)
        // Three times ha.standby_buffer_s later nothing has aged out: nobody leads meanwhile.
        let sent = Date()
        var buffered = 0.0
        try b.waitUntil(timeout: 20, "three times the buffer's seconds pass with the wave kept") {
            buffered = try b.metric("liandong_ha_standby_buffer_messages")
            return Date().timeIntervalSince(sent) > 6 && buffered >= 300
        }
        #expect(buffered == 300, "the standby keeps what arrived since the leader was last seen")
        try wave("away-2", 200)
        let started = Date()  // (the standby may lead before pg_ctl's wait returns)
        try cluster.start()
        let (reason, after) = try takeover(try PGConnection(conninfo: cluster.conninfo), epoch: 2, since: started, b)
        #expect(reason == "lock_free" && after >= 0 && after < 5, "\(reason) after \(after) s")
        try b.waitUntil(timeout: 60, "everything sent stored once") {
            try PGConnection(conninfo: cluster.conninfo).int("SELECT count(DISTINCT source_id) FROM liandong.events") == 500
        }
        #expect(try PGConnection(conninfo: cluster.conninfo).int("SELECT count(*) FROM liandong.events") == 500)
    }

    @Test("with ha.enabled, a database.url that names the sessions itself is refused: a successor could not end them")
    func applicationNameRefused() throws {
        let url = try TestDatabase.create()
        let id = UUID().uuidString.prefix(8)
        var env = Self.ha
        for (key, name) in [("INGEST_BIND", "ingest"), ("INGEST_ACK_BIND", "ack"), ("FEED_BIND", "feed"),
                            ("FEED_REPLAY_BIND", "replay"), ("UPDATES_BIND", "updates")] {
            env["LIANDONG_" + key] = "ipc://\(Scratch.directory)/ld-\(id)-\(name)"
        }
        env["LIANDONG_METRICS_BIND"] = ""
        let run = try liandongd(["run", "--migrations", TestDatabase.migrations], database: url + " application_name=grafana",
                                environment: env, timeout: 30)
        #expect(run.status != 0)
        #expect(run.stderr.contains("application_name=grafana: remove it"), "\(run.stderr)")
    }

    @Test("a pair behind CURVE (one server key for both): the standby authenticates the gateway on its SUB socket, and after a kill -9 it stores what it kept and answers the acknowledged gateway")
    func pairBehindCurve() throws {
        let dir = Scratch.directory + "/ld-ha-curve-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try CurveKeyFiles.generate(name: "daemon", directory: dir)
        _ = try CurveKeyFiles.generate(name: "gw", directory: dir)
        try CurveTests.CurveScene.writePeers(dir: dir, [("gw", "gateway", "")])
        let keys = try CurveTests.CurveScene.keys(dir: dir, "gw")
        let env = Self.ha.merging([
            "LIANDONG_SECURITY_CURVE": "true", "LIANDONG_SECURITY_SECRET_KEY_FILE": dir + "/daemon.key",
            "LIANDONG_SECURITY_PEERS_FILE": dir + "/peers.yaml",
        ]) { $1 }
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        let (a, b) = try startPair(url, env, curve: keys)
        let gateway = try gateway(to: [a, b], curve: keys)
        let client = try IngestClient(context: a.context, endpoint: a.ack, retryAfter: 1, curve: keys)
        try client.connect(b.ack)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        let now = Date().timeIntervalSince1970
        func send(_ name: String, _ count: Int) throws {
            for i in 0..<count {
                let position = offset(centre, east: Double(i % 10) * 40 - 200, north: Double(i / 10) * 40 - 100)
                try gateway.send(strings: ["alert", Wire.alert(id: "\(name)-\(i)", at: now, position: position)])
                let report = Wire.report(id: "\(name)-r\(i)", category: "闯入", severity: 2, at: now, position: position)
                try client.send(topic: "report", body: Array(report.utf8), id: "\(name)-r\(i)")
            }
        }
        try send("c1", 50)
        #expect(try client.flush(timeout: 30))
        try a.waitUntil(timeout: 20, "the first 100 stored") { try db.int("SELECT count(*) FROM liandong.events") == 100 }
        try b.waitUntil(timeout: 10, "the standby kept the gateway's 50 alerts") {
            try b.metric("liandong_events_received_total{path=\"standby\"}") == 50
        }
        kill(a.process.processIdentifier, SIGKILL)
        try send("c2", 50)
        try b.waitUntil(timeout: 30, "b leads") { try httpGet(port: b.metricsPort, "/readyz").status == 200 }
        #expect(try client.flush(timeout: 60), "\(client.unanswered) unanswered")
        try b.waitUntil(timeout: 30, "all 200 stored") { try db.int("SELECT count(DISTINCT source_id) FROM liandong.events") == 200 }
        #expect(try db.int("SELECT count(*) FROM liandong.events") == 200)
        #expect(try b.metric("liandong_auth_failures_total{reason=\"unknown_key\"}") == 0)
    }

    @Test("nobody leading for longer than ha.takeover_s and more arriving than the standby holds in memory (60 x ingest.queue_capacity): the rest goes to its spill file and is stored when it leads")
    func standbySpillsWhileLeaderless() throws {
        let cluster = try PrivateCluster()
        // 10 x 60 = 600 messages in memory at most.
        let env = Self.ha.merging(["LIANDONG_INGEST_QUEUE_CAPACITY": "10"]) { $1 }
        let (a, b) = try startPair(cluster.conninfo, env)
        let centre = try Scene.centre(of: Scene.ruralGrid, try PGConnection(conninfo: cluster.conninfo))
        try cluster.stop()
        let stopped = Date()
        try waitUntil(timeout: 20, "the leader without its database session exits") { !a.process.isRunning }
        // No leader seen for longer than ha.takeover_s (5 s) before the flood.
        try b.waitUntil(timeout: 20, "no leader for over 5 s") {
            try b.metric("liandong_ha_leader") == 0 && Date().timeIntervalSince(stopped) > 6
        }
        let now = Date().timeIntervalSince1970
        let n = 1500
        for i in 0..<n {
            let position = offset(centre, east: Double(i % 30) * 30 - 450, north: Double(i / 30) * 20 - 500)
            try b.send("alert", Wire.alert(id: "flood-\(i)", at: now, position: position))
        }
        try b.waitUntil(timeout: 20, "the standby spilled what it could not hold") {
            try b.metric("liandong_spill_pending_bytes") > 0
                && b.metric("liandong_events_received_total{path=\"standby\"}") == Double(n)
        }
        #expect(try b.metric("liandong_ha_standby_buffer_messages") < 600)
        #expect(try b.metric("liandong_ha_standby_buffer_overflow_total") == 0)
        try cluster.start()
        try b.waitUntil(timeout: 30, "b leads") { try httpGet(port: b.metricsPort, "/readyz").status == 200 }
        try b.waitUntil(timeout: 60, "all \(n) stored once") {
            try PGConnection(conninfo: cluster.conninfo).int("SELECT count(DISTINCT source_id) FROM liandong.events") == n
        }
        #expect(try PGConnection(conninfo: cluster.conninfo).int("SELECT count(*) FROM liandong.events") == n)
    }
}
