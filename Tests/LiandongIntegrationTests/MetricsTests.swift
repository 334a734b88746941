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
            return text.contains("liandong_feed_messages_total{kind=\"joint_dispatch\"} 1")
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
        #expect(try httpGet(port: s.daemon.metricsPort, "/readyz") == (200, "ready\n"))
        #expect(try httpGet(port: s.daemon.metricsPort, "/nope").status == 404)
        // The writer's time by phase; an idle writer's waiting counts as it passes (not only when
        // the next batch comes), so rate(wait) reads about 1 when nothing arrives.
        func waited() throws -> Double { try s.daemon.metric("liandong_writer_seconds_total{phase=\"wait\"}") }
        #expect(text.contains("liandong_writer_seconds_total{phase=\"write_events\"} "))
        let before = try waited()
        try waitUntil(timeout: 10, "idle waiting to be counted") { try waited() >= before + 1.0 }
    }
}
