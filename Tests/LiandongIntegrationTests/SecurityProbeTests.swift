import Foundation
import LibPQ
import LiandongClient
import LiandongCore
import LiandongStorage
import Testing
import ZeroMQ

/// What a security probe found, each over real processes and sockets so it stays fixed: a
/// gateway taking another's ids or reporting another's cameras.
@Suite("What a security probe found")
struct SecurityProbeTests {
    /// Sends one message on the acknowledged path and waits for its answer.
    static func ask(_ client: IngestClient, _ topic: String, _ body: String, id: String) throws -> IngestClient.Answer {
        try client.send(topic: topic, body: Array(body.utf8), id: id)
        var answer: IngestClient.Answer?
        try waitUntil(timeout: 15, "the answer to \(id)") {
            answer = try client.poll(timeout: 0.2).last { $0.id == id } ?? answer
            return answer != nil
        }
        return answer!
    }

    static func status(_ device: String, at: Double, reason: String = "register") -> (body: String, id: String) {
        let time = Timestamp.formatCST(at)
        return (Wire.json(["schema": "liandong.device_status.v1", "device_id": device, "status": reason == "register" ? "online" : "offline",
                           "at": time, "reason": reason]), "status:\(device):\(time):\(reason)")
    }

    @Test("an id is a duplicate only of the same gateway's: another gateway's squatted id does not swallow the real alert, nor is another's id answered duplicate")
    func idsBelongToTheirGateway() throws {
        let s = try CurveTests.CurveScene(peers: [("gw-a", "gateway", CurveTests.townshipA), ("gw-new", "gateway", CurveTests.townshipB)])
        let x = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, retryAfter: 0.5, curve: try s.keys("gw-a"))
        let y = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, retryAfter: 0.5, curve: try s.keys("gw-new"))
        // X takes Y's id first, inside X's own area.
        let squat = try Self.ask(x, "alert", Wire.alert(id: "gw-y:000777", at: s.now, position: s.centreA), id: "gw-y:000777")
        #expect(squat.ok && !squat.duplicate)
        // Y's real alert with its own id is stored, not answered "duplicate".
        let real = try Self.ask(y, "alert", Wire.alert(id: "gw-y:000777", at: s.now, position: s.centreB), id: "gw-y:000777")
        #expect(real.ok && !real.duplicate, "\(real)")
        #expect(try s.db.int("SELECT count(*) FROM liandong.events WHERE source_id = 'gw-y:000777'") == 2)
        #expect(try s.db.query("SELECT owner FROM liandong.event_keys WHERE source_id = 'gw-y:000777' ORDER BY owner").rows.map { $0[0]! }
                == ["gw-a", "gw-new"])
        // The same gateway's repeat is a duplicate, as before.
        let again = try Self.ask(y, "alert", Wire.alert(id: "gw-y:000777", at: s.now, position: s.centreB), id: "gw-y:000777")
        #expect(again.ok && again.duplicate)
        // Another gateway's id is never a "duplicate" for Y (which would tell Y that it exists): outside
        // Y's scope it is refused as out of scope.
        _ = try Self.ask(x, "alert", Wire.alert(id: "gw-a:000001", at: s.now, position: s.centreA), id: "gw-a:000001")
        let probe = try Self.ask(y, "alert", Wire.alert(id: "gw-a:000001", at: s.now, position: s.centreA), id: "gw-a:000001")
        #expect(!probe.ok && !probe.duplicate && (probe.error ?? "").contains("out_of_scope"), "\(probe)")
    }

    @Test("device status is judged by the registry and the sender's scope: another township's camera, an unregistered device, another county's id are refused")
    func statusWithinScope() throws {
        let s = try CurveTests.CurveScene(peers: [("gw-a", "gateway", CurveTests.townshipA), ("gw-rogue", "gateway", "")])
        let x = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, retryAfter: 0.5, curve: try s.keys("gw-a"))
        let bridge = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, retryAfter: 0.5, curve: try s.keys("gw-rogue"))
        let mine = try #require(try s.db.query("SELECT min(device_id) FROM liandong.cameras WHERE grid_code LIKE $1 || '%'",
                                               [CurveTests.townshipA]).scalar)
        let theirs = try #require(try s.db.query("SELECT min(device_id) FROM liandong.cameras WHERE grid_code LIKE $1 || '%'",
                                                 [CurveTests.townshipB]).scalar)
        let nvr = "62092200001180000099", elsewhere = "62092300001320000001"
        func send(_ client: IngestClient, _ device: String) throws -> IngestClient.Answer {
            let m = Self.status(device, at: s.now - 5)
            return try Self.ask(client, "status", m.body, id: m.id)
        }
        #expect(try send(x, mine).ok)
        let other = try send(x, theirs)
        #expect(!other.ok && (other.error ?? "").contains("outside the scope"), "\(other)")
        let unregistered = try send(x, nvr)
        #expect(!unregistered.ok && (unregistered.error ?? "").contains("only a county-wide gateway"), "\(unregistered)")
        // A county-wide gateway (the SIP bridge) reports an NVR of its county, not another county's device.
        #expect(try send(bridge, nvr).ok)
        let foreign = try send(bridge, elsewhere)
        #expect(!foreign.ok && (foreign.error ?? "").contains("names no county"), "\(foreign)")
        #expect(try s.db.query("SELECT device_id FROM liandong.device_status ORDER BY 1").rows.map { $0[0]! } == [nvr, mine].sorted())
        #expect(try s.db.int("SELECT count(*) FROM liandong.rejected_messages WHERE reason = 'out_of_scope'") == 3)
    }
}

