import Foundation

/// Limits applied to every incoming message before it reaches the store.
public struct IngestLimits: Sendable, Equatable {
    /// Largest accepted body, in bytes.
    public var maxBodyBytes: Int
    /// How far observed_at may lie in the future (clock skew), in seconds.
    public var maxFutureSeconds: Double
    /// How old observed_at may be, in seconds.
    public var maxAgeSeconds: Double

    public init(maxBodyBytes: Int = 65_536, maxFutureSeconds: Double = 600, maxAgeSeconds: Double = 7 * 86_400) {
        self.maxBodyBytes = maxBodyBytes
        self.maxFutureSeconds = maxFutureSeconds
        self.maxAgeSeconds = maxAgeSeconds
    }
}

/// Turns the frames of one ingest message into a validated `IngestEvent` or a `Rejection`.
/// Pure: the clock is passed in.
public struct MessageDecoder: Sendable {
    /// Recorded, not correlated: every kind of `InboundRecord` liandongd reads, by topic.
    package static let recordKinds: [any InboundRecord.Type] = [DeviceStatusReport.self, WorkerPosition.self, DeviceCatalog.self, DeviceFact.self, CitizenFeedback.self]

    /// Every topic the ingest SUB socket subscribes to.
    package static var topics: [String] { eventTopics + recordKinds.map { $0.topic } }

    /// The topics of events (correlated): alerts, reports, GB/T 28181 bodies, residents' requests.
    static let eventTopics = ["alert", "report", "gb28181", CitizenRequest.topic]

    /// The kinds of records this decoder reads (`recordKinds`; tests add their own).
    package var records: [any InboundRecord.Type] = MessageDecoder.recordKinds

    public static let alertSchema = "liandong.alert.v1"
    public static let reportSchema = "liandong.report.v1"

    public var rules: Rules
    public var limits: IngestLimits

    public init(rules: Rules = Rules(), limits: IngestLimits = IngestLimits()) {
        self.rules = rules
        self.limits = limits
    }

    /// The alert_id or report_id of a message, when it can be read at all (for answering a refusal).
    public static func peekID(_ frames: [[UInt8]]) -> String? {
        if frames.count >= 2, isGB28181(frames[0]) {
            if let notify = try? MANSCDP.decode(frames[1]) {
                if case .alarm(let a) = notify.command { return a.alertID(deviceID: notify.deviceID, sn: notify.sn) }
                return nil
            }
            // A body liandong-gb28181 could not read comes on topic gb28181.<id>, the id its answer names.
            let suffix = frames[0].dropFirst("gb28181.".utf8.count)
            guard frames[0].count > 8, suffix.starts(with: Array("gb28181:".utf8)), suffix.count <= 128 else { return nil }
            return String(decoding: suffix, as: UTF8.self)
        }
        guard frames.count >= 2, case .object(let o)? = try? JSONValue.parse(frames[1]) else {
            return nil
        }
        for key in ["alert_id", "report_id", "request_id"] where key != "request_id" || Self.is(frames[0], CitizenRequest.topic) {
            if case .string(let id)? = o[key] { return id }
        }
        guard let kind = recordKinds.first(where: { Self.is(frames[0], $0.topic) }) else { return nil }
        var fields = Fields(o)
        let anyTime = MessageDecoder(limits: IngestLimits(maxFutureSeconds: .infinity, maxAgeSeconds: .infinity))
        return (try? kind.decode(&fields, by: anyTime, now: 0))?.id
    }

    /// The gateway_id and seq of a message, read without decoding the rest (for the gap tracker,
    /// on messages that go to the spill and are decoded when they are written): nil when the body
    /// is not a JSON object or carries no usable pair.
    public static func peekSequence(_ frames: [[UInt8]]) -> (gateway: String, seq: Int64)? {
        guard frames.count == 2, let fields = try? JSONValue.fields(frames[1], sequenceKeys),
              case .string(let gateway)? = fields["gateway_id"], case .number(let d)? = fields["seq"],
              d >= 0, d.rounded() == d, d < 9.0e15
        else { return nil }
        return (gateway, Int64(d))
    }

    private static let sequenceKeys: Set<String> = ["gateway_id", "seq"]

