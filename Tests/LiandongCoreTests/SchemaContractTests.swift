import Foundation
import LiandongCore
import Testing

/// The JSON Schemas in schemas/json and the decoder agree on what is required.
@Suite("JSON Schema contract")
struct SchemaContractTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("schemas/json")

    func schema(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: Self.dir.appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("every field the alert and report schemas require is required by the decoder", arguments: [
        ("alert.v1.schema.json", "alert"), ("report.v1.schema.json", "report"),
    ])
    func requiredFields(file: String, topic: String) throws {
        let s = try schema(file)
        let required = try #require(s["required"] as? [String])
        let now = 1_795_918_532.0
        let full: [String: Any] = topic == "alert"
            ? ["schema": "liandong.alert.v1", "alert_id": "a", "device_id": "62092200001320000001", "alarm_method": 5,
               "alarm_type": 6, "priority": 2, "observed_at": "2026-11-29T10:15:32+08:00"]
            : ["schema": "liandong.report.v1", "report_id": "r", "worker_id": "w", "category": "crowd", "severity": 2,
               "observed_at": "2026-11-29T10:15:32+08:00", "grid_code": "620922100001003"]
        let frames = { (o: [String: Any]) in [Array(topic.utf8), Array(try! JSONSerialization.data(withJSONObject: o))] }
        #expect(throws: Never.self) { try MessageDecoder().decode(frames: frames(full), now: now).get() }
        for field in required {
            var body = full
            body[field] = nil
            guard case .failure(let r) = MessageDecoder().decode(frames: frames(body), now: now) else {
                Issue.record("\(field) is required by the schema but the decoder accepts its absence")
                continue
            }
            #expect(r.reason == .missingField, "\(field): \(r)")
        }
    }

    @Test("the task schema requires every key a TaskMessage encodes, except the optional worker_id")
    func taskSchema() throws {
        let s = try schema("task.v1.schema.json")
        let required = Set(try #require(s["required"] as? [String]))
        let message = TaskMessage(
            topic: "task.620922100001", messageID: "m", kind: .verify, taskID: "t", incidentID: "i", tier: .village,
            divisionCode: "620922100001", gridCode: "620922100001003", workerID: nil, category: "crowd", priority: 2,
            lon: 95.78, lat: 40.52, departments: [], respondBy: "x", resolveBy: "y",
            evidence: TaskEvidence(alerts: [], reports: [], alertCount: 0, reportCount: 0), emittedAt: "z")
        var encoded = Set((try JSONSerialization.jsonObject(with: try JSONEncoder().encode(message)) as! [String: Any]).keys)
        encoded.insert("seq")  // assigned by the feed outbox
        #expect(encoded == required)
    }

    @Test("TaskMessage.jsonText is the same document JSONEncoder writes, with and without the optional fields")
    func handWrittenEncoding() throws {
        var message = TaskMessage(
            topic: "task.620922102", messageID: "6a3c", kind: .escalation, state: .accepted, overdue: true, taskID: "t-1",
            incidentID: "i-1", tier: .township, divisionCode: "620922102", gridCode: "620922102201005", workerID: "w-7",
            category: "火灾 \"quoted\" \\ back\nline\u{01}", priority: 1, lon: 95.783_219_4, lat: 40.5, departments: ["fire", "police"],
            respondBy: "2026-11-29T08:00:00+08:00", resolveBy: "2026-11-29T09:00:00.500+08:00",
            evidence: TaskEvidence(alerts: ["a/1", "a2"], reports: [], alertCount: 2, reportCount: 0), emittedAt: "e")
        for optional in [false, true] {
            if optional {
                message.seq = 42
                message.reason = "respond_by missed"
                message.previousDivisionCode = "620922102201"
                message.actor = "dispatcher-3"
                message.updateID = "u-9"
            }
            let hand = try JSONSerialization.jsonObject(with: Data(message.jsonText().utf8)) as! NSDictionary
            let foundation = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(message)) as! NSDictionary
            #expect(hand == foundation)
            #expect(try JSONDecoder().decode(TaskMessage.self, from: Data(message.jsonText().utf8)) == message)
        }
    }
}
