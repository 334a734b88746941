import Foundation
import LiandongCore
import Testing

@Suite("Message decoding and validation")
struct DecoderTests {
    let now = 1_795_918_532.0
    let decoder = MessageDecoder()

    func frames(_ topic: String, _ object: [String: Any]) -> [[UInt8]] {
        [Array(topic.utf8), Array(try! JSONSerialization.data(withJSONObject: object))]
    }

    var alert: [String: Any] {
        ["schema": "liandong.alert.v1", "alert_id": "gw-7:000123", "gateway_id": "gw-7", "seq": 123,
         "device_id": "62092200001320000001", "alarm_method": 5, "alarm_type": 6, "event_type": 1, "priority": 2,
         "observed_at": "2026-11-29T10:15:32+08:00", "lon": 95.7801, "lat": 40.5203, "crs": "wgs84", "confidence": 0.87]
    }

    var report: [String: Any] {
        ["schema": "liandong.report.v1", "report_id": "r-88123", "worker_id": "w-0412", "grid_code": "620922100001003",
         "category": "crowd", "severity": 2, "observed_at": "2026-11-29T10:17:05+08:00", "lon": 95.7812, "lat": 40.5199,
         "crs": "gcj02"]
    }

    @Test("the design brief's alert decodes with its category, priority, time and position")
    func alertExample() throws {
        let e = try decoder.decode(frames: frames("alert.gw-7", alert), now: now).get()
        #expect(e.source == .alert && e.sourceID == "gw-7:000123" && e.gatewaySeq == 123)
        #expect(e.category == "intrusion" && e.priority == 2 && e.observedAt == now)
        #expect(e.position == LonLat(lon: 95.7801, lat: 40.5203))
    }

    @Test("a decoded message is one word in the ingest queue and the writer's batches; its event is kept whole")
    func inboundIsAWord() {
        // Indirect: 5,000 queued messages took a 16,384-slot array of 480 bytes each (heaptrack, dense bench).
        #expect(MemoryLayout<Inbound>.stride == MemoryLayout<UnsafeRawPointer>.stride)
        let raw = RawMessage(endpoint: "ingest.sub", frames: frames("alert.gw-7", alert), receivedAt: now)
        let queued = [Inbound(raw, decodedBy: decoder)]
        guard case .event(let e, let kept) = queued[0] else {
            Issue.record("the alert was not decoded as an event")
            return
        }
        #expect(e.sourceID == "gw-7:000123" && e.gatewaySeq == 123 && e.position == LonLat(lon: 95.7801, lat: 40.5203))
        #expect(kept.frames == raw.frames && queued[0].id == "gw-7:000123")
    }

    @Test("the gap tracker's peek reads the gateway_id and seq the decoder reads, and nothing from other messages")
    func peekSequence() throws {
        let e = try decoder.decode(frames: frames("alert.gw-7", alert), now: now).get()
        let peeked = MessageDecoder.peekSequence(frames("alert.gw-7", alert))
        #expect(peeked?.gateway == e.gatewayID && peeked?.seq == e.gatewaySeq && peeked?.seq == 123)
        // A message the decoder refuses still tells which seq arrived (it is dead-lettered, not lost).
        var bad = alert
        bad["device_id"] = "nope"
        #expect(MessageDecoder.peekSequence(frames("alert.gw-7", bad))?.seq == 123)
        for seq in [-1, 1.5] as [Any] {
            var odd = alert
            odd["seq"] = seq
            #expect(MessageDecoder.peekSequence(frames("alert.gw-7", odd)) == nil)
        }
        #expect(MessageDecoder.peekSequence(frames("report", report)) == nil)
        #expect(MessageDecoder.peekSequence([Array("alert".utf8), Array(#"{"gateway_id":"g","seq":1"#.utf8)]) == nil)
    }

    @Test("a GCJ-02 report is converted to WGS-84 before anything else sees it")
    func reportConverted() throws {
        let e = try decoder.decode(frames: frames("report", report), now: now).get()
        let sent = LonLat(lon: 95.7812, lat: 40.5199)
        #expect(e.category == "crowd" && e.crs == .gcj02)
        let back = CoordinateConverter.fromWGS84(e.position!, to: .gcj02)
        #expect(back.distance(to: sent) < 0.5 && e.position!.distance(to: sent) > 100)
    }

    @Test("a report with only a grid code is accepted; one with neither position nor grid is not")
    func reportGridOnly() throws {
        var r = report
        r["lon"] = nil
        r["lat"] = nil
        #expect(try decoder.decode(frames: frames("report", r), now: now).get().position == nil)
        r["grid_code"] = nil
        #expect(decode("report", r)?.reason == .missingField)
    }

    func decode(_ topic: String, _ object: [String: Any]) -> Rejection? {
        if case .failure(let r) = decoder.decode(frames: frames(topic, object), now: now) { return r }
        return nil
    }

    func with(_ base: [String: Any], _ key: String, _ value: Any?) -> [String: Any] {
        var b = base
        b[key] = value
        return b
    }

