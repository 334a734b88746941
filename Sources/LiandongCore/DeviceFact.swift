/// One thing liandong-gb28181 learnt of a registered device (liandong.device_info.v1, topic
/// `device`): how it registered (transport, address, expiry), what it says of itself (its
/// DeviceInfo answer), whether it is armed (its answer to DeviceControl GuardCmd), or where a
/// subscription stands (alarm or catalog). One of the four per message; liandongd keeps the
/// latest of each in liandong.devices (an older one arriving late changes nothing).
public struct DeviceFact: Sendable, Equatable {
    public static let schema = "liandong.device_info.v1"

    public struct Registration: Sendable, Equatable {
        public var transport: SIPEndpoint.Transport
        /// host:port the REGISTER came from.
        public var from: String
        public var expiresAt: Double

        public init(transport: SIPEndpoint.Transport, from: String, expiresAt: Double) {
            self.transport = transport
            self.from = from
            self.expiresAt = expiresAt
        }
    }

    public struct Info: Sendable, Equatable {
        public var name, manufacturer, model, firmware: String?
        public var channels: Int?

        public init(name: String? = nil, manufacturer: String? = nil, model: String? = nil, firmware: String? = nil, channels: Int? = nil) {
            self.name = name
            self.manufacturer = manufacturer
            self.model = model
            self.firmware = firmware
            self.channels = channels
        }
    }

    public enum GuardState: String, Sendable, CaseIterable {
        /// SetGuard answered OK / ResetGuard answered OK.
        case armed, disarmed
        /// An error Result, or a SIP 4xx/5xx/6xx to the command.
        case refused
        /// No answer in time.
        case unanswered
        /// An operator's command for a device not registered with the bridge.
        case unreachable
    }

    public enum SubscriptionEvent: String, Sendable, CaseIterable { case alarm, catalog }
    public enum SubscriptionState: String, Sendable, CaseIterable { case active, refused, ended }

    public enum Fact: Sendable, Equatable {
        case registration(Registration)
        case info(Info)
        case guardState(GuardState, detail: String?)
        case subscription(SubscriptionEvent, SubscriptionState, until: Double?, detail: String?)

        var kind: String {
            switch self {
            case .registration: "registration"
            case .info: "info"
            case .guardState: "guard"
            case .subscription(let event, _, _, _): "subscription-\(event.rawValue)"
            }
        }
    }

    public var deviceID: String
    /// Unix seconds; `atText` as sent (part of the id).
    public var at: Double
    public var atText: String
    public var fact: Fact

    public init(deviceID: String, at: Double, _ fact: Fact) {
        self.deviceID = deviceID
        self.at = at
        atText = Timestamp.formatCST(at)
        self.fact = fact
    }

    /// What the acknowledged path's answer names: a repeat has the same id.
    public var id: String { "device:\(deviceID):\(fact.kind):\(atText)" }

    public func json() -> [UInt8] {
        var out = JSONText()
        out.object {
            $0.field("at", atText)
            $0.field("device_id", deviceID)
            switch fact {
            case .guardState(let state, let detail):
                $0.field("guard") { json in
                    json.object {
                        if let detail { $0.field("detail", detail) }
                        $0.field("state", state.rawValue)
                    }
                }
            case .info(let info):
                $0.field("info") { json in
                    json.object {
                        if let v = info.channels { $0.field("channels", integer: v) }
                        if let v = info.firmware { $0.field("firmware", v) }
                        if let v = info.manufacturer { $0.field("manufacturer", v) }
                        if let v = info.model { $0.field("model", v) }
                        if let v = info.name { $0.field("name", v) }
                    }
                }
            case .registration(let r):
                $0.field("registration") { json in
                    json.object {
                        $0.field("expires_at", Timestamp.formatCST(r.expiresAt))
                        $0.field("from", r.from)
                        $0.field("transport", r.transport.rawValue)
                    }
                }
            case .subscription: break
            }
            $0.field("schema", Self.schema)
            if case .subscription(let event, let state, let until, let detail) = fact {
                $0.field("subscription") { json in
                    json.object {
                        if let detail { $0.field("detail", detail) }
                        $0.field("event", event.rawValue)
                        $0.field("state", state.rawValue)
                        if let until { $0.field("until", Timestamp.formatCST(until)) }
                    }
                }
            }
        }
        return Array(out.text.utf8)
    }
}