    /// Topic `gb28181` or `gb28181.<anything>`: a MANSCDP XML body.
    static func isGB28181(_ topic: [UInt8]) -> Bool { `is`(topic, "gb28181") }

    /// Whether `topic` is `name` or `name.<anything>`.
    static func `is`(_ topic: [UInt8], _ name: String) -> Bool {
        let prefix = Array(name.utf8)
        return topic == prefix || (topic.starts(with: prefix) && topic.count > prefix.count && topic[prefix.count] == 0x2E)
    }

    /// Decodes [topic frame][JSON body frame] of an event (a device status is refused here).
    public func decode(frames: [[UInt8]], now: Double) -> Result<IngestEvent, Rejection> {
        decodeMessage(frames: frames, now: now).flatMap {
            switch $0 {
            case .event(let event): .success(event)
            case .record(let r): .failure(Rejection(.unknownTopic, "a \(type(of: r).topic) message is not an event"))
            }
        }
    }

    /// Decodes [topic frame][body frame]: an alert, a report, a MANSCDP Notify or a device status.
    package func decodeMessage(frames: [[UInt8]], now: Double) -> Result<DecodedMessage, Rejection> {
        Result { try decodeOrThrow(frames: frames, now: now) }.mapError { $0 as! Rejection }
    }

    func decodeOrThrow(frames: [[UInt8]], now: Double) throws -> DecodedMessage {
        guard frames.count == 2 else {
            throw Rejection(.wrongFrameCount, "expected 2 frames [topic][JSON body], got \(frames.count)")
        }
        let body = frames[1]
        guard body.count <= limits.maxBodyBytes else {
            throw Rejection(.oversized, "body is \(body.count) bytes, limit is \(limits.maxBodyBytes)")
        }
        guard let topic = String(validating: frames[0], as: UTF8.self) else {
            throw Rejection(.invalidUTF8, "topic frame is not valid UTF-8")
        }
        if Self.isGB28181(frames[0]) {
            var decoded = try decodeGB28181(body, now: now)
            // The registered device that sent a channel's alarm (liandong-gb28181's topic gb28181.via.<device>).
            if case .event(var event) = decoded, topic.hasPrefix("gb28181.via."), let via = DeviceID(String(topic.dropFirst(12))),
               via.rawValue != event.deviceID
            {
                event.via = via.rawValue
                decoded = .event(event)
            }
            return decoded
        }
        let source: EventSource?
        let record = records.first { Self.is(frames[0], $0.topic) }
        if Self.is(frames[0], "alert") {
            source = .alert
        } else if Self.is(frames[0], "report") {
            source = .report
        } else if Self.is(frames[0], CitizenRequest.topic) || record != nil {
            source = nil
        } else {
            throw Rejection(.unknownTopic, "topic \"\(topic.prefix(64))\" is none of \((Self.eventTopics + records.map { $0.topic }).map { $0 + "[.*]" }.joined(separator: ", "))")
        }
        guard let text = String(validating: body, as: UTF8.self) else {
            throw Rejection(.invalidUTF8, "body is not valid UTF-8")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(body)
        } catch {
            throw Rejection(.malformedJSON, "body is not valid JSON: \(error)")
        }
        guard case .object(let object) = value else {
            throw Rejection(.malformedJSON, "body is a JSON \(value.typeName), expected an object")
        }
        var fields = Fields(object)
        if Self.is(frames[0], CitizenRequest.topic) { return .event(try decodeCitizenRequest(&fields, now: now)) }
        guard let source else { return .record(try record!.decode(&fields, by: self, now: now)) }
        let schema = try fields.string("schema")
        let expected = source == .alert ? Self.alertSchema : Self.reportSchema
        guard schema == expected else {
            if schema == Self.alertSchema || schema == Self.reportSchema {
                throw Rejection(.topicMismatch, "schema \(schema) sent on topic \(topic.prefix(64))")
            }
            throw Rejection(.unknownSchema, "schema \"\(schema.prefix(64))\" is not supported (expected \(expected))")
        }
        return .event(source == .alert
            ? try decodeAlert(&fields, body: text, now: now)
            : try decodeReport(&fields, body: text, now: now))
    }

