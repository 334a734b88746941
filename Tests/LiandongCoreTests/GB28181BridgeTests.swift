import Foundation
import LiandongCore
import Testing

/// The bridge's decisions, without sockets: registration, transactions, forwarding, timers.
@Suite("GB/T 28181 bridge")
struct GB28181BridgeTests {
    static let server = "62092200002000000001", realm = "6209220000"
    static let device = "62092210001320000001", nvr = "62092210001180000001"
    static let peer = SIPPeer(transport: .udp, host: "10.0.0.5", port: 5060)
    static let t0 = 1_800_000_000.0

    /// A bridge; `manage`: it also arms its devices and subscribes to them (GB28181DeviceTests).
    static func bridge(timeout: Double = 180, catalogInterval: Double = 3600, manage: Bool = false) -> GB28181Bridge {
        var settings = GB28181Bridge.Settings(serverID: server, realm: realm, keepaliveTimeout: timeout,
                                              passwords: [nvr: "nvr-pass"], defaultPassword: "secret")
        settings.catalogInterval = catalogInterval
        settings.armOnRegister = manage
        settings.alarmSubscribe = manage ? 3600 : 0
        return GB28181Bridge(settings: settings, nonceSecret: "test")
    }

    static func request(_ method: String, from device: String = device, branch: String, cseq: Int = 1,
                        headers: [(String, String)] = [], body: String = "") -> SIPMessage
    {
        SIPMessage(start: .request(method: method, uri: "sip:\(server)@192.168.1.10:5060"), headers: [
            ("Via", "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=\(branch)"),
            ("From", "<sip:\(device)@\(realm)>;tag=f\(branch)"),
            ("To", "<sip:\(method == "REGISTER" ? device : server)@\(realm)>"),
            ("Call-ID", "call-\(branch)"),
            ("CSeq", "\(cseq) \(method)"),
        ] + headers, body: Array(body.utf8))
    }

    static func sent(_ actions: [BridgeAction]) -> [SIPMessage] {
        actions.compactMap { if case .send(let m, _) = $0 { m } else { nil } }
    }

    static func forwarded(_ actions: [BridgeAction]) -> [(topic: String, body: [UInt8], id: String)] {
        actions.compactMap { if case .forward(let t, let b, let i) = $0 { (t, b, i) } else { nil } }
    }

    /// Registers `device` with `password`: the challenge, then the answer.
    static func register(_ b: inout GB28181Bridge, _ device: String = device, password: String = "secret", expires: Int = 3600,
                         at now: Double = t0, branch: String = "z9hG4bKr", from peer: SIPPeer = peer) -> [BridgeAction]
    {
        let actions = authorizedRegister(&b, device, password: password, expires: expires, at: now, branch: branch, from: peer).actions
        // The device answers the platform's queries (their SIP 200s; the answers themselves are other tests').
        for query in sent(actions) where query.method == "MESSAGE" {
            _ = b.receive(query.response(200, "OK", toTag: "q"), from: peer, now: now)
        }
        return actions
    }

    /// The same, returning also the authorized REGISTER as sent (what an eavesdropper captures).
    static func authorizedRegister(_ b: inout GB28181Bridge, _ device: String = device, password: String = "secret", expires: Int = 3600,
                                   at now: Double = t0, branch: String = "z9hG4bKr", from peer: SIPPeer = peer)
        -> (actions: [BridgeAction], request: SIPMessage?)
    {
        let first = sent(b.receive(request("REGISTER", from: device, branch: branch + "1", headers: [("Expires", "\(expires)")]),
                                   from: peer, now: now))
        guard first.first?.statusCode == 401, let challenge = first.first?.header("WWW-Authenticate") else { return ([], nil) }
        let nonce = challenge.split(separator: "\"")[3]
        let uri = "sip:\(server)@\(realm)"
        let ha1 = MD5.hex("\(device):\(realm):\(password)"), ha2 = MD5.hex("REGISTER:\(uri)")
        let response = MD5.hex("\(ha1):\(nonce):00000001:c0ffee:auth:\(ha2)")
        let auth = "Digest username=\"\(device)\", realm=\"\(realm)\", nonce=\"\(nonce)\", uri=\"\(uri)\", response=\"\(response)\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\""
        let authorized = request("REGISTER", from: device, branch: branch + "2", cseq: 2,
                                 headers: [("Authorization", auth), ("Expires", "\(expires)")])
        return (b.receive(authorized, from: peer, now: now), authorized)
    }