/// Its decoder and its plan step as an inbound record (rows: DeviceFactStore).
extension DeviceFact: InboundRecord {
    package static let topic = "device"

    package static func decode(_ f: inout Fields, by decoder: MessageDecoder, now: Double) throws -> DeviceFact {
        let schema = try f.string("schema")
        guard schema == Self.schema else {
            throw Rejection(.unknownSchema, "schema \"\(schema.prefix(64))\" is not supported on topic device (expected \(Self.schema))")
        }
        let device = try MANSCDP.deviceID(try f.string("device_id"), field: "device_id")
        let atText = try f.string("at")
        guard let at = Timestamp.parse(atText) else { throw Rejection(.invalidTime, "at \"\(atText.prefix(40))\" is not an RFC 3339 time") }
        try decoder.checkTime(at, atText, field: "at", now: now)
        let given = ["registration", "info", "guard", "subscription"].filter { f.value($0) != nil }
        guard given.count == 1, case .object(let o)? = f.value(given[0]) else {
            throw Rejection(given.count > 1 ? .invalidField : .missingField,
                            "exactly one of registration, info, guard, subscription (an object) is required")
        }
        let part = given[0]
        func text(_ key: String, _ limit: Int = 200) throws -> String? {
            guard let v = o[key], v != .null else { return nil }
            guard case .string(let s) = v, s.count <= limit else {
                throw Rejection(.invalidField, "\(part).\(key) is not a string of at most \(limit) characters")
            }
            return s
        }
        func required(_ key: String) throws -> String {
            guard let s = try text(key) else { throw Rejection(.missingField, "\(part).\(key) is required") }
            return s
        }
        func time(_ key: String) throws -> Double? {
            guard let s = try text(key, 40) else { return nil }
            guard let t = Timestamp.parse(s) else { throw Rejection(.invalidTime, "\(part).\(key) \"\(s)\" is not an RFC 3339 time") }
            return t
        }
        func oneOf<T: RawRepresentable & CaseIterable>(_ key: String, _: T.Type) throws -> T where T.RawValue == String {
            let s = try required(key)
            guard let v = T(rawValue: s) else {
                throw Rejection(.invalidField, "\(part).\(key) \"\(s.prefix(20))\" is none of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return v
        }
        let fact: Fact
        switch part {
        case "registration":
            guard let expires = try time("expires_at") else { throw Rejection(.missingField, "registration.expires_at is required") }
            fact = .registration(Registration(transport: try oneOf("transport", SIPEndpoint.Transport.self), from: try required("from"),
                                              expiresAt: expires))
        case "info":
            var channels: Int?
            if let v = o["channels"], v != .null {
                guard case .number(let d) = v, d == d.rounded(), (0...100_000).contains(d) else {
                    throw Rejection(.invalidField, "info.channels must be an integer 0...100000")
                }
                channels = Int(d)
            }
            fact = .info(Info(name: try text("name"), manufacturer: try text("manufacturer"), model: try text("model"),
                              firmware: try text("firmware"), channels: channels))
        case "guard":
            fact = .guardState(try oneOf("state", GuardState.self), detail: try text("detail"))
        default:
            fact = .subscription(try oneOf("event", SubscriptionEvent.self), try oneOf("state", SubscriptionState.self),
                                 until: try time("until"), detail: try text("detail"))
        }
        var record = DeviceFact(deviceID: device, at: at, fact)
        record.atText = atText
        return record
    }

    /// Judged like a device's status: by the registry and the sender's scope (the SIP bridge is county-wide).
    package func refusal(from sender: Sender?, reference: ReferenceData) -> Rejection? {
        DeviceStatusReport.refusal(device: deviceID, from: sender, reference: reference)
    }

    package static let counter = (name: "liandong_device_facts_total", label: "kind",
                                  values: ["registration", "info", "guard", "subscription"])

    /// The id's kind, the two subscription events counted as one.
    package var counterValue: String { fact.kind.hasPrefix("subscription") ? "subscription" : fact.kind }
}
