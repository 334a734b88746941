/// Where a SIP message came from and its answer goes: the transport, the source address (answers
/// go back to it, as with rport: devices behind NAT are reachable only there) and, over TCP, the
/// connection.
public struct SIPPeer: Hashable, Sendable, Codable, CustomStringConvertible {
    public var transport: SIPEndpoint.Transport
    public var host: String
    public var port: Int
    /// The TCP connection, or for UDP the listening socket it came in on (answers leave from it).
    public var connection: Int

    public init(transport: SIPEndpoint.Transport, host: String, port: Int, connection: Int = 0) {
        self.transport = transport
        self.host = host
        self.port = port
        self.connection = connection
    }

    public var description: String { "\(transport.rawValue)://\(host):\(port)" }
}

/// What the bridge's I/O does next.
public enum BridgeAction: Sendable, Equatable {
    /// A SIP message to send.
    case send(SIPMessage, to: SIPPeer)
    /// A message for liandongd's acknowledged path; `acknowledged(id:)` follows its answer.
    case forward(topic: String, body: [UInt8], id: String)
    /// Something an operator should read in the log (a refusal worth knowing of; each kind and
    /// address at most once a minute), with dotted metadata (sip.peer, gb28181.device_id, ...).
    case notice(String, metadata: [String: String])
}

/// The GB/T 28181 platform side of liandong-gb28181, pure: registrations (MD5 Digest),
/// keepalives, alarms and their transactions, device status, timers. The I/O loop feeds it
/// messages, daemon answers and the clock, and carries out the actions it returns.
///
/// - REGISTER: 401 with a challenge, 200 with the right digest (Expires, Date for time sync),
///   403 with a wrong one or an unknown device, Expires 0 unregisters. Status register/unregister.
/// - MESSAGE from a device not registered: 403. Keepalive: a status report forwarded; Alarm: the
///   MANSCDP body forwarded on topic gb28181; either answered 200 only when liandongd acknowledged
///   it (400 when it refused it), and after an Alarm's 200 the platform's Response MESSAGE goes to
///   the device. Other MANSCDP (Catalog answers, MobilePosition): 200, not forwarded.
/// - A retransmission (same Via branch) is the same transaction: absorbed while waiting (100
///   Trying), the same final answer after; nothing is forwarded twice.
/// - Timers: keepalive timeout (status offline/timeout), registration expiry (offline/expired),
///   finished transactions kept 32 s, the Response MESSAGE retransmitted over UDP until answered.
public struct GB28181Bridge: Sendable {
    public struct Settings: Sendable {
        public var serverID: String
        public var realm: String
        public var keepaliveTimeout: Double
        /// Digest password per device id (nil: the device may not register).
        public var passwords: [String: String]
        /// Password of every device not in `passwords` ("" for none).
        public var defaultPassword: String
        /// Devices that may register with `defaultPassword` (gb28181.devices_file); nil: any
        /// device id (a warning at start). Devices in `passwords` need not be listed.
        public var knownDevices: Set<String>?
        /// Failed digests from one address (or for one device id) within a minute before that
        /// address (device) is refused without a check for a while (doubling, up to 15 minutes).
        public var failureLimit = 5
        /// Most messages waiting for liandongd's answer; beyond, 503 (the device retries).
        public var maxWaiting: Int
        /// Registration lifetime when the device asks none; longest granted.
        public var defaultExpires: Int
        public var maxExpires: Int
        /// gb28181.catalog_interval_s: a registered device's Catalog is asked for again this often
        /// (0: only when it registers).
        public var catalogInterval: Double = 3600
        /// How long the MESSAGEs of one Catalog answer are waited for; then what came is forwarded.
        public var catalogTimeout: Double = 30
        /// gb28181.arm_on_register: DeviceControl GuardCmd SetGuard to every device that registers.
        public var armOnRegister = true
        /// gb28181.alarm_subscribe_s: SUBSCRIBE to alarms and catalog changes for this long,
        /// refreshed before it runs out (0: no subscriptions).
        public var alarmSubscribe: Double = 3600

        public init(serverID: String, realm: String, keepaliveTimeout: Double = 180, passwords: [String: String] = [:],
                    defaultPassword: String = "", maxWaiting: Int = 20_000, defaultExpires: Int = 3600, maxExpires: Int = 86_400)
        {
            self.serverID = serverID
            self.realm = realm
            self.keepaliveTimeout = keepaliveTimeout
            self.passwords = passwords
            self.defaultPassword = defaultPassword
            self.maxWaiting = maxWaiting
            self.defaultExpires = defaultExpires
            self.maxExpires = maxExpires
        }

