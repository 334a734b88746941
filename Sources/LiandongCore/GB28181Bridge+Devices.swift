/// The bridge managing its devices: after a new registration (and after a restart, for devices
/// registered before) it asks each for its DeviceInfo, arms it (DeviceControl GuardCmd SetGuard,
/// `Settings.armOnRegister`) and subscribes to its alarms and catalog changes
/// (`Settings.alarmSubscribe`, refreshed within the dialog before expiry). What the device
/// answers goes to liandongd as liandong.device_info.v1 (`DeviceFact`). A device that refuses a
/// request (4xx/5xx/6xx, or an error Result) is not asked it again until it registers anew.
extension GB28181Bridge {
    /// What a request the platform sent was for (its answer is read by it).
    enum Purpose: Equatable, Sendable {
        case alarmResponse
        case catalog
        case deviceInfo
        case guardCommand(arm: Bool)
        case subscribe(DeviceFact.SubscriptionEvent)

        /// Its name among a device's refused requests and in the counters.
        var name: String {
            switch self {
            case .alarmResponse: "alarm_response"
            case .catalog: "catalog"
            case .deviceInfo: "device_info"
            case .guardCommand: "guard"
            case .subscribe(let event): "subscribe_\(event.rawValue)"
            }
        }
    }

    /// A subscription the platform holds (or is asking for) at a device: its dialog.
    struct Subscription: Sendable {
        var callID: String
        var fromTag: String
        var toTag: String?
        var cseq: UInt32
        var active = false
        /// When the device's acceptance runs out, and when it is refreshed.
        var expiresAt: Double = 0
        var refreshAt: Double = .infinity
    }

    /// What the bridge still waits for from a device after the MESSAGE was accepted: the
    /// Response MESSAGE to a guard command.
    struct PendingGuard: Sendable {
        var sn: String
        var arm: Bool
        var deadline: Double
    }

    static func subscriptionKey(_ device: String, _ event: DeviceFact.SubscriptionEvent) -> String { "\(device)|\(event.rawValue)" }

    // MARK: asking

    /// Everything a device is asked once it is registered (its catalog is asked by `register`):
    /// what it has not answered, not refused and not been asked yet.
    mutating func manage(_ device: String, now: Double) -> [BridgeAction] {
        guard let r = registrations[device], r.online, r.expiresAt > now else { return [] }
        var actions: [BridgeAction] = []
        let refused = self.refused[device, default: []]
        if infoAsked[device] == nil, !refused.contains(Purpose.deviceInfo.name) {
            infoAsked[device] = now
            actions.append(query("DeviceInfo", to: device, purpose: .deviceInfo, now: now))
        }
        if settings.armOnRegister, guardSent[device] == nil, !refused.contains(Purpose.guardCommand(arm: true).name) {
            actions += guardCommand(device, arm: true, now: now)
        }
        if settings.alarmSubscribe > 0 {
            for event in DeviceFact.SubscriptionEvent.allCases
            where subscriptions[Self.subscriptionKey(device, event)] == nil && !refused.contains(Purpose.subscribe(event).name) {
                actions.append(subscribe(device, event, now: now))
            }
        }
        return actions
    }

    /// A new registration (not a refresh): the device may have restarted, lost its arming and
    /// its subscriptions, and may answer what it refused before.
    mutating func forgetAsked(_ device: String) {
        refused[device] = nil
        infoAsked[device] = nil
        guardSent[device] = nil
        guards[device] = nil
        for event in DeviceFact.SubscriptionEvent.allCases { subscriptions[Self.subscriptionKey(device, event)] = nil }
    }

    /// MESSAGE Query/<command> (Catalog, DeviceInfo) to a registered device.
    mutating func query(_ command: String, to device: String, purpose: Purpose, now: Double) -> BridgeAction {
        let sn = takeSN()
        count("\(purpose.name)_queries")
        return platformMessage(to: device, body: Self.manscdp("Query", command, sn: sn, device: device), purpose: purpose, now: now)
    }

