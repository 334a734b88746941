import Foundation
import LibPQ
import LiandongClient
import LiandongCore
import Testing

/// 视频在线率: device status reports over the acknowledged path become device_status, its
/// history and the online rate per division and day.
@Suite("Camera online rate")
struct CameraOnlineRateTests {
    @Test("a camera online 6 of yesterday's 24 hours, another all day, the rest never registered: the village's, township's and county's online_pct")
    func onlineRate() throws {
        let s = try Scene()
        let client = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack)
        // Two cameras of one village; yesterday in China Standard Time.
        let pair = try s.db.query("""
            SELECT c.device_id, g.village_code FROM liandong.cameras c JOIN liandong.grids g USING (grid_code)
            WHERE g.village_code = (SELECT g2.village_code FROM liandong.cameras c2 JOIN liandong.grids g2 USING (grid_code)
                                    GROUP BY g2.village_code HAVING count(*) >= 2 ORDER BY g2.village_code LIMIT 1)
            ORDER BY c.device_id LIMIT 2
            """)
        let (a, b, village) = (pair[0, "device_id"]!, pair[1, "device_id"]!, pair[0, "village_code"]!)
        let midnight = try #require(Double(try s.db.query(
            "SELECT extract(epoch FROM (((now() AT TIME ZONE 'Asia/Shanghai')::date - 1)::timestamp AT TIME ZONE 'Asia/Shanghai'))").scalar!))
        let reports = [
            DeviceStatusReport(deviceID: b, reason: .register, at: midnight - 3600),  // online since the day before
            DeviceStatusReport(deviceID: a, reason: .register, at: midnight + 10 * 3600),
            DeviceStatusReport(deviceID: a, reason: .keepalive, at: midnight + 11 * 3600),
            DeviceStatusReport(deviceID: a, reason: .timeout, at: midnight + 16 * 3600),
        ]
        for r in reports { try client.send(topic: "status", body: r.json(), id: r.id) }
        var answers: [IngestClient.Answer] = []
        try waitUntil(timeout: 20, "four answers") {
            answers += try client.poll(timeout: 0.1)
            return answers.count >= 4
        }
        let refused = answers.filter { !$0.ok }.map { "\($0.id) \($0.error ?? "")" }
        #expect(refused.isEmpty, "\(refused)")
        // A repeat has one effect.
        try client.send(topic: "status", body: reports[1].json(), id: reports[1].id)
        #expect(try client.flush(timeout: 20))
        #expect(try s.count("SELECT count(*) FROM liandong.device_status_history") == 3, "register, register, timeout (the keepalive changed nothing)")
        let now = try s.db.query("SELECT status, reason, extract(epoch FROM last_seen_at) AS seen FROM liandong.device_status WHERE device_id = $1", [a])
        #expect(now[0, "status"] == "offline" && now[0, "reason"] == "timeout" && now[0, "seen"].flatMap(Double.init) == midnight + 11 * 3600)

        func rate(_ division: String) throws -> (cameras: Int, online: Int, pct: Double)? {
            let r = try s.db.query("""
                SELECT cameras, cameras_online, online_pct FROM liandong.camera_online_rate
                WHERE division_code = $1 AND day = (now() AT TIME ZONE 'Asia/Shanghai')::date - 1
                """, [division])
            guard r.count == 1 else { return nil }
            return (Int(r[0, "cameras"]!)!, Int(r[0, "cameras_online"]!)!, Double(r[0, "online_pct"]!)!)
        }
        let inVillage = try s.db.int("SELECT count(*) FROM liandong.cameras c JOIN liandong.grids g USING (grid_code) WHERE g.village_code = '\(village)'")
        let v = try #require(try rate(village))
        #expect(v.cameras == inVillage && v.online == 2)
        #expect(abs(v.pct - (100 * (6.0 / 24 + 1) / Double(inVillage) * 10).rounded() / 10) < 0.051)
        let county = try #require(try rate("620922"))
        let all = try s.db.int("SELECT count(*) FROM liandong.cameras")
        #expect(county.cameras == all && county.online == 2)
        #expect(abs(county.pct - (100 * 1.25 / Double(all) * 10).rounded() / 10) < 0.051)
        let township = try #require(try rate(String(village.prefix(9))))
        #expect(township.online == 2 && township.cameras < all && township.cameras >= inVillage)
        // Today: b is still online, a is not.
        let today = try s.db.query("""
            SELECT cameras_online FROM liandong.camera_online_rate WHERE division_code = $1 AND day = (now() AT TIME ZONE 'Asia/Shanghai')::date
            """, [village])
        #expect(today.scalar == "1")
        #expect(try s.daemon.metric("liandong_device_status_reports_total{reason=\"register\"}") == 3, "reports received, the repeat included")

        // The assessment report of yesterday: the card and the townships' table.
        let day = try #require(try s.db.query("SELECT ((now() AT TIME ZONE 'Asia/Shanghai')::date - 1)::text").scalar)
        let out = "\(Scratch.directory)/ld-online-\(UUID().uuidString.prefix(8))"
        let made = try liandongd(["report", "--from", day, "--to", day, "--out", out], database: s.daemon.database)
        #expect(made.status == 0, "\(made.stderr)")
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        #expect(html.contains("<b>\(String(format: "%.1f", county.pct))%</b><span>视频在线率"))
        #expect(html.contains("<tr data-division=\"\(village.prefix(9))\"><td class=\"t\">"), "the township's row")
        try? FileManager.default.removeItem(atPath: out)
    }

    @Test("a camera that is an NVR's channel is online only while the NVR is online and the channel says ON: 12 of yesterday's 24 hours")
    func channelRule() throws {
        let s = try Scene()
        let client = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack)
        let camera = try #require(try s.db.query("SELECT device_id FROM liandong.cameras ORDER BY device_id LIMIT 1").scalar)
        let nvr = "62092210001180000077"
        let midnight = try #require(Double(try s.db.query(
            "SELECT extract(epoch FROM (((now() AT TIME ZONE 'Asia/Shanghai')::date - 1)::timestamp AT TIME ZONE 'Asia/Shanghai'))").scalar!))
        func catalog(_ at: Double, sn: Int, complete: Bool, _ item: String) -> (body: [UInt8], id: String) {
            let text = Timestamp.formatCST(at)
            let body = "{\"schema\":\"liandong.device_catalog.v1\",\"device_id\":\"\(nvr)\",\"sn\":\"\(sn)\",\"at\":\"\(text)\","
                + "\"sum_num\":1,\"complete\":\(complete),\"channels\":[\(item)]}"
            return (Array(body.utf8), "catalog:\(nvr):\(sn):\(text)")
        }
        // Listed (ON) before the day; the NVR registers at 00:00, the channel loses video 06:00-12:00,
        // the NVR times out at 18:00.
        let listed = catalog(midnight - 3600, sn: 1, complete: true, "{\"channel_id\":\"\(camera)\",\"status\":\"ON\"}")
        let lost = catalog(midnight + 6 * 3600, sn: 2, complete: false, "{\"channel_id\":\"\(camera)\",\"event\":\"VLOST\",\"status\":\"OFF\"}")
        let back = catalog(midnight + 12 * 3600, sn: 3, complete: false, "{\"channel_id\":\"\(camera)\",\"event\":\"ON\",\"status\":\"ON\"}")
        for c in [listed, lost, back] { try client.send(topic: "catalog", body: c.body, id: c.id) }
        for r in [DeviceStatusReport(deviceID: nvr, reason: .register, at: midnight),
                  DeviceStatusReport(deviceID: nvr, reason: .timeout, at: midnight + 18 * 3600)] {
            try client.send(topic: "status", body: r.json(), id: r.id)
        }
        var answers: [IngestClient.Answer] = []
        try waitUntil(timeout: 20, "five answers") {
            answers += try client.poll(timeout: 0.1)
            return answers.count >= 5
        }
        let refused = answers.filter { !$0.ok }.map { "\($0.id) \($0.error ?? "")" }
        #expect(refused.isEmpty, "\(refused)")
        let history = try s.db.query("SELECT change || ' ' || status FROM liandong.device_channel_history WHERE channel_id = $1 ORDER BY at", [camera])
        let changes: [String] = history.rows.compactMap { $0[0] }
        #expect(changes == ["listed ON", "status OFF", "status ON"])
        let rate = try s.db.query("""
            SELECT online_s FROM (
                SELECT extract(epoch FROM coalesce(lead(at) OVER (ORDER BY at, id), (now() AT TIME ZONE 'Asia/Shanghai')::date::timestamp AT TIME ZONE 'Asia/Shanghai') - at) AS online_s, status
                FROM liandong.camera_status_history(((now() AT TIME ZONE 'Asia/Shanghai')::date - 1)::timestamp AT TIME ZONE 'Asia/Shanghai',
                                                    (now() AT TIME ZONE 'Asia/Shanghai')::date::timestamp AT TIME ZONE 'Asia/Shanghai')
                WHERE device_id = $1) x WHERE status = 'online'
            """, [camera])
        let spans: [Double] = rate.rows.compactMap { row in row[0].flatMap { Double($0) } }
        #expect(spans == [21_600, 21_600], "00:00-06:00 and 12:00-18:00")
        // The camera's grid's village: its share of the day, through the assessment's function.
        let village = try #require(try s.db.query(
            "SELECT g.village_code FROM liandong.cameras c JOIN liandong.grids g USING (grid_code) WHERE c.device_id = $1", [camera]).scalar)
        let cameras = try s.db.int("SELECT count(*) FROM liandong.cameras c JOIN liandong.grids g USING (grid_code) WHERE g.village_code = '\(village)'")
        let day = try s.db.query("""
            SELECT cameras_online, online_pct FROM liandong.camera_online_rate((now() AT TIME ZONE 'Asia/Shanghai')::date - 1,
                                                                              (now() AT TIME ZONE 'Asia/Shanghai')::date - 1)
            WHERE division_code = $1
            """, [village])
        #expect(day[0, "cameras_online"] == "1")
        #expect(abs(Double(day[0, "online_pct"]!)! - (100 * 0.5 / Double(cameras) * 10).rounded() / 10) < 0.051)
    }
}
