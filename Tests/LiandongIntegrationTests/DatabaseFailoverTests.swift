import Foundation
import LiandongClient
import LiandongCore
import LibPQ
import Testing
import ZeroMQ

/// Two PostgreSQL 15 clusters in synchronous streaming replication (pg_basebackup of the primary:
/// the standby's configuration names a synchronous standby too, as a county's DBA leaves it), a
/// database.url naming both hosts with target_session_attrs=read-write.
struct ReplicatedDatabase {
    let primary: PrivateCluster
    let standby: PrivateCluster

    init(serverOptions: String = "") throws {
        primary = try PrivateCluster(serverOptions: serverOptions)
        // Commits wait for any one standby ('*'); set before the base backup so the standby has it too.
        try primary.admin("ALTER SYSTEM SET synchronous_standby_names = '*'")
        try primary.admin("SELECT pg_reload_conf()")
        standby = try PrivateCluster(standbyOf: primary)
        try waitSynchronous()
    }

    /// Waits until the standby is attached to the primary as its synchronous standby.
    func waitSynchronous() throws {
        let db = try PGConnection(conninfo: primary.conninfo)
        try waitUntil(timeout: 30, "the standby attached as synchronous") {
            try db.int("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") == 1
        }
    }

    /// The primary dies (kill -9), the standby is promoted and, with no standby left, commits
    /// stop waiting for one: what a failover manager does.
    func failOver() throws {
        try primary.killPostmaster()
        try standby.promote()
        try standby.admin("ALTER SYSTEM RESET synchronous_standby_names")
        try standby.admin("SELECT pg_reload_conf()")
    }

    /// Both hosts; libpq finds the one that takes writes.
    var url: String {
        "host=127.0.0.1,127.0.0.1 port=\(primary.port),\(standby.port) user=postgres dbname=liandong sslmode=disable "
            + "target_session_attrs=read-write connect_timeout=2"
    }
}

@Suite("The database's own failover", .serialized)
struct DatabaseFailoverTests {
    func readyz(_ daemon: DaemonProcess) -> (status: Int, body: String) {
        (try? httpGet(port: daemon.metricsPort, "/readyz")) ?? (0, "")
    }

    func acknowledged(_ client: IngestClient, _ id: String, at: Double, _ position: LonLat) throws {
        try client.send(topic: "alert", body: Array(Wire.alert(id: id, at: at, position: position).utf8), id: id)
    }

    @Test("database.synchronous require: nothing is acknowledged while the synchronous standby is away (answered unavailable, SUB path spilled), and it resumes by itself when the standby returns; every message stored once")
    func requireStopsAndResumes() throws {
        let r = try ReplicatedDatabase()
        let daemon = try DaemonProcess(database: r.url, environment: ["LIANDONG_DATABASE_SYNCHRONOUS": "require"])
        try daemon.waitUntil(timeout: 30, "ready") { readyz(daemon) == (200, "ready\n") }
        #expect(try daemon.metric("liandong_db_acks_replicated") == 1)
        #expect(try daemon.metric("liandong_db_synchronous_standbys") == 1)
        let db = try PGConnection(conninfo: r.primary.conninfo)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        let now = Date().timeIntervalSince1970
        let client = try IngestClient(context: daemon.context, endpoint: daemon.ack, retryAfter: 0.5)
        try acknowledged(client, "req-before", at: now, centre)
        #expect(try client.flush(timeout: 10))

        try r.standby.stop()
        try daemon.waitUntil(timeout: 15, "/readyz says unavailable") {
            let h = readyz(daemon)
            return h.status == 503 && h.body.hasPrefix("unavailable: acknowledgements are not replicated: 0 of the 1 synchronous standby")
        }
        #expect(try daemon.metric("liandong_db_acks_replicated") == 0)
        for i in 0..<5 { try acknowledged(client, "req-away-\(i)", at: now, offset(centre, north: Double(i) * 15)) }
        for i in 0..<20 { try daemon.send("alert", Wire.alert(id: "req-sub-\(i)", at: now, position: offset(centre, east: Double(i) * 10))) }
        var answers: [IngestClient.Answer] = []
        try waitUntil(timeout: 15, "every acknowledged message answered unavailable") {
            answers += try client.poll(timeout: 0.2)
            return Set(answers.filter { $0.error?.hasPrefix("unavailable: ") == true }.map(\.id)).count == 5
        }
        #expect(answers.allSatisfy { !$0.ok }, "acknowledged while no standby was attached: \(answers.filter(\.ok).map(\.id))")
        try daemon.waitUntil(timeout: 15, "the SUB path spilled") { try daemon.metric("liandong_spill_pending_bytes") > 0 }
        #expect(try db.int("SELECT count(*) FROM liandong.events WHERE source_id LIKE 'req-%'") == 1, "written without a standby")

        try r.standby.start()
        try daemon.waitUntil(timeout: 30, "ready again") { readyz(daemon) == (200, "ready\n") }
        #expect(try client.flush(timeout: 30), "\(client.unanswered) unanswered")
        try daemon.waitUntil(timeout: 30, "every message stored") {
            try db.int("SELECT count(DISTINCT source_id) FROM liandong.events WHERE source_id LIKE 'req-%'") == 26
        }
        #expect(try db.int("SELECT count(*) FROM liandong.events WHERE source_id LIKE 'req-%'") == 26, "one row each")
        #expect(try daemon.metric("liandong_db_acks_replicated") == 1)
        #expect(daemon.log.contains("not acknowledging: acknowledgements are not replicated"))
        #expect(daemon.log.contains("acknowledgements are replicated: commits wait for a synchronous standby"))
        #expect(try daemon.stop() == 0)
    }