        func password(for device: String) -> String? {
            if let p = passwords[device] { return p }
            guard !defaultPassword.isEmpty, knownDevices?.contains(device) ?? true else { return nil }
            return defaultPassword
        }
    }

    public struct Registration: Sendable, Equatable, Codable {
        public var peer: SIPPeer
        public var expiresAt: Double
        public var lastSeen: Double
        public var online: Bool
        /// Our address as the device addressed it (its REGISTER's Request-URI): the Via of what we send it.
        public var localHost: String
        public var localPort: Int
        /// The REGISTER's Call-ID: a refresh keeps it, a device that restarted registers with a new one.
        public var callID: String?

        public init(peer: SIPPeer, expiresAt: Double, lastSeen: Double, online: Bool, localHost: String, localPort: Int,
                    callID: String? = nil)
        {
            self.peer = peer
            self.expiresAt = expiresAt
            self.lastSeen = lastSeen
            self.online = online
            self.localHost = localHost
            self.localPort = localPort
            self.callID = callID
        }
    }

    struct TransactionKey: Hashable {
        var branch: String
        var method: String
    }

    enum TransactionState {
        case waiting(id: String)
        case done(SIPMessage)
    }

    struct Transaction {
        var request: SIPMessage
        var peer: SIPPeer
        var state: TransactionState
        var receivedAt: Double
        var expiresAt: Double = .infinity
    }

    /// What a forwarded message was, for its answer.
    enum Forwarded {
        case keepalive
        case alarm(sn: String, channel: String, device: String)
        /// A body the bridge could not read, for liandongd to keep as a dead letter.
        case unread
    }

    /// A request the platform sent (a MESSAGE, a SUBSCRIBE), until answered.
    struct Outgoing {
        var message: SIPMessage
        var peer: SIPPeer
        var device: String
        var purpose: Purpose
        var nextAt: Double
        var interval: Double
        var giveUpAt: Double
    }

    public private(set) var settings: Settings
    let nonces: DigestNonces
    public private(set) var registrations: [String: Registration] = [:]
    /// Grows whenever a device registers, re-registers, unregisters or expires (not on keepalives): when to save them.
    public private(set) var registrationChanges = 0
    var transactions: [TransactionKey: Transaction] = [:]
    /// Forwarded ids and the transactions waiting for their answer.
    var waiting: [String: (what: Forwarded, keys: [TransactionKey])] = [:]
    var outgoing: [String: Outgoing] = [:]
    var nextCSeq: UInt32 = 1
    /// Catalog queries in flight, by device, and when each device was last asked (GB28181Bridge+Platform).
    var catalogs: [String: CatalogAssembly] = [:]
    var catalogAskedAt: [String: Double] = [:]
    var nextSN: Int = 1
    /// Per device (GB28181Bridge+Devices): what it refused (not asked again until it registers
    /// anew), when its DeviceInfo was asked and its guard command sent, the guard answer awaited,
    /// the channels its catalog lists; subscriptions by device and event, and when an ended one is
    /// asked for again.
    var refused: [String: Set<String>] = [:]
    var infoAsked: [String: Double] = [:]
    var guardSent: [String: Double] = [:]
    var guards: [String: PendingGuard] = [:]
    var channelsOf: [String: Set<String>] = [:]
    var subscriptions: [String: Subscription] = [:]
    var subscriptionRetry: [String: Double] = [:]
    /// Counters for the metrics: responses sent by method and code, retransmissions absorbed, ...
    public private(set) var counters: [String: Int] = [:]
    /// Seconds from a forwarded message's arrival to liandongd's answer, since the last take.
    public private(set) var answerSeconds: [Double] = []
    /// REGISTER nonces already answered with a digest (single use), with when they were used.
    var usedNonces: [String: Double] = [:]
    /// Failed digests by source address and by device id, and who is refused until when.
    var guesses = GuessLimiter()
    /// When each notice (kind and address) was last given.
    var noticed: [String: Double] = [:]

    public init(settings: Settings, nonceSecret: String) {
        self.settings = settings
        nonces = DigestNonces(secret: nonceSecret)
    }

