import Foundation
import LiandongCore
import LibPQ

/// What `liandongd report` shows, read from the assessment views in one read-only transaction
/// (so an operator role can run it, and every table agrees with every other).
public struct AssessmentReport: Sendable {
    public struct Grid: Sendable {
        public var code, villageCode: String
        public var name, villageName: String
        /// SVG path data in degrees (x = lon, y = -lat), from ST_AsSVG.
        public var path: String
        public var incidents: Int
        public var overdue: Int
    }

    public struct Point: Sendable {
        public var lon, lat: Double
        public var category: String
    }

    /// A row of liandong.assessment(from, to).
    public struct Assessment: Sendable {
        public var code, name, level: String
        public var received, accepted, resolved, escalations, falseAlarms: Int
        public var acceptedOnTimePct, resolvedOnTimePct, medianMinutesToAccept, medianMinutesToResolve: String
    }

    /// 视频在线率 over the period: the mean of camera_online_rate's daily figures.
    public struct OnlineRate: Sendable {
        public var code, name, level: String
        public var cameras: Int
        /// Percent with one decimal ("" when no day had a camera).
        public var onlinePct: String
        /// Cameras of it that ever reported a status (registered with the SIP bridge, or a gateway's
        /// status message): with none, the rate is unknown, not 0 %.
        public var reporting: Int
        /// The rate as shown: "no data" when no camera of it ever reported.
        public var shown: String { reporting == 0 || onlinePct.isEmpty ? "无数据 no data" : onlinePct + "%" }
    }

    public struct Day: Sendable {
        public var day: String
        public var incidents, tasks, escalations, resolved, falseAlarms: Int
    }

    public struct Overdue: Sendable {
        public var taskID, divisionName, category, missed, tier: String
        public var priority, minutesLate: Int
        /// Where it went: division (step) -> ...
        public var path: String
    }

    public struct Patrol: Sendable {
        public var code, name, level: String
        /// Grids in service; grid-days patrolled of all grid-days in the period.
        public var grids, gridDaysPatrolled, gridDays: Int
        public var km, hours: String
        /// Mean of the days' coverage (share of the area within 50 m of a track), percent.
        public var coveragePct: String
    }

    /// Residents' requests (Open311) over the period: liandong.citizen_assessment.
    public struct Residents: Sendable {
        public var code, name, level: String
        public var requests, ratings, lowRatings, reopened: Int
        /// Percent with one decimal, mean rating with two ("" when none).
        public var answeredOnTimePct, satisfaction: String
    }

    public var divisionCode, divisionName, level: String
    public var from, to: String
    public var generatedAt: String
    public var grids: [Grid] = []
    /// West, south, east, north (degrees).
    public var bounds: (Double, Double, Double, Double) = (0, 0, 0, 0)
    public var points: [Point] = []
    public var assessment: [Assessment] = []
    /// The division's own and its townships' camera online rates.
    public var onlineRates: [OnlineRate] = []
    public var days: [Day] = []
    public var overdue: [Overdue] = []
    /// 巡查覆盖率 of the division and its townships over the period.
    public var patrol: [Patrol] = []
    /// 市民诉求: the division's townships (and villages under a township) with residents' requests.
    public var residents: [Residents] = []
    /// The period's patrol tracks (SVG path data, y = -latitude), at most 3000.
    public var tracks: [String] = []
    public var incidentCount = 0, taskCount = 0, escalationCount = 0, falseAlarmCount = 0, overdueCount = 0
}

/// Reads an `AssessmentReport`.
public struct ReportStore {
    let db: PGConnection

    public init(db: PGConnection) { self.db = db }

    /// The report of the days [from, to] (YYYY-MM-DD, China Standard Time) for `division` (nil:
    /// the county), in one REPEATABLE READ READ ONLY transaction.
    public func load(from: String, to: String, division: String?) throws -> AssessmentReport {
        for (name, day) in [("--from", from), ("--to", to)] where Self.date(day) == nil {
            throw StorageError("\(name) \(day): a date, YYYY-MM-DD")
        }
        guard from <= to else { throw StorageError("--from \(from) is after --to \(to)") }
        try db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        defer { try? db.execute("ROLLBACK") }
        return try load(from: from, to: to, division: division, inTransaction: true)
    }

