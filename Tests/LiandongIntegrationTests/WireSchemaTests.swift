import Foundation
import LibPQ
import LiandongCore
import Testing
import ZeroMQ

/// Every message on every socket matches its JSON Schema in schemas/json, checked on what a real
/// daemon sends.
@Suite("Wire messages match their schemas")
struct WireSchemaTests {
    func expectValid(_ file: String, _ body: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let problems = try SchemaValidator(file: file).problems(body)
        #expect(problems.isEmpty, "\(file): \(String(decoding: body, as: UTF8.self)): \(problems)", sourceLocation: sourceLocation)
    }

    @Test("the validator refuses what its schemas forbid")
    func validatorBites() throws {
        let answer = try SchemaValidator(file: "ingest_answer.v1.schema.json")
        #expect(answer.problems(Array(#"{"ok":true,"id":"a"}"#.utf8)).isEmpty)
        #expect(!answer.problems(Array(#"{"ok":true}"#.utf8)).isEmpty)
        #expect(!answer.problems(Array(#"{"ok":false,"id":"a"}"#.utf8)).isEmpty)
        #expect(!answer.problems(Array(#"{"ok":true,"id":"a","extra":1}"#.utf8)).isEmpty)
        let hb = try SchemaValidator(file: "heartbeat.v1.schema.json")
        #expect(!hb.problems(Array(#"{"head":1.5,"at":"x"}"#.utf8)).isEmpty)
        let update = try SchemaValidator(file: "task_update_answer.v1.schema.json")
        #expect(!update.problems(Array(#"{"ok":false}"#.utf8)).isEmpty)
    }

