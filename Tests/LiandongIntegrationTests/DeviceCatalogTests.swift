import Foundation
import LiandongClient
import LiandongCore
import LibPQ
import Testing

/// liandong.device_catalog.v1 on the acknowledged path, as liandong-gb28181 sends it: channels
/// recorded, status changes and channels gone in their history, the view of channels that are not
/// cameras yet.
@Suite("Device catalogs")
struct DeviceCatalogTests {
    static let nvr = "62092200001180000001"

    static func catalog(sn: String, at: Double, complete: Bool = true, _ items: [CatalogItem]) -> DeviceCatalog {
        var a = CatalogAssembly(deviceID: nvr, sn: sn, deadline: 0)
        _ = a.add(CatalogPart(sn: sn, deviceID: nvr, sumNum: complete ? items.count : items.count + 1, items: items))
        return DeviceCatalog(a, at: at)
    }

    @Test("a catalog's channels are recorded; the next one changes a status and leaves one out (gone, with history); a partial one marks nothing gone; channels that are not cameras are listed with their grid")
    func channels() throws {
        let s = try Scene()
        let client = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, retryAfter: 1)
        func send(_ c: DeviceCatalog) throws -> IngestClient.Answer {
            try client.send(topic: "catalog", body: c.json(), id: c.id)
            var answers: [IngestClient.Answer] = []
            try waitUntil(timeout: 10, "the catalog answered") {
                answers += try client.poll(timeout: 0.1)
                return answers.contains { $0.id == c.id }
            }
            return answers.first { $0.id == c.id }!
        }
        let camera = "62092200001320000004"  // a camera of the registry, also a channel of the NVR
        let inside = offset(s.centre, east: 50), outsideCounty = LonLat(lon: 100.0, lat: 30.0)
        let now = Date().timeIntervalSince1970
        let first = Self.catalog(sn: "1", at: now - 60, [
            CatalogItem(channelID: camera, name: "门口", online: true),
            CatalogItem(channelID: "62092200001310000101", name: "路口", parentID: Self.nvr, online: true, position: inside),
            CatalogItem(channelID: "62092200001310000102", name: "远处", online: false, position: outsideCounty),
        ])
        let answer = try send(first)
        #expect(answer.ok, "\(answer.error ?? "")")
        #expect(try s.count("SELECT count(*) FROM liandong.device_channels WHERE device_id = '\(Self.nvr)' AND gone_at IS NULL") == 3)
        #expect(try s.count("SELECT count(*) FROM liandong.device_channel_history WHERE change = 'listed'") == 3)
        let without = try s.db.query("SELECT channel_id, grid_code FROM liandong.channels_without_camera ORDER BY channel_id").rows
        #expect(without.map { $0[0]! } == ["62092200001310000101", "62092200001310000102"])
        #expect(without[0][1] == Scene.ruralGrid && without[1][1] == nil, "\(without)")
        // A repeat: one effect.
        #expect(try send(first).ok)
        #expect(try s.count("SELECT count(*) FROM liandong.device_channel_history") == 3)