    /// The division a scoped operator's login covers, when it covers exactly one (its scope, as
    /// liandong.operator_scopes shows it its own row); nil for others.
    static func ownScope(_ db: PGConnection) throws -> String? {
        let scopes = try db.query("""
            SELECT s.scope FROM liandong.operator_scopes s JOIN liandong.divisions d ON d.code = s.scope
            """).rows.compactMap { $0[0] }
        return scopes.count == 1 ? scopes[0] : nil
    }

    private func load(from: String, to: String, division: String?, inTransaction: Bool) throws -> AssessmentReport {
        let chosen: PGRows
        if let division {
            chosen = try db.query("SELECT code, name, level FROM liandong.divisions WHERE code = $1", [division])
            guard chosen.count == 1 else { throw StorageError("--division \(division): no such division in liandong.divisions") }
        } else {
            chosen = try db.query("SELECT code, name, level FROM liandong.divisions WHERE level = 'county' ORDER BY code")
            // A scoped operator sees no county: its own scope is the report's division.
            if chosen.count == 0, let own = try Self.ownScope(db) { return try load(from: from, to: to, division: own, inTransaction: true) }
            guard chosen.count == 1 else {
                throw StorageError(chosen.count == 0 ? "liandong.divisions has no county: import the divisions first"
                                                     : "liandong.divisions holds \(chosen.count) counties: name one with --division")
            }
        }
        let division = chosen.typed[0]
        let code = try division.string(0)
        var r = AssessmentReport(divisionCode: code, divisionName: try division.string(1), level: try division.string(2), from: from, to: to,
                                 generatedAt: String(Timestamp.formatCST(Date().timeIntervalSince1970).prefix(16)).replacingOccurrences(of: "T", with: " "))
        // The period as instants: [from 00:00, to + 1 day 00:00) China Standard Time.
        let withPeriod = """
            WITH p AS (SELECT $2::date::timestamp AT TIME ZONE 'Asia/Shanghai' AS lo,
                              ($3::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai' AS hi)
            """
        let args = [code, from, to]
        // Grids (current ones) with their incidents in the period and their tasks overdue now.
        for row in try db.query("""
            \(withPeriod)
            SELECT g.grid_code, g.village_code, ST_AsSVG(ST_SimplifyPreserveTopology(g.geom, 0.0001), 0, 5),
                   (SELECT count(*) FROM liandong.incidents i, p WHERE i.grid_code = g.grid_code
                      AND i.first_observed_at >= p.lo AND i.first_observed_at < p.hi),
                   (SELECT count(*) FROM liandong.overdue_tasks o JOIN liandong.tasks t ON t.id = o.task_id
                      WHERE t.grid_code = g.grid_code),
                   coalesce(g.name, g.grid_code), coalesce(v.name, g.village_code)
            FROM liandong.grids g LEFT JOIN liandong.divisions v ON v.code = g.village_code
            WHERE g.grid_code LIKE $1 || '%' AND g.valid_to IS NULL
            ORDER BY g.grid_code
            """, args).typed {
            r.grids.append(.init(code: try row.string(0), villageCode: try row.string(1), name: try row.string(5),
                                 villageName: try row.string(6), path: row[2] ?? "", incidents: try row.int(3), overdue: try row.int(4)))
        }
        let extent = try db.query("""
            SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
            FROM (SELECT ST_Extent(geom) AS e FROM liandong.grids WHERE grid_code LIKE $1 || '%' AND valid_to IS NULL) s
            """, [code])
        if let w = extent[0, "st_xmin"].flatMap(Double.init), let s = extent[0, "st_ymin"].flatMap(Double.init),
           let e = extent[0, "st_xmax"].flatMap(Double.init), let n = extent[0, "st_ymax"].flatMap(Double.init) {
            r.bounds = (w, s, e, n)
        }
        r.points = try db.query("""
            \(withPeriod)
            SELECT ST_X(i.geog::geometry), ST_Y(i.geog::geometry), i.category FROM liandong.incidents i, p
            WHERE i.grid_code LIKE $1 || '%' AND i.first_observed_at >= p.lo AND i.first_observed_at < p.hi
            ORDER BY i.first_observed_at DESC LIMIT 5000
            """, args).typed.map { .init(lon: try $0.double(0), lat: try $0.double(1), category: try $0.string(2)) }
        r.assessment = try db.query("""
            SELECT * FROM liandong.assessment($2::date, $3::date) WHERE division_code LIKE $1 || '%'
            """, args).typed.map {
            .init(code: try $0.string(0), name: try $0.string(1), level: try $0.string(2), received: try $0.int(3), accepted: try $0.int(4),
                  resolved: try $0.int(6), escalations: try $0.int(10), falseAlarms: try $0.int(11),
                  acceptedOnTimePct: $0[5] ?? "", resolvedOnTimePct: $0[7] ?? "",
                  medianMinutesToAccept: $0[8] ?? "", medianMinutesToResolve: $0[9] ?? "")
        }
        // Every township of the division ranked, those without a task too (zeros, not absent).
        let assessed = Set(r.assessment.map(\.code))
        for row in try db.query("""
            SELECT code, name FROM liandong.divisions WHERE level = 'township' AND code LIKE $1 || '%' ORDER BY code
            """, [code]).typed where !assessed.contains(try row.string(0)) {
            r.assessment.append(.init(code: try row.string(0), name: try row.string(1), level: "township", received: 0, accepted: 0, resolved: 0,
                                      escalations: 0, falseAlarms: 0, acceptedOnTimePct: "", resolvedOnTimePct: "",
                                      medianMinutesToAccept: "", medianMinutesToResolve: ""))
        }
        r.onlineRates = try db.query("""
            SELECT o.division_code, o.division_name, o.level, max(o.cameras),
                   round(sum(o.online_pct * o.cameras) / nullif(sum(o.cameras), 0), 1),
                   (SELECT count(*) FROM liandong.device_status s JOIN liandong.cameras c ON c.device_id = s.device_id
                    WHERE c.grid_code LIKE o.division_code || '%')
            FROM liandong.camera_online_rate($2::date, $3::date) o
            WHERE o.division_code LIKE $1 || '%' AND o.level IN ('county', 'township')
            GROUP BY o.division_code, o.division_name, o.level ORDER BY o.division_code
            """, args).typed.map {
            .init(code: try $0.string(0), name: try $0.string(1), level: try $0.string(2), cameras: try $0.optionalInt(3) ?? 0, onlinePct: $0[4] ?? "",
                  reporting: Int($0[5] ?? "0") ?? 0)
        }
        r.days = try db.query("""
            SELECT to_char(d, 'YYYY-MM-DD'),
                   (SELECT count(*) FROM liandong.incidents i WHERE i.grid_code LIKE $1 || '%'
                      AND i.first_observed_at >= lo AND i.first_observed_at < hi),
                   count(h.id) FILTER (WHERE h.event = 'created'),
                   count(h.id) FILTER (WHERE h.event IN ('escalated', 'rejected')),
                   count(h.id) FILTER (WHERE h.event = 'resolved'),
                   count(h.id) FILTER (WHERE h.event = 'false_alarm')
            FROM generate_series($2::date, $3::date, interval '1 day') d
            CROSS JOIN LATERAL (SELECT d::timestamp AT TIME ZONE 'Asia/Shanghai' AS lo,
                                       (d + interval '1 day')::timestamp AT TIME ZONE 'Asia/Shanghai' AS hi) b
            LEFT JOIN liandong.task_history h ON h.at >= b.lo AND h.at < b.hi
                 AND h.task_id IN (SELECT t.id FROM liandong.tasks t WHERE t.grid_code LIKE $1 || '%')
            GROUP BY d, lo, hi ORDER BY d
            """, args).typed.map {
            .init(day: try $0.string(0), incidents: try $0.int(1), tasks: try $0.int(2), escalations: try $0.int(3), resolved: try $0.int(4),
                  falseAlarms: try $0.int(5))
        }
        r.overdue = try db.query("""
            SELECT o.task_id, o.division_name, o.category, o.priority, o.missed, o.minutes_late, o.tier,
                   (SELECT string_agg(tl.division_name || ' ' || tl.event, ' → ' ORDER BY tl.step) FROM liandong.task_timeline tl
                    WHERE tl.task_id = o.task_id AND tl.event IN ('created', 'upgraded', 'escalated', 'rejected', 'overdue'))
            FROM liandong.overdue_tasks o JOIN liandong.tasks t ON t.id = o.task_id
            WHERE t.grid_code LIKE $1 || '%'
            ORDER BY o.minutes_late DESC, o.task_id LIMIT 10
            """, [code]).typed.map {
            .init(taskID: try $0.string(0), divisionName: try $0.string(1), category: try $0.string(2), missed: try $0.string(4),
                  tier: try $0.string(6), priority: try $0.int(3), minutesLate: try $0.int(5), path: $0[7] ?? "")
        }
        r.patrol = try db.query("""
            SELECT division_code, division_name, level, max(grids), sum(grids_patrolled), sum(grids), round(sum(km), 1),
                   round(sum(minutes) / 60, 1), round(avg(coverage_pct), 1)
            FROM liandong.patrol_coverage_rollup($2::date, $3::date)
            WHERE division_code LIKE $1 || '%' AND level IN ('county', 'township', 'village') AND length(division_code) <= 9
            GROUP BY division_code, division_name, level ORDER BY division_code
            """, args).typed.map {
            .init(code: try $0.string(0), name: try $0.string(1), level: try $0.string(2), grids: try $0.int(3), gridDaysPatrolled: try $0.int(4),
                  gridDays: try $0.int(5), km: $0[6] ?? "0", hours: $0[7] ?? "0", coveragePct: $0[8] ?? "")
        }
        r.residents = try db.query("""
            SELECT division_code, division_name, level, citizen_requests, answered_on_time_pct, ratings, satisfaction, low_ratings, reopened
            FROM liandong.citizen_assessment($2::date, $3::date)
            WHERE division_code LIKE $1 || '%' AND length(division_code) <= greatest(9, length($1) + 3)
            ORDER BY division_code
            """, args).typed.map {
            .init(code: try $0.string(0), name: try $0.string(1), level: try $0.string(2), requests: try $0.int(3), ratings: try $0.int(5),
                  lowRatings: try $0.int(7), reopened: try $0.int(8), answeredOnTimePct: $0[4] ?? "", satisfaction: $0[6] ?? "")
        }
        r.tracks = try db.query("""
            \(withPeriod)
            SELECT ST_AsSVG(ST_Simplify(t.geom, 0.00002), 0, 5) FROM p, liandong.patrol_track_lines(p.lo, p.hi) t
            WHERE t.started_in_grid_code LIKE $1 || '%' ORDER BY t.worker_id, t.started_at LIMIT 3000
            """, args).rows.compactMap { $0[0] }
        r.overdueCount = Int(try db.query("""
            SELECT count(*) FROM liandong.overdue_tasks o JOIN liandong.tasks t ON t.id = o.task_id WHERE t.grid_code LIKE $1 || '%'
            """, [code]).scalar ?? "0") ?? 0
        r.incidentCount = r.days.map(\.incidents).reduce(0, +)
        r.taskCount = r.days.map(\.tasks).reduce(0, +)
        r.escalationCount = r.days.map(\.escalations).reduce(0, +)
        r.falseAlarmCount = r.days.map(\.falseAlarms).reduce(0, +)
        return r
    }

    static func date(_ text: String) -> Double? { Timestamp.parse(text + "T00:00:00+08:00") }
}
