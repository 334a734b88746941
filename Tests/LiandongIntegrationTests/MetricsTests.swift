import Foundation
import LiandongCore
import LiandongServices
import LiandongStorage
import ZeroMQ
import Testing

@Suite("Metrics and health")
struct MetricsTests {
    @Test("/metrics counts received, accepted, rejected by reason and tasks by kind; /healthz and /readyz answer")
    func scrape() throws {
        let s = try Scene()
        try s.send("alert", Wire.alert(id: "m-1", at: s.now, position: s.centre))
        try s.send("alert", Wire.alert(id: "m-1", at: s.now, position: s.centre))
        try s.send("report", Wire.report(id: "m-2", at: s.now, position: s.centre))
        try s.daemon.send(frames: [Array("alert".utf8), Array("{oops".utf8)])
        try s.daemon.send(frames: [Array("report".utf8), Array(Wire.report(id: "m-3", at: s.now, position: nil).utf8)])
        try s.waitProcessed(4)
        var text = ""
        try waitUntil(timeout: 10, "the counters") {
            text = try httpGet(port: s.daemon.metricsPort, "/metrics").body
            // The writer adds its phases after the batch's counters (once the next batch is prepared).
            return text.contains("liandong_feed_messages_total{kind=\"joint_dispatch\"} 1")
                && text.contains("liandong_writer_seconds_total{phase=\"write_events\"} ")
        }
        for line in [
            "liandong_events_received_total{path=\"sub\"} 5",
            "liandong_events_accepted_total{source=\"alert\"} 1",
            "liandong_events_accepted_total{source=\"report\"} 1",
            "liandong_events_duplicate_total 1",
            "liandong_events_rejected_total{reason=\"malformed_json\"} 1",
            "liandong_events_rejected_total{reason=\"missing_field\"} 1",
            "liandong_database_up 1",
            "liandong_writer_standby 0",
            "liandong_build_info{schema=\"\(try Migrator(directory: TestDatabase.migrations).latestVersion)\",version=\"\(LiandongVersion.current)\",zmq=\"\(ZMQContext.version)\"} 1",
            "# TYPE liandong_batch_commit_seconds histogram",
        ] {
            #expect(text.contains(line + "\n"), "missing: \(line)")
        }
        #expect(try httpGet(port: s.daemon.metricsPort, "/healthz") == (200, "ok\n"))
        // database.synchronous warn (the default) on a database without a standby: ready, and says so.
        // (The database watchdog checks within a second of the start.)
        try s.daemon.waitUntil(timeout: 10, "/readyz says degraded") {
            try httpGet(port: s.daemon.metricsPort, "/readyz") == (200, "degraded: acknowledgements are not replicated: "
                + "synchronous_standby_names is empty, commits do not wait for a standby\n")
        }
        #expect(try s.daemon.metric("liandong_db_acks_replicated") == 0)
        #expect(try httpGet(port: s.daemon.metricsPort, "/nope").status == 404)
        // The writer's time by phase; an idle writer's waiting counts as it passes (not only when
        // the next batch comes), so rate(wait) reads about 1 when nothing arrives.
        func waited() throws -> Double { try s.daemon.metric("liandong_writer_seconds_total{phase=\"wait\"}") }
        #expect(text.contains("liandong_writer_seconds_total{phase=\"write_events\"} "))
        let before = try waited()
        try waitUntil(timeout: 10, "idle waiting to be counted") { try waited() >= before + 1.0 }
    }
}

