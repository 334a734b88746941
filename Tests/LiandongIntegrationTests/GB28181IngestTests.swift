import Foundation
import LibPQ
import LiandongClient
import LiandongCore
import Testing

/// MANSCDP alarms on topic gb28181, SUB and acknowledged paths alike, as the bridge (or a
/// platform) forwards them: stored as alerts, tasks as for JSON ones, refusals dead-lettered.
@Suite("GB/T 28181 alarms on the ingest sockets")
struct GB28181IngestTests {
    static let camera = "62092200001320000004"

    /// A GB2312 alarm body (description 区域入侵) at `position`, observed at `at`.
    static func alarm(sn: Int, at: Double, position: LonLat, method: String = "5", type: Int = 6) -> (body: [UInt8], id: String) {
        let time = String(Timestamp.formatCST(at).prefix(19))
        let body = Array("<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>\(sn)</SN>\r\n".utf8)
            + Array("<DeviceID>\(camera)</DeviceID>\r\n<AlarmPriority>2</AlarmPriority>\r\n<AlarmMethod>\(method)</AlarmMethod>\r\n".utf8)
            + Array("<AlarmTime>\(time)</AlarmTime>\r\n<AlarmDescription>".utf8) + [0xC7, 0xF8, 0xD3, 0xF2, 0xC8, 0xEB, 0xC7, 0xD6]
            + Array("</AlarmDescription>\r\n<Longitude>\(position.lon)</Longitude>\r\n<Latitude>\(position.lat)</Latitude>\r\n".utf8)
            + Array("<Info><AlarmType>\(type)</AlarmType></Info>\r\n</Notify>\r\n".utf8)
        return (body, "gb28181:\(camera):\(sn):\(time)")
    }

    @Test("an alarm on the SUB path: an alert (category, payload, description converted), a verify task; a repeat has no effect; hostile XML is a dead letter")
    func subscribed() throws {
        let s = try Scene()
        let (body, id) = Self.alarm(sn: 17430, at: s.now - 5, position: s.centre)
        try s.daemon.send(frames: [Array("gb28181".utf8), body])
        try s.daemon.waitUntil(timeout: 10, "the alarm's verify task") {
            try s.count("SELECT count(*) FROM liandong.feed WHERE kind = 'verify' AND body->'evidence'->>'alerts' LIKE '%\(id)%'") == 1
        }
        let stored = try s.db.query("""
            SELECT category, priority, device_id, payload->>'alarm_method' AS method, payload->>'alarm_type' AS type,
                   payload->>'alarm_description' AS description, payload->>'schema' AS schema
            FROM liandong.events WHERE source_id = $1
            """, [id])
        #expect(stored.count == 1 && stored[0, "category"] == "intrusion" && stored[0, "priority"] == "2" && stored[0, "device_id"] == Self.camera)
        #expect(stored[0, "method"] == "5" && stored[0, "type"] == "6" && stored[0, "description"] == "区域入侵" && stored[0, "schema"] == "gb28181.alarm")

        // The device retransmits: one effect. Then a hostile body and a keepalive on the same topic.
        try s.daemon.send(frames: [Array("gb28181.platform-a".utf8), body])
        try s.daemon.send(frames: [Array("gb28181".utf8), Array("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><Notify>&a;</Notify>".utf8)])
        try s.daemon.waitUntil(timeout: 10, "the duplicate counted and the dead letter") {
            try s.daemon.metric("liandong_events_duplicate_total") == 1
                && s.count("SELECT count(*) FROM liandong.rejected_messages WHERE reason = 'malformed_xml'") == 1
        }
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source_id = '\(id)'") == 1)
        let letter = try s.db.query("SELECT detail, convert_from(topic, 'UTF8') AS topic FROM liandong.rejected_messages")
        #expect(letter[0, "detail"]?.contains("DOCTYPE") == true && letter[0, "topic"] == "gb28181")
    }

    @Test("on the acknowledged path the answer carries the alarm's id after commit; a tamper alarm inhibits the camera's analytics alarms")
    func acknowledged() throws {
        let s = try Scene(environment: ["LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "0"])
        let client = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack)
        let tamper = Self.alarm(sn: 1, at: s.now - 60, position: s.centre, method: "2", type: 2)
        let analytics = Self.alarm(sn: 2, at: s.now - 30, position: offset(s.centre, north: 200))
        try client.send(topic: "gb28181", body: tamper.body, id: tamper.id)
        try client.send(topic: "gb28181", body: analytics.body, id: analytics.id)
        #expect(try client.flush(timeout: 20))
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source_id IN ('\(tamper.id)', '\(analytics.id)')") == 2)
        #expect(try s.db.query("SELECT category FROM liandong.events WHERE source_id = $1", [tamper.id]).scalar == "tamper")
        try s.daemon.waitUntil(timeout: 10, "the analytics alarm inhibited") { try s.daemon.metric("liandong_events_inhibited_total") == 1 }
        // A body that is not a time: refused with the reason, as for JSON.
        let late = Array("<Notify><CmdType>Alarm</CmdType><SN>3</SN><DeviceID>\(Self.camera)</DeviceID><AlarmPriority>1</AlarmPriority><AlarmMethod>5</AlarmMethod><AlarmTime>2020-01-01T00:00:00</AlarmTime></Notify>".utf8)
        try client.send(topic: "gb28181", body: late, id: "gb28181:\(Self.camera):3:2020-01-01T00:00:00")
        var refused: IngestClient.Answer?
        try waitUntil(timeout: 10, "the refusal") {
            refused = try client.poll(timeout: 0.1).first { $0.id == "gb28181:\(Self.camera):3:2020-01-01T00:00:00" } ?? refused
            return refused != nil
        }
        #expect(refused?.ok == false && (refused?.error ?? "").hasPrefix("time_out_of_range: AlarmTime 2020-01-01T00:00:00"))
    }
}