    /// DeviceControl GuardCmd SetGuard (arm) or ResetGuard to a registered device; the device's
    /// Response MESSAGE (or its refusal, or silence) becomes a guard fact.
    mutating func guardCommand(_ device: String, arm: Bool, now: Double) -> [BridgeAction] {
        let sn = takeSN()
        guardSent[device] = now
        guards[device] = PendingGuard(sn: sn, arm: arm, deadline: now + 32)
        count(arm ? "guard_set" : "guard_reset")
        let body = Self.manscdp("Control", "DeviceControl", sn: sn, device: device, extra: "<GuardCmd>\(arm ? "SetGuard" : "ResetGuard")</GuardCmd>\r\n")
        return [platformMessage(to: device, body: body, purpose: .guardCommand(arm: arm), now: now)]
    }

    /// An operator's arm or disarm (liandongd device arm|disarm, through liandong.device_commands):
    /// sent even to a device that refused before; for a device not registered here, a fact says so.
    public mutating func operatorGuard(_ device: String, arm: Bool, now: Double) -> [BridgeAction] {
        guard let r = registrations[device], r.expiresAt > now else {
            count("guard_unreachable")
            return [fact(device, now, .guardState(.unreachable, detail: "not registered with this bridge"))]
        }
        refused[device]?.remove(Purpose.guardCommand(arm: true).name)
        return guardCommand(device, arm: arm, now: now)
    }

    /// SUBSCRIBE to a device's alarms (Event presence, a Query Alarm body: every priority and
    /// method) or to its catalog changes (Event Catalog), or its refresh within the dialog.
    mutating func subscribe(_ device: String, _ event: DeviceFact.SubscriptionEvent, now: Double) -> BridgeAction {
        let key = Self.subscriptionKey(device, event)
        var s = subscriptions[key] ?? Subscription(callID: "\(Self.randomToken())@\(settings.realm)", fromTag: Self.randomToken(),
                                                   cseq: 0)
        s.cseq += 1
        s.refreshAt = .infinity
        subscriptions[key] = s
        let sn = takeSN()
        let body = event == .alarm
            ? Self.manscdp("Query", "Alarm", sn: sn, device: device,
                           extra: "<StartAlarmPriority>0</StartAlarmPriority>\r\n<EndAlarmPriority>0</EndAlarmPriority>\r\n<AlarmMethod>0</AlarmMethod>\r\n")
            : Self.manscdp("Query", "Catalog", sn: sn, device: device)
        count("subscribe_\(event.rawValue)")
        let r = registrations[device]
        return platformRequest("SUBSCRIBE", to: device, body: body, purpose: .subscribe(event), now: now,
                               dialog: (s.callID, s.fromTag, s.toTag, s.cseq),
                               extra: [("Event", event == .alarm ? "presence" : "Catalog"),
                                       ("Expires", String(Int(settings.alarmSubscribe))),
                                       ("Contact", "<sip:\(settings.serverID)@\(r?.localHost ?? settings.realm):\(r?.localPort ?? 5060)>")])
    }

    static func manscdp(_ root: String, _ command: String, sn: String, device: String, extra: String = "") -> String {
        "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<\(root)>\r\n<CmdType>\(command)</CmdType>\r\n<SN>\(sn)</SN>\r\n"
            + "<DeviceID>\(device)</DeviceID>\r\n\(extra)</\(root)>\r\n"
    }

    mutating func takeSN() -> String {
        defer { nextSN += 1 }
        return String(nextSN)
    }

    /// A device fact for liandongd (acknowledged path; not tied to a device's transaction).
    mutating func fact(_ device: String, _ now: Double, _ fact: DeviceFact.Fact) -> BridgeAction {
        let f = DeviceFact(deviceID: device, at: now, fact)
        count("facts")
        return .forward(topic: DeviceFact.topic, body: f.json(), id: f.id)
    }

    // MARK: answers