    private func decodeAlert(_ f: inout Fields, body: String, now: Double) throws -> IngestEvent {
        let alertID = try f.identifier("alert_id")
        let deviceText = try f.string("device_id")
        guard let device = DeviceID(deviceText) else {
            throw Rejection(.invalidDeviceID, "device_id \"\(deviceText.prefix(40))\" is not a 20-digit GB/T 28181 id")
        }
        let method = try f.integer("alarm_method", in: 1...99_999_999)
        let type = try f.integer("alarm_type", in: 0...9_999)
        let priority = try f.integer("priority", in: 1...4)
        let observedAt = try time(&f, now: now)
        let (position, crs) = try location(&f, required: false)
        _ = try f.optionalInteger("event_type", in: 0...9_999)
        _ = try f.optionalNumber("confidence", in: 0...1)
        var event = IngestEvent(
            source: .alert, sourceID: alertID, gatewayID: try f.optionalString("gateway_id").map { _ in try f.identifier("gateway_id") },
            gatewaySeq: try f.optionalInteger("seq", in: 0...Int.max).map(Int64.init),
            deviceID: device.rawValue, category: rules.category(alarmMethod: method, alarmType: type),
            priority: rules.alertPriority(priority, device: device.rawValue), observedAt: observedAt, position: position, crs: crs, body: body)
        event.alarmClass = AlarmClass(alarmMethod: method, alarmType: type)
        return event
    }

    /// A GB/T 28181 MANSCDP Notify (topic gb28181): an Alarm becomes an alert like a JSON one,
    /// stored with a JSON payload of its fields (the XML converted to UTF-8 is kept in it).
    /// A Keepalive marks its device seen (a keepalive device status at arrival).
    private func decodeGB28181(_ body: [UInt8], now: Double) throws -> DecodedMessage {
        let utf8 = try TextEncoding.xmlToUTF8(body)
        let notify = try MANSCDP.decode(utf8: utf8)
        guard case .alarm(let a) = notify.command else {
            return .record(DeviceStatusReport(deviceID: notify.deviceID, reason: .keepalive, at: now))
        }
        try checkTime(a.time, a.timeText, field: "AlarmTime", now: now)
        var payload = JSONText()
        payload.object {
            $0.field("alarm_description", a.description)
            $0.field("alarm_method", integer: a.method)
            $0.field("alarm_priority", integer: a.priority)
            $0.field("alarm_time", a.timeText)
            if let type = a.alarmType { $0.field("alarm_type", integer: type) }
            $0.field("device_id", notify.deviceID)
            if let event = a.eventType { $0.field("event_type", integer: event) }
            if let p = a.position {
                $0.field("lat", number: p.lat)
                $0.field("lon", number: p.lon)
            }
            $0.field("schema", "gb28181.alarm")
            $0.field("sn", notify.sn)
            $0.field("xml", String(decoding: utf8, as: UTF8.self))
        }
        var event = IngestEvent(
            source: .alert, sourceID: a.alertID(deviceID: notify.deviceID, sn: notify.sn), deviceID: notify.deviceID,
            category: rules.category(alarmMethod: a.method, alarmType: a.alarmType),
            priority: rules.alertPriority(a.priority, device: notify.deviceID), observedAt: a.time, position: a.position, crs: .wgs84,
            body: payload.text)
        event.alarmClass = AlarmClass(alarmMethod: a.method, alarmType: a.alarmType)
        return .event(event)
    }