    public var waitingCount: Int { waiting.count }

    /// The devices that may register with the shared password, as now known (the devices file
    /// and the camera registry, reread by the I/O while running).
    public mutating func setKnownDevices(_ devices: Set<String>?) { settings.knownDevices = devices }
    /// Bytes of request bodies the transactions hold (none: only headers are kept).
    public var heldBodyBytes: Int { transactions.values.reduce(0) { $0 + $1.request.body.count } }

    /// Registrations saved by an earlier run (liandong-gb28181 keeps them across restarts, so its
    /// devices need not register again): those not expired are taken, each given a full
    /// keepalive_timeout_s from now before it counts as silent. No status is reported for them.
    public mutating func restore(_ saved: [String: Registration], now: Double) -> Int {
        var restored = 0
        for (device, var r) in saved where r.expiresAt > now && DeviceID(device) != nil {
            r.lastSeen = max(r.lastSeen, now)
            registrations[device] = r
            restored += 1
        }
        return restored
    }
    public var onlineCount: Int { registrations.values.filter(\.online).count }

    public mutating func takeAnswerSeconds() -> [Double] {
        defer { answerSeconds = [] }
        return answerSeconds
    }

    mutating func count(_ key: String) { counters[key, default: 0] += 1 }

    // MARK: input

    /// A message arrived from `peer`.
    public mutating func receive(_ m: SIPMessage, from peer: SIPPeer, now: Double) -> [BridgeAction] {
        guard let method = m.method else {
            // A device's answer to a request of ours: a provisional one stops nothing but the
            // retransmissions' pace; a final one is read by what the request was for.
            guard let branch = m.via?.branch, let o = outgoing[branch], let code = m.statusCode else { return [] }
            if code < 200 {
                outgoing[branch]!.nextAt = max(o.nextAt, now + 4)
                return []
            }
            outgoing[branch] = nil
            count("outgoing_answered")
            return answered(o, m, now: now)
        }
        if method == "ACK" { return [] }
        let key = transactionKey(m)
        if let t = transactions[key] {
            count("retransmissions")
            switch t.state {
            case .waiting: return [.send(m.response(100, "Trying", toTag: tag(key)).stampedVia(host: peer.host, port: peer.port), to: peer)]
            case .done(let response): return [.send(response, to: peer)]
            }
        }
        var actions: [BridgeAction]
        switch method {
        case "REGISTER": actions = register(m, key: key, from: peer, now: now)
        case "MESSAGE": actions = message(m, key: key, from: peer, now: now)
        case "NOTIFY":
            // A subscription's notification: its body is read like a MESSAGE's.
            actions = message(m, key: key, from: peer, now: now)
            if let device = m.from?.uri.user, registrations[device]?.peer.host == peer.host {
                actions += subscriptionState(m, device: device, now: now)
            }
        case "OPTIONS": actions = [finish(key, m, peer, m.response(200, "OK", toTag: tag(key)), now: now)]
        default:
            actions = [finish(key, m, peer, m.response(405, "Method Not Allowed", toTag: tag(key),
                                                       extra: [("Allow", "REGISTER, MESSAGE, NOTIFY, OPTIONS")]), now: now)]
        }
        return actions
    }

    /// liandongd answered a forwarded message.
    public mutating func acknowledged(id: String, ok: Bool, error: String?, now: Double) -> [BridgeAction] {
        guard let (what, keys) = waiting.removeValue(forKey: id) else { return [] }
        var actions: [BridgeAction] = []
        var answeredPeer: SIPPeer?
        for key in keys {
            guard let t = transactions[key] else { continue }
            answerSeconds.append(max(0, now - t.receivedAt))
            let response: SIPMessage
            if ok {
                response = t.request.response(200, "OK", toTag: tag(key))
            } else {
                let warning = (error ?? "refused").replacingOccurrences(of: "\"", with: "'").prefix(200)
                // liandongd cannot take it now (database.synchronous require without a standby):
                // the device is asked to send it again later, not told it was wrong.
                response = IngestAnswer.isUnavailable(error)
                    ? t.request.response(503, "Service Unavailable", toTag: tag(key),
                                         extra: [("Retry-After", "5"), ("Warning", "399 \(settings.realm) \"\(warning)\"")])
                    : t.request.response(400, "Bad Request", toTag: tag(key), extra: [("Warning", "399 \(settings.realm) \"\(warning)\"")])
            }
            actions.append(finish(key, t.request, t.peer, response, now: now))
            answeredPeer = t.peer
        }
        // An alarm by MESSAGE is answered by the platform's Response MESSAGE (one by NOTIFY is not).
        if ok, case .alarm(let sn, let channel, let device) = what, let peer = answeredPeer, keys.contains(where: { $0.method == "MESSAGE" }) {
            actions.append(alarmResponse(sn: sn, channel: channel, device: device, peer: peer, now: now))
        }
        return actions
    }