    /// A device's final answer to a request the platform sent.
    mutating func answered(_ o: Outgoing, _ response: SIPMessage, now: Double) -> [BridgeAction] {
        let code = response.statusCode ?? 0
        let device = o.device
        if (200..<300).contains(code) {
            guard case .subscribe(let event) = o.purpose else { return [] }
            let key = Self.subscriptionKey(device, event)
            guard var s = subscriptions[key] else { return [] }
            let granted = response.header("Expires").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                .map(Double.init) ?? settings.alarmSubscribe
            guard granted > 0 else {
                subscriptions[key] = nil
                return [fact(device, now, .subscription(event, .ended, until: nil, detail: "\(code) with Expires 0"))]
            }
            let wasActive = s.active
            s.active = true
            s.toTag = s.toTag ?? response.to?.tag
            s.expiresAt = now + granted
            // Refreshed before it runs out: at 80 % of its time.
            s.refreshAt = now + granted * 0.8
            subscriptions[key] = s
            count("subscriptions_active")
            // A refresh that changes nothing worth a row is not reported again.
            return wasActive ? [] : [fact(device, now, .subscription(event, .active, until: s.expiresAt, detail: nil))]
        }
        guard code >= 300 else { return [] }
        // A refresh of a subscription the device no longer knows (it restarted): a new one.
        if code == 481, case .subscribe(let event) = o.purpose {
            subscriptions[Self.subscriptionKey(device, event)] = nil
            count("subscription_lost")
            return []
        }
        let detail = "\(code) \(Self.reason(response))"
        return refusedBy(device, o.purpose, detail: detail, now: now)
    }

    static func reason(_ m: SIPMessage) -> String {
        if case .response(_, let reason) = m.start { return String(reason.prefix(80)) }
        return ""
    }

    /// `device` refused a request: recorded, and not asked again until it registers anew.
    mutating func refusedBy(_ device: String, _ purpose: Purpose, detail: String, now: Double) -> [BridgeAction] {
        count("refused_\(purpose.name)")
        refused[device, default: []].insert(purpose.name)
        switch purpose {
        case .alarmResponse, .deviceInfo:
            return []
        case .catalog:
            catalogs[device] = nil
            return []
        case .guardCommand:
            guards[device] = nil
            return [fact(device, now, .guardState(.refused, detail: detail))]
        case .subscribe(let event):
            subscriptions[Self.subscriptionKey(device, event)]?.active = false
            return [fact(device, now, .subscription(event, .refused, until: nil, detail: detail))]
        }
    }

    /// A request the device never answered (UDP: 32 s of retransmissions).
    mutating func unanswered(_ o: Outgoing, now: Double) -> [BridgeAction] {
        switch o.purpose {
        case .guardCommand:
            guards[o.device] = nil
            return [fact(o.device, now, .guardState(.unanswered, detail: "no answer to DeviceControl within 32 s"))]
        case .subscribe(let event):
            // Asked again in a while (a device that was busy or briefly away).
            subscriptions[Self.subscriptionKey(o.device, event)]?.refreshAt = now + min(settings.alarmSubscribe, 300)
            return []
        default:
            return []
        }
    }

    /// A Response MESSAGE from `device` (already answered 200) that is not a Catalog: its
    /// DeviceInfo, or its answer to a guard command.
    mutating func deviceResponse(_ utf8: [UInt8], device: String, now: Double) -> [BridgeAction] {
        switch try? ManscdpResponse.decode(utf8: utf8) {
        case .deviceInfo(let info)? where info.deviceID == device:
            count("device_info_answers")
            if let result = info.result, result.uppercased() != "OK" {
                return refusedBy(device, .deviceInfo, detail: "Result \(result.prefix(20))", now: now)
            }
            return [fact(device, now, .info(DeviceFact.Info(name: info.name, manufacturer: info.manufacturer, model: info.model,
                                                          firmware: info.firmware, channels: info.channels)))]
        case .other(cmdType: "DeviceControl", let sn, let id, let result)? where id == device:
            guard let pending = guards[device], pending.sn == sn else {
                count("guard_unasked")
                return []
            }
            guards[device] = nil
            if let result, result.uppercased() == "OK" {
                count(pending.arm ? "guard_armed" : "guard_disarmed")
                return [fact(device, now, .guardState(pending.arm ? .armed : .disarmed, detail: nil))]
            }
            return refusedBy(device, .guardCommand(arm: pending.arm), detail: "Result \(result?.prefix(20) ?? "missing")", now: now)
        default:
            count("messages_ignored")
            return []
        }
    }