/// The registry itself, without a daemon: handles made once, the exposition people and Prometheus read.
@Suite("Metrics registry")
struct MetricsRegistryTests {
    @Test("families sorted with HELP and TYPE, series by label, whole values as integers, unknown labels on first use")
    func exposition() {
        let m = Metrics()
        let received = m.counters("liandong_events_received_total", by: "path", known: ["sub", "ack"])
        received.increment("sub", by: 3)
        received.increment("gb28181")  // not known up front: created now
        m.feedMessages.increment("verify")
        m.gauge("liandong_ingest_queue_depth") { 42 }
        m.databaseUp.set(true)
        let phases = m.secondsCounters("liandong_writer_seconds_total", by: "phase")
        phases.add(["wait": 0.25, "commit": 0])
        let batches = m.histogram("liandong_batch_size")
        batches.record(7)
        let text = m.render()
        let lines = text.split(separator: "\n").map(String.init)
        for expected in [
            "# HELP liandong_events_received_total Messages received on the ingest sockets, by path (sub, ack; standby: kept by a standby).",
            "# TYPE liandong_events_received_total counter",
            "liandong_events_received_total{path=\"ack\"} 0",
            "liandong_events_received_total{path=\"gb28181\"} 1",
            "liandong_events_received_total{path=\"sub\"} 3",
            "liandong_feed_messages_total{kind=\"verify\"} 1",
            "liandong_feed_messages_total{kind=\"update\"} 0",
            "liandong_ingest_queue_depth 42",
            "liandong_database_up 1",
            "liandong_writer_standby 0",
            "liandong_writer_seconds_total{phase=\"wait\"} 0.25",
            "liandong_batch_size_bucket{le=\"10.0\"} 1",
            "liandong_batch_size_count 1",
        ] {
            #expect(lines.contains(expected), "missing: \(expected)")
        }
        #expect(!text.contains("phase=\"commit\""), "a zero amount creates no series")
        #expect(m.databaseUp.isOn && !m.writerStandby.isOn)
        // Families in name order; a family's series in label order.
        let families = lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(families == families.sorted())
        let paths = lines.filter { $0.hasPrefix("liandong_events_received_total{") }
        #expect(paths == paths.sorted())
    }
}

/// Prometheus' own linter on both /metrics endpoints (tools/test fetches promtool).
@Suite("Metrics exposition (promtool)")
struct PromtoolTests {
    @Test("promtool check metrics passes on liandongd's, liandong-gb28181's, liandong-open311's and liandong-console's /metrics: every family has HELP and TYPE, names and units as Prometheus expects")
    func promtool() throws {
        let tool = try #require(ProcessInfo.processInfo.environment["LIANDONG_TEST_PROMTOOL"],
                                "LIANDONG_TEST_PROMTOOL is not set: run the suite with tools/test, which fetches promtool")
        let s = try Scene()
        // Something in every family that appears on use: an alert, a dead letter, a bridge beside it.
        try s.send("alert", Wire.alert(id: "promtool-1", at: s.now, position: s.centre))
        try s.send("alert", "{")
        try s.waitProcessed(2)
        let bridge = try BridgeProcess(daemonAck: s.daemon.ack)
        let open311 = try Open311Process(daemonAck: s.daemon.ack, database: s.daemon.database)
        _ = try open311.post("requests.json", ["api_key": Open311Process.wechatKey, "service_code": "theft", "lat": String(s.centre.lat),
                                               "long": String(s.centre.lon)])
        let console = try ConsoleProcess(daemon: s.daemon, users: [("duty", "dispatcher", "620922")])
        _ = try console.login("duty")
        _ = try http(port: console.port, "POST", "/login", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                     body: Array("user=duty&password=wrong".utf8))
        for (name, port) in [("liandongd", s.daemon.metricsPort), ("liandong-gb28181", bridge.metricsPort), ("liandong-open311", open311.port),
                             ("liandong-console", console.port)] {
            let text = try httpGet(port: port, "/metrics").body
            let file = "\(Scratch.directory)/ld-promtool-\(UUID().uuidString.prefix(8)).txt"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let r = try runCaptured("/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", tool, file])
            #expect(r.status == 0 && r.stdout.isEmpty && r.stderr.isEmpty, "\(name): promtool says:\n\(r.stdout)\(r.stderr)")
        }
    }
}