    @Test("a commit waiting for a synchronous standby that is gone: reported in /readyz and the log with what it waits for; SIGTERM ends the daemon within 10 s; nothing acknowledged, nothing lost")
    func stuckCommitEndsOnSigterm() throws {
        let r = try ReplicatedDatabase()
        let daemon = try DaemonProcess(database: r.url, environment: ["LIANDONG_DATABASE_STUCK_S": "2"])
        try daemon.waitUntil(timeout: 30, "ready") { readyz(daemon) == (200, "ready\n") }
        let db = try PGConnection(conninfo: r.primary.conninfo)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        let now = Date().timeIntervalSince1970
        let client = try IngestClient(context: daemon.context, endpoint: daemon.ack, retryAfter: 0.5)

        try r.standby.stop()
        for i in 0..<5 { try acknowledged(client, "stuck-ack-\(i)", at: now, offset(centre, north: Double(i) * 15)) }
        for i in 0..<20 { try daemon.send("alert", Wire.alert(id: "stuck-sub-\(i)", at: now, position: offset(centre, east: Double(i) * 10))) }
        var answers: [IngestClient.Answer] = []
        try daemon.waitUntil(timeout: 20, "/readyz reports the stuck commit") {
            answers += try client.poll(timeout: 0.1)
            let h = readyz(daemon)
            return h.status == 503 && h.body.hasPrefix("stuck: the writer session's COMMIT has waited")
                && h.body.contains("waits for a synchronous standby to confirm")
        }
        try daemon.waitUntil(timeout: 10, "the log reports it") {
            daemon.log.contains("a database statement is stuck") && daemon.log.contains("db.waits_for=waits for a synchronous standby")
        }

        let stopped = Date()
        kill(daemon.process.processIdentifier, SIGTERM)
        try waitUntil(timeout: 15, "the daemon exits") {
            answers += try client.poll(timeout: 0.1)
            return !daemon.process.isRunning
        }
        let took = Date().timeIntervalSince(stopped)
        print("database failover: SIGTERM with a commit stuck on a gone standby -> exit in \(String(format: "%.2f", took)) s")
        #expect(took < 10, "SIGTERM took \(took) s")
        #expect(daemon.process.terminationStatus == 0, "log:\n\(daemon.log)")
        #expect(daemon.log.contains("stopped while the database could not take a batch"))
        #expect(answers.allSatisfy { !$0.ok }, "acknowledged without a standby: \(answers.filter(\.ok).map(\.id))")

        // The standby returns and the daemon starts again: everything once.
        try r.standby.start()
        try r.waitSynchronous()
        try daemon.restart()
        #expect(try client.flush(timeout: 30), "\(client.unanswered) unanswered")
        try daemon.waitUntil(timeout: 30, "every message stored") {
            try db.int("SELECT count(DISTINCT source_id) FROM liandong.events WHERE source_id LIKE 'stuck-%'") == 25
        }
        #expect(try db.int("SELECT count(*) FROM liandong.events WHERE source_id LIKE 'stuck-%'") == 25, "one row each")
        #expect(try daemon.stop() == 0)
    }

