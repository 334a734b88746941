import Foundation
import LibPQ
import LiandongClient
import ZeroMQ
import LiandongCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a new operator met in a full trial, each pinned so it stays fixed: secrets in logs, key
/// files the service's user cannot read.
@Suite("What a new operator met")
struct OperatorTrialTests {
    @Test("a password planted in every place a secret can live is printed by no error path (check-config, SIGHUP, run, the SIP bridge)")
    func secretsStayOutOfLogs() throws {
        let planted = "Pw-in-every-place-" + UUID().uuidString.prefix(6)
        let url = try TestDatabase.create()
        // The file: a URI password, a conninfo password, the SIP password; and a duplicated key,
        // which made Yams print the whole mapping (every value of it) in its error.
        let duplicated = """
            database:
              url: postgresql://ops:\(planted)@127.0.0.1:1/liandong
            gb28181:
              password: \(planted)
            database:
              url: host=127.0.0.1 port=1 password=\(planted)
            """
        let unterminated = "gb28181:\n  password: \"\(planted)\n  realm: x\n"
        let badValue = "gb28181:\n  password: \(planted)\ningest:\n  batch_size: many\n"
        var outputs: [(String, String)] = []
        for (name, text) in [("duplicated", duplicated), ("unterminated", unterminated), ("bad value", badValue)] {
            let file = try temporaryFile(text)
            let check = try liandongd(["check-config", "--config", file],
                                      environment: ["LIANDONG_DATABASE_URL": "postgresql://ops:\(planted)@127.0.0.1:1/x"])
            #expect(check.status != 0, "check-config accepted the \(name) file")
            outputs.append(("check-config (\(name))", check.stdout + check.stderr))
            let bridge = try runCaptured(DaemonProcess.binaries + "/liandong-gb28181", ["--config", file])
            #expect(bridge.status != 0)
            outputs.append(("liandong-gb28181 (\(name))", bridge.stdout + bridge.stderr))
        }
        #expect(outputs[0].1.contains("the key \"database\" appears twice"), "\(outputs[0].1)")
        // A config that loads shows every key but no secret.
        let good = try temporaryFile("database:\n  url: host=127.0.0.1 port=1 password=\(planted)\ngb28181:\n  password: \(planted)\n")
        let shown = try liandongd(["check-config", "--config", good])
        #expect(shown.status == 0 && shown.stdout.contains("password=(set)") && shown.stdout.contains("gb28181.password: (set)"), "\(shown.stdout)")
        outputs.append(("check-config (good)", shown.stdout + shown.stderr))
        // A database that does not answer, named with a password in each form.
        for database in ["postgresql://ops:\(planted)@127.0.0.1:1/liandong", "host=127.0.0.1 port=1 user=ops password=\(planted)"] {
            for command in [["migrate"], ["run"]] {
                let result = try liandongd(command, database: database, environment: ["PGCONNECT_TIMEOUT": "2"])
                #expect(result.status != 0)
                outputs.append(("liandongd \(command[0])", result.stdout + result.stderr))
            }
        }
        // A running daemon whose database.url carries the password, reloading broken files.
        let file = try temporaryFile("log:\n  level: debug\n")
        let daemon = try DaemonProcess(database: url + " password=\(planted)", unsetting: ["LIANDONG_LOG_LEVEL"], arguments: ["--config", file])
        for (n, text) in [duplicated, unterminated, badValue].enumerated() {
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            kill(daemon.process.processIdentifier, SIGHUP)
            try daemon.waitUntil(timeout: 10, "refusal \(n + 1)") {
                daemon.log.components(separatedBy: "the configuration does not load").count == n + 2
            }
        }
        #expect(try daemon.stop() == 0)
        outputs.append(("liandongd run (SIGHUP)", daemon.log))
        for (process, output) in outputs {
            #expect(!output.contains(planted), "\(process) printed the password: \(output.split(separator: "\n").first { $0.contains(planted) } ?? "")")
        }
    }

