import LiandongCore
import LibPQ

/// Noisy cameras (liandong.camera_suppressions, camera_reviews): the sweeper's figures and
/// `liandongd camera review|noisy`.
public struct CameraStore {
    let db: PGConnection

    public init(db: PGConnection) { self.db = db }

    /// The rule: at or above `falseAlarmPercent` false alarms (0: off) over at least `minJudged`
    /// judged incidents closed within `days`, after the camera's latest review.
    public struct Rule: Sendable {
        public var falseAlarmPercent: Double
        public var minJudged: Int
        public var days: Int

        public init(falseAlarmPercent: Double, minJudged: Int, days: Int) {
            self.falseAlarmPercent = falseAlarmPercent
            self.minJudged = minJudged
            self.days = days
        }
    }

    /// Recomputes every camera's figures in one transaction; when the set of suppressed cameras
    /// changed, bumps reference_version so the writer reloads it. Returns the cameras newly
    /// suppressed, those no longer, and how many are suppressed now.
    public func recompute(_ rule: Rule) throws -> (suppressed: [String], lifted: [String], total: Int) {
        try db.transaction { db in
            let before = try suppressed(db)
            let days = String(rule.days)
            // The span of the judged incidents' events, as constants: only those day partitions
            // are planned.
            let span = try db.query("""
                SELECT extract(epoch FROM min(first_observed_at)), extract(epoch FROM max(last_observed_at))
                FROM liandong.incidents
                WHERE status = 'closed' AND resolution IN ('resolved', 'false_alarm') AND closed_at > now() - make_interval(days => $1)
                """, [days]).rows.first
            // Each judged incident counts once for each camera among its alerts (since that camera's
            // last review). A join, not a lookup of each incident's events: with a year of history
            // the window holds tens of thousands of judged incidents, and one index probe each
            // (run-time partition pruning every time) took 2.6-4 s of the server's CPU every minute
            // (issue 31); the planner now chooses.
            try db.query("""
                WITH reviewed AS (
                    SELECT device_id, max(reviewed_at) AS at FROM liandong.camera_reviews GROUP BY device_id
                ), judged AS (
                    SELECT DISTINCT i.id, e.device_id, i.resolution
                    FROM liandong.incidents i
                    JOIN liandong.events e ON e.incident_id = i.id
                    LEFT JOIN reviewed r ON r.device_id = e.device_id
                    WHERE i.status = 'closed' AND i.resolution IN ('resolved', 'false_alarm')
                      AND i.closed_at > now() - make_interval(days => $1)
                      AND e.source = 'alert' AND e.device_id IS NOT NULL
                      AND e.observed_at BETWEEN to_timestamp($2::float8) AND to_timestamp($3::float8)
                      AND e.observed_at BETWEEN i.first_observed_at AND i.last_observed_at
                      AND i.closed_at > coalesce(r.at, '-infinity')
                ), stats AS (
                    SELECT device_id, count(*)::integer AS judged,
                           count(*) FILTER (WHERE resolution = 'false_alarm')::integer AS false_alarms
                    FROM judged GROUP BY device_id
                ), up AS (
                    INSERT INTO liandong.camera_suppressions AS s (device_id, judged, false_alarms, suppressed_since)
                    SELECT device_id, judged, false_alarms,
                           CASE WHEN $5::float8 > 0 AND judged >= $4::integer AND 100.0 * false_alarms / judged >= $5::float8
                                THEN now() END
                    FROM stats
                    ON CONFLICT (device_id) DO UPDATE
                    SET judged = excluded.judged, false_alarms = excluded.false_alarms, updated_at = now(),
                        suppressed_since = CASE WHEN excluded.suppressed_since IS NULL THEN NULL
                                                ELSE coalesce(s.suppressed_since, excluded.suppressed_since) END
                )
                DELETE FROM liandong.camera_suppressions s WHERE NOT EXISTS (SELECT 1 FROM stats WHERE stats.device_id = s.device_id)
                """, [days, span?[0] ?? "0", span?[1] ?? "0", String(rule.minJudged), String(rule.falseAlarmPercent)])
            let after = try suppressed(db)
            if after != before { try db.query("UPDATE liandong.reference_version SET version = version + 1") }
            return (after.subtracting(before).sorted(), before.subtracting(after).sorted(), after.count)
        }
    }

    private func suppressed(_ db: PGConnection) throws -> Set<String> {
        Set(try db.query("SELECT device_id FROM liandong.camera_suppressions WHERE suppressed_since IS NOT NULL").typed.map { try $0.string(0) })
    }

    /// Records a review of `device` (repaired, re-aimed ...): its count starts afresh and any
    /// suppression is lifted at once. Returns since when it had been suppressed (nil: it was not).
    public func review(device: String, by: String, comment: String) throws -> String? {
        guard DeviceID(device) != nil else { throw StorageError("\(device): not a 20-digit GB/T 28181 device id") }
        guard !comment.trimmingCharacters(in: .whitespaces).isEmpty else { throw StorageError("--comment: say what was done to the camera") }
        return try db.transaction { db in
            guard try db.query("""
                SELECT 1 FROM liandong.cameras WHERE device_id = $1 UNION ALL SELECT 1 FROM liandong.camera_suppressions WHERE device_id = $1
                """, [device]).count > 0 else {
                throw StorageError("no camera \(device) in liandong.cameras")
            }
            try db.query("INSERT INTO liandong.camera_reviews (device_id, reviewed_by, comment) VALUES ($1, $2, $3)", [device, by, comment])
            let since = try db.query("""
                DELETE FROM liandong.camera_suppressions WHERE device_id = $1
                RETURNING to_char(suppressed_since AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI')
                """, [device]).rows.first?[0]
            if since != nil { try db.query("UPDATE liandong.reference_version SET version = version + 1") }
            return since
        }
    }

    public struct Row: Sendable {
        public var deviceID: String
        public var name: String?
        public var judged, falseAlarms: Int
        public var percent: String
        public var suppressedSince: String?
    }

    /// Cameras with judged incidents, suppressed first, then by false-alarm share.
    public func noisy() throws -> [Row] {
        try db.query("""
            SELECT device_id, name, judged, false_alarms, coalesce(false_alarm_pct::text, ''),
                   to_char(suppressed_since AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI')
            FROM liandong.noisy_cameras
            """).typed.map {
            Row(deviceID: try $0.string(0), name: $0[1], judged: try $0.int(2), falseAlarms: try $0.int(3), percent: try $0.string(4),
                suppressedSince: $0[5])
        }
    }
}
