import Foundation
import LiandongCore
import Testing

/// Every kind of invalid message lands in rejected_messages with its raw bytes and its own reason;
/// the daemon keeps going.
@Suite("Rejected messages")
struct RejectionTests {
    struct Case: CustomStringConvertible, Sendable {
        let reason: String
        let topic: String
        let body: [UInt8]
        var extraFrame = false
        var description: String { reason }
    }

    static let now = Date().timeIntervalSince1970
    static let here = LonLat(lon: 95.2, lat: 40.5)
    static let cases: [Case] = {
        func c(_ reason: String, _ topic: String, _ body: String) -> Case { Case(reason: reason, topic: topic, body: Array(body.utf8)) }
        let valid = Wire.alert(id: "x", at: now, position: here)
        return [
            Case(reason: "wrong_frame_count", topic: "alert", body: Array(valid.utf8), extraFrame: true),
            c("oversized", "alert", Wire.alert(id: "big", at: now, extra: ["description": String(repeating: "火", count: 600)])),
            Case(reason: "invalid_utf8", topic: "report", body: [0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
            c("malformed_json", "alert", "{\"schema\": \"liandong.alert.v1\", "),
            c("malformed_json", "report", "[1, 2, 3]"),
            c("unknown_topic", "alerts", valid),
            c("unknown_schema", "alert", valid.replacingOccurrences(of: "liandong.alert.v1", with: "liandong.alert.v9")),
            c("topic_mismatch", "report", valid),
            c("missing_field", "alert", Wire.json(["schema": "liandong.alert.v1", "alert_id": "m"])),
            c("invalid_field", "alert", Wire.alert(id: "p", priority: 7, at: now)),
            c("invalid_field", "alert", valid.replacingOccurrences(of: "\"alarm_method\":5", with: "\"alarm_method\":\"5\"")),
            c("invalid_device_id", "alert", Wire.alert(id: "d", device: "6209220000132", at: now)),
            c("invalid_time", "report", Wire.report(id: "t", at: now, position: here).replacingOccurrences(
                of: Timestamp.formatCST(now), with: "yesterday at noon")),
            c("time_out_of_range", "alert", Wire.alert(id: "f", at: now + 86_400, position: here)),
            c("coordinates_out_of_range", "report", Wire.report(id: "c", at: now, position: LonLat(lon: 195.7, lat: 40.5))),
            c("missing_field", "report", Wire.report(id: "g", at: now, position: nil)),
            c("unknown_device", "alert", Wire.alert(id: "u", device: "62092200001329999999", at: now)),
            c("unknown_grid", "report", Wire.report(id: "ug", at: now, position: nil, grid: "620922999999001")),
            c("outside_area", "alert", Wire.alert(id: "o", at: now, position: LonLat(lon: 116.4, lat: 39.9))),
        ]
    }()

    @Test("each invalid message is kept with its reason and raw bytes", arguments: cases)
    func rejected(_ c: Case) throws {
        let s = try Scene(environment: ["LIANDONG_INGEST_MAX_BODY_BYTES": "1024"])
        var frames = [Array(c.topic.utf8), c.body]
        if c.extraFrame { frames.append(Array("trailing".utf8)) }
        try s.daemon.send(frames: frames)
        try s.waitProcessed(1)
        let row = try s.db.query("SELECT reason, detail, encode(raw, 'hex'), raw_size, convert_from(topic, 'UTF8') FROM liandong.rejected_messages")
        #expect(row.count == 1)
        #expect(row[0, "reason"] == c.reason, "detail: \(row[0, "detail"] ?? "")")
        #expect(!(row[0, "detail"] ?? "").isEmpty)
        let expectedRaw = c.extraFrame ? c.body + Array("trailing".utf8) : c.body
        #expect(row[0, "encode"] == expectedRaw.map { String(format: "%02x", $0) }.joined())
        #expect(row[0, "raw_size"] == String(expectedRaw.count))
        #expect(row[0, "convert_from"] == c.topic)
        #expect(try s.count("SELECT count(*) FROM liandong.events") == 0)
        // Still alive and accepting valid input.
        try s.send("alert", Wire.alert(id: "after", at: s.now, position: s.centre))
        try s.waitProcessed(2)
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source_id = 'after'") == 1)
    }

    @Test("a burst of random and truncated frames is all accounted for and the daemon survives")
    func fuzzBurst() throws {
        let s = try Scene()
        var rng = SystemRandomNumberGenerator()
        let valid = Array(Wire.alert(id: "v", at: s.now, position: s.centre).utf8)
        let n = 300
        var sent: [[[UInt8]]] = []
        for i in 0..<n {
            let body: [UInt8]
            switch i % 3 {
            case 0: body = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1: body = Array(valid.prefix(Int.random(in: 0..<valid.count, using: &rng)))
            default:
                var b = valid
                b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                body = b
            }
            let frames = [Array((i % 2 == 0 ? "alert" : "report").utf8), body]
            sent.append(frames)
            try s.daemon.send(frames: frames)
        }
        // Every message becomes exactly one row (event or dead letter), or - when its id is stored
        // already - a duplicate with no effect, which the daemon counts. Only ids the pure decoder
        // reads can repeat; a repeat of a refused id is judged on its own, wherever the batches cut.
        let decoder = MessageDecoder()
        var ids = Set<String>()
        var repeats = 0
        for frames in sent {
            if case .success(let event) = decoder.decode(frames: frames, now: Date().timeIntervalSince1970),
                !ids.insert(event.source.rawValue + event.sourceID).inserted
            {
                repeats += 1
            }
        }
        var rows = 0, duplicates = 0
        try waitUntil(timeout: 30, "all \(n) messages accounted for") {
            rows = try s.count("SELECT (SELECT count(*) FROM liandong.events) + (SELECT count(*) FROM liandong.rejected_messages)")
            duplicates = Int(try s.daemon.metric("liandong_events_duplicate_total"))
            return rows + duplicates >= n
        }
        #expect(rows + duplicates == n, "\(rows) rows, \(duplicates) duplicates")
        #expect(duplicates <= repeats)
        // Unique per source, id and owner (without CURVE: the gateway_id the message declares).
        #expect(try s.count("SELECT count(*) - count(DISTINCT (source, source_id, coalesce(gateway_id, ''))) FROM liandong.events") == 0)
        try s.send("report", Wire.report(id: "after-fuzz", at: s.now, position: s.centre))
        try waitUntil(timeout: 10, "the daemon to accept a valid report") {
            try s.count("SELECT count(*) FROM liandong.events WHERE source_id = 'after-fuzz'") == 1
        }
    }

    @Test("an event the database refuses is dead-lettered alone; the rest of its batch is stored")
    func poisonEventInBatch() throws {
        // Valid in every way the decoder checks, refused by the database alone (a trigger of the
        // test's: the store's own refusals, such as a NUL escape once was, are now caught earlier).
        let s = try Scene(environment: ["LIANDONG_INGEST_BATCH_MS": "200"])
        try refuseInDatabase(s.db, sourceIDs: ["poison"])
        let poison = Wire.alert(id: "poison", at: s.now, position: s.centre, extra: ["description": "harmless"])
        try s.send("alert", Wire.alert(id: "good-1", at: s.now, position: s.centre))
        try s.send("alert", poison)
        try s.send("report", Wire.report(id: "good-2", at: s.now, position: s.centre))
        try s.waitProcessed(3)
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source_id IN ('good-1', 'good-2')") == 2)
        let row = try s.db.query("SELECT reason, convert_from(raw, 'UTF8') FROM liandong.rejected_messages")
        #expect(row.count == 1 && row[0, "reason"] == "store_error")
        #expect(row[0, "convert_from"] == poison)
        // The refused batch is retried item by item, so the camera alert is announced before the report joins it.
        #expect(try s.feedKinds() == ["verify", "joint_dispatch"])
    }
}