    @Test("a key root made for the service: the daemon and check-config name security.secret_key_file and the fix; --owner makes it right")
    func keysTheServiceCanRead() throws {
        guard getuid() == 0 else { return }  // needs root to make files another account cannot read (CI and tools/test run as root)
        let directory = "\(Scratch.directory)/ld-keys-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The service account runs a copy of liandongd and the migrations from a directory it may
        // enter: the clone this suite runs in may be private to root (a mktemp -d, a home).
        let installed = "\(Scratch.directory)/ld-bin-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: installed) }
        try FileManager.default.createDirectory(atPath: installed, withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: DaemonProcess.binaries + "/liandongd", toPath: installed + "/liandongd")
        try FileManager.default.copyItem(atPath: TestDatabase.migrations, toPath: installed + "/migrations")
        for path in [installed, installed + "/liandongd", installed + "/migrations"] { chmod(path, 0o755) }
        let serviceBinary = installed + "/liandongd"
        let made = try liandongd(["keys", "generate", "liandongd", "--dir", directory])
        #expect(made.status == 0, "\(made.stderr)")
        try "peers: []\n".write(toFile: directory + "/peers.yaml", atomically: true, encoding: .utf8)
        let config = try temporaryFile("security:\n  curve: true\n  secret_key_file: \(directory)/liandongd.key\n  peers_file: \(directory)/peers.yaml\n")
        chmod(config, 0o644)
        // Checked for the unit's user by root, and by that user itself.
        let asRoot = try liandongd(["check-config", "--config", config, "--user", "nobody"])
        #expect(asRoot.status != 0 && asRoot.stderr.contains("security.secret_key_file") && asRoot.stderr.contains("chown nobody:"), "\(asRoot.stderr)")
        chmod(directory, 0o755)
        let asService = try runCaptured("/usr/sbin/runuser", ["-u", "nobody", "--", serviceBinary, "check-config", "--config", config])
        #expect(asService.status != 0 && asService.stderr.contains("security.secret_key_file: \(directory)/liandongd.key cannot be read by nobody")
                && asService.stderr.contains("chown nobody:") && asService.stderr.contains("--owner nobody")
                && !asService.stderr.contains("NSCocoaErrorDomain"), "\(asService.stderr)")
        // The daemon itself, as the unit runs it.
        let url = try TestDatabase.create()
        let run = try runCaptured("/usr/sbin/runuser", ["-u", "nobody", "--", "env", "LIANDONG_DATABASE_URL=\(url)",
                                                        "LIANDONG_INGEST_SPILL_PATH=", "LIANDONG_METRICS_BIND=",
                                                        serviceBinary, "run", "--config", config, "--migrations", installed + "/migrations"])
        #expect(run.status != 0 && run.stderr.contains("security.secret_key_file") && run.stderr.contains("chown nobody:")
                && !run.stderr.contains("NSCocoaErrorDomain"), "\(run.stderr)")
        // Made with --owner, it is the service's own.
        try FileManager.default.removeItem(atPath: directory)
        let owned = try liandongd(["keys", "generate", "liandongd", "--dir", directory, "--owner", "nobody"])
        #expect(owned.status == 0, "\(owned.stderr)")
        try "peers: []\n".write(toFile: directory + "/peers.yaml", atomically: true, encoding: .utf8)
        chmod(directory + "/peers.yaml", 0o644)
        let fine = try liandongd(["check-config", "--config", config, "--user", "nobody"])
        #expect(fine.status == 0 && fine.stdout.contains("readable by root and nobody"), "\(fine.stdout)\(fine.stderr)")
        let fineAsService = try runCaptured("/usr/sbin/runuser", ["-u", "nobody", "--", serviceBinary, "check-config", "--config", config])
        #expect(fineAsService.status == 0, "\(fineAsService.stderr)")
    }
}

/// A real program run in the background with its output in files, for tests that act on it while it runs.
final class BackgroundProcess {
    let process = Process()
    let outURL: URL, errURL: URL

