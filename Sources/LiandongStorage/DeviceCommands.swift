import Foundation
import LiandongCore
import LibPQ

/// `liandongd device arm|disarm`: an operator's command for liandong-gb28181 (a row of
/// liandong.device_commands, which the bridge takes within 2 s), and the device's answer as it
/// lands in liandong.devices.guard.
package enum DeviceCommands {
    package enum Outcome: Equatable, Sendable {
        /// The device answered: devices.guard and its detail.
        case answered(guard: String, detail: String?)
        /// No bridge took the command in time (none running, or it cannot read the database).
        case notTaken
        /// A bridge took it; no answer reached liandong.devices in time.
        case noAnswer(takenBy: String)
    }

    /// Asks for `arm` (or disarm) of `device` and waits up to `timeout` seconds for the answer.
    package static func run(_ db: PGConnection, device: String, arm: Bool, timeout: Double = 45,
                            poll: Double = 0.25) throws -> Outcome
    {
        guard DeviceID(device) != nil else { throw StorageError("\(device) is not a 20-digit GB/T 28181 device id") }
        let id = try db.query("INSERT INTO liandong.device_commands (device_id, command) VALUES ($1, $2) RETURNING id",
                              [device, arm ? "arm" : "disarm"])
        guard let commandID = id.scalar else { throw StorageError("could not record the command") }
        let deadline = Date().timeIntervalSince1970 + timeout
        var takenBy: String?
        while Date().timeIntervalSince1970 < deadline {
            let state = try db.query("""
                SELECT c.taken_by, d.guard, d.guard_detail
                FROM liandong.device_commands c
                LEFT JOIN liandong.devices d ON d.device_id = c.device_id AND d.guard_at >= c.taken_at
                WHERE c.id = $1
                """, [commandID])
            if let r = state.rows.first {
                takenBy = r[0]
                if let guardState = r[1] { return .answered(guard: guardState, detail: r[2]) }
            }
            Thread.sleep(forTimeInterval: poll)
        }
        if let takenBy { return .noAnswer(takenBy: takenBy) }
        // Not taken: withdrawn, so that a bridge starting later does not act on a stale command.
        try db.query("DELETE FROM liandong.device_commands WHERE id = $1 AND taken_at IS NULL", [commandID])
        return .notTaken
    }
}