    @Test("ack answers, update answers, replay frames, the heartbeat and tasks as a daemon sends them")
    func liveMessages() throws {
        let s = try Scene()
        let context = s.daemon.context
        func dealer(_ endpoint: String) throws -> ZMQSocket {
            let socket = try ZMQSocket(context: context, type: .dealer)
            try socket.setReceiveTimeout(milliseconds: 10_000)
            try socket.setLinger(milliseconds: 0)
            try socket.connect(endpoint)
            return socket
        }
        // Acknowledged ingest: stored, duplicate, refused with and without a readable id.
        let ack = try dealer(s.daemon.ack)
        let alert = Wire.alert(id: "schema-1", at: s.now, position: s.centre)
        for body in [alert, alert, Wire.alert(id: "schema-2", at: s.now, position: s.centre, extra: ["priority": 9]), "{nope"] {
            try ack.send([Array("alert".utf8), Array(body.utf8)])
            let frames = try #require(try ack.receive())
            try expectValid("ingest_answer.v1.schema.json", frames.last!)
        }
        // The verify task on the feed, then the heartbeat.
        let tasks = try receiveTasks(s.feed, count: 1)
        try expectValid("task.v1.schema.json", Array(try JSONSerialization.data(withJSONObject: tasks[0].body)))
        try waitUntil(timeout: 5, "a heartbeat") {
            guard let frames = try s.feed.receive(), frames.first == Array("hb".utf8) else { return false }
            try expectValid("heartbeat.v1.schema.json", frames[1])
            return true
        }
        // Updates: accepted, and refused.
        let updates = try dealer(s.daemon.updates)
        let taskID = tasks[0].body["task_id"] as! String
        for (id, action) in [("u-schema-1", "accept"), ("u-schema-2", "approve")] {
            let update = Wire.json(["schema": "liandong.task_update.v1", "update_id": id, "task_id": taskID, "action": action,
                                    "actor": "schema-test", "at": Timestamp.formatCST(Date().timeIntervalSince1970)])
            if action == "accept" { try expectValid("task_update.v1.schema.json", Array(update.utf8)) }
            try updates.send([Array(update.utf8)])
            try expectValid("task_update_answer.v1.schema.json", try #require(try updates.receive()).last!)
        }
        // Replay: the request, every message and the end frame; a bad request's end frame.
        let replay = try dealer(s.daemon.replay)
        let request = #"{"since":0,"prefix":"task.","limit":10}"#
        try expectValid("replay_request.v1.schema.json", Array(request.utf8))
        try replay.send([Array(request.utf8)])
        // One multipart answer: a frame per message, the end frame last.
        let frames = try #require(try replay.receive())
        #expect(frames.count >= 2)
        for body in frames.dropLast() { try expectValid("task.v1.schema.json", body) }
        try expectValid("replay_end.v1.schema.json", frames.last!)
        try replay.send([Array(#"{"since":-1}"#.utf8)])
        try expectValid("replay_end.v1.schema.json", try #require(try replay.receive()).last!)
        // Device status as liandong-gb28181 sends it, for every reason.
        for reason in DeviceStatusReport.Reason.allCases {
            try expectValid("device_status.v1.schema.json",
                            DeviceStatusReport(deviceID: "62092210001320000001", reason: reason, at: Date().timeIntervalSince1970).json())
        }
        // A device catalog as liandong-gb28181 sends it.
        var assembly = CatalogAssembly(deviceID: "62092200001180000001", sn: "7", deadline: 0)
        _ = assembly.add(CatalogPart(sn: "7", deviceID: "62092200001180000001", sumNum: 2, items: [
            CatalogItem(channelID: "62092200001310000001", name: "通道1", manufacturer: "Hikvision", model: "DS-2CD", civilCode: "620922",
                        address: "渊泉镇", parentID: "62092200001180000001", online: true, position: LonLat(lon: 95.78, lat: 40.52)),
            CatalogItem(channelID: "62092200001310000002"),
        ]))
        try expectValid("device_catalog.v1.schema.json", DeviceCatalog(assembly, at: Date().timeIntervalSince1970).json())
        // A catalog NOTIFY's change as the bridge forwards it.
        var notified = CatalogAssembly(deviceID: "62092200001180000001", sn: "8", deadline: 0)
        var off = CatalogItem(channelID: "62092200001310000002", online: false)
        off.event = "VLOST"
        _ = notified.add(CatalogPart(sn: "8", deviceID: "62092200001180000001", sumNum: 1, items: [off]))
        try expectValid("device_catalog.v1.schema.json", DeviceCatalog(notified, at: Date().timeIntervalSince1970).json())
        // Every kind of device fact as liandong-gb28181 sends it.
        let now = Date().timeIntervalSince1970
        let facts: [DeviceFact.Fact] = [
            .registration(DeviceFact.Registration(transport: .udp, from: "127.0.0.1:5070", expiresAt: now + 3600)),
            .info(DeviceFact.Info(name: "NVR", manufacturer: "Hikvision", model: "DS-7864", firmware: "V4.1", channels: 64)),
            .info(DeviceFact.Info()),
            .guardState(.refused, detail: "501 Not Implemented"),
            .subscription(.alarm, .active, until: now + 3600, detail: nil),
            .subscription(.catalog, .refused, until: nil, detail: "489 Bad Event"),
        ]
        for fact in facts {
            try expectValid("device_info.v1.schema.json", DeviceFact(deviceID: "62092200001180000001", at: now, fact).json())
        }
    }

    @Test("a resident's request and rating as liandong-open311 writes them")
    func residents() throws {
        let now = Date().timeIntervalSince1970
        let form = ["service_code": "dispute", "lat": "40.5", "long": "95.7", "crs": "gcj02", "description": "邻里纠纷 \"quoted\"",
                    "address_string": "某村", "media_url": "https://example.cn/p.jpg", "first_name": "秀英", "phone": "13800000000", "account_id": "a"]
        let filing = try Open311.filing(form, services: Open311.Service.defaults, app: "wechat", requestID: "620922-00ff", now: now, gatewayID: "liandong-open311")
        try expectValid("citizen_request.v1.schema.json", filing.body)
        let bare = try Open311.filing(["service_code": "other", "lat": "40.5", "long": "95.7"], services: Open311.Service.defaults, app: "w",
                                      requestID: "620922-01", now: now, gatewayID: "liandong-open311")
        try expectValid("citizen_request.v1.schema.json", bare.body)
        try expectValid("citizen_feedback.v1.schema.json", try Open311.feedback(["rating": "2", "comment": "未解决"], requestID: "620922-00ff",
                                                                                app: "wechat", feedbackID: "620922-aa", now: now))
        try expectValid("citizen_feedback.v1.schema.json", try Open311.feedback(["rating": "5"], requestID: "r", app: "w", feedbackID: "f", now: now))
    }
}