    static func notices(_ actions: [BridgeAction]) -> [String] {
        actions.compactMap { if case .notice(let text, _) = $0 { text } else { nil } }
    }

    /// `m` with another Via branch and Expires (a replay is a new transaction).
    static func replayed(_ m: SIPMessage, branch: String, expires: Int) -> SIPMessage {
        SIPMessage(start: m.start, headers: m.headers.map { h in
            if h.name == "Via" { return (h.name, "SIP/2.0/UDP 10.0.0.66:5060;rport;branch=\(branch)") }
            if h.name == "Expires" { return (h.name, String(expires)) }
            return h
        }, body: m.body)
    }

    @Test("a captured REGISTER Authorization cannot be replayed: single-use nonces bound to the address they were issued to")
    func digestReplay() throws {
        var b = Self.bridge()
        let (actions, captured) = Self.authorizedRegister(&b)
        #expect(Self.sent(actions).first?.statusCode == 200)
        let request = try #require(captured)
        // Resent (to unregister the camera) from the attacker's address, and from the camera's own: challenged, nothing changes.
        let attacker = SIPPeer(transport: .udp, host: "10.0.0.66", port: 5060)
        for (n, from) in [attacker, Self.peer].enumerated() {
            let answer = Self.sent(b.receive(Self.replayed(request, branch: "z9hG4bKreplay\(n)", expires: 0), from: from, now: Self.t0 + 10))
            #expect(answer.first?.statusCode == 401, "replay \(n)")
        }
        #expect(b.registrations[Self.device]?.peer == Self.peer && b.registrations[Self.device]?.online == true)
        // A nonce issued to the camera's address, answered from another: challenged (foreign).
        let challenge = Self.sent(b.receive(Self.request("REGISTER", branch: "z9hG4bKc1"), from: Self.peer, now: Self.t0 + 20))
        #expect(challenge.first?.statusCode == 401)
    }

