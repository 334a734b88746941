import Foundation
import LibPQ
import LiandongCore
import Testing

/// liandong-open311 over real HTTP on loopback, in front of a real liandongd: Open311 GeoReport
/// v2 in JSON and XML, every error code, a resident's request followed from filing through
/// escalation to closing, a low rating reopening it, and who may read whom.
@Suite("Residents' requests over Open311 GeoReport v2", .serialized)
struct Open311Tests {
    static let key = Open311Process.wechatKey

    @Test("GET services and a service's definition, in JSON and XML; an unknown service or format is a 404 in the spec's error form")
    func services() throws {
        let s = try Scene()
        let server = try Open311Process(daemonAck: s.daemon.ack, database: s.daemon.database)
        let json = try server.get("services.json")
        #expect(json.status == 200 && json.headers["content-type"]?.hasPrefix("application/json") == true)
        let list = try json.list
        #expect(list.count == Open311.Service.defaults.count)
        let fire = try #require(list.first { $0["service_code"] as? String == "fire_hazard" })
        #expect(fire["service_name"] as? String == "消防隐患 Fire hazard" && fire["metadata"] as? Bool == false && fire["type"] as? String == "realtime")
        #expect((fire["keywords"] as? String)?.contains("smoke") == true && fire["group"] as? String == "平安建设 Safety")
        let xml = try server.get("services.xml")
        #expect(xml.status == 200 && xml.headers["content-type"]?.hasPrefix("text/xml") == true)
        let services = try xml.xml
        #expect(services.name == "services" && services.children.count == list.count)
        #expect(services.children.first { $0.value("service_code") == "dispute" }?.value("service_name") == "矛盾纠纷 Dispute")
        let definition = try JSONSerialization.jsonObject(with: Data(try server.get("services/fire_hazard.json").body.utf8)) as? [String: Any]
        #expect(definition?["service_code"] as? String == "fire_hazard" && (definition?["attributes"] as? [Any])?.isEmpty == true)
        #expect(try server.get("services/fire_hazard.xml").xml.value("service_code") == "fire_hazard")
        let missing = try server.get("services/nothing.xml")
        #expect(try missing.status == 404 && (try missing.xml).name == "errors" && (try missing.xml).children.first?.value("code") == "404")
        let html = try server.get("services.html")
        #expect(try html.status == 404 && (try html.list).first?["code"] as? Int == 404)
    }

