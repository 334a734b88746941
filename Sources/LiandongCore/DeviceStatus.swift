/// A GB/T 28181 device's status change or sign of life (liandong.device_status.v1, topic
/// `status`): sent by liandong-gb28181 on registrations, keepalives, unregistrations, keepalive
/// timeouts and registration expiries; a MANSCDP Keepalive on topic gb28181 is read as one too.
public struct DeviceStatusReport: Sendable, Equatable {
    public static let schema = "liandong.device_status.v1"

    public enum Status: String, Sendable, CaseIterable { case online, offline }

    public enum Reason: String, Sendable, CaseIterable {
        case register, keepalive, unregister, timeout, expired

        /// The status a report for this reason means.
        public var status: Status {
            switch self {
            case .register, .keepalive: .online
            case .unregister, .timeout, .expired: .offline
            }
        }
    }

    public var deviceID: String
    public var status: Status
    /// Unix seconds.
    public var at: Double
    /// `at` as sent (part of the id).
    public var atText: String
    public var reason: Reason

    public init(deviceID: String, reason: Reason, at: Double) {
        self.deviceID = deviceID
        self.status = reason.status
        self.at = at
        self.atText = Timestamp.formatCST(at)
        self.reason = reason
    }

    /// What the acknowledged path's answer names: a repeat of a report has the same id.
    public var id: String { "status:\(deviceID):\(atText):\(reason.rawValue)" }

    public func json() -> [UInt8] {
        var out = JSONText()
        out.object {
            $0.field("at", atText)
            $0.field("device_id", deviceID)
            $0.field("reason", reason.rawValue)
            $0.field("schema", Self.schema)
            $0.field("status", status.rawValue)
        }
        return Array(out.text.utf8)
    }

    /// Reads a liandong.device_status.v1 body (the decoder checks the time against its limits).
    static func decode(_ f: inout Fields) throws -> DeviceStatusReport {
        let schema = try f.string("schema")
        guard schema == Self.schema else {
            throw Rejection(.unknownSchema, "schema \"\(schema.prefix(64))\" is not supported on topic status (expected \(Self.schema))")
        }
        let device = try f.string("device_id")
        guard DeviceID(device) != nil else {
            throw Rejection(.invalidDeviceID, "device_id \"\(device.prefix(40))\" is not a 20-digit GB/T 28181 id")
        }
        let statusText = try f.string("status")
        guard let status = Status(rawValue: statusText) else {
            throw Rejection(.invalidField, "status \"\(statusText.prefix(20))\" is not online or offline")
        }
        let reasonText = try f.string("reason")
        guard let reason = Reason(rawValue: reasonText) else {
            throw Rejection(.invalidField, "reason \"\(reasonText.prefix(20))\" is none of register, keepalive, unregister, timeout, expired")
        }
        guard reason.status == status else {
            throw Rejection(.invalidField, "status \(status.rawValue) does not go with reason \(reason.rawValue)")
        }
        let atText = try f.string("at")
        guard let at = Timestamp.parse(atText) else {
            throw Rejection(.invalidTime, "at \"\(atText.prefix(40))\" is not an RFC 3339 time")
        }
        var report = DeviceStatusReport(deviceID: device, reason: reason, at: at)
        report.atText = atText
        return report
    }
}

/// What one ingest message is: an event for the correlation pipeline, or a record (a device's
/// status, ...: `InboundRecord`).
package enum DecodedMessage: Sendable, Equatable {
    case event(IngestEvent)
    case record(any InboundRecord)

    package static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case (.event(let x), .event(let y)): x == y
        case (.record(let x), .record(let y)): x.isEqual(to: y)
        default: false
        }
    }
}

/// Its decoder and its plan step as an inbound record (rows: DeviceStatusStore).
extension DeviceStatusReport: InboundRecord {
    package static let topic = "status"

    package static func decode(_ fields: inout Fields, by decoder: MessageDecoder, now: Double) throws -> DeviceStatusReport {
        let report = try decode(&fields)
        try decoder.checkTime(report.at, report.atText, field: "at", now: now)
        return report
    }

    package func isKnown(to reference: ReferenceData) -> Bool { reference.cameraGrids[deviceID] != nil }

    /// Judged like an event: by the registry and the sender's scope.
    package func refusal(from sender: Sender?, reference: ReferenceData) -> Rejection? {
        Self.refusal(device: deviceID, from: sender, reference: reference)
    }

    /// What a device's record (its status, its catalog) may not be recorded for: a camera of the
    /// registry outside the sender's scope, or a device of no known county, or - not a camera -
    /// from a sender that is not county-wide (`TrustPolicy.deviceStatus`).
    package static func refusal(device: String, from sender: Sender?, reference: ReferenceData) -> Rejection? {
        let grid = reference.cameraGrids[device]
        let access = TrustPolicy.deviceStatus(from: sender, device: device, cameraGrid: grid,
                                              knownCounty: reference.divisionNames[String(device.prefix(6))] != nil)
        guard case .forbidden(let why) = access else { return nil }
        return Rejection(grid == nil && sender == nil ? .unknownDevice : .outOfScope, why)
    }

    package static let counter = (name: "liandong_device_status_reports_total", label: "reason", values: Reason.allCases.map(\.rawValue))

    package var counterValue: String { reason.rawValue }
}