extension SecurityProbeTests {
    @Test("limits: a NUL in a string is refused with its reason (ingest and updates); an oversized update or replay request is refused with one; silences are under row-level security")
    func sizesOddBytesAndSilences() throws {
        let s = try Scene()
        // \u0000 in an alert: a dead letter naming it, not a store error.
        try s.send("alert", Wire.alert(id: "nul-1", at: s.now, position: s.centre).replacingOccurrences(of: "\"nul-1\"", with: "\"nul\\u0000-1\""))
        try s.daemon.waitUntil(timeout: 10, "the dead letter") { try s.db.int("SELECT count(*) FROM liandong.rejected_messages") == 1 }
        let dead = try s.db.query("SELECT reason, detail FROM liandong.rejected_messages")
        #expect(dead[0, "reason"] == "malformed_json" && dead[0, "detail"]?.contains("(NUL)") == true, "\(dead.rows)")
        // A 900 KB frame on ingest: a dead letter "oversized" with its size, not gone without a trace.
        try s.send("alert", Wire.alert(id: "huge", at: s.now, position: s.centre, extra: ["description": String(repeating: "x", count: 900_000)]))
        try s.daemon.waitUntil(timeout: 10, "the oversized dead letter") {
            try s.db.int("SELECT count(*) FROM liandong.rejected_messages WHERE reason = 'oversized' AND raw_size > 900000") == 1
        }
        // In a task update: refused with the reason, not "temporary failure, retry" for ever.
        let d = try Dispatcher(s.daemon)
        let nul = try d.raw(#"{"schema":"liandong.task_update.v1","update_id":"u-nul","task_id":"x","action":"accept","actor":"a\u0000b","at":"2026-12-06T10:00:00+08:00"}"#)
        #expect(nul["ok"] as? Bool == false && (nul["error"] as? String ?? "").contains("(NUL)"), "\(nul)")
        // An update of 200 KB: refused with its size (not read whole and stored).
        let big = try d.raw(Wire.json(["schema": "liandong.task_update.v1", "update_id": "u-big", "task_id": "x", "action": "accept",
                                       "actor": "a", "at": Timestamp.formatCST(s.now), "note": String(repeating: "长", count: 70_000)]))
        #expect(big["ok"] as? Bool == false && (big["error"] as? String ?? "").contains("limit 65536"), "\(big)")
        #expect(try s.db.int("SELECT count(*) FROM liandong.rejected_messages WHERE reason = 'oversized' AND endpoint = 'updates'") == 1)
        // A replay request of 10 KB: refused with its size.
        let replay = try ZMQSocket(context: s.daemon.context, type: .dealer)
        try replay.setReceiveTimeout(milliseconds: 10_000)
        try replay.setLinger(milliseconds: 0)
        try replay.connect(s.daemon.replay)
        try replay.send([Array(("{\"since\":0,\"prefix\":\"task." + String(repeating: "1", count: 10_000) + "\"}").utf8)])
        let answer = try #require(try replay.receive()?.last)
        #expect(String(decoding: answer, as: UTF8.self).contains("limit 4096"))

        // Silences: a township's operator sees those that concern it only.
        for (flags, comment) in [(["--division", "620922102"], "mine"), (["--division", "620922101"], "theirs"),
                                 (["--category", "fire"], "everywhere"), (["--division", "620922"], "the county")] {
            let added = try liandongd(["silence", "add"] + flags + ["--duration", "1h", "--comment", comment], database: s.daemon.database)
            #expect(added.status == 0, "\(added.stderr)")
        }
        let role = "ld_sil_\(UUID().uuidString.lowercased().prefix(8))"
        #expect(try liandongd(["operator", "grant", role, "--scope", "620922102"], database: s.daemon.database).status == 0)
        let op = try PGConnection(conninfo: s.daemon.database.replacingOccurrences(of: "user=postgres", with: "user=\(role)"))
        #expect(try op.query("SELECT comment FROM liandong.silences ORDER BY comment").rows.map { $0[0]! } == ["everywhere", "mine", "the county"])
    }
}

extension SecurityProbeTests {
    @Test("no login but the daemon's may take its advisory locks (a read-only operator cannot hold it back); a database where any may is named at start")
    func locksAreTheDaemons() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        let role = "ld_lock_\(UUID().uuidString.lowercased().prefix(8))"
        #expect(try liandongd(["operator", "grant", role, "--scope", "620922102"], database: url).status == 0)
        let op = try PGConnection(conninfo: url.replacingOccurrences(of: "user=postgres", with: "user=\(role)"))
        for sql in ["SELECT pg_try_advisory_lock(\(EventStore.writerLockKey))", "SELECT pg_advisory_lock(\(EventStore.writerLockKey) + 1)",
                    "SELECT pg_try_advisory_lock(7, 7)", "SELECT pg_advisory_xact_lock(1)"] {
            #expect(throws: PQError.self, "\(sql)") { try op.query(sql) }
        }
        // A daemon starts and leads as before.
        let daemon = try DaemonProcess(database: url)
        #expect(!daemon.log.contains("database setup needs a DBA"))
        #expect(try daemon.stop() == 0)
        // Where a DBA has not revoked them, the daemon says so at start (and runs).
        try db.execute("GRANT EXECUTE ON FUNCTION pg_catalog.pg_try_advisory_lock(bigint) TO PUBLIC")
        let exposed = try DaemonProcess(database: url)
        try exposed.waitUntil(timeout: 10, "the warning") { exposed.log.contains("database setup needs a DBA") }
        #expect(exposed.log.contains("deploy/dba-setup.sql"))
        #expect(try exposed.stop() == 0)
    }
}