    /// Timers: keepalive timeouts, expired registrations, finished transactions, retransmissions.
    public mutating func tick(now: Double) -> [BridgeAction] {
        var actions: [BridgeAction] = []
        for (device, r) in registrations.sorted(by: { $0.key < $1.key }) {
            if r.expiresAt <= now {
                registrations[device] = nil
                registrationChanges += 1
                if r.online { actions.append(status(device, .expired, at: r.expiresAt)) }
            } else if r.online, r.lastSeen + settings.keepaliveTimeout <= now {
                registrations[device]!.online = false
                actions.append(status(device, .timeout, at: r.lastSeen + settings.keepaliveTimeout))
            }
        }
        transactions = transactions.filter { $0.value.expiresAt > now }
        // A used nonce older than its lifetime is refused as stale anyway.
        usedNonces = usedNonces.filter { now - $0.value <= nonces.lifetime + 10 }
        guesses.prune(now: now)
        for (branch, o) in outgoing.sorted(by: { $0.key < $1.key }) where o.nextAt <= now {
            if o.giveUpAt <= now {
                outgoing[branch] = nil
                count("outgoing_unanswered")
                actions += unanswered(o, now: now)
                continue
            }
            // Over TCP nothing is resent (the connection is reliable): the answer is waited for.
            if o.peer.transport == .tcp {
                outgoing[branch]!.nextAt = o.giveUpAt
                continue
            }
            outgoing[branch]!.nextAt = now + o.interval
            outgoing[branch]!.interval = min(o.interval * 2, 4)
            actions.append(.send(o.message, to: o.peer))
        }
        return actions + catalogTick(now: now) + devicesTick(now: now)
    }

    // MARK: REGISTER

