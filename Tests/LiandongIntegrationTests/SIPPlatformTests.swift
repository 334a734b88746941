import Foundation
import LibPQ
import LiandongCore
import Testing

/// liandong-gb28181 as a platform, against SIPp playing an NVR and a camera: what it asks of a
/// device that registers (Catalog, DeviceInfo, arming, subscriptions), what the device answers,
/// and where that lands in liandongd's tables.
@Suite("GB/T 28181 platform through the bridge (SIPp)", .serialized)
struct SIPPlatformTests {
    static let nvr = "62092200001180000001", camera = SIPBridgeTests.camera
    static func channel(_ k: Int) -> String { "6209220000131" + String(format: "%07d", k + 500) }

    /// A bridge that reads liandongd's database (its known devices, operators' commands) and knows `devices`.
    static func bridge(_ s: Scene, devices: [String]) throws -> BridgeProcess {
        let file = "\(Scratch.directory)/ld-devices-\(UUID().uuidString.prefix(8))"
        try (devices.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return try BridgeProcess(daemonAck: s.daemon.ack, environment: [
            "LIANDONG_DATABASE_URL": s.daemon.database, "LIANDONG_GB28181_DEVICES_FILE": file,
        ])
    }

    /// Runs `body`; when it fails, the failure says what the bridge, SIPp and the tables saw.
    static func explaining(_ s: Scene, _ bridge: BridgeProcess, _ sipp: SIPp.Background, _ body: () throws -> Void) throws {
        do { try body() } catch {
            let devices = (try? s.db.query("SELECT row_to_json(d)::text FROM liandong.devices d").rows.map { $0[0] ?? "" }) ?? []
            let channels = (try? s.db.query("SELECT count(*) FROM liandong.device_channels").scalar) ?? "?"
            let events = (try? s.db.query("SELECT device_id || ' ' || coalesce(parent_device_id, '-') || ' ' || source_crs FROM liandong.events").rows.map { $0[0] ?? "" }) ?? []
            let rejected = (try? s.db.query("SELECT reason || ': ' || detail FROM liandong.rejected_messages").rows.map { $0[0] ?? "" }) ?? []
            let metrics = ((try? httpGet(port: bridge.metricsPort, "/metrics").body) ?? "").split(separator: "\n")
                .filter { $0.hasPrefix("liandong_gb28181_events_total") || $0.hasPrefix("liandong_gb28181_responses_total") }
            let result = try sipp.wait(timeout: 1)
            throw TestFailure("\(error)\ndevices: \(devices)\nchannels: \(channels)\nevents: \(events)\nrejected: \(rejected)\nbridge: \(metrics.joined(separator: "\n"))\n"
                + "bridge log: \(bridge.log.suffix(2000))\nSIPp: \(result.output.suffix(3000))")
        }
    }

    @Test("an NVR: its Catalog in two MESSAGEs (SumNum 70, one channel outside every grid), its DeviceInfo, SetGuard answered OK, alarm and catalog subscriptions with a NOTIFY each; alarms by channel land at the channel's camera and at the channel's position; liandongd device disarm reaches it")
    func nvr() throws {
        let s = try Scene(environment: ["LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "0"])
        let bridge = try Self.bridge(s, devices: [Self.nvr])
        let sipp = try SIPp.Background("nvr", platform: "nvr_platform", bridge: bridge, device: Self.nvr, channel: Self.channel(0), pause: 12_000,
                                       keys: ["camera": Self.camera, "chprefix": "62092200001310000", "lon": String(s.centre.lon), "lat": String(s.centre.lat)])
        try Self.explaining(s, bridge, sipp) { try waitUntil(timeout: 30, "the NVR's catalog, device row, arming and subscriptions recorded") {
            try s.count("SELECT count(*) FROM liandong.device_channels WHERE device_id = '\(Self.nvr)' AND gone_at IS NULL") == 70
                && s.count("""
                    SELECT count(*) FROM liandong.devices WHERE device_id = '\(Self.nvr)' AND guard = 'armed' AND channel_count = 70
                    AND alarm_subscription = 'active' AND catalog_subscription = 'active'
                    """) == 1
        } }
        let device = try s.db.query("SELECT manufacturer, model, firmware, transport, registered_from FROM liandong.devices WHERE device_id = $1", [Self.nvr])
        #expect(device[0, "manufacturer"] == "Hikvision" && device[0, "model"] == "DS-7864N-K4" && device[0, "firmware"] == "V4.30.085")
        #expect(device[0, "transport"] == "udp" && device[0, "registered_from"]?.hasPrefix("127.0.0.1:") == true)
        #expect(try s.count("SELECT count(*) FROM liandong.channels_without_camera WHERE device_id = '\(Self.nvr)' AND grid_code IS NULL") == 68,
                "68 channels without a position or outside every grid (channel 0 has one inside, channel 1 is the camera)")
        #expect(try s.db.query("SELECT name FROM liandong.device_channels WHERE channel_id = '\(Self.channel(7))'").scalar == "通道8")
        // The alarm NOTIFY names the camera channel: placed by the registry camera, its NVR recorded.
        try Self.explaining(s, bridge, sipp) { try waitUntil(timeout: 15, "the NOTIFY's alarm stored and the catalog NOTIFY's change") {
            try s.count("SELECT count(*) FROM liandong.events WHERE device_id = '\(Self.camera)' AND parent_device_id = '\(Self.nvr)' AND source_crs = 'camera'") == 1
                && s.db.query("SELECT status FROM liandong.device_channels WHERE channel_id = '\(Self.channel(3))'").scalar == "OFF"
        } }
        #expect(try s.db.query("SELECT string_agg(change || ' ' || status, ',' ORDER BY at) FROM liandong.device_channel_history WHERE channel_id = '\(Self.channel(3))'").scalar
                == "listed ON,status OFF")
        // An operator disarms it through the bridge.
        let disarm = try liandongd(["device", "disarm", Self.nvr], database: s.daemon.database)
        #expect(disarm.status == 0 && disarm.stdout.contains("device \(Self.nvr): disarmed"), "\(disarm.stdout)\(disarm.stderr)\n\(bridge.log.suffix(1500))")
        #expect(try s.db.query("SELECT taken_by FROM liandong.device_commands WHERE device_id = $1", [Self.nvr]).scalar == BridgeProcess.serverID)
        // Its last alarm names channel 0, not a camera: placed at the channel's catalog position.
        let result = try sipp.wait()
        #expect(result.status == 0, "\(result.output.suffix(2500))\n\(bridge.log.suffix(1500))")
        let placed = try s.db.query("""
            SELECT source_crs, parent_device_id, grid_code, round(ST_Distance(geog, ST_MakePoint($1, $2)::geography)) AS metres
            FROM liandong.events WHERE device_id = $3
            """, [String(s.centre.lon), String(s.centre.lat), Self.channel(0)])
        #expect(placed.count == 1 && placed[0, "source_crs"] == "channel" && placed[0, "parent_device_id"] == Self.nvr
                && placed[0, "grid_code"] == Scene.ruralGrid && placed[0, "metres"] == "0")
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"catalogs_complete\"}") == 1)
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"catalog_notifies\"}") == 1)
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"guard_armed\"}") == 1)
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"guard_disarmed\"}") == 1)
        #expect(try s.daemon.metric("liandong_device_facts_total{kind=\"subscription\"}") == 2)
        #expect(bridge.stop() == 0)
    }

    @Test("device arm without a bridge to take it: a clear error within --wait, the command withdrawn; a malformed id is refused")
    func armWithoutBridge() throws {
        let s = try Scene()
        let r = try liandongd(["device", "arm", Self.nvr, "--wait", "2"], database: s.daemon.database)
        #expect(r.status == 1 && r.stderr.contains("no liandong-gb28181 took the arm command within 2 s"), "\(r.stdout)\(r.stderr)")
        #expect(try s.count("SELECT count(*) FROM liandong.device_commands") == 0)
        let bad = try liandongd(["device", "disarm", "123", "--wait", "2"], database: s.daemon.database)
        #expect(bad.status == 1 && bad.stderr.contains("123 is not a 20-digit GB/T 28181 device id"), "\(bad.stderr)")
    }

    @Test("a camera that answers 501 to SetGuard: recorded as refused with the device's words, and not asked again while registered")
    func cameraRefuses() throws {
        let s = try Scene()
        let bridge = try Self.bridge(s, devices: [])
        let sipp = try SIPp.Background("nvr", platform: "camera_platform", bridge: bridge, device: Self.camera, channel: Self.camera, pause: 4_000)
        try Self.explaining(s, bridge, sipp) { try waitUntil(timeout: 30, "the refusal recorded") {
            try s.count("SELECT count(*) FROM liandong.devices WHERE device_id = '\(Self.camera)' AND guard = 'refused' AND guard_detail = '501 Not Implemented'") == 1
        } }
        let result = try sipp.wait()
        #expect(result.status == 0, "\(result.output.suffix(2500))\n\(bridge.log.suffix(1500))")
        let row = try s.db.query("SELECT manufacturer, alarm_subscription, channel_count FROM liandong.devices WHERE device_id = $1", [Self.camera])
        #expect(row[0, "manufacturer"] == "Dahua" && row[0, "alarm_subscription"] == "active" && row[0, "channel_count"] == "1")
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE device_id = '\(Self.camera)' AND parent_device_id IS NULL AND source_crs = 'camera'") == 1,
                "its own alarm, at its registered position")
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"guard_set\"}") == 1)
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"refused_guard\"}") == 1)
        #expect(bridge.stop() == 0)
    }
}