    private func decodeReport(_ f: inout Fields, body: String, now: Double) throws -> IngestEvent {
        let reportID = try f.identifier("report_id")
        let workerID = try f.identifier("worker_id")
        let category = try f.string("category")
        guard !category.isEmpty, category.count <= 64 else {
            throw Rejection(.invalidField, "category must be 1-64 characters")
        }
        let severity = try f.integer("severity", in: 1...4)
        let observedAt = try time(&f, now: now)
        let gridCode = try f.optionalString("grid_code")
        if let gridCode, gridCode.utf8.count != 15 || !gridCode.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            throw Rejection(.invalidField, "grid_code \"\(gridCode.prefix(40))\" is not a 15-digit grid code")
        }
        let (position, crs) = try location(&f, required: gridCode == nil)
        return IngestEvent(
            source: .report, sourceID: reportID, workerID: workerID, gridCode: gridCode,
            category: rules.category(report: category), priority: severity, observedAt: observedAt,
            position: position, crs: crs, body: body)
    }

    private func time(_ f: inout Fields, now: Double) throws -> Double {
        let text = try f.string("observed_at")
        guard let t = Timestamp.parse(text) else {
            throw Rejection(.invalidTime, "observed_at \"\(text.prefix(40))\" is not an RFC 3339 time")
        }
        try checkTime(t, text, field: "observed_at", now: now)
        return t
    }

    /// ingest.max_future_s and max_age_s.
    package func checkTime(_ t: Double, _ text: String, field: String, now: Double) throws {
        if t > now + limits.maxFutureSeconds {
            throw Rejection(.timeOutOfRange, "\(field) \(text.prefix(40)) is more than \(Int(limits.maxFutureSeconds)) s in the future")
        }
        if t < now - limits.maxAgeSeconds {
            throw Rejection(.timeOutOfRange, "\(field) \(text.prefix(40)) is more than \(Int(limits.maxAgeSeconds)) s in the past")
        }
    }

    /// lon, lat and crs (default wgs84), converted to WGS-84; `what` names the message when they are required.
    package func location(_ f: inout Fields, required: Bool, what: String = "a report") throws -> (LonLat?, CRS) {
        let crsText = try f.optionalString("crs") ?? "wgs84"
        guard let crs = CRS(rawValue: crsText.lowercased()) else {
            throw Rejection(.invalidField, "crs \"\(crsText.prefix(20))\" is not one of wgs84, gcj02, bd09")
        }
        let lon = try f.optionalNumber("lon", in: nil)
        let lat = try f.optionalNumber("lat", in: nil)
        switch (lon, lat) {
        case (nil, nil):
            if required { throw Rejection(.missingField, what == "a report" ? "a report needs lon/lat or grid_code" : "\(what) needs lon/lat") }
            return (nil, crs)
        case (let lon?, let lat?):
            let point = LonLat(lon: lon, lat: lat)
            guard point.isValid else {
                throw Rejection(.coordinatesOutOfRange, "lon \(lon), lat \(lat) is not a position on Earth")
            }
            return (CoordinateConverter.toWGS84(point, from: crs), crs)
        default:
            throw Rejection(.missingField, "lon and lat must be sent together")
        }
    }
}

/// Typed access to a JSON object's fields, throwing precise rejections.
package struct Fields {
    let object: [String: JSONValue]
    package init(_ object: [String: JSONValue]) { self.object = object }

    private func present(_ key: String) -> JSONValue? {
        if let v = object[key], v != .null { return v }
        return nil
    }

    package func string(_ key: String) throws -> String {
        guard let v = present(key) else { throw Rejection(.missingField, "\(key) is required") }
        guard case .string(let s) = v else { throw Rejection(.invalidField, "\(key) must be a string, got \(v.typeName)") }
        return s
    }

    /// The value of `key` as parsed (nil when absent or null), for structures the typed accessors do not cover.
    package func value(_ key: String) -> JSONValue? { present(key) }

    package func optionalString(_ key: String) throws -> String? {
        guard present(key) != nil else { return nil }
        return try string(key)
    }

    /// A non-empty id of at most 128 characters.
    package func identifier(_ key: String) throws -> String {
        let s = try string(key)
        guard !s.isEmpty, s.utf8.count <= 128 else { throw Rejection(.invalidField, "\(key) must be 1-128 bytes") }
        return s
    }

    package func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int {
        guard let v = try optionalInteger(key, in: range) else { throw Rejection(.missingField, "\(key) is required") }
        return v
    }

    package func optionalInteger(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = present(key) else { return nil }
        guard case .number(let d) = v, d.rounded() == d, abs(d) < 9.0e15 else {
            throw Rejection(.invalidField, "\(key) must be an integer, got \(v.typeName)")
        }
        guard range.contains(Int(d)) else {
            throw Rejection(.invalidField, "\(key) \(Int(d)) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(d)
    }

    package func optionalNumber(_ key: String, in range: ClosedRange<Double>?) throws -> Double? {
        guard let v = present(key) else { return nil }
        guard case .number(let d) = v else { throw Rejection(.invalidField, "\(key) must be a number, got \(v.typeName)") }
        if let range, !range.contains(d) {
            throw Rejection(.invalidField, "\(key) \(d) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return d
    }
}
