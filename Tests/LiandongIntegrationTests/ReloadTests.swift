import Foundation
import LibPQ
import Logging
@testable import LiandongServices
@testable import LiandongStorage
import Testing

/// SIGHUP reloads what can change live (log level and format) and names what needs a restart;
/// log lines are one line per event, also for libpq's multi-line errors.
@Suite("Reload and log output")
struct ReloadTests {
    @Test("SIGHUP applies log.level and log.format, names keys that need a restart, and keeps running on a broken file")
    func sighup() throws {
        let url = try TestDatabase.create()
        let file = try temporaryFile("log:\n  level: info\n")
        let daemon = try DaemonProcess(database: url, unsetting: ["LIANDONG_LOG_LEVEL"], arguments: ["--config", file])
        let db = try PGConnection(conninfo: url)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        let now = Date().timeIntervalSince1970
        #expect(!daemon.log.contains("batch committed"))

        try "log:\n  level: debug\ningest:\n  batch_size: 7\n".write(toFile: file, atomically: true, encoding: .utf8)
        kill(daemon.process.processIdentifier, SIGHUP)
        try daemon.waitUntil(timeout: 10, "the reload") { daemon.log.contains("SIGHUP: configuration reloaded") }
        let reloadLine = daemon.log.split(separator: "\n").first { $0.contains("SIGHUP: configuration reloaded") }!
        #expect(reloadLine.contains("reload.applied=log.level=debug") && reloadLine.contains("reload.restart_needed=ingest.batch_size"),
                "\(reloadLine)")
        try daemon.send("alert", Wire.alert(id: "hup-1", at: now, position: centre))
        try daemon.waitUntil(timeout: 10, "a debug line") { daemon.log.contains("batch committed") }

        try "log:\n  level: [unclosed\n".write(toFile: file, atomically: true, encoding: .utf8)
        kill(daemon.process.processIdentifier, SIGHUP)
        try daemon.waitUntil(timeout: 10, "the refusal") { daemon.log.contains("the configuration does not load; keeping the running one") }

        try "log:\n  level: info\n  format: json\n".write(toFile: file, atomically: true, encoding: .utf8)
        kill(daemon.process.processIdentifier, SIGHUP)
        try daemon.waitUntil(timeout: 10, "a JSON log line") { daemon.log.contains("{\"ts\":") }
        try daemon.send("alert", Wire.alert(id: "hup-2", at: now, position: centre))
        try daemon.waitUntil(timeout: 10, "the second event") { try db.int("SELECT count(*) FROM liandong.events") == 2 }
        #expect(try daemon.stop() == 0)
        let jsonLines = daemon.log.split(separator: "\n").drop { !$0.hasPrefix("{\"ts\":") }
        #expect(jsonLines.count >= 3)
        for line in jsonLines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["msg"] is String && object?["level"] is String, "not a JSON log line: \(line)")
        }
        #expect(jsonLines.contains { $0.contains("\"msg\":\"liandongd stopped\"") })
        // The stop is said when it is asked for, before the drain.
        let asked = jsonLines.firstIndex { $0.contains("SIGTERM (or SIGINT) received: stopping") && $0.contains("\"level\":\"notice\"") }
        let stopped = jsonLines.firstIndex { $0.contains("\"msg\":\"liandongd stopped\"") }
        #expect(asked != nil && stopped != nil && asked! < stopped!)
    }

    @Test("a multi-line error (libpq's) is one log line in both formats")
    func folding() throws {
        let error = "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host?\n"
        let text = LineLogHandler.textLine(level: .error, label: "liandongd", source: "LiandongServices", message: "database unreachable",
                                           metadata: ["db.error": "\(error)"])
        #expect(!text.contains("\n") && text.contains("Connection refused | Is the server running"), "\(text)")
        let json = LineLogHandler.jsonLine(level: .error, label: "liandongd", source: "LiandongServices", message: "a\nb",
                                           metadata: ["db.error": "\(error)", "msg": "not a field"])
        #expect(!json.contains("\n"))
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        #expect(object["db.error"] as? String == error && object["msg"] as? String == "a\nb" && object["level"] as? String == "error")
    }
}