    mutating func register(_ m: SIPMessage, key: TransactionKey, from peer: SIPPeer, now: Double) -> [BridgeAction] {
        func answer(_ code: Int, _ reason: String, _ extra: [(name: String, value: String)] = []) -> BridgeAction {
            finish(key, m, peer, m.response(code, reason, toTag: tag(key), extra: extra), now: now)
        }
        guard let device = (m.from?.uri.user ?? m.to?.uri.user), DeviceID(device) != nil else {
            return [answer(400, "Bad Request", [("Warning", "399 \(settings.realm) \"From is not sip:<20-digit device id>@...\"")])]
        }
        // A guessing address (or a device id guessed at from many) is refused without a check for a while.
        if let until = guesses.refusedUntil(host: peer.host, device: device, registeredFrom: registrations[device]?.peer.host, now: now) {
            count("register_throttled")
            return [answer(403, "Forbidden", [("Retry-After", String(Int((until - now).rounded(.up))))])]
                + notice("throttled \(peer.host)", now: now, ["sip.peer": peer.description, "gb28181.device_id": device],
                         "REGISTER refused without a check until \(Timestamp.formatCST(until)): too many wrong digests from \(peer.host) "
                         + "or for device \(device)")
        }
        guard let authorization = m.header("Authorization") else {
            count("register_challenged")
            return [challenge(m, key, peer, now: now, stale: false)]
        }
        guard let credentials = DigestCredentials(header: authorization) else {
            return [answer(400, "Bad Request", [("Warning", "399 \(settings.realm) \"Authorization is not a Digest\"")])]
        }
        guard credentials.username == device, let password = settings.password(for: device) else {
            count(credentials.username == device ? "register_unknown" : "register_forbidden")
            return [answer(403, "Forbidden")]
                + notice("unknown \(peer.host)", now: now, ["sip.peer": peer.description, "gb28181.device_id": device], "REGISTER of device \(device) from \(peer.description) refused: "
                         + "not in gb28181.passwords_file or gb28181.devices_file (with only the shared password a device must be known)")
        }
        // Single use, and only from the address it was issued to: a captured Authorization cannot
        // be replayed (to unregister the device, or to move it), nor used from elsewhere.
        let fresh = nonces.check(credentials.nonce, now: now, host: peer.host) == .fresh && usedNonces[credentials.nonce] == nil
        guard fresh else {
            let right = credentials.expectedResponse(password: password, method: "REGISTER") == credentials.response.lowercased()
            count("register_challenged")
            return [challenge(m, key, peer, now: now, stale: right)]
        }
        usedNonces[credentials.nonce] = now
        guard credentials.expectedResponse(password: password, method: "REGISTER") == credentials.response.lowercased() else {
            count("register_forbidden")
            guesses.failed(host: peer.host, device: device, now: now, limit: settings.failureLimit)
            return [answer(403, "Forbidden")]
        }
        guesses.succeeded(host: peer.host)
        let contact = m.values("Contact").first
        let asked = contact.flatMap { SIPAddress($0)?.parameters["expires"] }.flatMap(Int.init)
            ?? m.header("Expires").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            ?? settings.defaultExpires
        let expires = min(max(asked, 0), settings.maxExpires)
        var extra: [(name: String, value: String)] = []
        if let contact { extra.append(("Contact", contact.replacingExpires(expires))) }
        extra.append(("Expires", String(expires)))
        extra.append(("Date", Self.dateHeader(now)))
        var actions = [answer(200, "OK", extra)]
        registrationChanges += 1
        if expires == 0 {
            count("unregistered")
            if let r = registrations.removeValue(forKey: device), r.online { actions.append(status(device, .unregister, at: now)) }
            return actions
        }
        count("registered")
        let uri: SIPURI? = if case .request(_, let text) = m.start { SIPURI(text[...]) } else { nil }
        let callID = m.header("Call-ID")
        let before = registrations[device]
        // A refresh keeps its Call-ID; a new one (a device that restarted) has lost its arming and
        // subscriptions, and may answer what it refused before.
        let anew = before == nil || before!.callID != callID || !before!.online
        registrations[device] = Registration(peer: peer, expiresAt: now + Double(expires), lastSeen: now, online: true,
                                             localHost: uri?.host ?? settings.realm, localPort: uri?.port ?? 5060, callID: callID)
        actions.append(status(device, .register, at: now))
        actions.append(fact(device, now, .registration(DeviceFact.Registration(
            transport: peer.transport, from: "\(peer.host):\(peer.port)", expiresAt: now + Double(expires)))))
        if anew { forgetAsked(device) }
        // What it has and what it should send: its catalog, its DeviceInfo, its arming and its
        // subscriptions (after the 200, which `actions` sends first).
        return actions + askCatalog(device, now: now) + manage(device, now: now)
    }

    mutating func challenge(_ m: SIPMessage, _ key: TransactionKey, _ peer: SIPPeer, now: Double, stale: Bool) -> BridgeAction {
        finish(key, m, peer, m.response(401, "Unauthorized", toTag: tag(key),
                                        extra: [("WWW-Authenticate", nonces.challenge(realm: settings.realm, now: now, host: peer.host,
                                                                                      stale: stale))]),
               now: now)
    }

    /// GB/T 28181's Date header in a REGISTER's 200 (devices set their clock from it): China Standard Time, milliseconds.
    static func dateHeader(_ now: Double) -> String {
        var text = Timestamp.formatCST(now)
        if text.hasSuffix("+08:00") { text = String(text.dropLast(6)) }
        // Always with milliseconds: some devices parse a fixed 23-character form.
        return text.contains(".") ? String(text.prefix(23)) : text + ".000"
    }

    // MARK: MESSAGE