    /// A catalog NOTIFY (already answered 200): the channels that changed, forwarded as a
    /// catalog that is not complete (nothing else is marked gone).
    mutating func catalogNotify(_ utf8: [UInt8], device: String, now: Double) -> [BridgeAction] {
        guard let part = try? ManscdpResponse.catalogNotify(utf8: utf8), part.deviceID == device, !part.items.isEmpty else {
            count("catalog_notify_unreadable")
            return []
        }
        count("catalog_notifies")
        var assembly = CatalogAssembly(deviceID: device, sn: part.sn, deadline: now)
        _ = assembly.add(part)
        var catalog = DeviceCatalog(assembly, at: now)
        catalog.complete = false
        noteChannels(device, part.items, replacing: false)
        return [.forward(topic: DeviceCatalog.topic, body: catalog.json(), id: catalog.id)]
    }

    /// The channels a device listed, for judging its alarms (`mayAlarm`).
    mutating func noteChannels(_ device: String, _ items: [CatalogItem], replacing: Bool) {
        var set = replacing ? Set<String>() : channelsOf[device, default: []]
        for item in items {
            if item.event == "DEL" { set.remove(item.channelID) } else { set.insert(item.channelID) }
        }
        channelsOf[device] = set
    }

    /// A NOTIFY's Subscription-State: a subscription the device ended is asked for again in a
    /// minute (it may have restarted), unless it was rejected.
    mutating func subscriptionState(_ m: SIPMessage, device: String, now: Double) -> [BridgeAction] {
        guard let state = m.header("Subscription-State")?.lowercased(), state.hasPrefix("terminated") else { return [] }
        let event: DeviceFact.SubscriptionEvent = m.header("Event")?.lowercased().hasPrefix("catalog") == true ? .catalog : .alarm
        let key = Self.subscriptionKey(device, event)
        guard subscriptions[key] != nil else { return [] }
        if state.contains("rejected") {
            return refusedBy(device, .subscribe(event), detail: "terminated;reason=rejected", now: now)
        }
        subscriptions[key] = nil
        subscriptionRetry[key] = now + 60
        return [fact(device, now, .subscription(event, .ended, until: nil, detail: String(state.prefix(80))))]
    }

    // MARK: timers

    /// Refreshes due, guard answers out of time, and what registered devices were not asked yet
    /// (after a restart, or a retry).
    mutating func devicesTick(now: Double) -> [BridgeAction] {
        var actions: [BridgeAction] = []
        for (device, pending) in guards.sorted(by: { $0.key < $1.key }) where pending.deadline <= now {
            guards[device] = nil
            actions.append(fact(device, now, .guardState(.unanswered, detail: "no Response to DeviceControl within 32 s")))
        }
        for (key, s) in subscriptions.sorted(by: { $0.key < $1.key }) {
            let device = String(key.prefix { $0 != "|" })
            guard let r = registrations[device], r.expiresAt > now else {
                subscriptions[key] = nil
                continue
            }
            if s.refreshAt <= now, let event = DeviceFact.SubscriptionEvent(rawValue: String(key.drop { $0 != "|" }.dropFirst())) {
                actions.append(subscribe(device, event, now: now))
            }
        }
        subscriptionRetry = subscriptionRetry.filter { $0.value > now }
        for (device, r) in registrations.sorted(by: { $0.key < $1.key }) where r.online && r.expiresAt > now {
            let waiting = DeviceFact.SubscriptionEvent.allCases.contains { subscriptionRetry[Self.subscriptionKey(device, $0)] != nil }
            if !waiting { actions += manage(device, now: now) }
        }
        infoAsked = infoAsked.filter { registrations[$0.key] != nil }
        guardSent = guardSent.filter { registrations[$0.key] != nil }
        refused = refused.filter { registrations[$0.key] != nil }
        channelsOf = channelsOf.filter { registrations[$0.key] != nil }
        return actions
    }
}