    @Test("a resident's request (GCJ-02, with contact): answered after commit, one per Idempotency-Key; open at the village, climbs to the township, closed with the dispatcher's note; a rating of 2 reopens it where it was closed; the contact never leaves citizen_contacts")
    func lifecycle() throws {
        let s = try Scene(environment: ["LIANDONG_SLA_VILLAGE_RESPOND_MINUTES": "0.05,0.05,0.05,0.05", "LIANDONG_ESCALATION_SWEEP_MS": "200"])
        let server = try Open311Process(daemonAck: s.daemon.ack, database: s.daemon.database)
        let gcj = CoordinateConverter.wgs84ToGCJ02(s.centre)
        let fields = ["api_key": Self.key, "service_code": "dispute", "lat": String(gcj.lat), "long": String(gcj.lon), "crs": "gcj02",
                      "description": "邻里因宅基地争吵 neighbours quarrelling over a homestead boundary", "address_string": "三道沟镇 某村 3组",
                      "first_name": "秀英", "last_name": "王", "phone": "13800000000", "email": "wang@example.cn", "device_id": "wx-dev-1",
                      "account_id": "wx-openid-1"]
        let filed = try server.post("requests.json", fields, headers: ["Idempotency-Key": "tap-0001"])
        #expect(filed.status == 200, "\(filed.body)")
        let id = try #require(try filed.list.first?["service_request_id"] as? String)
        #expect(try id.hasPrefix("620922-") && (try filed.list.first?["account_id"] as? String) == "wx-openid-1")
        // Committed before the answer: the event, its request row and its task are there now.
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source = 'report' AND source_id = '\(id)' AND worker_id IS NULL") == 1)
        let request = try s.db.query("SELECT source_crs, round(ST_Distance(geog, ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography)) AS d, app FROM liandong.citizen_requests WHERE service_request_id = $1",
                                     [id, String(s.centre.lon), String(s.centre.lat)])
        #expect(request[0, "source_crs"] == "gcj02" && Double(request[0, "d"] ?? "99")! <= 2 && request[0, "app"] == "wechat")
        #expect(try s.db.query("SELECT phone, first_name FROM liandong.citizen_contacts WHERE service_request_id = $1", [id])[0, "phone"] == "13800000000")
        // The same Idempotency-Key: the same id, still one request.
        let again = try server.post("requests.json", fields, headers: ["Idempotency-Key": "tap-0001"])
        #expect(try again.status == 200 && (try again.list.first?["service_request_id"] as? String) == id)
        #expect(try s.count("SELECT count(*) FROM liandong.citizen_requests") == 1)
        // A dispatch task at the village (a dispute is minor: a resident's request gets one anyway).
        try s.daemon.waitUntil(timeout: 10, "the request's task") { try s.count("SELECT count(*) FROM liandong.tasks") == 1 }
        let task = try s.db.query("SELECT t.id, t.kind, t.division_code, d.name FROM liandong.tasks t JOIN liandong.divisions d ON d.code = t.division_code")
        #expect(task[0, "kind"] == "dispatch" && task[0, "division_code"]?.count == 12)
        let taskID = try #require(task[0, "id"])
        var status = try #require(try server.get("requests/\(id).json", query: ["api_key": Self.key]).list.first)
        #expect(status["status"] as? String == "open" && status["service_code"] as? String == "dispute" && status["service_name"] as? String == "矛盾纠纷 Dispute")
        #expect(status["agency_responsible"] as? String == "\(task[0, "name"]!) (\(task[0, "division_code"]!))")
        #expect(status["expected_datetime"] as? String != nil && status["address"] as? String == "三道沟镇 某村 3组")
        #expect(abs((status["lat"] as? Double ?? 0) - s.centre.lat) < 0.0001 && abs((status["long"] as? Double ?? 0) - s.centre.lon) < 0.0001)
        // Nobody answers at the village: the township takes it up, and the resident sees so.
        try s.daemon.waitUntil(timeout: 20, "the task escalated to the township") {
            try s.count("SELECT count(*) FROM liandong.tasks WHERE tier = 'township'") == 1
        }
        status = try #require(try server.get("requests/\(id).json", query: ["api_key": Self.key]).list.first)
        let township = try #require(try s.db.query("SELECT division_code FROM liandong.tasks").scalar)
        #expect((status["agency_responsible"] as? String)?.hasSuffix("(\(township))") == true && township.count == 9)
        // A rating while it is open: refused.
        let early = try server.post("requests/\(id)/feedback.json", ["api_key": Self.key, "rating": "5"])
        #expect(try early.status == 400 && (try early.list.first?["description"] as? String)?.contains("still open") == true)
        // Resolved with a note: closed, the note is the resident's status_notes.
        let dispatcher = try Dispatcher(s.daemon)
        #expect(try dispatcher.send(taskID, "accept")["ok"] as? Bool == true)
        #expect(try dispatcher.send(taskID, "resolve", note: "已调解，双方签订协议 mediated, both signed an agreement")["ok"] as? Bool == true)
        let closed = try server.get("requests/\(id).xml", query: ["api_key": Self.key])
        let row = try #require(try closed.xml.children.first)
        #expect(row.value("status") == "closed" && row.value("status_notes") == "已调解，双方签订协议 mediated, both signed an agreement")
        #expect(row.child("expected_datetime") != nil && row.value("expected_datetime") == nil && row.value("service_request_id") == id)
        // A rating of 2: reopened at the township that closed it, with new deadlines.
        let rated = try server.post("requests/\(id)/feedback.json", ["api_key": Self.key, "rating": "2", "comment": "协议没有执行 the agreement is not kept"],
                                    headers: ["Idempotency-Key": "rate-1"])
        #expect(try rated.status == 200 && (try rated.list.first?["reopened"] as? Bool) == true, "\(rated.body)")
        try s.daemon.waitUntil(timeout: 10, "the task reopened") {
            try s.count("SELECT count(*) FROM liandong.tasks WHERE state = 'open' AND division_code = '\(township)' AND respond_by > now()") == 1
        }
        let history = try s.db.query("SELECT actor, note FROM liandong.task_history WHERE event = 'reopened'")
        #expect(history.count == 1 && history[0, "actor"] == "resident"
                && history[0, "note"] == "reopened: the resident rated the outcome 2 of 5: 协议没有执行 the agreement is not kept")
        #expect(try s.count("SELECT count(*) FROM liandong.citizen_feedback WHERE outcome = 'reopened' AND division_code = '\(township)'") == 1)
        #expect(try s.count("SELECT count(*) FROM liandong.incidents WHERE status = 'open'") == 1, "its incident is open again")
        status = try #require(try server.get("requests/\(id).json", query: ["api_key": Self.key]).list.first)
        #expect(status["status"] as? String == "open" && (status["status_notes"] as? String)?.hasPrefix("reopened: the resident rated") == true)
        // The reopening is on the feed for the township; the same rating again (same key) changes nothing.
        try s.daemon.waitUntil(timeout: 10, "the reopening on the feed") {
            try s.count("SELECT count(*) FROM liandong.feed WHERE body->>'reason' LIKE 'reopened:%' AND topic = 'task.\(township)'") == 1
        }
        _ = try server.post("requests/\(id)/feedback.json", ["api_key": Self.key, "rating": "2"], headers: ["Idempotency-Key": "rate-1"])
        #expect(try s.count("SELECT count(*) FROM liandong.citizen_feedback") == 1)
        // The KPIs count it at the township: a request handed over, a rating of 2.
        let kpi = try s.db.query("SELECT citizen_requests, ratings, satisfaction, low_ratings, reopened FROM liandong.citizen_assessment(current_date - 1, current_date + 1) WHERE division_code = $1", [township])
        #expect(kpi[0, "citizen_requests"] == "1" && kpi[0, "ratings"] == "1" && kpi[0, "satisfaction"] == "2.00" && kpi[0, "reopened"] == "1")
        #expect(try s.db.query("SELECT sum(citizen_requests) FROM liandong.division_kpis WHERE division_code = $1", [township]).scalar == "1")
        // The assessment report has them too: the township's row in its residents' table and CSV.
        let day = String(Timestamp.formatCST(s.now).prefix(10)), out = "\(Scratch.directory)/ld-report-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let report = try liandongd(["report", "--from", day, "--to", day, "--out", out], database: s.daemon.database)
        #expect(report.status == 0, "\(report.stderr)")
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        #expect(html.contains("市民诉求") && html.contains("<tr data-division=\"\(township)\"><td class=\"t\">"))
        let residents = try String(contentsOfFile: out + "/residents.csv", encoding: .utf8)
        #expect(residents.split(separator: "\n").contains { $0.hasPrefix("\(township),") && $0.hasSuffix(",township,1,100.0,1,2.00,1,1") },
                "one request handed to the township, accepted in time, one rating of 2 that reopened it: \(residents)")
        // Contacts: nowhere but citizen_contacts - not the event, the feed, the answers or the log.
        for secret in ["13800000000", "wang@example.cn", "wx-openid-1", "秀英"] {
            #expect(try s.count("SELECT count(*) FROM liandong.events WHERE payload::text LIKE '%\(secret)%'") == 0)
            #expect(try s.count("SELECT count(*) FROM liandong.feed WHERE body::text LIKE '%\(secret)%'") == 0)
            #expect(!status.description.contains(secret) && !server.log.contains(secret), "\(secret)")
        }
        // A township's operator sees the request but not who filed it; a county-wide one sees both.
        let url = s.daemon.database
        let townshipRole = "ld_op_\(UUID().uuidString.lowercased().prefix(8))", countyRole = "ld_op_\(UUID().uuidString.lowercased().prefix(8))"
        #expect(try liandongd(["operator", "grant", townshipRole, "--scope", township], database: url).status == 0)
        #expect(try liandongd(["operator", "grant", countyRole, "--scope", "620922"], database: url).status == 0)
        let townshipOperator = try PGConnection(conninfo: url.replacingOccurrences(of: "user=postgres", with: "user=\(townshipRole)"))
        let countyOperator = try PGConnection(conninfo: url.replacingOccurrences(of: "user=postgres", with: "user=\(countyRole)"))
        #expect(try townshipOperator.int("SELECT count(*) FROM liandong.citizen_request_status") == 1)
        #expect(try townshipOperator.int("SELECT count(*) FROM liandong.citizen_contacts") == 0)
        #expect(try countyOperator.int("SELECT count(*) FROM liandong.citizen_contacts") == 1)
        // The server itself can read through a county-scoped operator.
        let scoped = try Open311Process(daemonAck: s.daemon.ack, database: url, environment: [
            "LIANDONG_OPEN311_DATABASE_URL": url.replacingOccurrences(of: "user=postgres", with: "user=\(countyRole)"),
        ])
        #expect(try scoped.get("requests/\(id).json", query: ["api_key": Self.key]).list.first?["status"] as? String == "open")
        #expect(server.stop() == 0)
    }

    @Test("POST and GET requests in XML; GET requests lists only the app's own, filters by status, service and dates (at most 90 days apart)")
    func listing() throws {
        let s = try Scene()
        let server = try Open311Process(daemonAck: s.daemon.ack, database: s.daemon.database)
        var ids: [String] = []
        for (n, service) in ["dispute", "environment", "dispute"].enumerated() {
            let p = offset(s.centre, east: Double(n) * 400)
            let answer = try server.post("requests.xml", ["api_key": Self.key, "service_code": service, "lat": String(p.lat), "long": String(p.lon)])
            #expect(answer.status == 200, "\(answer.body)")
            let x = try answer.xml
            #expect(x.name == "service_requests" && x.children.first?.name == "request")
            ids.append(try #require(x.children.first?.value("service_request_id")))
        }
        let all = try server.get("requests.json", query: ["api_key": Self.key])
        #expect(try Set(try all.list.compactMap { $0["service_request_id"] as? String }) == Set(ids))
        #expect(try server.get("requests.json", query: ["api_key": Self.key, "service_code": "dispute"]).list.count == 2)
        #expect(try server.get("requests.json", query: ["api_key": Self.key, "service_request_id": "\(ids[0]),\(ids[2])"]).list.count == 2)
        #expect(try server.get("requests.json", query: ["api_key": Self.key, "status": "closed"]).list.isEmpty)
        #expect(try server.get("requests.json", query: ["api_key": Self.key, "status": "closed", "service_request_id": ids[1]]).list.count == 1,
                "service_request_id overrides the other arguments")
        let hourAgo = Timestamp.formatCST(s.now - 3600)
        #expect(try server.get("requests.xml", query: ["api_key": Self.key, "start_date": hourAgo]).xml.children.count == 3)
        #expect(try server.get("requests.json", query: ["api_key": Self.key, "end_date": hourAgo]).list.isEmpty)
        let wide = try server.get("requests.json", query: ["api_key": Self.key, "start_date": Timestamp.formatCST(s.now - 100 * 86_400),
                                                           "end_date": Timestamp.formatCST(s.now)])
        #expect(try wide.status == 400 && (try wide.list.first?["description"] as? String)?.contains("90 days") == true)
        // Another app sees none of them, and cannot read one by id.
        #expect(try server.get("requests.json", query: ["api_key": Open311Process.slowKey]).list.isEmpty)
        #expect(try server.get("requests/\(ids[0]).json", query: ["api_key": Open311Process.slowKey]).status == 404)
    }

    @Test("every error in the spec's form, JSON and XML: 400 missing or invalid fields and liandongd's refusal, 403 no or a bad api_key, 404 unknown id, 413 over 64 KiB, 429 over the app's rate with Retry-After")
    func errors() throws {
        let s = try Scene()
        let server = try Open311Process(daemonAck: s.daemon.ack, database: s.daemon.database)
        let here = ["api_key": Self.key, "service_code": "theft", "lat": String(s.centre.lat), "long": String(s.centre.lon)]
        func expectError(_ answer: HTTPAnswer, _ code: Int, _ words: String, xml: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(answer.status == code, "\(answer.body)", sourceLocation: sourceLocation)
            let description: String?
            if xml {
                let e = try answer.xml
                #expect(e.name == "errors" && e.children.first?.value("code") == String(code), sourceLocation: sourceLocation)
                description = e.children.first?.value("description")
            } else {
                let e = try answer.list.first
                #expect(e?["code"] as? Int == code, sourceLocation: sourceLocation)
                description = e?["description"] as? String
            }
            #expect(description?.contains(words) == true, "\(description ?? answer.body)", sourceLocation: sourceLocation)
        }
        var f = here
        f["api_key"] = nil
        try expectError(try server.post("requests.json", f), 403, "api_key is required")
        f["api_key"] = "k-wrong"
        try expectError(try server.post("requests.xml", f), 403, "not valid", xml: true)
        try expectError(try server.get("requests.json"), 403, "api_key is required")
        f = here
        f["service_code"] = nil
        try expectError(try server.post("requests.json", f), 400, "service_code is required")
        f["service_code"] = "parking"
        try expectError(try server.post("requests.xml", f), 400, "not a service", xml: true)
        f = here
        f["lat"] = nil
        f["address_string"] = "渊泉镇 文化街"
        try expectError(try server.post("requests.json", f), 400, "cannot locate address_string")
        f = here
        f["lat"] = "91.5"
        try expectError(try server.post("requests.json", f), 400, "not a position on Earth")
        f = here
        f["crs"] = "cgcs2000"
        try expectError(try server.post("requests.json", f), 400, "crs")
        f = here
        f["media_url"] = "file:///etc/passwd"
        try expectError(try server.post("requests.json", f), 400, "media_url")
        try expectError(try server.post("requests.json", here, headers: ["Content-Type": "multipart/form-data; boundary=x"]), 400, "form-encoded")
        try expectError(try http(port: server.port, "POST", "/open311/v2/requests.json", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                                 body: Array("api_key=\(Self.key)&service_code=%ZZ".utf8)), 400, "hex digits")
        // liandongd's refusal: outside every grid of the county.
        f = here
        f["lat"] = "39.9"
        f["long"] = "116.4"
        try expectError(try server.post("requests.json", f), 400, "outside")
        try expectError(try server.get("requests/620922-0000000000000000.json", query: ["api_key": Self.key]), 404, "no request")
        try expectError(try server.post("requests/620922-0000000000000000/feedback.xml", ["api_key": Self.key, "rating": "3"]), 404, "no request", xml: true)
        // 64 KiB and one byte more.
        var big = here
        big["description"] = String(repeating: "a", count: 65_536)
        try expectError(try server.post("requests.json", big), 413, "64 KiB")
        // The slow app may file 2 a minute: the third is refused with a Retry-After.
        var slow = here
        slow["api_key"] = Open311Process.slowKey
        #expect(try server.post("requests.json", slow).status == 200)
        #expect(try server.post("requests.json", slow).status == 200)
        let limited = try server.post("requests.xml", slow)
        try expectError(limited, 429, "2 requests a minute", xml: true)
        #expect(Int(limited.headers["retry-after"] ?? "") ?? 0 >= 1)
        #expect(try s.count("SELECT count(*) FROM liandong.citizen_requests") == 2, "only what was answered 200 was filed")
        // Its own /metrics and /healthz, outside base_path: the answers by endpoint and code.
        let metrics = try httpGet(port: server.port, "/metrics").body
        #expect(DaemonProcess.metric("liandong_open311_requests_total{endpoint=\"file\",code=\"429\"}", in: metrics) == 1, "\(metrics)")
        #expect(DaemonProcess.metric("liandong_open311_requests_total{endpoint=\"file\",code=\"200\"}", in: metrics) == 2)
        #expect(DaemonProcess.metric("liandong_open311_requests_total{endpoint=\"file\",code=\"413\"}", in: metrics) == 1)
        #expect(DaemonProcess.metric("liandong_open311_commit_seconds_count", in: metrics) == 3, "two filed, one refused by liandongd")
        #expect(DaemonProcess.metric("liandong_open311_daemon_unanswered", in: metrics) == 0)
        #expect(try httpGet(port: server.port, "/healthz").status == 200)
    }

    @Test("a resident's request next to a camera's crowd alarm makes the joint dispatch")
    func joint() throws {
        let s = try Scene()
        let server = try Open311Process(daemonAck: s.daemon.ack, database: s.daemon.database)
        try s.send("alert", Wire.alert(id: "crowd-1", type: 10, priority: 3, at: s.now - 60, position: s.centre))
        try s.daemon.waitUntil(timeout: 10, "the camera's verify task") { try s.count("SELECT count(*) FROM liandong.tasks WHERE kind = 'verify'") == 1 }
        let p = offset(s.centre, east: 60)
        let filed = try server.post("requests.json", ["api_key": Self.key, "service_code": "gathering", "lat": String(p.lat), "long": String(p.lon),
                                                      "description": "村委会门口聚集了很多人 many people gathering at the village office"])
        #expect(filed.status == 200, "\(filed.body)")
        try s.daemon.waitUntil(timeout: 10, "the joint dispatch") {
            try s.count("SELECT count(*) FROM liandong.tasks WHERE kind = 'joint_dispatch'") == 1
                && s.count("SELECT count(*) FROM liandong.feed WHERE kind = 'joint_dispatch' AND body->>'description' LIKE '%village office%'") == 1
        }
        #expect(try s.count("SELECT count(*) FROM liandong.incidents") == 1)
    }
}
