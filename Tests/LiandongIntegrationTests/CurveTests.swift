import Foundation
import LiandongClient
import LiandongCore
import LibPQ
import Testing
import ZeroMQ

/// security.curve with real CURVE sockets and a real daemon: peers authenticated by key (ZAP),
/// authorised by role and scope, the peers file reloaded on SIGHUP.
@Suite("Trust boundary (CURVE)")
struct CurveTests {
    /// 三道沟镇 (the test scene's rural grid) and 柳园镇.
    static let townshipA = "620922102", townshipB = "620922101"

    /// Keys in a temporary directory, a peers file naming some of them, and a daemon with
    /// security.curve whose test gateway is gw-a (scope township A).
    final class CurveScene {
        let dir: String
        let daemonPublic: String
        let db: PGConnection
        let daemon: DaemonProcess
        let centreA: LonLat, centreB: LonLat
        let now = Date().timeIntervalSince1970
        var peersFile: String { dir + "/peers.yaml" }

        init(peers: [(String, String, String)]? = nil) throws {
            dir = Scratch.directory + "/ld-curve-" + UUID().uuidString.prefix(8)
            daemonPublic = try CurveKeyFiles.generate(name: "daemon", directory: dir)
            for name in ["gw-a", "gw-rogue", "gw-new", "disp-a", "disp-b", "obs"] {
                _ = try CurveKeyFiles.generate(name: name, directory: dir)
            }
            let url = try TestDatabase.create()
            db = try PGConnection(conninfo: url)
            centreA = try Scene.centre(of: Scene.ruralGrid, db)
            let gridB = try #require(try db.query(
                "SELECT min(grid_code) FROM liandong.grids WHERE grid_code LIKE $1", [CurveTests.townshipB + "%"]).scalar)
            centreB = try Scene.centre(of: gridB, db)
            let dir = dir
            try Self.writePeers(dir: dir, peers ?? [("gw-a", "gateway", CurveTests.townshipA), ("disp-a", "dispatcher", CurveTests.townshipA),
                                                    ("disp-b", "dispatcher", CurveTests.townshipB), ("obs", "observer", "")])
            daemon = try DaemonProcess(database: url, environment: [
                "LIANDONG_SECURITY_CURVE": "true", "LIANDONG_SECURITY_SECRET_KEY_FILE": dir + "/daemon.key",
                "LIANDONG_SECURITY_PEERS_FILE": dir + "/peers.yaml",
            ], gatewayCurve: try Self.keys(dir: dir, "gw-a"))
        }

        func writePeers(_ peers: [(name: String, role: String, scope: String)]) throws { try Self.writePeers(dir: dir, peers) }

        static func writePeers(dir: String, _ peers: [(name: String, role: String, scope: String)]) throws {
            var text = "peers:\n"
            for p in peers {
                let key = try String(contentsOfFile: dir + "/\(p.name).pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                text += "  - {name: \(p.name), public_key: \"\(key)\", role: \(p.role)" + (p.scope.isEmpty ? "}\n" : ", scope: \"\(p.scope)\"}\n")
            }
            try text.write(toFile: dir + "/peers.yaml", atomically: true, encoding: .utf8)
        }

        func keys(_ name: String) throws -> CurveClientKeys { try Self.keys(dir: dir, name) }

        static func keys(dir: String, _ name: String) throws -> CurveClientKeys {
            try CurveClientKeys.load(serverKey: dir + "/daemon.pub", secretKeyFile: dir + "/\(name).key")
        }

        /// A camera-only alert (a verify task) and the id of its task once it exists.
        func verifyTask(_ id: String, at p: LonLat) throws -> String {
            try daemon.send("alert", Wire.alert(id: id, priority: 3, at: now, position: p))
            var task: String? = nil
            try daemon.waitUntil(timeout: 10, "the verify task of \(id)") {
                task = try db.query("""
                    SELECT t.id FROM liandong.tasks t JOIN liandong.events e ON e.incident_id = t.incident_id WHERE e.source_id = $1
                    """, [id]).scalar
                return task != nil
            }
            return task!
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }
    }

    @Test("a gateway's events in its scope land, outside it are dead letters; an unknown key never connects")
    func gateways() throws {
        let s = try CurveScene()
        // SUB path (the scene's gateway is gw-a, connected and subscribed through CURVE).
        try s.daemon.send("alert", Wire.alert(id: "in-a", at: s.now, position: s.centreA))
        try s.daemon.send("alert", Wire.alert(id: "in-b", at: s.now, position: s.centreB))
        try s.daemon.waitUntil(timeout: 10, "both SUB messages processed") {
            let stored = try s.db.int("SELECT count(*) FROM liandong.events WHERE source_id = 'in-a'")
            return try stored == 1 && s.db.int("SELECT count(*) FROM liandong.rejected_messages WHERE reason = 'out_of_scope'") == 1
        }
        let letter = try s.db.query("SELECT peer, detail, endpoint FROM liandong.rejected_messages WHERE reason = 'out_of_scope'")
        #expect(letter[0, "peer"] == "gw-a" && letter[0, "endpoint"] == "ingest.sub")
        #expect(letter[0, "detail"]!.contains("outside the scope \(Self.townshipA) of gw-a"))
        #expect(try s.db.int("SELECT count(*) FROM liandong.events WHERE source_id = 'in-b'") == 0)

        // Acknowledged path: the answers say so.
        let gateway = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, curve: try s.keys("gw-a"))
        try gateway.send(topic: "alert", body: Array(Wire.alert(id: "ack-a", at: s.now, position: s.centreA).utf8), id: "ack-a")
        try gateway.send(topic: "alert", body: Array(Wire.alert(id: "ack-b", at: s.now, position: s.centreB).utf8), id: "ack-b")
        var answers: [String: IngestClient.Answer] = [:]
        try waitUntil(timeout: 10, "two answers") {
            for a in try gateway.poll(timeout: 0.2) { answers[a.id] = a }
            return answers.count == 2
        }
        #expect(answers["ack-a"]?.ok == true, "\(answers["ack-a"]?.error ?? "")")
        #expect(answers["ack-b"]?.ok == false && (answers["ack-b"]?.error ?? "").hasPrefix("out_of_scope"), "\(answers["ack-b"]?.error ?? "")")

        // A dispatcher's key may not send events.
        let wrongRole = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, curve: try s.keys("disp-a"))
        try wrongRole.send(topic: "alert", body: Array(Wire.alert(id: "by-disp", at: s.now, position: s.centreA).utf8), id: "by-disp")
        var refused: [IngestClient.Answer] = []
        try waitUntil(timeout: 10, "the dispatcher's answer") {
            refused += try wrongRole.poll(timeout: 0.2)
            return !refused.isEmpty
        }
        #expect(refused[0].ok == false && (refused[0].error ?? "").contains("forbidden"))
        let letters = try s.db.query("SELECT reason, peer, detail FROM liandong.rejected_messages").rows
        #expect(try s.db.query("SELECT peer FROM liandong.rejected_messages WHERE reason = 'forbidden'").scalar == "disp-a", "\(letters)")

        // An unknown key: the handshake fails, so nothing is even received; counted once per attempt.
        let rogue = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, retryAfter: 0.3, curve: try s.keys("gw-rogue"))
        try rogue.send(topic: "alert", body: Array(Wire.alert(id: "rogue-1", at: s.now, position: s.centreA).utf8), id: "rogue-1")
        #expect(try rogue.flush(timeout: 2) == false, "no answer for an unknown key")
        let rogueFeed = try ZMQSocket(context: s.daemon.context, type: .xpub)
        try s.keys("gw-rogue").apply(to: rogueFeed)
        try rogueFeed.setLinger(milliseconds: 0)
        try rogueFeed.connect(s.daemon.ingest)
        #expect(try rogueFeed.waitForSubscribers(covering: ["alert"], timeoutMilliseconds: 1500) == false,
                "the daemon's SUB never completes a handshake with an unknown key")
        try s.daemon.waitUntil(timeout: 5, "auth failures counted") {
            try s.daemon.metric("liandong_auth_failures_total{reason=\"unknown_key\"}") >= 2
        }
        #expect(try s.db.int("SELECT count(*) FROM liandong.events WHERE source_id LIKE 'rogue%'") == 0)
        #expect(try s.db.int("SELECT count(*) FROM liandong.rejected_messages WHERE raw::text LIKE '%rogue%'") == 0)
        // Logged once per peer address, not per attempt.
        #expect(s.daemon.log.components(separatedBy: "auth.reason=unknown_key").count - 1 <= 2)
    }

    @Test("a dispatcher of township A cannot update, replay or subscribe to township B's tasks")
    func dispatcherScope() throws {
        // The test gateway may send anywhere in the county; the dispatchers are scoped.
        let s = try CurveScene(peers: [("gw-a", "gateway", "620922"), ("disp-a", "dispatcher", Self.townshipA),
                                       ("disp-b", "dispatcher", Self.townshipB), ("obs", "observer", "")])
        let observer = try s.daemon.subscribeFeed(prefix: "task.", curve: try s.keys("obs"))
        let dispA = try s.daemon.subscribeFeed(prefixes: ["task." + Self.townshipA, "task." + Self.townshipB, "task."],
                                               curve: try s.keys("disp-a"))
        let taskA = try s.verifyTask("va", at: s.centreA)
        let taskB = try s.verifyTask("vb", at: s.centreB)
        let seen = try receiveTasks(observer, count: 2)
        #expect(Set(seen.map { $0.body["task_id"] as! String }) == [taskA, taskB], "the observer sees every township")
        let headB = try #require(seen.compactMap { $0.body["task_id"] as? String == taskB ? $0.body["seq"] as? Int : nil }.first)
        // dispA: everything up to a heartbeat past B's seq has arrived (one connection keeps order).
        var got: [String] = []
        try s.daemon.waitUntil(timeout: 10, "a heartbeat past seq \(headB) at dispatcher A") {
            guard let frames = try dispA.receive(), frames.count == 2 else { return false }
            let body = try JSONSerialization.jsonObject(with: Data(frames[1])) as! [String: Any]
            if frames[0] == Array("hb".utf8) { return (body["head"] as? Int ?? 0) >= headB }
            got.append(body["task_id"] as! String)
            return false
        }
        #expect(got == [taskA], "dispatcher A receives A's task and not B's")
        #expect(try s.daemon.metric("liandong_auth_failures_total{reason=\"out_of_scope\"}") >= 2, "two subscriptions refused")

        // Updates: B's task is forbidden to A's dispatcher (and unchanged); its own goes through, with its name recorded.
        let updater = try Dispatcher(s.daemon, curve: try s.keys("disp-a"))
        let forbidden = try updater.send(taskB, "false_alarm", actor: "someone-else")
        #expect(forbidden["ok"] as? Bool == false && (forbidden["error"] as? String ?? "").hasPrefix("forbidden: task \(taskB)"))
        #expect(try s.db.query("SELECT state FROM liandong.tasks WHERE id = $1", [taskB]).scalar == "open")
        let accepted = try updater.send(taskA, "accept", actor: "claimed-name")
        #expect(accepted["ok"] as? Bool == true)
        let history = try s.db.query("SELECT actor, peer FROM liandong.task_history WHERE task_id = $1 AND event = 'accepted'", [taskA])
        #expect(history[0, "actor"] == "claimed-name" && history[0, "peer"] == "disp-a")
        #expect(try s.db.int("SELECT count(*) FROM liandong.task_updates WHERE peer = 'disp-a'") == 2)
        // An observer may not update at all.
        let byObserver = try Dispatcher(s.daemon, curve: try s.keys("obs")).send(taskA, "start")
        #expect((byObserver["error"] as? String ?? "").hasPrefix("forbidden: obs (observer) may not update tasks"))

        // Replay: only prefixes under the scope.
        let replayB = try FeedClient(context: s.daemon.context, feed: s.daemon.feed, replay: s.daemon.replay,
                                     prefix: "task." + Self.townshipB, curve: try s.keys("disp-a"))
        #expect(throws: ReplayError.self) { _ = try replayB.catchUp() }
        do {
            _ = try replayB.catchUp()
        } catch let e as ReplayError {
            #expect(e.message.hasPrefix("forbidden: prefix \"task.\(Self.townshipB)\""))
        }
        let replayA = try FeedClient(context: s.daemon.context, feed: s.daemon.feed, replay: s.daemon.replay,
                                     prefix: "task." + Self.townshipA, curve: try s.keys("disp-a"))
        let replayed = try replayA.catchUp()
        #expect(!replayed.isEmpty && replayed.allSatisfy { $0.topic.hasPrefix("task." + Self.townshipA) })
        let replayDispB = try FeedClient(context: s.daemon.context, feed: s.daemon.feed, replay: s.daemon.replay,
                                         prefix: "task." + Self.townshipB, curve: try s.keys("disp-b"))
        #expect(try replayDispB.catchUp().map { $0.body.contains(taskB) } == [true])
    }

    @Test("SIGHUP reloads the peers file: a removed key loses its connection, an added one gets in, no restart")
    func reload() throws {
        let s = try CurveScene()
        let pid = s.daemon.process.processIdentifier
        let old = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, retryAfter: 0.5, curve: try s.keys("gw-a"))
        try old.send(topic: "alert", body: Array(Wire.alert(id: "before", at: s.now, position: s.centreA).utf8), id: "before")
        #expect(try old.flush(timeout: 10), "gw-a is a peer")
        let newcomer = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, retryAfter: 0.5, curve: try s.keys("gw-new"))
        try newcomer.send(topic: "alert", body: Array(Wire.alert(id: "early", at: s.now, position: s.centreA).utf8), id: "early")
        #expect(try newcomer.flush(timeout: 1.5) == false, "gw-new is not a peer yet")

        try s.writePeers([("gw-new", "gateway", Self.townshipA), ("obs", "observer", "")])
        kill(pid, SIGHUP)
        try s.daemon.waitUntil(timeout: 10, "the reload") { s.daemon.log.contains("peers.removed=disp-a,disp-b,gw-a") }
        // libzmq gives up a refused connection; IngestClient connects afresh after a silence, is accepted, and its resent message lands.
        #expect(try newcomer.flush(timeout: 10), "gw-new gets in without a restart")
        #expect(try s.db.int("SELECT count(*) FROM liandong.events WHERE source_id = 'early'") == 1)
        let failuresBefore = try s.daemon.metric("liandong_auth_failures_total{reason=\"unknown_key\"}")
        try old.send(topic: "alert", body: Array(Wire.alert(id: "after", at: s.now, position: s.centreA).utf8), id: "after")
        #expect(try old.flush(timeout: 2) == false, "gw-a's connection was closed and it cannot come back")
        #expect(try s.daemon.metric("liandong_auth_failures_total{reason=\"unknown_key\"}") > failuresBefore)
        #expect(try s.db.int("SELECT count(*) FROM liandong.events WHERE source_id = 'after'") == 0)
        #expect(s.daemon.process.isRunning && s.daemon.process.processIdentifier == pid)
    }

    @Test("the Python examples speak CURVE with --curve-server-key and --curve-key")
    func pythonExamples() throws {
        let s = try CurveScene()
        let python = PythonExampleTests.python, examples = PythonExampleTests.examples
        let keys = ["--curve-server-key", s.dir + "/daemon.pub"]
        let gateway = try runCaptured(python, [examples + "/gateway.py", "--ack", s.daemon.ack, "--device", "62092200001320000004",
                                               "--lon", String(s.centreA.lon), "--lat", String(s.centreA.lat), "--count", "2",
                                               "--timeout", "30", "--curve-key", s.dir + "/gw-a.key"] + keys, timeout: 40)
        #expect(gateway.status == 0 && gateway.stdout.split(separator: "\n").count == 2, "\(gateway.stdout) \(gateway.stderr)")
        #expect(try s.db.int("SELECT count(*) FROM liandong.events WHERE gateway_id = 'gw-python'") == 2)
        let dispatcher = try runCaptured(python, [examples + "/dispatcher.py", "--feed", s.daemon.feed, "--replay", s.daemon.replay,
                                                  "--updates", s.daemon.updates, "--prefix", "task." + Self.townshipA,
                                                  "--since", "0", "--max-tasks", "1", "--timeout", "30",
                                                  "--curve-key", s.dir + "/disp-a.key"] + keys, timeout: 40)
        #expect(dispatcher.status == 0 && dispatcher.stdout.contains("\"ok\": true"), "\(dispatcher.stdout) \(dispatcher.stderr)")
        #expect(try s.db.query("SELECT peer FROM liandong.task_updates WHERE action = 'accept'").scalar == "disp-a")
    }

    @Test("a secret key file others may read, or a peers file with a mistake, is refused at start with the reason")
    func badKeyFiles() throws {
        let s = try CurveScene()
        #expect(try s.daemon.stop() == 0)
        chmod(s.dir + "/daemon.key", 0o644)
        func checkConfig(_ extra: [String: String]) throws -> (status: Int32, output: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: DaemonProcess.binaries + "/liandongd")
            process.arguments = ["check-config"]
            var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("LIANDONG_") }
            env["LIANDONG_SECURITY_CURVE"] = "true"
            env["LIANDONG_SECURITY_SECRET_KEY_FILE"] = s.dir + "/daemon.key"
            env["LIANDONG_SECURITY_PEERS_FILE"] = s.peersFile
            for (k, v) in extra { env[k] = v }
            process.environment = env
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        let open = try checkConfig([:])
        #expect(open.status != 0 && open.output.contains("is readable by its group or others") && open.output.contains("chmod 600"))
        chmod(s.dir + "/daemon.key", 0o600)
        let fine = try checkConfig([:])
        #expect(fine.status == 0 && fine.output.contains("security: CURVE, 4 peers"), "\(fine.output)")
        try "peers:\n  - {name: x, public_key: \"short\", role: gateway}\n".write(toFile: s.peersFile, atomically: true, encoding: .utf8)
        let badPeers = try checkConfig([:])
        #expect(badPeers.status != 0 && badPeers.output.contains("entry 1 (x): public_key must be a Z85 CURVE public key"))
        // And without CURVE, exposed binds are called out.
        let exposed = try checkConfig(["LIANDONG_SECURITY_CURVE": "false", "LIANDONG_INGEST_BIND": "tcp://*:7601"])
        #expect(exposed.output.contains("UNAUTHENTICATED SOCKETS REACHABLE FROM OTHER MACHINES: ingest.bind tcp://*:7601"))
    }
}
