import Foundation
import LibPQ
import LiandongClient
import LiandongCore
import Testing

/// liandong-gb28181 between real SIP clients (SIPp, and a device written here for what SIPp
/// cannot show) and a real liandongd: registration, keepalives, alarms, device status.
@Suite("GB/T 28181 SIP bridge", .serialized)
struct SIPBridgeTests {
    static let camera = "62092200001320000004"

    static func status(_ s: Scene, _ device: String) throws -> (status: String, reason: String)? {
        let r = try s.db.query("SELECT status, reason FROM liandong.device_status WHERE device_id = $1", [device])
        return r.count == 1 ? (r[0, "status"]!, r[0, "reason"]!) : nil
    }

    @Test("SIPp: register with digest (401, 200), wrong password 403, keepalive, an alarm storm over UDP and TCP (one alert each), unregister")
    func sipp() throws {
        let s = try Scene(environment: ["LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "0"])
        let bridge = try BridgeProcess(daemonAck: s.daemon.ack)
        let register = try SIPp.run("register", bridge: bridge, device: Self.camera)
        #expect(register.status == 0, "\(register.stdout.suffix(1500))\(register.stderr.suffix(500))\n\(bridge.log)")
        try waitUntil(timeout: 10, "the registration recorded") { try Self.status(s, Self.camera)?.reason == "register" }
        #expect(try bridge.metric("liandong_gb28181_responses_total{method=\"REGISTER\",code=\"401\"}") == 1)
        #expect(try bridge.metric("liandong_gb28181_responses_total{method=\"REGISTER\",code=\"200\"}") == 1)

        let refused = try SIPp.run("register_refused", bridge: bridge, device: "62092200001320000005", password: "wrong")
        #expect(refused.status == 0, "\(refused.stdout.suffix(1500))")
        #expect(try bridge.metric("liandong_gb28181_responses_total{method=\"REGISTER\",code=\"403\"}") == 1)
        #expect(try Self.status(s, "62092200001320000005") == nil)

        let keepalive = try SIPp.run("keepalive", bridge: bridge, device: Self.camera, calls: 3)
        #expect(keepalive.status == 0, "\(keepalive.stdout.suffix(1500))")
        #expect(try Self.status(s, Self.camera)?.reason == "keepalive")
        #expect(try s.daemon.metric("liandong_device_status_reports_total{reason=\"keepalive\"}") == 3)

        // A storm: 300 alarms over UDP at 150/s, then 100 over TCP; each answered 200 only after commit.
        let udp = try SIPp.run("alarm", bridge: bridge, device: Self.camera, calls: 300, rate: 150)
        #expect(udp.status == 0, "\(udp.stdout.suffix(2000))\n\(bridge.log.suffix(2000))")
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source_id LIKE 'gb28181:\(Self.camera):%'") == 300)
        // A registration is bound to its address and transport: the camera registers over TCP first.
        let overTCP = try SIPp.run("register", bridge: bridge, device: Self.camera, transport: "t1")
        #expect(overTCP.status == 0, "\(overTCP.stdout.suffix(1500))")
        let tcp = try SIPp.run("alarm", bridge: bridge, device: Self.camera, transport: "t1", calls: 100, rate: 100,
                               alarmTime: Date().timeIntervalSince1970 - 1)
        #expect(tcp.status == 0, "\(tcp.stdout.suffix(2000))\n\(bridge.log.suffix(2000))")
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source_id LIKE 'gb28181:\(Self.camera):%'") == 400)
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source_id LIKE 'gb28181:%' AND category = 'intrusion'") == 400)
        #expect(try bridge.metric("liandong_gb28181_responses_total{method=\"MESSAGE\",code=\"200\"}") == 403)
        #expect(try bridge.metric("liandong_gb28181_answer_seconds_count") == 403)

        let unregister = try SIPp.run("unregister", bridge: bridge, device: Self.camera)
        #expect(unregister.status == 0, "\(unregister.stdout.suffix(1500))")
        try waitUntil(timeout: 10, "the unregistration recorded") { try Self.status(s, Self.camera)?.status == "offline" }
        #expect(try Self.status(s, Self.camera)?.reason == "unregister")
        let history = try s.db.query("SELECT reason FROM liandong.device_status_history WHERE device_id = $1 ORDER BY at, id", [Self.camera])
        #expect(history.rows.map { $0[0]! } == ["register", "register", "unregister"], "registered over UDP, again over TCP, then gone")
        #expect(bridge.stop() == 0)
    }

    @Test("200 only after liandongd committed: with the daemon away the alarm waits (100 Trying), then 200; a retransmission gets the same 200 and has one effect; the Response MESSAGE follows")
    func acknowledgedOnly() throws {
        let s = try Scene(environment: ["LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "0"])
        let bridge = try BridgeProcess(daemonAck: s.daemon.ack)
        let device = try SIPDevice(id: Self.camera, bridgePort: bridge.sipPort)
        #expect(try device.register() == 200)
        #expect(try s.daemon.stop() == 0)

        let (body, id) = GB28181IngestTests.alarm(sn: 9001, at: Date().timeIntervalSince1970 - 2, position: s.centre)
        let alarm = device.request("MESSAGE", branch: "a9001", body: body)
        device.send(alarm)
        #expect(try device.receive(timeout: 2, where: { $0.statusCode != nil && $0.statusCode! >= 200 }) == nil)
        device.send(alarm)
        #expect(try device.receive(timeout: 2, where: { $0.statusCode == 100 }) != nil)

        try s.daemon.restart()
        var ok: SIPMessage?
        try waitUntil(timeout: 20, "the 200 once liandongd is back") {
            device.send(alarm)  // the device retransmits until it has a final answer
            ok = try device.receive(timeout: 0.5, where: { $0.statusCode == 200 && $0.cseq?.method == "MESSAGE" })
            return ok != nil
        }
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source_id = '\(id)'") == 1)
        #expect(try s.db.query("SELECT payload->>'alarm_description' FROM liandong.events WHERE source_id = $1", [id]).scalar == "区域入侵")
        // The platform's answer to the alarm, as GB/T 28181 has it: a MESSAGE with <Response>.
        let response = try #require(try device.receive(timeout: 5, where: { $0.method == "MESSAGE" }))
        let text = String(decoding: response.body, as: UTF8.self)
        #expect(text.contains("<CmdType>Alarm</CmdType>") && text.contains("<SN>9001</SN>") && text.contains("<Result>OK</Result>"))
        #expect(response.from?.uri.user == BridgeProcess.serverID)
        device.send(response.response(200, "OK", toTag: "dev"))
        // A late retransmission: the same answer, no second effect.
        device.send(alarm)
        let again = try #require(try device.receive(timeout: 3, where: { $0.statusCode == 200 && $0.cseq?.method == "MESSAGE" }))
        #expect(again.to?.tag == ok?.to?.tag)
        #expect(try s.count("SELECT count(*) FROM liandong.events WHERE source_id = '\(id)'") == 1)
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"outgoing_answered\"}") == 1)

        // A body liandongd refuses: 400 with its reason, and a dead letter; a device never registered: 403.
        let old = Array("<?xml version=\"1.0\"?><Notify><CmdType>Alarm</CmdType><SN>3</SN><DeviceID>\(Self.camera)</DeviceID><AlarmPriority>1</AlarmPriority><AlarmMethod>5</AlarmMethod><AlarmTime>2020-01-01T00:00:00</AlarmTime></Notify>".utf8)
        device.send(device.request("MESSAGE", branch: "old3", body: old))
        let bad = try #require(try device.receive(timeout: 10, where: { $0.statusCode == 400 }))
        #expect(bad.header("Warning")?.contains("time_out_of_range") == true)
        #expect(try s.count("SELECT count(*) FROM liandong.rejected_messages WHERE reason = 'time_out_of_range'") == 1)
        // A body the bridge cannot read reaches liandongd all the same: a dead letter with its raw
        // bytes and liandongd's reason, then the device's 400 with that reason.
        let garbage = Array("<Notify><CmdType>Alarm</CmdType><SN>4".utf8)
        device.send(device.request("MESSAGE", branch: "garbage4", body: garbage))
        let unread = try #require(try device.receive(timeout: 10, where: { $0.statusCode == 400 && $0.cseq?.method == "MESSAGE"
            && $0.header("Via")?.contains("garbage4") == true }))
        #expect(unread.header("Warning")?.contains("malformed_xml") == true, "\(unread.header("Warning") ?? "")")
        #expect(try s.count("SELECT count(*) FROM liandong.rejected_messages WHERE reason = 'malformed_xml' AND raw = decode('"
            + garbage.map { String(format: "%02x", $0) }.joined() + "', 'hex') AND convert_from(topic, 'UTF8') LIKE 'gb28181.gb28181:"
            + Self.camera + ":unread:%'") == 1)
        let stranger = try SIPDevice(id: "62092200001320000006", bridgePort: bridge.sipPort)
        stranger.send(stranger.request("MESSAGE", branch: "s1", body: body))
        #expect(try stranger.receive(timeout: 5, where: { $0.statusCode != nil && $0.statusCode! >= 200 })?.statusCode == 403)
    }

    @Test("keepalive timeout: the bridge reports offline/timeout; with the bridge gone, liandongd's sweeper times devices out itself")
    func timeouts() throws {
        let s = try Scene(environment: ["LIANDONG_GB28181_KEEPALIVE_TIMEOUT_S": "4"])
        let bridge = try BridgeProcess(daemonAck: s.daemon.ack, environment: ["LIANDONG_GB28181_KEEPALIVE_TIMEOUT_S": "2"])
        let a = try SIPDevice(id: Self.camera, bridgePort: bridge.sipPort)
        #expect(try a.register() == 200)
        try waitUntil(timeout: 10, "the bridge's timeout") { try Self.status(s, Self.camera)?.reason == "timeout" }
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"status_timeout\"}") == 1)
        #expect(try Self.status(s, Self.camera)?.status == "offline")

        let b = try SIPDevice(id: "62092200001320000005", bridgePort: bridge.sipPort)
        #expect(try b.register() == 200)
        try waitUntil(timeout: 10, "b online") { try Self.status(s, "62092200001320000005")?.status == "online" }
        kill(bridge.process.processIdentifier, SIGKILL)
        try s.daemon.waitUntil(timeout: 20, "the sweeper's timeout") { try Self.status(s, "62092200001320000005")?.status == "offline" }
        #expect(try s.daemon.metric("liandong_devices_timed_out_total") == 1)
        let at = try s.db.query("""
            SELECT extract(epoch FROM h.at - d.last_seen_at) FROM liandong.device_status_history h
            JOIN liandong.device_status d USING (device_id) WHERE h.device_id = '62092200001320000005' AND h.reason = 'timeout'
            """).scalar
        #expect(at.flatMap(Double.init) == 4)
    }

    @Test("registrations survive a restart of the bridge: a registered device's keepalive is answered 200 by the next bridge, without registering again")
    func registrationsSurviveRestart() throws {
        let s = try Scene()
        let bridge = try BridgeProcess(daemonAck: s.daemon.ack)
        let device = try SIPDevice(id: Self.camera, bridgePort: bridge.sipPort)
        // Three scrapers that connect to /metrics and never send their request do not hold up the
        // SIP thread (it once read them with a 1 s timeout each).
        let silent = (0..<3).map { _ -> Int32 in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = loopbackAddress(port: bridge.metricsPort)
            _ = withSockaddr(&addr) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            return fd
        }
        defer { silent.forEach { close($0) } }
        let started = Date()
        #expect(try device.register() == 200)
        #expect(Date().timeIntervalSince(started) < 2, "registering took \(Date().timeIntervalSince(started)) s")
        #expect(bridge.stop() == 0)
        #expect(FileManager.default.fileExists(atPath: bridge.directory + "/liandong-gb28181.state"))
        try bridge.launch()
        #expect(bridge.log.contains("restored 1 registration(s) of 1"))
        #expect(try bridge.metric("liandong_gb28181_devices_registered") == 1)
        let keepalive = Array(GB28181BridgeKeepalive.body(Self.camera).utf8)
        device.send(device.request("MESSAGE", branch: "k-after-restart", body: keepalive))
        let answer = try device.receive(timeout: 10, where: { $0.statusCode != nil && $0.statusCode! >= 200 })
        #expect(answer?.statusCode == 200, "\(bridge.log.suffix(1000))")
        try waitUntil(timeout: 10, "the keepalive recorded") { try Self.status(s, Self.camera)?.reason == "keepalive" }
        // A garbled file is ignored with a line in the log (devices register again).
        #expect(bridge.stop() == 0)
        try Data("not json".utf8).write(to: URL(fileURLWithPath: bridge.directory + "/liandong-gb28181.state"))
        try bridge.launch()
        #expect(bridge.log.contains("ignoring liandong-gb28181.state"))
        #expect(try bridge.metric("liandong_gb28181_devices_registered") == 0)
        // A file of a release before gb28181.state_path is read once and moved to the state file.
        #expect(bridge.stop() == 0)
        try FileManager.default.removeItem(atPath: bridge.directory + "/liandong-gb28181.state")
        let former: [String: GB28181Bridge.Registration] = [Self.camera: .init(
            peer: SIPPeer(transport: .udp, host: "127.0.0.1", port: device.port), expiresAt: Date().timeIntervalSince1970 + 3600,
            lastSeen: Date().timeIntervalSince1970, online: true, localHost: "127.0.0.1", localPort: bridge.sipPort)]
        try JSONEncoder().encode(former).write(to: URL(fileURLWithPath: bridge.directory + "/liandong-gb28181.registrations"))
        try bridge.launch()
        #expect(bridge.log.contains("restored 1 registration(s) of 1 from liandong-gb28181.registrations"))
        try waitUntil(timeout: 5, "the state file written") {
            FileManager.default.fileExists(atPath: bridge.directory + "/liandong-gb28181.state")
                && !FileManager.default.fileExists(atPath: bridge.directory + "/liandong-gb28181.registrations")
        }
    }
}