extension SecurityProbeTests {
    @Test("SIP from two hosts (127.0.0.1 the camera, 127.0.0.2 the attacker): spoofed MESSAGEs, a replayed REGISTER and guessed digests are refused, counted and logged; the camera carries on")
    func sipProbe() throws {
        let s = try Scene()
        let bridge = try BridgeProcess(daemonAck: s.daemon.ack)
        let id = SIPBridgeTests.camera
        let camera = try SIPDevice(id: id, bridgePort: bridge.sipPort)
        #expect(try camera.register() == 200)
        let attacker = try SIPDevice(id: id, bridgePort: bridge.sipPort, host: "127.0.0.2")
        func final(_ device: SIPDevice, _ m: SIPMessage) throws -> SIPMessage? {
            device.send(m)
            return try device.receive(timeout: 10, where: { ($0.statusCode ?? 0) >= 200 && $0.cseq?.method == m.method })
        }
        // 1. An alarm in the camera's name from the other host: 403, nothing stored, the registration stays.
        let (body, alertID) = GB28181IngestTests.alarm(sn: 4711, at: Date().timeIntervalSince1970 - 2, position: s.centre)
        #expect(try final(attacker, attacker.request("MESSAGE", branch: "spoof1", body: body))?.statusCode == 403)
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"message_wrong_address\"}") == 1)
        try waitUntil(timeout: 5, "the notice") { bridge.log.contains("MESSAGE in the name of device \(id) from udp://127.0.0.2") }
        // 2. The captured REGISTER Authorization replayed from the other host with Expires 0: challenged, the camera stays registered.
        let replay = attacker.request("REGISTER", branch: "replay1", headers: [("Authorization", try #require(camera.lastAuthorization)),
                                                                               ("Expires", "0"), ("Contact", "<sip:\(id)@127.0.0.2:\(attacker.port)>")])
        #expect(try final(attacker, replay)?.statusCode == 401)
        #expect(try final(camera, camera.request("MESSAGE", branch: "ka1", body: Array(GB28181BridgeKeepalive.body(id).utf8)))?.statusCode == 200,
                "the camera's keepalive still answered 200")
        // Its own alarm from its own address is stored.
        #expect(try final(camera, camera.request("MESSAGE", branch: "own1", body: body))?.statusCode == 200)
        #expect(try s.db.int("SELECT count(*) FROM liandong.events WHERE source_id = $1", [alertID]) == 1)
        // 3. Guessing from the other host: after five wrong digests it is refused without a challenge; the camera re-registers.
        let guesser = try SIPDevice(id: "62092200001320000005", bridgePort: bridge.sipPort, host: "127.0.0.2")
        for _ in 0..<5 { #expect(try guesser.register(password: "guess") == 403) }
        let throttled = try final(guesser, guesser.request("REGISTER", branch: "g6", headers: [("Expires", "3600")]))
        #expect(throttled?.statusCode == 403 && throttled?.header("Retry-After") != nil)
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"register_throttled\"}") == 1)
        #expect(try camera.register() == 200)
        #expect(bridge.stop() == 0)
    }
}