        // The next catalog: the camera went OFF, 102 is no longer listed.
        #expect(try send(Self.catalog(sn: "2", at: now - 30, [
            CatalogItem(channelID: camera, name: "门口", online: false),
            CatalogItem(channelID: "62092200001310000101", name: "路口", parentID: Self.nvr, online: true, position: inside),
        ])).ok)
        #expect(try s.db.query("SELECT status FROM liandong.device_channels WHERE channel_id = '\(camera)'").scalar == "OFF")
        #expect(try s.count("SELECT count(*) FROM liandong.device_channels WHERE channel_id = '62092200001310000102' AND gone_at IS NOT NULL") == 1)
        #expect(try s.db.query("SELECT string_agg(change, ',' ORDER BY at, change) FROM liandong.device_channel_history WHERE channel_id IN ('\(camera)', '62092200001310000102')").scalar
            == "listed,listed,gone,status")
        // A partial catalog (its time ran out) lists one channel: nothing is marked gone.
        #expect(try send(Self.catalog(sn: "3", at: now, complete: false, [
            CatalogItem(channelID: "62092200001310000101", name: "路口", online: true, position: inside),
        ])).ok)
        #expect(try s.count("SELECT count(*) FROM liandong.device_channels WHERE gone_at IS NULL") == 2)
        // (The repeat of the first counts: it was recorded again, with no effect.)
        #expect(try s.daemon.metric("liandong_device_catalogs_total{result=\"complete\"}") == 3)
        #expect(try s.daemon.metric("liandong_device_catalogs_total{result=\"partial\"}") == 1)

        // Refused with a reason: a device of no county, a malformed channel.
        var stranger = Self.catalog(sn: "4", at: now, [])
        stranger.deviceID = "99999900001180000001"
        let refused = try send(stranger)
        #expect(!refused.ok && refused.error?.hasPrefix("unknown_device") == true, "\(refused.error ?? "")")
        let bad = Array(#"{"schema":"liandong.device_catalog.v1","device_id":"62092200001180000001","sn":"5","at":"2026-12-06T10:00:00+08:00","sum_num":1,"complete":true,"channels":[{"channel_id":"1"}]}"#.utf8)
        try client.send(topic: "catalog", body: bad, id: "bad-catalog")
        try waitUntil(timeout: 10, "the malformed catalog dead-lettered") {
            try s.count("SELECT count(*) FROM liandong.rejected_messages WHERE reason = 'invalid_device_id' AND convert_from(topic, 'UTF8') = 'catalog'") == 1
        }
    }

    @Test("an alarm naming a channel: placed by the registry camera, else by the channel's catalog position (source_crs channel), its NVR recorded on the event; a channel without position is refused with the reason; device facts land in liandong.devices")
    func alarmsByChannel() throws {
        let s = try Scene()
        let client = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, retryAfter: 1)
        func answer(_ topic: String, _ body: [UInt8], _ id: String) throws -> IngestClient.Answer {
            try client.send(topic: topic, body: body, id: id)
            var answers: [IngestClient.Answer] = []
            try waitUntil(timeout: 10, "\(id) answered") {
                answers += try client.poll(timeout: 0.1)
                return answers.contains { $0.id == id }
            }
            return answers.first { $0.id == id }!
        }
        let camera = "62092200001320000004", placed = "62092200001310000201", blind = "62092200001310000202"
        let inside = offset(s.centre, east: 80)
        let listed = Self.catalog(sn: "1", at: s.now - 60, [
            CatalogItem(channelID: camera, online: true),
            CatalogItem(channelID: placed, name: "路口", online: true, position: inside),
            CatalogItem(channelID: blind, name: "无坐标", online: true),
        ])
        #expect(try answer("catalog", listed.json(), listed.id).ok)
        func alarm(_ channel: String, sn: Int) -> (body: [UInt8], id: String) {
            let time = String(Timestamp.formatCST(s.now - 10).prefix(19))
            let body = "<?xml version=\"1.0\"?><Notify><CmdType>Alarm</CmdType><SN>\(sn)</SN><DeviceID>\(channel)</DeviceID>"
                + "<AlarmPriority>2</AlarmPriority><AlarmMethod>5</AlarmMethod><AlarmTime>\(time)</AlarmTime><Info><AlarmType>6</AlarmType></Info></Notify>"
            return (Array(body.utf8), "gb28181:\(channel):\(sn):\(time)")
        }
        for (channel, sn) in [(camera, 1), (placed, 2)] {
            let a = alarm(channel, sn: sn)
            let ok = try answer("gb28181", a.body, a.id)
            #expect(ok.ok, "\(ok.error ?? "")")
        }
        let rows = try s.db.query("""
            SELECT device_id, parent_device_id, source_crs, grid_code, round(ST_Distance(geog, ST_MakePoint($1, $2)::geography)) AS metres
            FROM liandong.events ORDER BY device_id
            """, [String(inside.lon), String(inside.lat)])
        #expect(rows.count == 2)
        #expect(rows[1, "device_id"] == camera && rows[1, "source_crs"] == "camera" && rows[1, "parent_device_id"] == Self.nvr)
        #expect(rows[0, "device_id"] == placed && rows[0, "source_crs"] == "channel" && rows[0, "parent_device_id"] == Self.nvr
                && rows[0, "metres"] == "0" && rows[0, "grid_code"] != nil)
        // A catalog NOTIFY deletes the placed channel (DEL): gone, with history; its next alarm has
        // no position to be placed at (the same batch's planner forgets it too).
        var deleted = CatalogItem(channelID: placed)
        deleted.event = "DEL"
        let removal = Self.catalog(sn: "9", at: s.now - 5, complete: false, [deleted])
        #expect(try answer("catalog", removal.json(), removal.id).ok)
        #expect(try s.count("SELECT count(*) FROM liandong.device_channels WHERE channel_id = '\(placed)' AND gone_at IS NOT NULL") == 1)
        #expect(try s.db.query("SELECT string_agg(change, ',' ORDER BY at) FROM liandong.device_channel_history WHERE channel_id = '\(placed)'").scalar
                == "listed,gone")
        let afterDelete = try answer("gb28181", alarm(placed, sn: 4).body, alarm(placed, sn: 4).id)
        #expect(!afterDelete.ok && afterDelete.error?.hasPrefix("unknown_device") == true, "\(afterDelete.error ?? "")")
        let why = try liandongd(["event", "why", alarm(placed, sn: 2).id], database: s.daemon.database)
        #expect(why.status == 0 && why.stdout.contains("a channel of device \(Self.nvr)") && why.stdout.contains("at its channel's position"),
                "\(why.stdout)\(why.stderr)")
        let refused = try answer("gb28181", alarm(blind, sn: 3).body, alarm(blind, sn: 3).id)
        #expect(!refused.ok && refused.error?.contains("is a channel of device \(Self.nvr) whose catalog gives no position") == true,
                "\(refused.error ?? "")")

        // Device facts as the bridge sends them: the row of liandong.devices; an older one changes nothing.
        let facts: [DeviceFact] = [
            DeviceFact(deviceID: Self.nvr, at: s.now - 30, .registration(DeviceFact.Registration(transport: .tcp, from: "10.1.2.3:5060",
                                                                                               expiresAt: s.now + 3570))),
            DeviceFact(deviceID: Self.nvr, at: s.now - 29, .info(DeviceFact.Info(name: "NVR-1", manufacturer: "Hikvision", model: "DS-7864N",
                                                                                 firmware: "V4.30", channels: 64))),
            DeviceFact(deviceID: Self.nvr, at: s.now - 28, .guardState(.refused, detail: "501 Not Implemented")),
            DeviceFact(deviceID: Self.nvr, at: s.now - 27, .subscription(.alarm, .active, until: s.now + 3573, detail: nil)),
            DeviceFact(deviceID: Self.nvr, at: s.now - 40, .guardState(.armed, detail: nil)),
        ]
        for f in facts { #expect(try answer("device", f.json(), f.id).ok) }
        let device = try s.db.query("""
            SELECT transport, registered_from, manufacturer, model, firmware, channel_count, guard, guard_detail, alarm_subscription,
                   catalog_subscription, alarm_subscription_until > now() AS later
            FROM liandong.devices WHERE device_id = $1
            """, [Self.nvr])
        #expect(device[0, "transport"] == "tcp" && device[0, "registered_from"] == "10.1.2.3:5060" && device[0, "manufacturer"] == "Hikvision")
        #expect(device[0, "model"] == "DS-7864N" && device[0, "firmware"] == "V4.30" && device[0, "channel_count"] == "64")
        #expect(device[0, "guard"] == "refused" && device[0, "guard_detail"] == "501 Not Implemented", "the older armed changes nothing")
        #expect(device[0, "alarm_subscription"] == "active" && device[0, "later"] == "t" && device[0, "catalog_subscription"] == nil)
        #expect(try s.daemon.metric("liandong_device_facts_total{kind=\"guard\"}") == 2)
        let bad = Array(#"{"schema":"liandong.device_info.v1","device_id":"62092200001180000001","at":"2026-12-06T10:00:00+08:00","guard":{"state":"on"},"info":{}}"#.utf8)
        try client.send(topic: "device", body: bad, id: "bad-fact")
        try waitUntil(timeout: 10, "the fact with two parts dead-lettered") {
            try s.count("SELECT count(*) FROM liandong.rejected_messages WHERE detail LIKE '%exactly one of registration, info, guard, subscription%'") == 1
        }
    }

    @Test("camera sync --from-catalog: a channel inside a grid is added, a camera whose channel moved is moved, the rest skipped with the reason; --dry-run writes nothing; --division limits it; a second sync changes nothing")
    func cameraSync() throws {
        let s = try Scene()
        let url = s.daemon.database
        let client = try IngestClient(context: s.daemon.context, endpoint: s.daemon.ack, retryAfter: 1)
        let camera = "62092200001320000004"
        let moved = offset(try Scene.centre(of: Scene.ruralGrid, s.db), north: 120)
        let catalog = Self.catalog(sn: "1", at: Date().timeIntervalSince1970, [
            CatalogItem(channelID: "62092200001310000201", name: "新路口", position: offset(s.centre, east: 80)),
            CatalogItem(channelID: "62092200001310000202", name: "无位置"),
            CatalogItem(channelID: "62092200001310000203", name: "县外", position: LonLat(lon: 100.0, lat: 30.0)),
            CatalogItem(channelID: camera, name: "门口", position: moved),
        ])
        try client.send(topic: "catalog", body: catalog.json(), id: catalog.id)
        #expect(try client.flush(timeout: 10))
        let before = try s.count("SELECT count(*) FROM liandong.cameras")

        let dry = try liandongd(["camera", "sync", "--from-catalog", "--dry-run"], database: url)
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("added 62092200001310000201 新路口 in grid \(Scene.ruralGrid)"), "\(dry.stdout)")
        #expect(dry.stdout.contains("moved \(camera)") && dry.stdout.contains("skipped 62092200001310000202: its catalog gives no position")
            && dry.stdout.contains("skipped 62092200001310000203: its position 100.0, 30.0 lies outside every grid"))
        #expect(dry.stdout.hasSuffix("camera sync --from-catalog: 1 added, 1 moved, 2 skipped (dry run: nothing written)\n"))
        #expect(try s.count("SELECT count(*) FROM liandong.cameras") == before)

        let elsewhere = try liandongd(["camera", "sync", "--from-catalog", "--division", "620922101", "--dry-run"], database: url)
        #expect(elsewhere.stdout.contains("0 added, 0 moved, 4 skipped") && elsewhere.stdout.contains("outside division 620922101"),
                "\(elsewhere.stdout)")
        #expect(try liandongd(["camera", "sync"], database: url).stderr.contains("needs --from-catalog"))

        let real = try liandongd(["camera", "sync", "--from-catalog"], database: url)
        #expect(real.status == 0 && real.stdout.contains("1 added, 1 moved, 2 skipped\n"), "\(real.stdout)\(real.stderr)")
        #expect(try s.count("SELECT count(*) FROM liandong.cameras") == before + 1)
        #expect(try s.db.query("SELECT grid_code FROM liandong.cameras WHERE device_id = '62092200001310000201'").scalar == Scene.ruralGrid)
        #expect(try s.count("SELECT count(*) FROM liandong.cameras WHERE device_id = '\(camera)' AND ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(\(moved.lon), \(moved.lat)), 4326)::geography, 1)") == 1)
        #expect(try s.count("SELECT count(*) FROM liandong.channels_without_camera WHERE channel_id = '62092200001310000201'") == 0)
        let again = try liandongd(["camera", "sync", "--from-catalog"], database: url)
        #expect(again.stdout.contains("0 added, 0 moved, 2 skipped"), "\(again.stdout)")
    }
}
