import LiandongCore
import LibPQ

/// Device status (GB/T 28181 registrations and keepalives) in liandong.device_status and its
/// history: the writer records reports in its batch transaction, the sweeper times out devices
/// no longer heard from.
public enum DeviceStatusStore {
    /// Records reports (a repeat has one effect; a late one does not change the current status).
    static func record(_ db: PGConnection, _ reports: [DeviceStatusReport]) throws {
        struct Row: Encodable { let device_id: String, status: String, reason: String, at: Double }
        let rows = reports.map { Row(device_id: $0.deviceID, status: $0.status.rawValue, reason: $0.reason.rawValue, at: $0.at) }
        try db.query("SELECT liandong.record_device_status($1::jsonb)", [try TaskStore.json(rows)])
    }

    /// Marks offline every online device not heard from for `timeout` seconds; returns how many.
    public static func expire(_ db: PGConnection, timeout: Double) throws -> Int {
        Int(try db.query("SELECT liandong.expire_device_status($1)", [String(timeout)]).scalar ?? "0") ?? 0
    }

    /// Devices online now (for the metrics gauge).
    public static func onlineCount(_ db: PGConnection) throws -> Int {
        Int(try db.query("SELECT count(*) FROM liandong.device_status WHERE status = 'online'").scalar ?? "0") ?? 0
    }
}

/// A device status report's rows.
extension DeviceStatusReport: RecordRows {
    package static func write(_ db: PGConnection, _ records: [DeviceStatusReport]) throws { try DeviceStatusStore.record(db, records) }
}
