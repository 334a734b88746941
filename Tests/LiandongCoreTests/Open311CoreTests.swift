import Foundation
import LiandongCore
import Testing

/// Residents' requests without a server: SHA-256, Open311 forms and answers, API keys, rates,
/// the citizen_request.v1 decoder (contact kept out of the payload), ratings reopening tasks.
@Suite("Open311 and residents' requests (core)")
struct Open311CoreTests {
    let now = 1_796_169_600.0

    @Test("SHA-256 of the FIPS 180-2 examples, and across a block boundary")
    func sha256() {
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex(String(repeating: "a", count: 1000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test("a form: + and %XX decode to UTF-8, the first of a repeated name wins, a bad escape or bad UTF-8 is a 400")
    func form() throws {
        let f = try Open311.form(Array("a=1&b=%E7%93%9C%E5%B7%9E+x&a=2&c&&d=%2B%26".utf8))
        #expect(f == ["a": "1", "b": "瓜州 x", "c": "", "d": "+&"])
        #expect(throws: Open311.Failure(400, "the form has a % not followed by two hex digits")) { try Open311.form(Array("a=%ZZ".utf8)) }
        #expect(throws: Open311.Failure(400, "the form has a % not followed by two hex digits")) { try Open311.form(Array("a=%4".utf8)) }
        #expect(throws: Open311.Failure(400, "the form is not UTF-8 once decoded")) { try Open311.form(Array("a=%FF".utf8)) }
    }

    @Test("a filing becomes a citizen_request.v1 the daemon reads as a report with no worker; its contact is kept apart, not in the stored payload")
    func filing() throws {
        let p = LonLat(lon: 95.78, lat: 40.52), gcj = CoordinateConverter.wgs84ToGCJ02(p)
        let form = ["service_code": "fire_hazard", "lat": String(gcj.lat), "long": String(gcj.lon), "crs": "GCJ02", "description": " 楼道堆放杂物 ",
                    "phone": "13800000000", "first_name": "秀英", "account_id": "wx-1", "media_url": "https://example.cn/a.jpg"]
        let filing = try Open311.filing(form, services: Open311.Service.defaults, app: "wechat", requestID: "620922-1", now: now, gatewayID: "liandong-open311")
        #expect(filing.accountID == "wx-1" && filing.service.category == "fire")
        let event = try MessageDecoder().decode(frames: [Array("citizen".utf8), filing.body], now: now + 1).get()
        #expect(event.source == .report && event.sourceID == "620922-1" && event.workerID == nil && event.category == "fire" && event.priority == 2)
        #expect(event.crs == .gcj02 && abs(event.position!.lon - p.lon) < 1e-5 && abs(event.position!.lat - p.lat) < 1e-5)
        #expect(event.citizen == CitizenRequest(app: "wechat", serviceCode: "fire_hazard", description: "楼道堆放杂物", mediaURL: "https://example.cn/a.jpg",
                                                contact: CitizenContact(firstName: "秀英", phone: "13800000000", accountID: "wx-1")))
        #expect(!event.body.contains("13800000000") && !event.body.contains("秀英") && event.body.contains("楼道堆放杂物"))
        #expect(MessageDecoder.peekID([Array("citizen".utf8), filing.body]) == "620922-1")
        // What the filing refuses, with the field named.
        func refusal(_ change: [String: String?]) -> String? {
            var f = form
            for (k, v) in change { f[k] = v }
            do {
                _ = try Open311.filing(f, services: Open311.Service.defaults, app: "w", requestID: "r", now: now, gatewayID: "g")
                return nil
            } catch { return error.message }
        }
        #expect(refusal(["service_code": nil])?.contains("service_code is required") == true)
        #expect(refusal(["service_code": "potholes"])?.contains("not a service") == true)
        #expect(refusal(["lat": nil, "address_string": "x"])?.contains("cannot locate address_string") == true)
        #expect(refusal(["long": "181"])?.contains("not a position") == true)
        #expect(refusal(["lat": "nan"])?.contains("not a position") == true)
        #expect(refusal(["crs": "itrf"])?.contains("crs") == true)
        #expect(refusal(["email": "nobody"])?.contains("email") == true)
        #expect(refusal(["media_url": "javascript:alert(1)"])?.contains("media_url") == true)
        #expect(refusal(["description": String(repeating: "x", count: 4001)])?.contains("longer than 4000") == true)
        // The daemon's own checks of the message.
        let wrong = Array(String(decoding: filing.body, as: UTF8.self).replacingOccurrences(of: "\"severity\":2", with: "\"severity\":7").utf8)
        #expect(throws: Rejection.self) { try MessageDecoder().decode(frames: [Array("citizen".utf8), wrong], now: now).get() }
    }

    @Test("feedback: a rating 1-5 and a comment become citizen_feedback.v1; 1 and 2 reopen")
    func feedback() throws {
        let body = try Open311.feedback(["rating": "2", "comment": "没解决"], requestID: "r-1", app: "wechat", feedbackID: "f-1", now: now)
        let decoded = try MessageDecoder().decodeMessage(frames: [Array("feedback".utf8), body], now: now).get()
        guard case .record(let record) = decoded, let rating = record as? CitizenFeedback else { Issue.record("not a record: \(decoded)"); return }
        #expect(rating == CitizenFeedback(feedbackID: "f-1", requestID: "r-1", app: "wechat", rating: 2, comment: "没解决", at: now) && rating.reopens)
        for bad in ["0", "6", "3.5", ""] {
            #expect(throws: Open311.Failure.self) { try Open311.feedback(["rating": bad], requestID: "r", app: "w", feedbackID: "f", now: now) }
        }
    }

    @Test("answers in JSON and XML carry the same fields; XML escapes what it must and reads back")
    func answers() throws {
        // (A combining mark right after an entity once made the XML reader miss its ";".)
        let tricky = "<a & 'b'> \"c\" 瓜州\u{1} &\u{33A}"
        let items: [[(String, Open311.Value)]] = [[("service_request_id", .text("620922-1")), ("status_notes", .text(tricky)),
                                                   ("expected_datetime", .text(nil)), ("lat", .number(40.52)), ("reopened", .bool(true))]]
        let json = try JSONSerialization.jsonObject(with: Data(Open311.render(items, root: "service_requests", item: "request", as: .json).utf8)) as! [[String: Any]]
        #expect(json[0]["status_notes"] as? String == tricky && json[0]["expected_datetime"] is NSNull && json[0]["lat"] as? Double == 40.52)
        let xml = try XMLReader.parse(Array(Open311.render(items, root: "service_requests", item: "request", as: .xml).utf8))
        #expect(xml.name == "service_requests" && xml.children[0].name == "request")
        #expect(xml.children[0].child("status_notes")?.text == "<a & 'b'> \"c\" 瓜州 &\u{33A}" && xml.children[0].value("lat") == "40.52")
        #expect(xml.children[0].child("expected_datetime") != nil && xml.children[0].value("reopened") == "true")
        let errors = try XMLReader.parse(Array(Open311.errors(Open311.Failure(403, "api_key is not valid"), as: .xml).utf8))
        #expect(errors.name == "errors" && errors.children[0].value("code") == "403" && errors.children[0].value("description") == "api_key is not valid")
        let services = try XMLReader.parse(Array(Open311.services(Open311.Service.defaults, as: .xml).utf8))
        #expect(services.children.count == Open311.Service.defaults.count && services.children[0].value("metadata") == "false")
    }

    @Test("the api_keys_file: NAME SHA256 PER_MINUTE lines, comments, and refusals naming the line")
    func apps() throws {
        let hash = SHA256.hex("k-1")
        let apps = try Open311.apps("# apps\nwechat \(hash) 600  # the mini-program\n\n", file: "keys")
        #expect(apps[hash] == Open311.App(name: "wechat", keyHash: hash, perMinute: 600))
        #expect(throws: Open311.Failure.self) { try Open311.apps("wechat k-1 600", file: "keys") }
        #expect(throws: Open311.Failure.self) { try Open311.apps("wechat \(hash) 0", file: "keys") }
        #expect(throws: Open311.Failure.self) { try Open311.apps("a \(hash) 1\na \(SHA256.hex("k-2")) 1", file: "keys") }
        do {
            _ = try Open311.apps("ok \(hash) 5\nbad", file: "keys")
        } catch { #expect(error.message.hasPrefix("keys line 2:")) }
    }

    @Test("a rate of 2 a minute: two at once, the third waits 30 s; ids from an Idempotency-Key repeat, random ones do not")
    func ratesAndIDs() {
        var buckets = RateBuckets()
        #expect(buckets.take("a", perMinute: 2, now: now) == nil && buckets.take("a", perMinute: 2, now: now) == nil)
        let wait = buckets.take("a", perMinute: 2, now: now)
        #expect(wait != nil && abs(wait! - 30) < 0.001)
        #expect(buckets.take("b", perMinute: 2, now: now) == nil, "each app its own bucket")
        #expect(buckets.take("a", perMinute: 2, now: now + 30) == nil)
        let id = Open311.newID(jurisdiction: "620922", app: "wechat", idempotencyKey: "k")
        #expect(id == Open311.newID(jurisdiction: "620922", app: "wechat", idempotencyKey: "k") && id.count == 23 && id.hasPrefix("620922-"))
        #expect(id != Open311.newID(jurisdiction: "620922", app: "other", idempotencyKey: "k"))
        #expect(id != Open311.newID(jurisdiction: "620922", app: "wechat", idempotencyKey: "k", salt: "feedback r\n"))
        #expect(Open311.newID(jurisdiction: "620922", app: "w", idempotencyKey: nil) != Open311.newID(jurisdiction: "620922", app: "w", idempotencyKey: nil))
    }

    @Test("a resident's minor request gets a dispatch task; a worker's does not; a rating reopens only a finished task, at its tier")
    func planner() {
        let planner = TaskPlanner(rules: Rules(), newID: { "id" })
        var incident = IncidentState(id: "inc-1", category: "dispute", gridCode: "620922100001001", villageCode: "620922100001", priority: 3,
                                     lon: 95.78, lat: 40.52, workerID: nil,
                                     evidence: TaskEvidence(alerts: [], reports: ["r"], alertCount: 0, reportCount: 1))
        #expect(planner.evidence(on: incident, now: now) == nil, "a minor report alone is recorded only")
        incident.residentRequest = true
        let created = planner.evidence(on: incident, now: now)?.announced
        #expect(created?.task.kind == .dispatch && created?.task.tier == .village && created?.event == .created)
        var task = created!.task
        #expect(planner.reopen(IncidentState(id: "inc-1", category: "dispute", gridCode: incident.gridCode, villageCode: incident.villageCode,
                                             priority: 3, lon: 95.78, lat: 40.52, workerID: nil, evidence: incident.evidence, task: task),
                               rating: 1, comment: nil, now: now) == nil, "an open task is not reopened")
        task.state = .resolved
        task.tier = .township
        task.divisionCode = "620922100"
        task.closedAt = now
        incident.task = task
        let later = now + 7200
        let step = planner.reopen(incident, rating: 2, comment: "没解决", now: later)
        #expect(step?.task.state == .open && step?.task.tier == .township && step?.task.divisionCode == "620922100" && step?.task.closedAt == nil)
        #expect(step?.event == .reopened && step?.actor == "resident" && step?.message.kind == .update)
        #expect(step?.message.reason == "reopened: the resident rated the outcome 2 of 5: 没解决")
        let sla = Rules().deadlines(tier: .township, priority: 3, from: later)
        #expect(step?.task.respondBy == sla.respondBy && step?.task.resolveBy == sla.resolveBy)
    }
}