    init(_ executable: String, _ arguments: [String]) throws {
        let id = UUID().uuidString.prefix(8)
        outURL = URL(fileURLWithPath: "\(Scratch.directory)/ld-bg-\(id).out")
        errURL = URL(fileURLWithPath: "\(Scratch.directory)/ld-bg-\(id).err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
    }

    var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        expectNoPlantedSecret(stdout + stderr, from: process.executableURL?.lastPathComponent ?? "a background process")
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
}

extension CurveTests {
    @Test("liandong-tail --replay rides out its key removed and re-added (it catches up on what it missed) and a replay nobody answers")
    func tailSurvivesKeyChanges() throws {
        let s = try CurveScene()
        let pid = s.daemon.process.processIdentifier
        let tail = try BackgroundProcess(DaemonProcess.binaries + "/liandong-tail", [
            "--connect", s.daemon.feed, "--replay", s.daemon.replay, "--prefix", "task." + Self.townshipA, "--json",
            "--curve-server-key", s.dir + "/daemon.pub", "--curve-key", s.dir + "/disp-a.key"])
        let first = try s.verifyTask("tail-1", at: s.centreA)
        do {
            try waitUntil(timeout: 45, "the tail to print the first task") { tail.stdout.contains(first) }
        } catch {
            throw TestFailure("\(error); the tail printed: \(tail.stdout.suffix(1500)) | stderr: \(tail.stderr.suffix(1500))")
        }
        // disp-a is taken out of the peers file, a task goes out meanwhile, then it is let back in.
        try s.writePeers([("gw-a", "gateway", Self.townshipA), ("obs", "observer", "")])
        kill(pid, SIGHUP)
        try s.daemon.waitUntil(timeout: 10, "the reload") { s.daemon.log.contains("peers.removed=disp-a,disp-b") }
        let missed = try s.verifyTask("tail-2", at: s.centreA)
        try waitUntil(timeout: 10, "the key refused") { try s.daemon.metric("liandong_auth_failures_total{reason=\"unknown_key\"}") > 0 }
        try s.writePeers([("gw-a", "gateway", Self.townshipA), ("disp-a", "dispatcher", Self.townshipA), ("obs", "observer", "")])
        kill(pid, SIGHUP)
        try s.daemon.waitUntil(timeout: 10, "the second reload") { s.daemon.log.contains("peers.added=disp-a") }
        try waitUntil(timeout: 45, "the tail to catch up on the task it missed") { tail.stdout.contains(missed) || !tail.process.isRunning }
        #expect(tail.process.isRunning && tail.stdout.contains(missed), "the tail: \(tail.stderr)")
        #expect(!tail.stderr.contains("zmq_send"), "\(tail.stderr)")

        // A replay endpoint nobody binds: --duration is kept, the exit is clean.
        let started = Date()
        let lonely = try runCaptured(DaemonProcess.binaries + "/liandong-tail", [
            "--connect", "ipc://\(Scratch.directory)/ld-nobody-\(UUID().uuidString.prefix(8))", "--replay", "ipc://\(Scratch.directory)/ld-nobody-replay", "--duration", "3"],
            timeout: 20)
        #expect(lonely.status == 0 && Date().timeIntervalSince(started) < 8, "\(lonely.stderr)")
        #expect(lonely.stderr.contains("no replay endpoint connected"), "\(lonely.stderr)")
    }
}

extension CurveTests {
    @Test("clients that fail the CURVE handshake before ZAP (no keys, the wrong server key) are counted by reason and logged once per address")
    func handshakeFailuresLeaveATrace() throws {
        let dir = Scratch.directory + "/ld-hs-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try CurveKeyFiles.generate(name: "daemon", directory: dir)
        _ = try CurveKeyFiles.generate(name: "impostor", directory: dir)
        _ = try CurveKeyFiles.generate(name: "gw", directory: dir)
        try CurveScene.writePeers(dir: dir, [("gw", "gateway", "")])
        let port = try freePort()
        let daemon = try DaemonProcess(database: try TestDatabase.create(), environment: [
            "LIANDONG_SECURITY_CURVE": "true", "LIANDONG_SECURITY_SECRET_KEY_FILE": dir + "/daemon.key",
            "LIANDONG_SECURITY_PEERS_FILE": dir + "/peers.yaml", "LIANDONG_INGEST_ACK_BIND": "tcp://127.0.0.1:\(port)",
        ], gatewayCurve: try CurveScene.keys(dir: dir, "gw"))
        // Plain clients, each refused in the greeting: every one counted, one log line for the address.
        var plain: [ZMQSocket] = []
        for n in 1...3 {
            let socket = try ZMQSocket(context: daemon.context, type: .dealer)
            try socket.setLinger(milliseconds: 0)
            try socket.connect("tcp://127.0.0.1:\(port)")
            try socket.send([Array("hello".utf8)], dontWait: true)
            plain.append(socket)
            // The mismatch is seen by whichever side reads the other's greeting first: here as a
            // refused mechanism, or as a client hanging up during the handshake.
            try daemon.waitUntil(timeout: 15, "refused handshake \(n) without keys") {
                try daemon.metric("liandong_auth_failures_total{reason=\"mechanism\"}")
                    + daemon.metric("liandong_auth_failures_total{reason=\"handshake\"}") >= Double(n)
            }
        }
        let plainFailures = try daemon.metric("liandong_auth_failures_total{reason=\"handshake\"}")
        // A CURVE client that has another server's key: the exchange does not decrypt.
        let wrong = try ZMQSocket(context: daemon.context, type: .dealer)
        try wrong.setLinger(milliseconds: 0)
        try CurveClientKeys.load(serverKey: dir + "/impostor.pub", secretKeyFile: dir + "/gw.key").apply(to: wrong)
        try wrong.connect("tcp://127.0.0.1:\(port)")
        try wrong.send([Array("hello".utf8)], dontWait: true)
        try daemon.waitUntil(timeout: 15, "a failed CURVE exchange") {
            try daemon.metric("liandong_auth_failures_total{reason=\"handshake\"}") >= plainFailures + 1
        }
        let lines = daemon.log.split(separator: "\n").filter { $0.contains("handshake refused") }
        let mechanism = lines.filter { $0.contains("auth.reason=mechanism") }
        // The address is read from the accepted connection, which libzmq may have closed already
        // (then the line says "unknown address"): at most one line for 127.0.0.1 and one without.
        #expect((0...2).contains(mechanism.count) && lines.count <= 4, "once per address and reason per minute: \(lines)")
        #expect(mechanism.allSatisfy { $0.contains("auth.peer=127.0.0.1:") || $0.contains("auth.peer=unknown address") }, "\(mechanism)")
        #expect(lines.contains { $0.contains("auth.reason=handshake") }, "\(lines)")
        #expect(try daemon.metric("liandong_auth_failures_total{reason=\"unknown_key\"}") == 0)
        #expect(try daemon.stop() == 0)
    }
}

extension OperatorTrialTests {
    @Test("event why and task show explain placement, task, silence and dead letter; task close and reassign act through the daemon with their actor")
    func explainAndAct() throws {
        let s = try Scene()
        let url = s.daemon.database
        let cli = { (arguments: [String]) in try liandongd(arguments, database: url, environment: ["LIANDONG_UPDATES_BIND": s.daemon.updates]) }
        // An alert that makes a task.
        try s.send("alert", Wire.alert(id: "why-task", priority: 3, at: s.now, position: s.centre))
        var taskID = ""
        try s.daemon.waitUntil(timeout: 10, "the verify task") {
            taskID = try s.db.query("SELECT id FROM liandong.tasks").scalar ?? ""
            return try !taskID.isEmpty && s.db.int("SELECT count(*) FROM liandong.feed") == 1
        }
        let why = try cli(["event", "why", "why-task"])
        #expect(why.status == 0, "\(why.stderr)")
        #expect(why.stdout.contains("placed at its position (wgs84") && why.stdout.contains("grid \(Scene.ruralGrid)")
                && why.stdout.contains("task \(taskID): verify, open") && why.stdout.contains("announced in seq 1"), "\(why.stdout)")
        // A silenced camera's alert: why names the silence, its author and reason.
        let quiet = try #require(try s.db.query("SELECT max(device_id) FROM liandong.cameras WHERE grid_code LIKE '620922101%'").scalar)
        let silence = try cli(["silence", "add", "--device", quiet, "--duration", "2h", "--comment", "lens cleaning", "--by", "ops-7"])
        #expect(silence.status == 0, "\(silence.stderr)")
        // The writer looks at the silences at most once a second: probe until one is silenced.
        try s.daemon.probe("the silence in effect", send: {
            try s.send("alert", Wire.alert(id: "why-quiet-\($0)", device: quiet, priority: 3, at: Date().timeIntervalSince1970))
        }, until: { try s.daemon.metric("liandong_events_silenced_total") >= 1 })
        let quietID = try #require(try s.db.query("SELECT source_id FROM liandong.events WHERE muted_by LIKE 'silence:%' LIMIT 1").scalar)
        try s.send("alert", Wire.alert(id: "why-bad", device: quiet, priority: 9, at: s.now))
        try s.daemon.waitUntil(timeout: 10, "the dead letter") { try s.db.int("SELECT count(*) FROM liandong.rejected_messages") == 1 }
        let silenced = try cli(["event", "why", quietID])
        #expect(silenced.stdout.contains("made no task message: silenced by silence") && silenced.stdout.contains("device \(quiet)*")
                && silenced.stdout.contains("added by ops-7: \"lens cleaning\""), "\(silenced.stdout)\(silenced.stderr)")
        let dead = try cli(["event", "why", "why-bad"])
        #expect(dead.status == 0 && dead.stdout.contains("was not stored") && dead.stdout.contains("invalid_field"), "\(dead.stdout)\(dead.stderr)")
        let nothing = try cli(["event", "why", "never-sent"])
        #expect(nothing.status != 0 && nothing.stderr.contains("no event and no dead letter"), "\(nothing.stderr)")

