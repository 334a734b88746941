import Foundation
import LiandongCore
import Testing

/// The bridge managing its devices: DeviceInfo, arming, subscriptions, NOTIFY, refusals.
@Suite("GB/T 28181 bridge: devices")
struct GB28181DeviceTests {
    typealias T = GB28181BridgeTests
    static let t0 = T.t0

    static func text(_ m: SIPMessage) -> String { String(decoding: m.body, as: UTF8.self) }

    static func sn(_ m: SIPMessage) -> String {
        text(m).split(separator: "<SN>").last?.split(separator: "<").first.map(String.init) ?? ""
    }

    static func facts(_ actions: [BridgeAction]) -> [String] {
        T.forwarded(actions).filter { $0.topic == "device" }.map { String(decoding: $0.body, as: UTF8.self) }
    }

    static func response(_ command: String, sn: String, _ fields: String, device: String = T.device) -> String {
        "<?xml version=\"1.0\" encoding=\"GB2312\"?><Response><CmdType>\(command)</CmdType><SN>\(sn)</SN><DeviceID>\(device)</DeviceID>\(fields)</Response>"
    }

    @Test("after REGISTER: a registration fact, then Catalog, DeviceInfo, SetGuard and two SUBSCRIBEs (alarm: Event presence; catalog)")
    func asks() throws {
        var b = T.bridge(manage: true)
        let actions = T.authorizedRegister(&b).actions
        let sent = T.sent(actions)
        #expect(sent.first?.statusCode == 200)
        let requests = sent.dropFirst()
        #expect(requests.map { $0.method ?? "" } == ["MESSAGE", "MESSAGE", "MESSAGE", "SUBSCRIBE", "SUBSCRIBE"])
        #expect(requests.map { Self.text($0) }.map { t in ["Catalog", "DeviceInfo", "DeviceControl", "Alarm", "Catalog"].first { t.contains("<CmdType>\($0)</CmdType>") } ?? "" }
                == ["Catalog", "DeviceInfo", "DeviceControl", "Alarm", "Catalog"])
        let control = Array(requests)[2]
        #expect(Self.text(control).contains("<Control>") && Self.text(control).contains("<GuardCmd>SetGuard</GuardCmd>"))
        let subscribes = requests.filter { $0.method == "SUBSCRIBE" }
        #expect(subscribes.map { $0.header("Event") ?? "" } == ["presence", "Catalog"])
        #expect(subscribes.allSatisfy { $0.header("Expires") == "3600" && $0.header("Contact")?.contains(T.server) == true })
        let registration = try #require(Self.facts(actions).first)
        #expect(registration.contains("\"registration\":{") && registration.contains("\"from\":\"10.0.0.5:5060\"")
                && registration.contains("\"transport\":\"udp\"") && registration.contains("liandong.device_info.v1"))
        // Nothing is asked twice while it waits.
        #expect(T.sent(b.tick(now: Self.t0 + 0.2)).isEmpty)
    }

    @Test("DeviceInfo and SetGuard answered: 200 at once, an info fact and an armed fact; an error Result is refused")
    func answers() throws {
        var b = T.bridge(manage: true)
        let requests = T.sent(T.register(&b)).dropFirst()
        let info = try #require(requests.first { Self.text($0).contains("<CmdType>DeviceInfo</CmdType>") })
        let body = Self.response("DeviceInfo", sn: Self.sn(info),
                                 "<Result>OK</Result><DeviceName>IPC</DeviceName><Manufacturer>Hikvision</Manufacturer><Model>DS-2CD</Model><Firmware>V5.5</Firmware><Channel>1</Channel>")
        let infoAnswer = b.receive(T.request("MESSAGE", branch: "z9hG4bKi", body: body), from: T.peer, now: Self.t0 + 1)
        #expect(T.sent(infoAnswer).map(\.statusCode) == [200])
        let infoFact = try #require(Self.facts(infoAnswer).first)
        #expect(infoFact.contains("\"manufacturer\":\"Hikvision\"") && infoFact.contains("\"firmware\":\"V5.5\"") && infoFact.contains("\"channels\":1"))
        let control = try #require(requests.first { Self.text($0).contains("<CmdType>DeviceControl</CmdType>") })
        // Another SN is not the answer awaited.
        _ = b.receive(T.request("MESSAGE", branch: "z9hG4bKg0", body: Self.response("DeviceControl", sn: "999", "<Result>OK</Result>")),
                      from: T.peer, now: Self.t0 + 1)
        #expect(b.counters["guard_unasked"] == 1)
        let armed = b.receive(T.request("MESSAGE", branch: "z9hG4bKg", body: Self.response("DeviceControl", sn: Self.sn(control), "<Result>OK</Result>")),
                              from: T.peer, now: Self.t0 + 2)
        #expect(T.sent(armed).map(\.statusCode) == [200])
        #expect(Self.facts(armed).first?.contains("\"guard\":{\"state\":\"armed\"}") == true)
        // An operator's disarm; the device answers ERROR: refused, with what it said.
        let disarm = try #require(T.sent(b.operatorGuard(T.device, arm: false, now: Self.t0 + 3)).first)
        #expect(Self.text(disarm).contains("<GuardCmd>ResetGuard</GuardCmd>"))
        let refused = b.receive(T.request("MESSAGE", branch: "z9hG4bKg2", body: Self.response("DeviceControl", sn: Self.sn(disarm), "<Result>ERROR</Result>")),
                                from: T.peer, now: Self.t0 + 4)
        #expect(Self.facts(refused).first?.contains("\"detail\":\"Result ERROR\",\"state\":\"refused\"") == true)
        // A device not registered here: unreachable.
        #expect(Self.facts(b.operatorGuard(T.nvr, arm: true, now: Self.t0 + 5)).first?.contains("\"state\":\"unreachable\"") == true)
    }

    @Test("a camera that answers 501 to SetGuard: refused, not asked again on refreshes or timers; asked again when it registers anew; silence is unanswered")
    func refusal() throws {
        var b = T.bridge(manage: true)
        let requests = T.sent(T.authorizedRegister(&b).actions).dropFirst()
        let control = try #require(requests.first { Self.text($0).contains("<CmdType>DeviceControl</CmdType>") })
        let refused = b.receive(control.response(501, "Not Implemented", toTag: "c"), from: T.peer, now: Self.t0 + 1)
        #expect(Self.facts(refused).first?.contains("\"detail\":\"501 Not Implemented\",\"state\":\"refused\"") == true)
        #expect(b.counters["refused_guard"] == 1)
        // A refresh (same Call-ID) and the timers ask nothing of it again.
        func guardCommands(_ actions: [BridgeAction]) -> Int {
            T.sent(actions).filter { Self.text($0).contains("<CmdType>DeviceControl</CmdType>") }.count
        }
        #expect(guardCommands(b.tick(now: Self.t0 + 40)) == 0)
        let refresh = T.register(&b, at: Self.t0 + 60)
        #expect(guardCommands(refresh) == 0)
        // A new registration (another Call-ID: the device restarted) is asked again; it stays silent.
        var anew = T.request("REGISTER", branch: "z9hG4bKn1", headers: [("Expires", "3600")])
        anew.headers = anew.headers.map { $0.name == "Call-ID" ? ("Call-ID", "restarted") : $0 }
        let challenge = try #require(T.sent(b.receive(anew, from: T.peer, now: Self.t0 + 100)).first?.header("WWW-Authenticate"))
        let nonce = challenge.split(separator: "\"")[3]
        let uri = "sip:\(T.server)@\(T.realm)"
        let digest = MD5.hex("\(MD5.hex("\(T.device):\(T.realm):secret")):\(nonce):00000001:c:auth:\(MD5.hex("REGISTER:\(uri)"))")
        anew.headers.append(("Authorization", "Digest username=\"\(T.device)\", realm=\"\(T.realm)\", nonce=\"\(nonce)\", uri=\"\(uri)\", response=\"\(digest)\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\""))
        anew.headers = anew.headers.map { $0.name == "Via" ? ("Via", "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKn2") : $0 }
        let registered = b.receive(anew, from: T.peer, now: Self.t0 + 100)
        #expect(T.sent(registered).first?.statusCode == 200 && guardCommands(registered) == 1)
        // Resent over UDP, never answered: unanswered after 32 s.
        var unanswered: [String] = []
        for s in stride(from: 100.5, through: 134, by: 0.5) { unanswered += Self.facts(b.tick(now: Self.t0 + s)) }
        #expect(unanswered.filter { $0.contains("\"guard\"") }.count == 1 && unanswered.contains { $0.contains("\"state\":\"unanswered\"") })
    }

    @Test("subscriptions: 200 with Expires is an active fact, refreshed within the dialog before expiry; NOTIFY Alarm forwarded and answered after liandongd, without a Response MESSAGE; NOTIFY Catalog changes one channel; terminated is asked again")
    func subscriptions() throws {
        var b = T.bridge(timeout: 3600, manage: true)
        let requests = T.sent(T.authorizedRegister(&b).actions).dropFirst()
        let alarmSub = try #require(requests.first { $0.method == "SUBSCRIBE" && $0.header("Event") == "presence" })
        var ok = alarmSub.response(200, "OK", toTag: "dev1", extra: [("Expires", "600")])
        ok.headers = ok.headers.filter { $0.name != "Content-Length" }
        let active = b.receive(ok, from: T.peer, now: Self.t0 + 1)
        let fact = try #require(Self.facts(active).first)
        #expect(fact.contains("\"event\":\"alarm\"") && fact.contains("\"state\":\"active\"") && fact.contains("\"until\":"))
        // The catalog subscription refused (489): recorded, not asked again.
        let catalogSub = try #require(requests.first { $0.method == "SUBSCRIBE" && $0.header("Event") == "Catalog" })
        let refused = b.receive(catalogSub.response(489, "Bad Event", toTag: "x"), from: T.peer, now: Self.t0 + 2)
        #expect(Self.facts(refused).first?.contains("\"detail\":\"489 Bad Event\",\"event\":\"catalog\",\"state\":\"refused\"") == true)
        #expect(T.sent(b.tick(now: Self.t0 + 300)).filter { $0.header("Event") == "Catalog" }.isEmpty)
        // Refreshed at 80 % of 600 s, in the same dialog: same Call-ID and tags, next CSeq.
        #expect(T.sent(b.tick(now: Self.t0 + 400)).filter { $0.method == "SUBSCRIBE" && $0.header("Event") == "presence" }.isEmpty)
        let refresh = try #require(T.sent(b.tick(now: Self.t0 + 482)).first { $0.method == "SUBSCRIBE" && $0.header("Event") == "presence" })
        #expect(refresh.header("Call-ID") == alarmSub.header("Call-ID") && refresh.to?.tag == "dev1"
                && refresh.from?.tag == alarmSub.from?.tag && refresh.cseq?.number == 2)
        #expect(Self.facts(b.receive(refresh.response(200, "OK", toTag: "dev1", extra: [("Expires", "600")]), from: T.peer, now: Self.t0 + 483)).isEmpty,
                "a refresh that changes nothing is not another row")
        // An alarm by NOTIFY: forwarded like a MESSAGE's, 200 after liandongd's answer, no Response MESSAGE.
        let alarm = "<?xml version=\"1.0\"?><Notify><CmdType>Alarm</CmdType><SN>31</SN><DeviceID>\(T.device)</DeviceID><AlarmPriority>1</AlarmPriority>"
            + "<AlarmMethod>5</AlarmMethod><AlarmTime>2027-01-15T16:10:00</AlarmTime><Info><AlarmType>2</AlarmType></Info></Notify>"
        let notify = T.request("NOTIFY", branch: "z9hG4bKna", headers: [("Event", "presence"), ("Subscription-State", "active;expires=100")], body: alarm)
        let forwarded = b.receive(notify, from: T.peer, now: Self.t0 + 500)
        let forward = try #require(T.forwarded(forwarded).first)
        #expect(forward.topic == "gb28181" && T.sent(forwarded).isEmpty)
        let answered = T.sent(b.acknowledged(id: forward.id, ok: true, error: nil, now: Self.t0 + 500.1))
        #expect(answered.map { $0.statusCode ?? 0 } == [200] && answered[0].cseq?.method == "NOTIFY")
        // A catalog NOTIFY: one channel off; forwarded as a catalog that is not complete.
        let change = "<?xml version=\"1.0\"?><Notify><CmdType>Catalog</CmdType><SN>32</SN><DeviceID>\(T.device)</DeviceID><SumNum>1</SumNum>"
            + "<DeviceList Num=\"1\"><Item><DeviceID>62092210001310000007</DeviceID><Event>VLOST</Event></Item></DeviceList></Notify>"
        let changed = b.receive(T.request("NOTIFY", branch: "z9hG4bKnc", headers: [("Event", "Catalog")], body: change), from: T.peer, now: Self.t0 + 501)
        #expect(T.sent(changed).map(\.statusCode) == [200])
        let catalog = String(decoding: try #require(T.forwarded(changed).first { $0.topic == "catalog" }).body, as: UTF8.self)
        #expect(catalog.contains("\"complete\":false") && catalog.contains("\"event\":\"VLOST\"") && catalog.contains("\"status\":\"OFF\""))
        // The device ends the alarm subscription: an ended fact, and a new SUBSCRIBE a minute later.
        let end = T.request("NOTIFY", branch: "z9hG4bKne", headers: [("Event", "presence"), ("Subscription-State", "terminated;reason=timeout")],
                            body: alarm.replacingOccurrences(of: "<SN>31</SN>", with: "<SN>33</SN>"))
        let ended = b.receive(end, from: T.peer, now: Self.t0 + 502)
        #expect(Self.facts(ended).contains { $0.contains("\"state\":\"ended\"") })
        #expect(T.sent(b.tick(now: Self.t0 + 530)).filter { $0.method == "SUBSCRIBE" && $0.header("Event") == "presence" }.isEmpty)
        let again = T.sent(b.tick(now: Self.t0 + 563)).filter { $0.method == "SUBSCRIBE" && $0.header("Event") == "presence" }
        #expect(again.count == 1 && again[0].header("Call-ID") != alarmSub.header("Call-ID"))
    }

    @Test("a refresh answered 481 (the device restarted and lost the dialog): a new subscription, not a refusal")
    func lostSubscription() throws {
        var b = T.bridge(timeout: 3600, manage: true)
        let requests = T.sent(T.authorizedRegister(&b).actions).dropFirst()
        let sub = try #require(requests.first { $0.method == "SUBSCRIBE" && $0.header("Event") == "presence" })
        _ = b.receive(sub.response(200, "OK", toTag: "d", extra: [("Expires", "100")]), from: T.peer, now: Self.t0 + 1)
        let refresh = try #require(T.sent(b.tick(now: Self.t0 + 82)).first { $0.method == "SUBSCRIBE" && $0.header("Event") == "presence" })
        #expect(refresh.header("Call-ID") == sub.header("Call-ID"))
        let lost = b.receive(refresh.response(481, "Call/Transaction Does Not Exist", toTag: "d"), from: T.peer, now: Self.t0 + 83)
        #expect(Self.facts(lost).isEmpty && b.counters["subscription_lost"] == 1 && b.counters["refused_subscribe_alarm"] == nil)
        let fresh = try #require(T.sent(b.tick(now: Self.t0 + 84)).first { $0.method == "SUBSCRIBE" && $0.header("Event") == "presence" })
        #expect(fresh.header("Call-ID") != sub.header("Call-ID") && fresh.to?.tag == nil && fresh.cseq?.number == 1)
    }

    @Test("alarms by channel: an NVR's listed channel is its own; a channel another device's catalog lists is refused")
    func channels() throws {
        var b = T.bridge()
        _ = T.register(&b, T.nvr, password: "nvr-pass")
        let other = "62092210001180000002"
        let sn = "1"  // the first SN the bridge gives: its Catalog query at register
        let list = Self.response("Catalog", sn: sn,
                                 "<SumNum>1</SumNum><DeviceList Num=\"1\"><Item><DeviceID>62092210001310000001</DeviceID><Status>ON</Status></Item></DeviceList>",
                                 device: T.nvr)
        _ = b.receive(T.request("MESSAGE", from: T.nvr, branch: "z9hG4bKl", body: list), from: T.peer, now: Self.t0 + 1)
        #expect(b.counters["catalogs_complete"] == 1)
        func alarm(_ channel: String, from sender: String, branch: String) -> [BridgeAction] {
            let body = "<?xml version=\"1.0\"?><Notify><CmdType>Alarm</CmdType><SN>\(branch.suffix(2))</SN><DeviceID>\(channel)</DeviceID><AlarmPriority>1</AlarmPriority>"
                + "<AlarmMethod>5</AlarmMethod><AlarmTime>2027-01-15T16:10:00</AlarmTime></Notify>"
            return b.receive(T.request("MESSAGE", from: sender, branch: branch, body: body), from: T.peer, now: Self.t0 + 2)
        }
        #expect(T.forwarded(alarm("62092210001310000001", from: T.nvr, branch: "z9hG4bKa1")).count == 1)
        // A second NVR (another address) may not alarm as the first one's listed channel.
        let peer2 = SIPPeer(transport: .udp, host: "10.0.0.6", port: 5060)
        var b2 = b
        _ = T.register(&b2, other, password: "secret", at: Self.t0 + 3, branch: "z9hG4bKo", from: peer2)
        let body = "<?xml version=\"1.0\"?><Notify><CmdType>Alarm</CmdType><SN>9</SN><DeviceID>62092210001310000001</DeviceID><AlarmPriority>1</AlarmPriority>"
            + "<AlarmMethod>5</AlarmMethod><AlarmTime>2027-01-15T16:10:00</AlarmTime></Notify>"
        var m = T.request("MESSAGE", from: other, branch: "z9hG4bKa2", body: body)
        m.headers = m.headers.map { $0.name == "Via" ? ("Via", "SIP/2.0/UDP 10.0.0.6:5060;branch=z9hG4bKa2") : $0 }
        let refused = b2.receive(m, from: peer2, now: Self.t0 + 4)
        #expect(T.sent(refused).first?.statusCode == 403 && T.forwarded(refused).isEmpty)
        // An unlisted channel (added since the catalog) is still the NVR's: no alarm is lost.
        #expect(T.forwarded(alarm("62092210001310000002", from: T.nvr, branch: "z9hG4bKa3")).count == 1)
    }
}