extension SecurityProbeTests {
    /// A TCP connection from `host` to the bridge; -1 when refused.
    static func connectTCP(from host: String, to port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var local = loopbackAddress(host: host)
        _ = withSockaddr(&local) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        var remote = loopbackAddress(port: port)
        guard withSockaddr(&remote, { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }) == 0 else { close(fd); return -1 }
        return fd
    }

    /// Whether the bridge has closed `fd` (a read returns 0 at once).
    static func closedByPeer(_ fd: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 0) == 1 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0
    }

    @Test("SIP over TCP: one address holds at most 16 connections, silent unauthenticated ones are closed after 10 s, and a real device still gets in")
    func sipConnections() throws {
        let s = try Scene()
        let bridge = try BridgeProcess(daemonAck: s.daemon.ack)
        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        for _ in 0..<24 { held.append(Self.connectTCP(from: "127.0.0.2", to: bridge.sipPort)) }
        try waitUntil(timeout: 10, "the connections beyond 16 closed") {
            held.filter { $0 >= 0 && Self.closedByPeer($0) }.count == 8
        }
        try waitUntil(timeout: 5, "the refusals counted") { try bridge.metric("liandong_gb28181_tcp_closed_total{reason=\"per_address\"}") == 8 }
        // A camera from another address registers over TCP meanwhile (SIPp).
        let tcpRegister = try SIPp.run("register", bridge: bridge, device: SIPBridgeTests.camera, transport: "t1")
        #expect(tcpRegister.status == 0, "\(tcpRegister.stdout.suffix(1500))")
        // The silent ones are closed after 10 s; the registered device's connection was not idle that long.
        try waitUntil(timeout: 25, "the idle connections closed") {
            try bridge.metric("liandong_gb28181_tcp_closed_total{reason=\"idle\"}") >= 16
        }
        #expect(held.allSatisfy { $0 >= 0 && Self.closedByPeer($0) }, "every connection of the silent host closed")
        #expect(bridge.stop() == 0)
    }
}

