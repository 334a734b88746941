import Foundation
import LiandongCore
@testable import LiandongServices
import Testing

@Suite("Configuration")
struct ConfigTests {
    @Test("no file and no environment gives the documented defaults")
    func defaults() throws {
        let c = try Config.load(path: nil, environment: [:])
        #expect(c.ingestBind == "tcp://*:7601" && c.feedBind == "tcp://*:7611" && c.databaseURL == "")
        #expect(c.batchSize == 500 && c.rules.dispatchSeverity == 2)
        #expect(c.rules == Rules())
    }

    @Test("the example config in deploy/ loads and sets what it shows")
    func example() throws {
        let c = try Config.load(path: TestDatabase.repository.path + "/deploy/liandong.example.yaml", environment: [:])
        #expect(c.rules.category(alarmMethod: 5, alarmType: 100) == "fire")
        #expect(c.rules.category(report: "烟雾") == "fire")
        #expect(c.rules.rule(for: "crowd").radiusMeters == 500)
    }

    @Test("LIANDONG_<SECTION>_<KEY> overrides the file, lists are comma-separated")
    func environment() throws {
        let file = try temporaryFile("database:\n  url: host=file\ningest:\n  batch_size: 10\n")
        let c = try Config.load(path: file, environment: [
            "LIANDONG_DATABASE_URL": "postgresql://ops@db1/liandong",
            "LIANDONG_INGEST_BATCH_SIZE": "2000",
            "LIANDONG_INGEST_CONNECT": "tcp://gw-1:7600, tcp://gw-2:7600",
            "LIANDONG_SLA_TOWNSHIP_RESPOND_MINUTES": "1,2,3,4",
            "LIANDONG_CORRELATION_DISPATCH_SEVERITY": "1",
            "HOME": "/root",
        ])
        #expect(c.databaseURL == "postgresql://ops@db1/liandong")
        #expect(c.batchSize == 2000)
        #expect(c.ingestConnect == ["tcp://gw-1:7600", "tcp://gw-2:7600"])
        #expect(c.rules.sla(for: .township).respondMinutes == [1, 2, 3, 4])
        #expect(c.rules.dispatchSeverity == 1)
    }

    @Test("mistakes name the key", arguments: [
        ("feed:\n  bindd: x\n", [:], "unknown config key feed.bindd"),
        ("ingest:\n  batch_size: 0\n", [:], "ingest.batch_size = 0 is outside"),
        ("sla:\n  village: {respond_minutes: [1, 2]}\n", [:], "sla.village.respond_minutes must be 4"),
        ("correlation:\n  alarm_categories: {\"five/six\": x}\n", [:], "correlation.alarm_categories.five/six"),
        ("ingest:\n  bind: \"\"\n  ack_bind: \"\"\n", [:], "would receive nothing"),
        ("", ["LIANDONG_INGEST_BACH_SIZE": "3"], "LIANDONG_INGEST_BACH_SIZE names no config key"),
        ("log:\n  level: loud\n", [:], "log.level"),
    ] as [(String, [String: String], String)])
    func mistakes(yaml: String, env: [String: String], message: String) throws {
        let file = try temporaryFile(yaml)
        #expect { try Config.load(path: file, environment: env) } throws: { "\($0)".contains(message) }
    }
}