    @Test("kill -9 of the primary under acknowledged and SUB-path load, then promotion: a pair of daemons follows; every acknowledged message stored once on the new primary, every SUB message stored, feed seqs gapless and delivered, escalations still fire")
    func primaryKilledAndPromoted() throws {
        let r = try ReplicatedDatabase()
        var environment = HATests.ha
        environment["LIANDONG_SLA_VILLAGE_RESPOND_MINUTES"] = "0.2,0.2,0.2,0.2"
        environment["LIANDONG_ESCALATION_SWEEP_MS"] = "200"
        let (a, b) = try HATests().startPair(r.url, environment)
        let gateway = try HATests().gateway(to: [a, b])
        let client = try IngestClient(context: a.context, endpoint: a.ack, retryAfter: 1)
        try client.connect(b.ack)
        let dispatcher = try FeedClient(context: a.context, feed: a.feed, replay: a.replay)
        try dispatcher.connect(feed: b.feed, replay: b.replay)
        var delivered = Set<Int64>()
        func listen(_ seconds: TimeInterval) {
            if let items = try? dispatcher.next(timeout: seconds) { delivered.formUnion(items.map(\.seq)) }
        }
        let primary = try PGConnection(conninfo: r.primary.conninfo)
        // Events in 60 grids: as many incidents, tasks and escalations (feed seqs from the writer and the sweeper).
        let centres = try primary.query("SELECT grid_code FROM liandong.grids ORDER BY grid_code LIMIT 60").rows.map {
            try Scene.centre(of: $0[0]!, primary)
        }
        let now = Date().timeIntervalSince1970
        let n = 1500, chunk = 100
        var killedAt: Date? = nil
        var firstAckAfterKill: Double? = nil
        for start in stride(from: 0, to: n, by: chunk) {
            for i in start..<start + chunk {
                let position = offset(centres[i % centres.count], east: Double(i % 7) * 20, north: Double(i % 5) * 20)
                try gateway.send(strings: ["alert", Wire.alert(id: "fo-sub-\(i)", at: now - Double(i % 300), position: position)])
                if i % 4 == 0 { try acknowledged(client, "fo-ack-\(i / 4)", at: now - Double(i % 300), position) }
            }
            let answers = try client.poll(timeout: 0.05)
            if let killed = killedAt, firstAckAfterKill == nil, answers.contains(where: \.ok) {
                firstAckAfterKill = Date().timeIntervalSince(killed)
            }
            listen(0.05)
            if killedAt == nil, start >= n / 3, try primary.int("SELECT count(*) FROM liandong.events") > 0 {
                // The primary dies; the failover manager promotes the replica and, with no standby
                // left, stops commits from waiting for one.
                killedAt = Date()
                try r.failOver()
            }
        }
        let killed = try #require(killedAt)
        #expect(try client.flush(timeout: 120), "\(client.unanswered) acknowledged messages unanswered")
        if firstAckAfterKill == nil { firstAckAfterKill = Date().timeIntervalSince(killed) }
        let db = try PGConnection(conninfo: r.standby.conninfo)
        try waitUntil(timeout: 60, "every message stored on the new primary") {
            try db.int("SELECT count(DISTINCT source_id) FROM liandong.events WHERE source_id LIKE 'fo-%'") == n + n / 4
        }
        #expect(try db.int("SELECT count(*) FROM liandong.events WHERE source_id LIKE 'fo-%'") == n + n / 4, "one effect each")
        // Feed seqs: gapless and unrepeated, and every task seq reaches the dispatcher.
        let feed = try db.query("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM liandong.feed").rows[0].map { Int($0!)! }
        #expect(feed[0] == feed[1] && feed[2] == 1 && feed[3] == feed[0], "feed seqs \(feed)")
        let seqs = { Set(try db.query("SELECT seq FROM liandong.feed WHERE topic LIKE 'task.%'").rows.map { Int64($0[0]!)! }) }
        try waitUntil(timeout: 60, "the dispatcher has every task seq") {
            listen(0.2)
            return try seqs().isSubset(of: delivered)
        }
        #expect(try !seqs().isEmpty)
        // The sweeper follows the primary: deadlines still escalate.
        try waitUntil(timeout: 60, "an escalation after the failover") {
            try db.int("SELECT count(*) FROM liandong.task_history WHERE event = 'escalated' AND at > to_timestamp($1)",
                       [String(killed.timeIntervalSince1970 + 2)]) > 0
        }
        print("database failover: kill -9 of the primary -> first acknowledgement \(String(format: "%.2f", firstAckAfterKill!)) s later; "
            + "\(n / 4) acknowledged and \(n) SUB-path sent, all stored once; \(feed[0]) feed seqs gapless")
    }