        // Close it as an operator: the planner's path, the actor recorded, a message to the dispatcher.
        let closed = try cli(["task", "close", taskID, "--reason", "checked on site: nothing there", "--by", "duty-officer-2", "--false-alarm"])
        #expect(closed.status == 0 && closed.stdout.contains("closed as a false alarm"), "\(closed.stdout)\(closed.stderr)")
        #expect(try s.db.query("SELECT state FROM liandong.tasks WHERE id = $1", [taskID]).scalar == "false_alarm")
        let step = try s.db.query("SELECT actor, note, peer FROM liandong.task_history WHERE task_id = $1 AND event = 'false_alarm'", [taskID])
        #expect(step[0, "actor"] == "duty-officer-2" && step[0, "note"] == "checked on site: nothing there")
        #expect(try s.db.int("SELECT count(*) FROM liandong.feed WHERE task_id = $1 AND body->>'actor' = 'duty-officer-2'", [taskID]) == 1)
        let again = try cli(["task", "close", taskID, "--reason", "x", "--by", "duty-officer-2"])
        #expect(again.status != 0 && again.stderr.contains("already false_alarm"), "\(again.stderr)")

        // Reassign another task to the township, then to a division that does not exist.
        let elsewhere = try Scene.centre(of: try #require(try s.db.query("""
            SELECT max(grid_code) FROM liandong.grids WHERE grid_code LIKE '620922102%' AND grid_code <> $1
            """, [Scene.ruralGrid]).scalar), s.db)
        try s.send("alert", Wire.alert(id: "why-second", priority: 3, at: s.now, position: elsewhere))
        var second = ""
        try s.daemon.waitUntil(timeout: 10, "the second task") {
            second = try s.db.query("""
                SELECT t.id FROM liandong.tasks t JOIN liandong.events e ON e.incident_id = t.incident_id WHERE e.source_id = 'why-second'
                """).scalar ?? ""
            return !second.isEmpty
        }
        let township = String(Scene.ruralGrid.prefix(9))
        let moved = try cli(["task", "reassign", second, "--to", township, "--reason", "the village has no one on duty", "--by", "duty-officer-2"])
        #expect(moved.status == 0 && moved.stdout.contains("reassigned to \(township)"), "\(moved.stdout)\(moved.stderr)")
        let task = try s.db.query("SELECT tier, division_code, state FROM liandong.tasks WHERE id = $1", [second])
        #expect(task[0, "tier"] == "township" && task[0, "division_code"] == township && task[0, "state"] == "open")
        let message = try s.db.query("""
            SELECT kind, topic, body->>'previous_division_code' AS prev, body->>'actor' AS actor FROM liandong.feed
            WHERE task_id = $1 ORDER BY seq DESC LIMIT 1
            """, [second])
        #expect(message[0, "kind"] == "escalation" && message[0, "topic"] == "task.\(township)" && message[0, "actor"] == "duty-officer-2"
                && message[0, "prev"]?.hasPrefix(township) == true, "\(message.rows)")
        #expect(try s.db.int("SELECT count(*) FROM liandong.task_assignments WHERE task_id = $1 AND division_code = $2", [second, township]) == 1)
        let nowhere = try cli(["task", "reassign", second, "--to", "620922999", "--reason", "x", "--by", "duty-officer-2"])
        #expect(nowhere.status != 0 && nowhere.stderr.contains("unknown division 620922999"), "\(nowhere.stderr)")
        let shown = try cli(["task", "show", second])
        #expect(shown.status == 0 && shown.stdout.contains("reassigned") && shown.stdout.contains("by duty-officer-2: the village has no one on duty")
                && shown.stdout.contains("created") && shown.stdout.contains("messages (2)") && shown.stdout.contains("alert why-second"),
                "\(shown.stdout)\(shown.stderr)")
    }
}

extension OperatorTrialTests {
    @Test("task messages carry the village and township names, the report's words, the camera's name and the media; old fields unchanged")
    func messagesDispatchersCanActOn() throws {
        let s = try Scene()
        let device = "62092200001320000004"
        let camera = try #require(try s.db.query("SELECT name FROM liandong.cameras WHERE device_id = $1", [device]).scalar)
        let names = try s.db.query("""
            SELECT v.name, t.name FROM liandong.grids g JOIN liandong.divisions v ON v.code = g.village_code
            JOIN liandong.divisions t ON t.code = left(g.village_code, 9) WHERE g.grid_code = $1
            """, [Scene.ruralGrid]).rows[0]
        try s.send("alert", Wire.alert(id: "ctx-a1", device: device, priority: 2, at: s.now, position: s.centre,
                                       extra: ["snapshot_url": "http://gw-7.local/snap/1.jpg", "clip_url": "ftp://not-a-media-url",
                                               "description": "画面检测到人员闯入"]))
        try s.send("report", Wire.report(id: "ctx-r1", severity: 2, at: s.now + 5, position: s.centre,
                                         extra: ["description": "东门有两人翻越围栏", "attachments": ["https://app.local/p/9.jpg"]]))
        try s.daemon.waitUntil(timeout: 10, "the joint dispatch") {
            try s.db.int("SELECT count(*) FROM liandong.feed WHERE kind = 'joint_dispatch'") == 1
        }
        let body = try #require(try s.db.query("SELECT body::text FROM liandong.feed WHERE kind = 'joint_dispatch'").scalar)
        let m = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(m["village_name"] as? String == names[0] && m["township_name"] as? String == names[1], "\(body)")
        #expect(m["description"] as? String == "东门有两人翻越围栏" && m["camera_name"] as? String == camera, "\(body)")
        #expect(m["media"] as? [String] == ["http://gw-7.local/snap/1.jpg", "https://app.local/p/9.jpg"], "\(body)")
        try WireSchemaTests().expectValid("task.v1.schema.json", Array(body.utf8))
        // The first message (the verify task of the alert alone, when it came first) and later updates carry them too.
        try s.send("alert", Wire.alert(id: "ctx-a2", device: device, priority: 1, at: s.now + 10, position: s.centre))
        try s.daemon.waitUntil(timeout: 10, "the update (priority rose)") {
            try s.db.int("SELECT count(*) FROM liandong.feed WHERE kind = 'update'") >= 1
        }
        let update = try #require(try s.db.query("SELECT body::text FROM liandong.feed WHERE kind = 'update' ORDER BY seq DESC LIMIT 1").scalar)
        let u = try #require(try JSONSerialization.jsonObject(with: Data(update.utf8)) as? [String: Any])
        #expect(u["village_name"] as? String == names[0] && u["description"] as? String == "东门有两人翻越围栏"
                && u["camera_name"] as? String == camera && (u["media"] as? [String])?.contains("https://app.local/p/9.jpg") == true, "\(update)")
    }
}