    mutating func message(_ m: SIPMessage, key: TransactionKey, from peer: SIPPeer, now: Double) -> [BridgeAction] {
        func answer(_ code: Int, _ reason: String, _ warning: String? = nil) -> BridgeAction {
            let extra = warning.map { [("Warning", "399 \(settings.realm) \"\($0.replacingOccurrences(of: "\"", with: "'").prefix(200))\"")] } ?? []
            return finish(key, m, peer, m.response(code, reason, toTag: tag(key), extra: extra), now: now)
        }
        guard let device = m.from?.uri.user, var registration = registrations[device], registration.expiresAt > now else {
            count("message_forbidden")
            return [answer(403, "Forbidden", "not registered: REGISTER first")]
        }
        // A registration is bound to the address and transport it registered from: a request in
        // its name from elsewhere is refused (only an authenticated REGISTER moves it).
        guard registration.peer.host == peer.host, registration.peer.transport == peer.transport else {
            count("message_wrong_address")
            return [answer(403, "Forbidden", "device \(device) is registered from another address")]
                + notice("spoofed \(peer.host)", now: now,
                         ["sip.peer": peer.description, "gb28181.device_id": device, "gb28181.registered_from": registration.peer.description],
                         "MESSAGE in the name of device \(device) from \(peer.description) refused: "
                         + "it registered from \(registration.peer.description)")
        }
        let root: XMLElement
        let utf8: [UInt8]
        do {
            utf8 = try TextEncoding.xmlToUTF8(m.body)
            root = try XMLReader.parse(utf8)
        } catch {
            return forwardUnread(m, key, peer, device: device, now: now)
        }
        let command = root.value("CmdType")
        registration.lastSeen = now
        registration.peer = peer
        registrations[device] = registration
        switch (root.name, command) {
        case ("Notify", "Keepalive"):
            count("keepalives")
            if waiting.count >= settings.maxWaiting { return [busy(m, key, peer, now: now)] }
            registrations[device]!.online = true
            let report = DeviceStatusReport(deviceID: device, reason: .keepalive, at: now)
            wait(key, m, peer, now: now, for: report.id, .keepalive)
            return [.forward(topic: "status", body: report.json(), id: report.id)]
        case ("Response", "Catalog"):
            // Part of its answer to our query: 200 at once; the catalog goes on when complete.
            return [answer(200, "OK")] + catalogResponse(utf8, device: device, now: now)
        case ("Response", _):
            // Its DeviceInfo, its answer to a guard command: 200 at once.
            return [answer(200, "OK")] + deviceResponse(utf8, device: device, now: now)
        case ("Notify", "Catalog"):
            // A subscription's catalog change: 200 at once; the change goes on to liandongd.
            return [answer(200, "OK")] + catalogNotify(utf8, device: device, now: now)
        case ("Notify", "Alarm"):
            let notify: ManscdpNotify
            do {
                notify = try MANSCDP.decode(utf8: utf8)
            } catch {
                return forwardUnread(m, key, peer, device: device, now: now)
            }
            guard case .alarm(let alarm) = notify.command else { return [answer(400, "Bad Request")] }
            // An alarm names the sender, or one of its channels: a device with channels (a DVR, an
            // NVR, a platform) may name a channel that is not itself registered; a camera only itself.
            guard mayAlarm(as: notify.deviceID, sender: device) else {
                count("alarm_wrong_device")
                return [answer(403, "Forbidden", "DeviceID \(notify.deviceID) is not device \(device) nor one of its channels")]
                    + notice("wrong device \(peer.host)", now: now,
                             ["sip.peer": peer.description, "gb28181.device_id": device, "gb28181.alarm_device_id": notify.deviceID], "Alarm of device \(device) from \(peer.description) refused: it names "
                             + "DeviceID \(notify.deviceID), which is neither the device nor one of its channels")
            }
            count("alarms")
            if waiting.count >= settings.maxWaiting { return [busy(m, key, peer, now: now)] }
            let id = alarm.alertID(deviceID: notify.deviceID, sn: notify.sn)
            let joined = waiting[id] != nil
            wait(key, m, peer, now: now, for: id, .alarm(sn: notify.sn, channel: notify.deviceID, device: device))
            // The same alarm in a new transaction while the first is still waiting: one forward.
            // A channel's alarm names the device that sent it (liandongd records it as the channel's device).
            let topic = notify.deviceID == device ? "gb28181" : "gb28181.via." + device
            return joined ? [] : [.forward(topic: topic, body: m.body, id: id)]
        default:
            count("messages_ignored")
            return [answer(200, "OK")]
        }
    }

    /// A MESSAGE body the bridge cannot read (its encoding, its XML, an Alarm without its fields)
    /// goes to liandongd all the same, on topic `gb28181.<id>`: liandongd keeps it as a dead letter
    /// (raw bytes and reason) and refuses it, and the device gets 400 with liandongd's reason. The
    /// id names the device and the transaction (a retransmission joins the first).
    mutating func forwardUnread(_ m: SIPMessage, _ key: TransactionKey, _ peer: SIPPeer, device: String, now: Double) -> [BridgeAction] {
        count("message_unread")
        if waiting.count >= settings.maxWaiting { return [busy(m, key, peer, now: now)] }
        let id = Self.unreadID(device: device, branch: key.branch, callID: m.header("Call-ID") ?? "")
        let joined = waiting[id] != nil
        wait(key, m, peer, now: now, for: id, .unread)
        return joined ? [] : [.forward(topic: "gb28181." + id, body: m.body, id: id)]
    }

    /// `gb28181:<device>:unread:<16 hex digits of the transaction>` (see `MessageDecoder.peekID`).
    static func unreadID(device: String, branch: String, callID: String) -> String {
        "gb28181:\(device):unread:" + MD5.hex(branch + " " + callID).prefix(16)
    }

    /// Whether `sender` may raise an alarm naming `deviceID`: itself, always; a channel its
    /// catalog lists, always; a channel another device's catalog lists, never. Another id (a
    /// channel added since the last catalog), only when the sender is a device with channels
    /// (GB/T 28181 type 111 DVR, 118 NVR, 200 signalling server, 215 business group, 216 virtual
    /// organisation) and that id is not a registered device of its own.
    func mayAlarm(as deviceID: String, sender: String) -> Bool {
        if deviceID == sender || channelsOf[sender]?.contains(deviceID) == true { return true }
        if channelsOf.contains(where: { $0.key != sender && $0.value.contains(deviceID) }) { return false }
        return Self.mayAlarm(as: deviceID, sender: sender, registered: registrations.keys.contains(deviceID))
    }

    static func mayAlarm(as deviceID: String, sender: String, registered: Bool) -> Bool {
        if deviceID == sender { return true }
        guard let type = DeviceID(sender)?.typeCode, [111, 118, 200, 215, 216].contains(type) else { return false }
        return !registered && DeviceID(deviceID) != nil
    }

    /// A notice for the log, at most once a minute per `kind` (which names the address).
    mutating func notice(_ kind: String, now: Double, _ metadata: [String: String], _ text: String) -> [BridgeAction] {
        guard now - (noticed[kind] ?? -.infinity) >= 60 else { return [] }
        if noticed.count > 10_000 { noticed = noticed.filter { now - $0.value < 60 } }
        noticed[kind] = now
        return [.notice(text, metadata: metadata)]
    }

    mutating func busy(_ m: SIPMessage, _ key: TransactionKey, _ peer: SIPPeer, now: Double) -> BridgeAction {
        count("busy")
        // Not remembered as the transaction's answer: the device's retransmission may find room.
        return .send(m.response(503, "Service Unavailable", toTag: tag(key), extra: [("Retry-After", "5")])
            .stampedVia(host: peer.host, port: peer.port), to: peer)
    }

    /// Opens a transaction that waits for liandongd's answer to `id` (the final answer comes with
    /// `acknowledged`; a retransmission meanwhile gets 100 Trying, as RFC 4320 suggests).
    mutating func wait(_ key: TransactionKey, _ m: SIPMessage, _ peer: SIPPeer, now: Double, for id: String, _ what: Forwarded) {
        transactions[key] = Transaction(request: m.withoutBody, peer: peer, state: .waiting(id: id), receivedAt: now)
        waiting[id, default: (what, [])].keys.append(key)
    }

    /// Records a transaction's final answer (kept 32 s for retransmissions: Timer J) and sends it.
    mutating func finish(_ key: TransactionKey, _ request: SIPMessage, _ peer: SIPPeer, _ answer: SIPMessage, now: Double)
        -> BridgeAction
    {
        let response = answer.stampedVia(host: peer.host, port: peer.port)
        let receivedAt = transactions[key]?.receivedAt ?? now
        // Kept 32 s for retransmissions: the answer and the request's headers, never its body (an
        // unauthenticated 60 KB request must not hold 60 KB for 32 s).
        transactions[key] = Transaction(request: request.withoutBody, peer: peer, state: .done(response), receivedAt: receivedAt,
                                        expiresAt: now + 32)
        count("\(request.method ?? "?") \(response.statusCode ?? 0)")
        return .send(response, to: peer)
    }

    mutating func status(_ device: String, _ reason: DeviceStatusReport.Reason, at: Double) -> BridgeAction {
        let report = DeviceStatusReport(deviceID: device, reason: reason, at: at)
        count("status_\(reason.rawValue)")
        return .forward(topic: "status", body: report.json(), id: report.id)
    }
}
