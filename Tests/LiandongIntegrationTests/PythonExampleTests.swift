import Foundation
import LibPQ
import LiandongCore
import Testing

/// The Python examples in docs/examples (pyzmq) work against a real daemon, as an integrator
/// would run them.
@Suite("Python examples for integrators")
struct PythonExampleTests {
    static let python = "/usr/bin/python3"
    static let examples = TestDatabase.repository.path + "/docs/examples"

    @Test("the example gateway's alerts are acknowledged and stored once; the example dispatcher accepts the task they raise")
    func gatewayAndDispatcher() throws {
        let s = try Scene()
        let gateway = try runCaptured(Self.python, [Self.examples + "/gateway.py", "--ack", s.daemon.ack,
                                                    "--device", "62092200001320000004", "--lon", String(s.centre.lon),
                                                    "--lat", String(s.centre.lat), "--count", "3", "--timeout", "30"], timeout: 40)
        #expect(gateway.status == 0, "stdout: \(gateway.stdout) stderr: \(gateway.stderr)")
        let answers = gateway.stdout.split(separator: "\n")
        #expect(answers.count == 3 && answers.allSatisfy { $0.contains("\"ok\": true") }, "\(gateway.stdout)")
        #expect(try s.db.int("SELECT count(*) FROM liandong.events WHERE gateway_id = 'gw-python'") == 3)
        try waitUntil(timeout: 10, "the verify task") { try s.db.int("SELECT count(*) FROM liandong.tasks") == 1 }

        // Started after the task was published: it finds it through replay (--since 0).
        let dispatcher = try runCaptured(Self.python, [Self.examples + "/dispatcher.py", "--feed", s.daemon.feed,
                                                       "--replay", s.daemon.replay, "--updates", s.daemon.updates,
                                                       "--prefix", "task.620922102", "--since", "0", "--max-tasks", "1",
                                                       "--actor", "py-disp", "--timeout", "30"], timeout: 40)
        #expect(dispatcher.status == 0, "stdout: \(dispatcher.stdout) stderr: \(dispatcher.stderr)")
        #expect(dispatcher.stdout.contains("\"kind\": \"verify\"") && dispatcher.stdout.contains("\"ok\": true"), "\(dispatcher.stdout)")
        #expect(try s.db.query("SELECT state FROM liandong.tasks").scalar == "accepted")
        #expect(try s.db.int("SELECT count(*) FROM liandong.task_updates WHERE actor = 'py-disp' AND action = 'accept'") == 1)
    }

    @Test("the example Open311 client files a request in GCJ-02, follows it to closed and rates it 2, which reopens it")
    func open311Client() throws {
        let s = try Scene()
        let server = try Open311Process(daemonAck: s.daemon.ack, database: s.daemon.database)
        let gcj = CoordinateConverter.wgs84ToGCJ02(s.centre)
        let client = Process()
        client.executableURL = URL(fileURLWithPath: Self.python)
        client.arguments = [Self.examples + "/open311_client.py", "--url", "http://127.0.0.1:\(server.port)/open311/v2",
                            "--api-key", Open311Process.wechatKey, "--service", "dispute", "--lat", String(gcj.lat), "--long", String(gcj.lon),
                            "--crs", "gcj02", "--description", "邻里因宅基地争吵", "--follow", "40", "--rate", "2"]
        let out = Pipe(), err = Pipe()
        client.standardOutput = out
        client.standardError = err
        try client.run()
        // The resident's request becomes a task; a dispatcher resolves it while the client follows.
        try waitUntil(timeout: 20, "the request's task") { try s.db.int("SELECT count(*) FROM liandong.tasks") == 1 }
        let task = try #require(try s.db.query("SELECT id FROM liandong.tasks").scalar)
        #expect(try Dispatcher(s.daemon).send(task, "resolve", note: "已调解 mediated")["ok"] as? Bool == true)
        client.waitUntilExit()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(client.terminationStatus == 0, "stdout: \(stdout) stderr: \(stderr)")
        #expect(stdout.contains("\"filed\": \"620922-") && stdout.contains("\"status\": \"open\"")
                && stdout.contains("\"status_notes\": \"已调解 mediated\"") && stdout.contains("\"reopened\": true"), "\(stdout)")
        try waitUntil(timeout: 10, "the task reopened") {
            try s.db.int("SELECT count(*) FROM liandong.task_history WHERE event = 'reopened'") == 1
        }
    }
}