/// A MANSCDP Keepalive as a camera sends it.
enum GB28181BridgeKeepalive {
    static func body(_ device: String) -> String {
        "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>77</SN>\r\n<DeviceID>\(device)</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
    }
}

/// The bridge as a platform: the catalog a device gives when it registers.
@Suite("GB/T 28181 catalog through the bridge")
struct SIPCatalogTests {
    static let camera = SIPBridgeTests.camera

    @Test("the bridge asks a registering device for its Catalog; the answer in two MESSAGEs (SumNum 70, one channel outside every grid) becomes 70 rows of liandong.device_channels, and the channels that are not cameras are listed with their grid")
    func catalog() throws {
        let s = try Scene()
        let bridge = try BridgeProcess(daemonAck: s.daemon.ack)
        let device = try SIPDevice(id: Self.camera, bridgePort: bridge.sipPort)
        #expect(try device.register() == 200)
        let query = try #require(try device.receive(timeout: 10, where: {
            $0.method == "MESSAGE" && String(decoding: $0.body, as: UTF8.self).contains("<CmdType>Catalog</CmdType>")
        }), "no Catalog query after the registration")
        device.send(query.response(200, "OK", toTag: "dev"))
        let text = String(decoding: query.body, as: UTF8.self)
        let sn = try #require(text.split(separator: "<SN>").last?.split(separator: "<").first.map(String.init))
        func channel(_ k: Int) -> String { "6209220000131" + String(format: "%07d", k + 500) }
        for (branch, range) in [("cat1", 0..<40), ("cat2", 40..<70)] {
            let items = range.map { k -> String in
                let place = k == 0 ? "<Longitude>\(s.centre.lon)</Longitude><Latitude>\(s.centre.lat)</Latitude>"
                    : k == 69 ? "<Longitude>100.0</Longitude><Latitude>30.0</Latitude>" : ""
                return "<Item><DeviceID>\(channel(k))</DeviceID><Name>通道\(k)</Name><ParentID>\(Self.camera)</ParentID>"
                    + "<Status>\(k % 3 == 0 ? "OFF" : "ON")</Status>\(place)</Item>"
            }.joined()
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><CmdType>Catalog</CmdType><SN>\(sn)</SN>"
                + "<DeviceID>\(Self.camera)</DeviceID><SumNum>70</SumNum><DeviceList Num=\"\(range.count)\">\(items)</DeviceList></Response>"
            device.send(device.request("MESSAGE", branch: branch, body: Array(body.utf8)))
            #expect(try device.receive(timeout: 5, where: { $0.statusCode == 200 && $0.header("Via")?.contains(branch) == true }) != nil,
                    "part \(branch) not answered 200")
        }
        try waitUntil(timeout: 15, "70 channels recorded") {
            try s.count("SELECT count(*) FROM liandong.device_channels WHERE device_id = '\(Self.camera)' AND gone_at IS NULL") == 70
        }
        #expect(try s.count("SELECT count(*) FROM liandong.device_channels WHERE status = 'OFF'") == 24)
        #expect(try s.db.query("SELECT name FROM liandong.device_channels WHERE channel_id = '\(channel(7))'").scalar == "通道7")
        let placed = try s.db.query("SELECT channel_id, grid_code FROM liandong.channels_without_camera WHERE channel_id IN ('\(channel(0))', '\(channel(69))') ORDER BY 1").rows
        #expect(placed.count == 2 && placed[0][1] == Scene.ruralGrid && placed[1][1] == nil, "\(placed)")
        #expect(try bridge.metric("liandong_gb28181_events_total{event=\"catalogs_complete\"}") == 1)
        #expect(try s.daemon.metric("liandong_device_catalogs_total{result=\"complete\"}") == 1)
    }
}