extension SecurityProbeTests {
    @Test("/healthz, /readyz and /metrics stay answerable while 200 idle connections and a client sending a byte a second hold on; those are closed within seconds")
    func healthUnderSlowClients() throws {
        let daemon = try DaemonProcess(database: try TestDatabase.create())
        // Ready first (on a loaded machine the writer's first connection can take a moment): what
        // is measured is the slow clients' effect, not the start.
        try waitUntil(timeout: 30, "the daemon ready") { (try? httpGet(port: daemon.metricsPort, "/readyz").status) == 200 }
        var idle: [Int32] = []
        defer { idle.forEach { close($0) } }
        for _ in 0..<200 { idle.append(Self.connectTCP(from: "127.0.0.2", to: daemon.metricsPort)) }
        #expect(idle.allSatisfy { $0 >= 0 })
        let slow = Self.connectTCP(from: "127.0.0.3", to: daemon.metricsPort)
        defer { close(slow) }
        let started = Date()
        var answered = 0, slowest = 0.0
        // For six seconds: the slow client sends a byte every second; every probe is answered at once.
        while Date().timeIntervalSince(started) < 6 {
            _ = Array("G".utf8).withUnsafeBytes { send(slow, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }
            for path in ["/healthz", "/readyz", "/metrics"] {
                let t = Date()
                let answer = try httpGet(port: daemon.metricsPort, path)
                slowest = max(slowest, Date().timeIntervalSince(t))
                #expect(answer.status == 200, "\(path): \(answer)")
                answered += 1
            }
            try waitUntil(timeout: 2, "a second") { Date().timeIntervalSince(t0(started)) >= Double(answered / 3) }
        }
        #expect(answered >= 15 && slowest < 1, "\(answered) answers, the slowest in \(slowest) s")
        // The idle and the slow connections were closed (5 s without a whole request).
        try waitUntil(timeout: 10, "the held connections closed") { idle.allSatisfy { Self.closedByPeer($0) } && Self.closedByPeer(slow) }
        #expect(try daemon.stop() == 0)
    }

    private func t0(_ d: Date) -> Date { d }
}

extension SecurityProbeTests {
    @Test("with only the shared password a device must be known: a registry camera registers, a never-provisioned id is refused and named, a listed NVR registers")
    func sipProvisioning() throws {
        let s = try Scene()
        let devices = try temporaryFile("# NVRs\n62092200001180000001\n")
        let bridge = try BridgeProcess(daemonAck: s.daemon.ack, environment: ["LIANDONG_DATABASE_URL": s.daemon.database,
                                                                              "LIANDONG_GB28181_DEVICES_FILE": devices])
        #expect(try SIPDevice(id: SIPBridgeTests.camera, bridgePort: bridge.sipPort).register() == 200, "a camera of liandong.cameras")
        #expect(try SIPDevice(id: "62092200001180000001", bridgePort: bridge.sipPort).register() == 200, "listed in gb28181.devices_file")
        let stranger = "62092200001320099999"
        #expect(try SIPDevice(id: stranger, bridgePort: bridge.sipPort).register() == 403)
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"register_unknown\"}") == 1)
        try waitUntil(timeout: 5, "the refusal logged") { bridge.log.contains("REGISTER of device \(stranger)") }
        // Logged like liandongd: one line, level and dotted metadata, then the message.
        let line = try #require(bridge.log.split(separator: "\n").first { $0.contains("REGISTER of device \(stranger)") })
        #expect(line.contains(" notice liandong-gb28181: ") && line.contains("gb28181.device_id=\(stranger)")
                && line.contains("sip.peer=udp://127.0.0.1:"), "\(line)")
        #expect(try Self.status(s, stranger) == nil)
        #expect(bridge.stop() == 0)
        #expect(bridge.log.contains("stopped (0 unanswered"), "a SIGTERM is a graceful shutdown: \(bridge.log.suffix(500))")
    }

    static func status(_ s: Scene, _ device: String) throws -> String? {
        try s.db.query("SELECT status FROM liandong.device_status WHERE device_id = $1", [device]).scalar
    }
}