    @Test("a MESSAGE in a registered camera's name from another address is 403 and moves nothing; a camera names only itself, an NVR its channels")
    func spoofing() throws {
        var b = Self.bridge()
        #expect(Self.sent(Self.register(&b)).first?.statusCode == 200)
        let attacker = SIPPeer(transport: .udp, host: "10.0.0.66", port: 5060)
        let spoof = b.receive(Self.request("MESSAGE", branch: "z9hG4bKs1", body: Self.alarm(sn: 1)), from: attacker, now: Self.t0 + 1)
        #expect(Self.sent(spoof).first?.statusCode == 403 && Self.forwarded(spoof).isEmpty)
        #expect(Self.notices(spoof).count == 1 && Self.notices(spoof)[0].contains("10.0.0.66"))
        #expect(b.registrations[Self.device]?.peer == Self.peer, "the registration did not move")
        #expect(b.counters["message_wrong_address"] == 1)
        // Logged once a minute per address, counted each time.
        let again = b.receive(Self.request("MESSAGE", branch: "z9hG4bKs2", body: Self.alarm(sn: 2)), from: attacker, now: Self.t0 + 2)
        #expect(Self.sent(again).first?.statusCode == 403 && Self.notices(again).isEmpty && b.counters["message_wrong_address"] == 2)
        // Over TCP from the camera's own host: not its transport.
        let tcp = SIPPeer(transport: .tcp, host: Self.peer.host, port: 40000, connection: 9)
        #expect(Self.sent(b.receive(Self.request("MESSAGE", branch: "z9hG4bKs3", body: Self.keepalive), from: tcp, now: Self.t0 + 3))
            .first?.statusCode == 403)
        // A camera (type 132) naming another camera: refused; itself: forwarded.
        let other = b.receive(Self.request("MESSAGE", branch: "z9hG4bKs4", body: Self.alarm(sn: 3, channel: "62092210001320000099")),
                              from: Self.peer, now: Self.t0 + 4)
        #expect(Self.sent(other).first?.statusCode == 403 && Self.forwarded(other).isEmpty && b.counters["alarm_wrong_device"] == 1)
        #expect(Self.forwarded(b.receive(Self.request("MESSAGE", branch: "z9hG4bKs5", body: Self.alarm(sn: 4)), from: Self.peer,
                                         now: Self.t0 + 5)).count == 1)
        // An NVR (type 118) may name its channels, not another registered device.
        let nvrPeer = SIPPeer(transport: .udp, host: "10.0.0.7", port: 5060)
        #expect(Self.sent(Self.register(&b, Self.nvr, password: "nvr-pass", branch: "z9hG4bKn", from: nvrPeer)).first?.statusCode == 200)
        let channel = b.receive(Self.request("MESSAGE", from: Self.nvr, branch: "z9hG4bKs6", body: Self.alarm(sn: 5, channel: "62092210001310000031")),
                                from: nvrPeer, now: Self.t0 + 6)
        #expect(Self.forwarded(channel).count == 1)
        let registered = b.receive(Self.request("MESSAGE", from: Self.nvr, branch: "z9hG4bKs7", body: Self.alarm(sn: 6, channel: Self.device)),
                                   from: nvrPeer, now: Self.t0 + 7)
        #expect(Self.sent(registered).first?.statusCode == 403)
    }

    @Test("an unauthenticated request's body is not kept for its 32 s of retransmissions (only the answer and the headers)")
    func nothingLargeKept() throws {
        var b = Self.bridge()
        let big = String(repeating: "x", count: 60_000)
        for n in 0..<50 {
            let answer = Self.sent(b.receive(Self.request("MESSAGE", from: "62092210001320000\(100 + n)", branch: "z9hG4bKbig\(n)", body: big),
                                             from: Self.peer, now: Self.t0))
            #expect(answer.first?.statusCode == 403)
        }
        #expect(b.heldBodyBytes == 0)
    }

    @Test("guessing: five wrong digests refuse the address for a while (without a challenge), the real device still registers; an unknown device with the shared password is refused")
    func guessing() throws {
        var b = Self.bridge()
        let guesser = SIPPeer(transport: .udp, host: "10.0.0.66", port: 5060)
        for n in 0..<5 {
            #expect(Self.sent(Self.register(&b, password: "guess-\(n)", at: Self.t0 + Double(n), branch: "z9hG4bKg\(n)", from: guesser))
                .first?.statusCode == 403)
        }
        let refused = Self.sent(b.receive(Self.request("REGISTER", branch: "z9hG4bKg9"), from: guesser, now: Self.t0 + 6))
        #expect(refused.first?.statusCode == 403 && refused.first?.header("Retry-After") != nil, "no challenge while throttled")
        #expect(b.counters["register_throttled"] == 1)
        #expect(Self.sent(Self.register(&b, at: Self.t0 + 7)).first?.statusCode == 200, "the real device, from its own address")
        #expect(Self.sent(b.receive(Self.request("REGISTER", branch: "z9hG4bKg10"), from: guesser, now: Self.t0 + 60)).first?.statusCode == 401,
                "the throttle passes")
        // With gb28181.devices_file, only listed devices may use the shared password (per-device ones still may).
        var listed = GB28181Bridge(settings: {
            var s = GB28181Bridge.Settings(serverID: Self.server, realm: Self.realm, passwords: [Self.nvr: "nvr-pass"], defaultPassword: "secret")
            s.knownDevices = [Self.device]
            return s
        }(), nonceSecret: "test")
        #expect(Self.sent(Self.register(&listed)).first?.statusCode == 200)
        #expect(Self.sent(Self.register(&listed, Self.nvr, password: "nvr-pass", branch: "z9hG4bKn")).first?.statusCode == 200)
        let stranger = Self.register(&listed, "62092210001320000777", branch: "z9hG4bKu")
        #expect(Self.sent(stranger).first?.statusCode == 403 && listed.counters["register_unknown"] == 1 && Self.notices(stranger).count == 1)
    }

    static func alarm(sn: Int, channel: String = device, time: String = "2027-01-15T10:00:00") -> String {
        "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>\(sn)</SN>\r\n<DeviceID>\(channel)</DeviceID>\r\n"
            + "<AlarmPriority>1</AlarmPriority>\r\n<AlarmMethod>5</AlarmMethod>\r\n<AlarmTime>\(time)</AlarmTime>\r\n<Info><AlarmType>2</AlarmType></Info>\r\n</Notify>\r\n"
    }

    static let keepalive = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>7</SN>\r\n<DeviceID>\(device)</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"

    @Test("REGISTER: 401 with a challenge, 200 with the right digest (Expires, Date, Contact), a register status forwarded")
    func registers() throws {
        var b = Self.bridge()
        let actions = Self.register(&b)
        let ok = try #require(Self.sent(actions).first)
        #expect(ok.statusCode == 200 && ok.header("Expires") == "3600" && ok.header("Date")?.count == 23)
        #expect(ok.header("Via") == "SIP/2.0/UDP 10.0.0.5:5060;rport=5060;branch=z9hG4bKr2;received=10.0.0.5")
        #expect(b.registrations[Self.device]?.online == true && b.registrations[Self.device]?.localHost == "192.168.1.10")
        let status = try #require(Self.forwarded(actions).first)
        #expect(status.topic == "status" && status.id.hasPrefix("status:\(Self.device):") && status.id.hasSuffix(":register"))
        let json = String(decoding: status.body, as: UTF8.self)
        #expect(json.contains("\"schema\":\"liandong.device_status.v1\"") && json.contains("\"status\":\"online\""))
        // Per-device passwords: the NVR's own; another's password is refused.
        #expect(Self.sent(Self.register(&b, Self.nvr, password: "nvr-pass", branch: "z9hG4bKn")).first?.statusCode == 200)
        #expect(Self.sent(Self.register(&b, Self.nvr, password: "secret", branch: "z9hG4bKm")).first?.statusCode == 403)
    }

    @Test("a wrong digest is 403; a username that is not the device is 403; a nonce from another process is challenged again")
    func refusesRegistrations() throws {
        var b = Self.bridge()
        #expect(Self.sent(Self.register(&b, password: "wrong")).first?.statusCode == 403)
        #expect(b.registrations.isEmpty)
        let foreign = "Digest username=\"\(Self.device)\", realm=\"\(Self.realm)\", nonce=\"00ff\(String(repeating: "a", count: 16))\", uri=\"sip:x\", response=\"0\""
        let again = Self.sent(b.receive(Self.request("REGISTER", branch: "z9hG4bKq", headers: [("Authorization", foreign)]), from: Self.peer, now: Self.t0))
        #expect(again.first?.statusCode == 401)
        let other = "Digest username=\"someone\", realm=\"\(Self.realm)\", nonce=\"x\", uri=\"sip:x\", response=\"0\""
        #expect(Self.sent(b.receive(Self.request("REGISTER", branch: "z9hG4bKo", headers: [("Authorization", other)]), from: Self.peer, now: Self.t0)).first?.statusCode == 403)
    }

    @Test("MESSAGE from a device not registered: 403, nothing forwarded")
    func unregisteredMessage() {
        var b = Self.bridge()
        let actions = b.receive(Self.request("MESSAGE", branch: "z9hG4bKm1", body: Self.alarm(sn: 1)), from: Self.peer, now: Self.t0)
        #expect(Self.sent(actions).first?.statusCode == 403 && Self.forwarded(actions).isEmpty)
    }

    @Test("an alarm: forwarded once, retransmissions absorbed (100 Trying), 200 after the answer, the same 200 to a later retransmission, then the Response MESSAGE")
    func alarmTransaction() throws {
        var b = Self.bridge()
        _ = Self.register(&b)
        let message = Self.request("MESSAGE", branch: "z9hG4bKa1", cseq: 30, body: Self.alarm(sn: 17))
        let first = b.receive(message, from: Self.peer, now: Self.t0 + 1)
        let forward = try #require(Self.forwarded(first).first)
        #expect(Self.sent(first).isEmpty && forward.topic == "gb28181" && forward.body == message.body)
        #expect(forward.id == "gb28181:\(Self.device):17:2027-01-15T10:00:00")
        let retransmitted = b.receive(message, from: Self.peer, now: Self.t0 + 1.5)
        #expect(Self.sent(retransmitted).map(\.statusCode) == [100] && Self.forwarded(retransmitted).isEmpty)
        let answered = b.acknowledged(id: forward.id, ok: true, error: nil, now: Self.t0 + 1.6)
        let out = Self.sent(answered)
        #expect(out.count == 2 && out[0].statusCode == 200 && out[1].method == "MESSAGE")
        let response = String(decoding: out[1].body, as: UTF8.self)
        #expect(response.contains("<Response>") && response.contains("<CmdType>Alarm</CmdType>") && response.contains("<SN>17</SN>")
                    && response.contains("<Result>OK</Result>"))
        #expect(out[1].header("Via")?.contains("192.168.1.10:5060") == true && out[1].from?.uri.user == Self.server)
        #expect(b.takeAnswerSeconds().count == 1)
        let late = Self.sent(b.receive(message, from: Self.peer, now: Self.t0 + 5))
        #expect(late.count == 1 && late[0].statusCode == 200 && late[0].to?.tag == out[0].to?.tag)
        // The device answers the Response MESSAGE: no retransmission of it.
        var ok = out[1].response(200, "OK", toTag: "d")
        ok.headers = ok.headers.filter { $0.name != "To" }
        _ = b.receive(out[1].response(200, "OK", toTag: "d"), from: Self.peer, now: Self.t0 + 2)
        #expect(Self.sent(b.tick(now: Self.t0 + 10)).isEmpty)
        #expect(b.counters["outgoing_answered"] == 3, "the Catalog and DeviceInfo queries at register, and the Response MESSAGE")
    }

    @Test("the same alarm in a new transaction while the first waits: one forward, both answered; a refusal is 400 with the reason")
    func joinedAndRefused() throws {
        var b = Self.bridge()
        _ = Self.register(&b)
        let one = b.receive(Self.request("MESSAGE", branch: "z9hG4bKb1", body: Self.alarm(sn: 5)), from: Self.peer, now: Self.t0)
        let two = b.receive(Self.request("MESSAGE", branch: "z9hG4bKb2", body: Self.alarm(sn: 5)), from: Self.peer, now: Self.t0 + 33)
        #expect(Self.forwarded(one).count == 1 && Self.forwarded(two).isEmpty)
        let id = Self.forwarded(one)[0].id
        let refused = Self.sent(b.acknowledged(id: id, ok: false, error: "time_out_of_range: AlarmTime \"x\" is old", now: Self.t0 + 34))
        #expect(refused.map(\.statusCode) == [400, 400])
        #expect(refused[0].header("Warning")?.contains("time_out_of_range") == true && refused[0].header("Warning")?.contains("'x'") == true)
        #expect(b.acknowledged(id: id, ok: true, error: nil, now: Self.t0 + 35).isEmpty)
    }

    @Test("bodies the bridge cannot read (not XML, an entity, an Alarm without its fields) go to liandongd on topic gb28181.<id>, once per transaction; the device gets liandongd's 400 and reason. Other MANSCDP: 200, not forwarded")
    func bodies() throws {
        var b = Self.bridge()
        _ = Self.register(&b)
        let unread = [
            ("not xml", "z9hG4bKc1", "malformed_xml: not XML"),
            ("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><Notify>&a;</Notify>", "z9hG4bKc2", "malformed_xml: a DOCTYPE"),
            ("<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>\(Self.device)</DeviceID></Notify>", "z9hG4bKc3", "missing_field: AlarmMethod"),
        ]
        var ids = Set<String>()
        for (n, (body, branch, reason)) in unread.enumerated() {
            let now = Self.t0 + Double(n)
            let a = b.receive(Self.request("MESSAGE", branch: branch, body: body), from: Self.peer, now: now)
            #expect(Self.sent(a).isEmpty, "answered before liandongd: \(body)")
            let f = try #require(Self.forwarded(a).first, "not forwarded: \(body)")
            #expect(f.topic == "gb28181." + f.id && f.id.hasPrefix("gb28181:\(Self.device):unread:") && f.body == Array(body.utf8))
            #expect(MessageDecoder.peekID([Array(f.topic.utf8), f.body]) == f.id, "liandongd's answer names the id the bridge waits for")
            ids.insert(f.id)
            // The device's retransmission joins the transaction: no second forward.
            #expect(Self.forwarded(b.receive(Self.request("MESSAGE", branch: branch, body: body), from: Self.peer, now: now + 0.5)).isEmpty)
            let refused = Self.sent(b.acknowledged(id: f.id, ok: false, error: reason, now: now + 0.6))
            #expect(refused.map(\.statusCode) == [400])
            #expect(refused.first?.header("Warning")?.contains(String(reason.prefix(while: { $0 != ":" }))) == true)
        }
        #expect(ids.count == 3)
        #expect(b.counters["message_unread"] == 3)
        // A Catalog answer to no query of ours: 200, not forwarded.
        let catalog = "<?xml version=\"1.0\"?><Response><CmdType>Catalog</CmdType><SN>99</SN><DeviceID>\(Self.device)</DeviceID><SumNum>0</SumNum></Response>"
        let a = b.receive(Self.request("MESSAGE", branch: "z9hG4bKc4", body: catalog), from: Self.peer, now: Self.t0 + 9)
        #expect(Self.sent(a).first?.statusCode == 200 && Self.forwarded(a).isEmpty)
        #expect(b.counters["catalog_unasked"] == 1)
    }

    @Test("keepalive: a keepalive status forwarded, 200 after the answer; silence beyond keepalive_timeout_s: offline/timeout; a keepalive brings it back")
    func keepalives() throws {
        var b = Self.bridge(timeout: 60)
        _ = Self.register(&b)
        let k = b.receive(Self.request("MESSAGE", branch: "z9hG4bKk1", body: Self.keepalive), from: Self.peer, now: Self.t0 + 30)
        let status = try #require(Self.forwarded(k).first)
        #expect(status.topic == "status" && status.id.hasSuffix(":keepalive"))
        #expect(Self.sent(b.acknowledged(id: status.id, ok: true, error: nil, now: Self.t0 + 30.01)).first?.statusCode == 200)
        #expect(Self.forwarded(b.tick(now: Self.t0 + 89)).isEmpty)
        let timedOut = Self.forwarded(b.tick(now: Self.t0 + 91))
        #expect(timedOut.count == 1 && timedOut[0].id.hasSuffix(":timeout") && String(decoding: timedOut[0].body, as: UTF8.self).contains("\"offline\""))
        #expect(b.onlineCount == 0 && b.registrations.count == 1)
        #expect(Self.forwarded(b.tick(now: Self.t0 + 200)).isEmpty)
        let back = b.receive(Self.request("MESSAGE", branch: "z9hG4bKk2", body: Self.keepalive), from: Self.peer, now: Self.t0 + 201)
        #expect(Self.forwarded(back).first?.id.hasSuffix(":keepalive") == true && b.onlineCount == 1)
    }

    @Test("Expires 0 unregisters (status unregister, then MESSAGE is 403); a registration not renewed expires (status expired)")
    func unregisterAndExpiry() throws {
        var b = Self.bridge()
        _ = Self.register(&b)
        let gone = Self.register(&b, expires: 0, at: Self.t0 + 10, branch: "z9hG4bKu")
        #expect(Self.sent(gone).first?.header("Expires") == "0" && Self.forwarded(gone).first?.id.hasSuffix(":unregister") == true)
        #expect(Self.sent(b.receive(Self.request("MESSAGE", branch: "z9hG4bKu3", body: Self.keepalive), from: Self.peer, now: Self.t0 + 11)).first?.statusCode == 403)
        _ = Self.register(&b, expires: 60, at: Self.t0 + 20, branch: "z9hG4bKe")
        // Re-registration before expiry keeps it; then silence until it runs out.
        _ = Self.register(&b, expires: 60, at: Self.t0 + 70, branch: "z9hG4bKf")
        #expect(Self.forwarded(b.tick(now: Self.t0 + 100)).isEmpty)
        let expired = Self.forwarded(b.tick(now: Self.t0 + 131))
        #expect(expired.count == 1 && expired[0].id.hasSuffix(":expired") && b.registrations.isEmpty)
    }

    @Test("OPTIONS is 200; INVITE is 405 with Allow; a response to nothing of ours is ignored")
    func otherMethods() {
        var b = Self.bridge()
        #expect(Self.sent(b.receive(Self.request("OPTIONS", branch: "z9hG4bKo1"), from: Self.peer, now: Self.t0)).first?.statusCode == 200)
        let invite = Self.sent(b.receive(Self.request("INVITE", branch: "z9hG4bKi1"), from: Self.peer, now: Self.t0)).first
        #expect(invite?.statusCode == 405 && invite?.header("Allow")?.contains("MESSAGE") == true)
        let stray = Self.request("MESSAGE", branch: "z9hG4bKs1").response(200, "OK", toTag: "x")
        #expect(b.receive(stray, from: Self.peer, now: Self.t0).isEmpty)
    }

    @Test("a full queue to liandongd: 503 with Retry-After, not remembered (the retransmission may get in)")
    func busy() {
        var b = GB28181Bridge(settings: .init(serverID: Self.server, realm: Self.realm, defaultPassword: "secret", maxWaiting: 1), nonceSecret: "t")
        _ = Self.register(&b)
        _ = b.receive(Self.request("MESSAGE", branch: "z9hG4bKw1", body: Self.alarm(sn: 1)), from: Self.peer, now: Self.t0)
        let full = Self.sent(b.receive(Self.request("MESSAGE", branch: "z9hG4bKw2", body: Self.alarm(sn: 2)), from: Self.peer, now: Self.t0))
        #expect(full.first?.statusCode == 503 && full.first?.header("Retry-After") == "5")
        _ = b.acknowledged(id: "gb28181:\(Self.device):1:2027-01-15T10:00:00", ok: true, error: nil, now: Self.t0 + 1)
        let retry = b.receive(Self.request("MESSAGE", branch: "z9hG4bKw2", body: Self.alarm(sn: 2)), from: Self.peer, now: Self.t0 + 2)
        #expect(Self.forwarded(retry).count == 1)
    }

    @Test("restored registrations: expired ones dropped, the others kept with a fresh keepalive allowance; changes counted for saving")
    func restore() throws {
        var b = Self.bridge(timeout: 60)
        let before = b.registrationChanges
        _ = Self.register(&b, expires: 100)
        #expect(b.registrationChanges > before)
        var saved = b.registrations
        saved["62092210001320000099"] = GB28181Bridge.Registration(peer: Self.peer, expiresAt: Self.t0 - 1, lastSeen: Self.t0 - 200,
                                                                   online: true, localHost: "h", localPort: 5060)
        var next = Self.bridge(timeout: 60)
        #expect(next.restore(saved, now: Self.t0 + 50) == 1)
        #expect(next.registrations.keys.sorted() == [Self.device])
        // Silent for a full timeout from the restore, not from the registration.
        #expect(Self.forwarded(next.tick(now: Self.t0 + 90)).isEmpty, "registered at t0, restored at t0+50: silent until t0+110")
        let ok = next.receive(Self.request("MESSAGE", branch: "z9hG4bKrs", body: Self.keepalive), from: Self.peer, now: Self.t0 + 95)
        #expect(Self.forwarded(ok).first?.id.hasSuffix(":keepalive") == true)
    }

    @Test("the platform asks a registering device for its Catalog, collects the answer's two MESSAGEs (each 200 at once) and forwards one device catalog; asked again after catalog_interval; a device that does not answer: nothing forwarded")
    func catalog() throws {
        var b = Self.bridge(catalogInterval: 600)
        let registered = Self.authorizedRegister(&b).actions
        let query = try #require(Self.sent(registered).first { $0.method == "MESSAGE" })
        let text = String(decoding: query.body, as: UTF8.self)
        #expect(text.contains("<Query>") && text.contains("<CmdType>Catalog</CmdType>") && text.contains("<DeviceID>\(Self.device)</DeviceID>"))
        let sn = try #require(text.split(separator: "<SN>").last?.split(separator: "<").first.map(String.init))
        func part(_ range: Range<Int>, branch: String, now: Double) -> [BridgeAction] {
            let items = range.map { "<Item><DeviceID>6209220000131\(String(format: "%07d", $0))</DeviceID><Status>ON</Status></Item>" }.joined()
            let body = "<?xml version=\"1.0\"?><Response><CmdType>Catalog</CmdType><SN>\(sn)</SN><DeviceID>\(Self.device)</DeviceID>"
                + "<SumNum>70</SumNum><DeviceList Num=\"\(range.count)\">\(items)</DeviceList></Response>"
            return b.receive(Self.request("MESSAGE", branch: branch, body: body), from: Self.peer, now: now)
        }
        let one = part(0..<40, branch: "z9hG4bKcat1", now: Self.t0 + 1)
        #expect(Self.sent(one).map(\.statusCode) == [200] && Self.forwarded(one).isEmpty)
        let two = part(40..<70, branch: "z9hG4bKcat2", now: Self.t0 + 2)
        #expect(Self.sent(two).map(\.statusCode) == [200])
        let forward = try #require(Self.forwarded(two).first)
        #expect(forward.topic == "catalog" && forward.id.hasPrefix("catalog:\(Self.device):\(sn):"))
        let json = String(decoding: forward.body, as: UTF8.self)
        #expect(json.contains("\"sum_num\":70") && json.contains("\"complete\":true") && json.contains("62092200001310000069"))
        #expect(b.counters["catalogs_complete"] == 1 && b.counters["catalog_parts"] == 2)
        // Not asked again before catalog_interval; then asked, and a silent device gives nothing.
        #expect(Self.sent(b.tick(now: Self.t0 + 300)).filter { $0.method == "MESSAGE" && String(decoding: $0.body, as: UTF8.self).contains("<Query>") }.isEmpty)
        let again = Self.sent(b.tick(now: Self.t0 + 601)).filter { String(decoding: $0.body, as: UTF8.self).contains("<Query>") }
        #expect(again.count == 1)
        #expect(Self.forwarded(b.tick(now: Self.t0 + 700)).isEmpty)
        #expect(b.counters["catalog_unanswered"] == 1)
    }
}