    @Test("what a cancelled commit left on the primary alone is neither replayed nor answered duplicate before a standby has it: after a failover its seq goes to the message the new primary holds, and the message is stored there once")
    func onlyOnThePrimaryIsNotServed() throws {
        let r = try ReplicatedDatabase()
        let daemon = try DaemonProcess(database: r.url, environment: ["LIANDONG_DATABASE_STUCK_S": "2"])
        try daemon.waitUntil(timeout: 30, "ready") { readyz(daemon) == (200, "ready\n") }
        let primary = try PGConnection(conninfo: r.primary.conninfo)
        let centre = try Scene.centre(of: Scene.ruralGrid, primary)
        let now = Date().timeIntervalSince1970
        try r.standby.stop()
        try daemon.send("alert", Wire.alert(id: "only-primary", priority: 3, at: now, position: centre))
        try daemon.waitUntil(timeout: 15, "the writer's commit stuck") { daemon.log.contains("a database statement is stuck") }
        // Stopping cancels the commit: committed on the primary alone, visible there, in the spill file too.
        #expect(try daemon.stop() == 0)
        let lost = try primary.query("SELECT seq, body FROM liandong.feed WHERE topic LIKE 'task.%'").rows
        #expect(lost.count == 1, "the cancelled commit's task message on the primary")

        // Started again while the standby is still away: the spilled alert is a duplicate of that
        // row, and a replay would serve it; neither is answered before a standby has it.
        try daemon.restart()
        let dealer = try ZMQSocket(context: daemon.context, type: .dealer)
        try dealer.setReceiveTimeout(milliseconds: 3000)
        try dealer.connect(daemon.replay)
        try dealer.send([Array("{\"since\":0,\"prefix\":\"task.\"}".utf8)])
        #expect(try dealer.receive() == nil, "a replay served a message no standby had")

        // The primary dies with it; the replica it never reached comes back and is promoted.
        try r.primary.killPostmaster()
        try r.standby.start()
        try r.standby.promote()
        try r.standby.admin("ALTER SYSTEM RESET synchronous_standby_names")
        try r.standby.admin("SELECT pg_reload_conf()")
        let db = try PGConnection(conninfo: r.standby.conninfo)
        // The daemon follows and writes the alert from its spill file on the new primary.
        try daemon.waitUntil(timeout: 30, "the alert written on the new primary") {
            try db.int("SELECT count(*) FROM liandong.events WHERE source_id = 'only-primary'") == 1
        }
        try dealer.setReceiveTimeout(milliseconds: 30_000)
        let answer = try #require(try dealer.receive(), "no replay answer after the failover")
        let stored = try db.query("SELECT body FROM liandong.feed WHERE topic LIKE 'task.%' ORDER BY seq").rows.map { Array($0[0]!.utf8) }
        let bodies = Array(answer.dropLast())
        #expect(stored.starts(with: bodies), "replayed what the new primary does not hold")
        #expect(!bodies.contains(Array(lost[0][1]!.utf8)), "replayed the lost primary's seq \(lost[0][0]!)")
        #expect(stored.count == 1, "the new primary's task message for the alert")
        #expect(try daemon.stop() == 0)
    }
}