    @Test("each invalid field gets its own reason")
    func reasons() {
        #expect(decode("alert", with(alert, "alert_id", nil))?.reason == .missingField)
        #expect(decode("alert", with(alert, "alert_id", ""))?.reason == .invalidField)
        #expect(decode("alert", with(alert, "priority", 0))?.reason == .invalidField)
        #expect(decode("alert", with(alert, "priority", 2.5))?.reason == .invalidField)
        #expect(decode("alert", with(alert, "priority", true))?.reason == .invalidField)
        #expect(decode("alert", with(alert, "device_id", 6.209220000132e19))?.reason == .invalidField)
        #expect(decode("alert", with(alert, "device_id", "62092200001320000001x"))?.reason == .invalidDeviceID)
        #expect(decode("alert", with(alert, "observed_at", "soon"))?.reason == .invalidTime)
        #expect(decode("alert", with(alert, "observed_at", "2026-11-29T11:15:32+08:00"))?.reason == .timeOutOfRange)
        #expect(decode("alert", with(alert, "observed_at", "2026-10-01T10:15:32+08:00"))?.reason == .timeOutOfRange)
        #expect(decode("alert", with(alert, "lat", 91))?.reason == .coordinatesOutOfRange)
        #expect(decode("alert", with(alert, "lat", nil))?.reason == .missingField)
        #expect(decode("alert", with(alert, "crs", "utm50"))?.reason == .invalidField)
        #expect(decode("alert", with(alert, "confidence", 3))?.reason == .invalidField)
        #expect(decode("alert", with(alert, "schema", "liandong.alert.v2"))?.reason == .unknownSchema)
        #expect(decode("report", alert)?.reason == .topicMismatch)
        #expect(decode("alarm", alert)?.reason == .unknownTopic)
        #expect(decode("report", with(report, "grid_code", "62092210000100"))?.reason == .invalidField)
        #expect(decode("report", with(report, "severity", 5))?.reason == .invalidField)
    }

    @Test("frame-level problems: count, size, UTF-8, JSON shape")
    func frameProblems() {
        func reason(_ f: [[UInt8]], limits: IngestLimits = IngestLimits()) -> RejectReason? {
            if case .failure(let r) = MessageDecoder(limits: limits).decode(frames: f, now: now) { return r.reason }
            return nil
        }
        let body = frames("alert", alert)[1]
        #expect(reason([Array("alert".utf8)]) == .wrongFrameCount)
        #expect(reason([Array("alert".utf8), body, []]) == .wrongFrameCount)
        #expect(reason([Array("alert".utf8), body], limits: IngestLimits(maxBodyBytes: 100)) == .oversized)
        #expect(reason([Array("alert".utf8), [0xc3, 0x28]]) == .invalidUTF8)
        #expect(reason([Array("alert".utf8), Array("{\"a\":".utf8)]) == .malformedJSON)
        #expect(reason([Array("alert".utf8), Array("\"text\"".utf8)]) == .malformedJSON)
    }
}

@Suite("Rules")
struct RulesTests {
    let rules = Rules()

    @Test("GB/T 28181 alarm codes map to incident categories", arguments: [
        (5, 6, "intrusion"), (5, 5, "intrusion"), (5, 10, "crowd"), (5, 12, "fight"), (2, 2, "tamper"),
        (2, 1, "device_fault"), (6, 1, "device_fault"), (25, 6, "intrusion"), (52, 10, "crowd"), (7, 1, "other"),
    ])
    func alarms(method: Int, type: Int, category: String) {
        #expect(rules.category(alarmMethod: method, alarmType: type) == category)
    }

    @Test("report categories map through Chinese and English names, unknown ones pass through lower-cased")
    func reports() {
        #expect(rules.category(report: "聚集") == "crowd")
        #expect(rules.category(report: "消防隐患") == "fire")
        #expect(rules.category(report: "Crowd") == "crowd")
        #expect(rules.category(report: "stray_dog") == "stray_dog")
    }

    @Test("SLA deadlines follow priority and tier")
    func sla() {
        #expect(rules.sla(for: .village).respondSeconds(priority: 1) == 600)
        #expect(rules.sla(for: .county).resolveSeconds(priority: 4) == 1440 * 60)
        #expect(rules.sla(for: .village).respondSeconds(priority: 9) == 480 * 60)
    }
}

@Suite("Emission policy")
struct EmissionTests {
    func decide(_ alerts: Int, _ reports: Int, priority: Int = 2, task: TaskKind? = nil) -> EmissionDecision {
        emissionDecision(for: IncidentEvidence(alertCount: alerts, reportCount: reports, priority: priority, taskKind: task),
                         dispatchSeverity: 2)
    }

    @Test("a new incident: camera only -> verify, both -> joint_dispatch, serious report -> dispatch, minor -> none")
    func newIncidents() {
        #expect(decide(1, 0) == .create(.verify))
        #expect(decide(2, 1) == .create(.jointDispatch))
        #expect(decide(0, 1, priority: 1) == .create(.dispatch))
        #expect(decide(0, 1, priority: 2) == .create(.dispatch))
        #expect(decide(0, 1, priority: 3) == .none)
    }

    @Test("existing tasks: the first agreement upgrades once, everything later is an update")
    func existingTasks() {
        #expect(decide(1, 1, task: .verify) == .upgrade(.jointDispatch))
        #expect(decide(1, 1, task: .dispatch) == .upgrade(.jointDispatch))
        #expect(decide(3, 1, task: .jointDispatch) == .update)
        #expect(decide(2, 0, task: .verify) == .update)
        #expect(decide(0, 2, task: .dispatch) == .update)
    }

    @Test("a verify task's topic is its grid code; other tasks, and escalated verify tasks, use the division code")
    func topics() {
        #expect(TaskMessage.topic(kind: .verify, tier: .township, divisionCode: "620922100", gridCode: "620922100001003") == "task.620922100")
        #expect(TaskMessage.topic(kind: .verify, divisionCode: "620922100001", gridCode: "620922100001003") == "task.620922100001003")
        #expect(TaskMessage.topic(kind: .jointDispatch, divisionCode: "620922100001", gridCode: "620922100001003") == "task.620922100001")
    }
}
