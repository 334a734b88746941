import Foundation
import LibPQ
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
}
