import Foundation
import LibPQ
import LiandongCore

/// What an operator asks when a task or an event puzzles them, answered from the database in
/// plain lines (`liandongd task show ID`, `liandongd event why ID`): a task's timeline, evidence,
/// deadlines and who did what; where an event was placed, which incident it joined, and why it
/// made no task message when it made none. Reads only; under a scoped operator's login the
/// answers stop at its divisions (row-level security).
public struct Explainer {
    let db: PGConnection

    public init(db: PGConnection) { self.db = db }

    public struct NotFound: Error, CustomStringConvertible {
        public let description: String
    }

    static let cst = "'Asia/Shanghai'"
    /// A timestamptz column as China Standard Time text.
    static func time(_ column: String) -> String {
        "to_char(\(column) AT TIME ZONE \(cst), 'YYYY-MM-DD HH24:MI:SS')"
    }

    // MARK: task show

    public func task(_ id: String) throws -> [String] {
        guard UUID(uuidString: id) != nil else { throw NotFound(description: "task id \(id): a UUID (the task_id of a task message)") }
        let t = try db.query("""
            SELECT t.id, t.kind, t.state, t.tier, t.division_code, dn.name AS division_name, t.grid_code, g.name AS grid_name,
                   t.category, t.priority, array_to_string(t.departments, ', ') AS departments,
                   \(Self.time("t.respond_by")) AS respond_by, \(Self.time("t.resolve_by")) AS resolve_by,
                   round(extract(epoch FROM t.respond_by - now()) / 60) AS respond_in, round(extract(epoch FROM t.resolve_by - now()) / 60) AS resolve_in,
                   t.overdue, \(Self.time("t.overdue_since")) AS overdue_since, t.escalations, \(Self.time("t.created_at")) AS created_at,
                   \(Self.time("t.closed_at")) AS closed_at, \(Self.time("t.update_due_at")) AS update_due_at,
                   i.id AS incident_id, i.status, i.alert_count, i.report_count, \(Self.time("i.first_observed_at")) AS first_observed,
                   \(Self.time("i.last_observed_at")) AS last_observed, ST_X(i.geog::geometry) AS lon, ST_Y(i.geog::geometry) AS lat,
                   array_to_string(i.related_incident_ids, ', ') AS related
            FROM liandong.tasks t JOIN liandong.incidents i ON i.id = t.incident_id
            LEFT JOIN liandong.divisions dn ON dn.code = t.division_code
            LEFT JOIN liandong.grids g ON g.grid_code = t.grid_code
            WHERE t.id = $1
            """, [id.lowercased()])
        guard t.count == 1 else { throw NotFound(description: "no task \(id) (or not in your divisions)") }
        func v(_ c: String) -> String { t[0, c] ?? "-" }
        var out: [String] = []
        out.append("task \(v("id")): \(v("kind")), \(v("state")) at the \(v("tier")) \(v("division_code")) \(v("division_name"))"
            + (t[0, "overdue"] == "t" ? ", OVERDUE since \(v("overdue_since"))" : ""))
        out.append("  incident \(v("incident_id")): \(v("category")), priority \(v("priority")), \(v("status")); "
            + "\(v("alert_count")) alerts, \(v("report_count")) reports, observed \(v("first_observed")) - \(v("last_observed"))")
        out.append("  place: grid \(v("grid_code")) \(v("grid_name")), at \(v("lon")), \(v("lat")) (WGS-84)"
            + (v("related").isEmpty || v("related") == "-" ? "" : "; related incidents: \(v("related"))"))
        out.append("  departments: \(v("departments").isEmpty ? "-" : v("departments")); escalations: \(v("escalations"))")
        if t[0, "closed_at"] != nil {
            out.append("  closed \(v("closed_at"))")
        } else {
            out.append("  respond by \(v("respond_by")) (\(Self.minutes(t[0, "respond_in"]))), resolve by \(v("resolve_by")) (\(Self.minutes(t[0, "resolve_in"])))"
                + (t[0, "update_due_at"].map { "; an update is owed at \($0) (coalesced evidence)" } ?? ""))
        }
        out.append("  timeline (China Standard Time):")
        let history = try db.query("""
            SELECT \(Self.time("h.at")) AS at, h.event, h.tier, h.division_code, d.name, h.from_division_code, h.actor, h.peer, h.note,
                   \(Self.time("h.respond_by")) AS respond_by
            FROM liandong.task_history h LEFT JOIN liandong.divisions d ON d.code = h.division_code
            WHERE h.task_id = $1 ORDER BY h.at, h.id
            """, [id.lowercased()])
        for r in history.rows {
            let from = r[5].map { " from \($0)" } ?? ""
            let who = (r[6] ?? "liandong") + (r[7].map { " (peer \($0))" } ?? "")
            out.append("    \(r[0] ?? "")  \((r[1] ?? "").padding(toLength: 11, withPad: " ", startingAt: 0)) "
                + "\(r[2] ?? "") \(r[3] ?? "") \(r[4] ?? "")\(from), by \(who)" + (r[8].map { ": \($0)" } ?? "")
                + (["created", "escalated", "rejected", "upgraded", "reassigned"].contains(r[1] ?? "") ? ", respond by \(r[9] ?? "-")" : ""))
        }
        let refused = try db.query("""
            SELECT \(Self.time("received_at")), action, actor, error FROM liandong.task_updates
            WHERE task_id = $1 AND NOT ok ORDER BY received_at
            """, [id.lowercased()])
        if refused.count > 0 {
            out.append("  refused updates:")
            for r in refused.rows { out.append("    \(r[0] ?? "")  \(r[1] ?? "") by \(r[2] ?? "-"): \(r[3] ?? "")") }
        }
        let messages = try db.query("""
            SELECT f.seq, f.kind, f.topic, \(Self.time("f.created_at")), f.seq <= p.seq FROM liandong.feed f, liandong.feed_published p
            WHERE f.task_id = $1 ORDER BY f.seq
            """, [id.lowercased()])
        out.append("  messages (\(messages.count)):")
        for r in messages.rows {
            out.append("    seq \(r[0] ?? "") \(r[1] ?? "") on \(r[2] ?? "") at \(r[3] ?? "")" + (r[4] == "t" ? "" : " (not yet published)"))
        }
        out.append("  evidence (latest 20):")
        let evidence = try db.query("""
            SELECT e.source, e.source_id, coalesce(e.device_id, e.worker_id), coalesce(c.name, w.name), \(Self.time("e.observed_at")),
                   e.source_crs, e.muted_by, e.payload->>'description'
            FROM liandong.events e
            LEFT JOIN liandong.cameras c ON c.device_id = e.device_id
            LEFT JOIN liandong.grid_workers w ON w.worker_id = e.worker_id
            WHERE e.incident_id = $1 ORDER BY e.observed_at DESC, e.id DESC LIMIT 20
            """, [v("incident_id")])
        for r in evidence.rows {
            out.append("    \(r[4] ?? "")  \(r[0] ?? "") \(r[1] ?? "") from \(r[2] ?? "-") \(r[3] ?? "") (\(r[5] ?? ""))"
                + (r[6].map { " - muted: \($0)" } ?? "") + (r[7].map { " \"\($0.prefix(80))\"" } ?? ""))
        }
        return out
    }

    static func minutes(_ text: String?) -> String {
        guard let text, let m = Double(text) else { return "?" }
        return m >= 0 ? "in \(Int(m)) min" : "\(Int(-m)) min ago"
    }

    // MARK: event why

    /// `id`: an alert_id or report_id as the gateway sent it, or an event number (events.id).
    public func event(_ id: String) throws -> [String] {
        let e = try db.query("""
            SELECT e.id, e.source, e.source_id, e.gateway_id, e.device_id, c.name AS camera, e.worker_id, w.name AS worker,
                   e.category, e.priority, \(Self.time("e.observed_at")) AS observed_at, \(Self.time("e.received_at")) AS received_at,
                   e.received_at AS received_raw, e.source_crs, e.grid_code, g.name AS grid_name, e.village_code, v.name AS village_name,
                   left(e.village_code, 9) AS township_code, tw.name AS township_name, e.incident_id, e.muted_by,
                   e.parent_device_id, i.status, i.alert_count, i.report_count, i.category AS incident_category
            FROM liandong.events e
            JOIN liandong.incidents i ON i.id = e.incident_id
            LEFT JOIN liandong.cameras c ON c.device_id = e.device_id
            LEFT JOIN liandong.grid_workers w ON w.worker_id = e.worker_id
            LEFT JOIN liandong.grids g ON g.grid_code = e.grid_code
            LEFT JOIN liandong.divisions v ON v.code = e.village_code
            LEFT JOIN liandong.divisions tw ON tw.code = left(e.village_code, 9)
            WHERE e.source_id = $1 OR (e.id::text = $1)
            ORDER BY e.source_id = $1 DESC, e.id LIMIT 1
            """, [id])
        guard e.count == 1 else { return try deadLetters(id) }
        func v(_ c: String) -> String { e[0, c] ?? "-" }
        var out: [String] = []
        let from = v("source") == "alert" ? "camera \(v("device_id")) \(v("camera"))" : "worker \(v("worker_id")) \(v("worker"))"
        out.append("\(v("source")) \(v("source_id")) (event \(v("id"))): \(v("category")), priority \(v("priority")), from \(from)"
            + (e[0, "parent_device_id"].map { ", a channel of device \($0)" } ?? "")
            + (e[0, "gateway_id"].map { " via gateway \($0)" } ?? ""))
        out.append("  observed \(v("observed_at")), received \(v("received_at")) (China Standard Time)")
        let how = switch v("source_crs") {
        case "camera": "at the camera's registered position (the alert carried none)"
        case "grid": "at its grid (the report named grid_code and no position)"
        case "channel": "at its channel's position in its device's GB/T 28181 catalog (not a registry camera; the alert carried none)"
        default: "at its position (\(v("source_crs")), stored as WGS-84)"
        }
        out.append("  placed \(how): grid \(v("grid_code")) \(v("grid_name")), village \(v("village_code")) \(v("village_name")), "
            + "township \(v("township_code")) \(v("township_name"))")
        out.append("  incident \(v("incident_id")): \(v("incident_category")), \(v("status")), \(v("alert_count")) alerts, \(v("report_count")) reports")
        let task = try db.query("""
            SELECT id, kind, state, tier, division_code, update_due_at IS NOT NULL AS owed, \(Self.time("update_due_at")) FROM liandong.tasks
            WHERE incident_id = $1
            """, [v("incident_id")])
        // Why it made no message, when it made none: the writer's own decision first.
        if let muted = e[0, "muted_by"] {
            out.append("  made no task message: " + (try mute(muted)))
        }
        guard task.count == 1 else {
            if e[0, "muted_by"] == nil {
                out.append("  no task for its incident: " + (v("source") == "report"
                    ? "a report alone makes a task only when its severity is at least correlation.dispatch_severity (or a camera agrees)"
                    : "its incident's other events were all muted too, or the task was not yet written"))
            }
            return out
        }
        func t(_ c: String) -> String { task[0, c] ?? "-" }
        out.append("  task \(t("id")): \(t("kind")), \(t("state")) at the \(t("tier")) \(t("division_code")) (liandongd task show \(t("id")))")
        guard e[0, "muted_by"] == nil else { return out }
        // The first message of the task at or after the event's arrival carried it.
        let carried = try db.query("""
            SELECT seq, kind, \(Self.time("created_at")), extract(epoch FROM created_at - $2::timestamptz) FROM liandong.feed
            WHERE task_id = $1 AND created_at >= $2::timestamptz ORDER BY seq LIMIT 1
            """, [t("id"), v("received_raw")])
        if carried.count == 1 {
            let delay = Double(carried.rows[0][3] ?? "0") ?? 0
            out.append("  announced in seq \(carried.rows[0][0] ?? "") (\(carried.rows[0][1] ?? "")) at \(carried.rows[0][2] ?? "")"
                + (delay > 2 ? ": coalesced with later evidence (at most one update per correlation.update_interval_s)" : ""))
        } else if task[0, "owed"] == "t" {
            out.append("  not announced yet: coalesced, the task owes an update at \(task.rows[0][6] ?? "") (correlation.update_interval_s)")
        } else if ["resolved", "false_alarm"].contains(t("state")) {
            out.append("  not announced: its task was already \(t("state")) (a finished task takes no more updates)")
        } else {
            out.append("  not announced separately: the task's message before it already carried it, or it is being written now")
        }
        return out
    }

    /// What `events.muted_by` says, in words, with the silence or the camera it names.
    func mute(_ muted: String) throws -> String {
        if muted.hasPrefix("silence:") {
            let id = String(muted.dropFirst("silence:".count))
            let s = try db.query("""
                SELECT device_prefix, division_prefix, category, \(Self.time("starts_at")), \(Self.time("ends_at")), created_by, comment
                FROM liandong.silences WHERE id::text = $1
                """, [id])
            guard s.count == 1 else { return "silenced by silence \(id) (no longer in liandong.silences)" }
            let r = s.rows[0]
            var matchers: [String] = []
            if let d = r[0], !d.isEmpty { matchers.append("device \(d)*") }
            if let d = r[1], !d.isEmpty { matchers.append("division \(d)*") }
            if let c = r[2] { matchers.append("category \(c)") }
            return "silenced by silence \(id) (\(matchers.joined(separator: ", ")); \(r[3] ?? "") - \(r[4] ?? ""); "
                + "added by \(r[5] ?? ""): \"\(r[6] ?? "")\")"
        }
        if muted.hasPrefix("inhibited:") {
            return "inhibited: its camera \(muted.dropFirst("inhibited:".count)) had raised a video-lost or tamper alarm within "
                + "correlation.inhibit_s before (an analytics alarm of a blinded camera is not believed)"
        }
        if muted == "suppressed" {
            return "suppressed: its camera is a noisy camera (most of its judged alarms were false; liandong.noisy_cameras, "
                + "`liandongd camera review DEVICE` lifts it)"
        }
        return muted
    }

    /// Not stored: the dead letters that carry the id (the last 30 days).
    func deadLetters(_ id: String) throws -> [String] {
        let rows = try db.query("""
            SELECT id, \(Self.time("received_at")), endpoint, reason, detail, grid_code FROM liandong.rejected_messages
            WHERE received_at > now() - interval '30 days' AND position(convert_to($1, 'UTF8') IN raw) > 0
            ORDER BY received_at DESC LIMIT 10
            """, [id])
        guard rows.count > 0 else {
            throw NotFound(description: "no event and no dead letter of the last 30 days carries \(id) (or not in your divisions): "
                + "it never arrived (loss on the SUB path shows as a gap: liandong.ingest_gaps), or it is still on its way")
        }
        var out = ["\(id) was not stored: refused as a dead letter (liandong.dead_letters):"]
        for r in rows.rows {
            out.append("  dead letter \(r[0] ?? "") at \(r[1] ?? "") on \(r[2] ?? ""): \(r[3] ?? "") - \(r[4] ?? "")"
                + (r[5].map { " (grid \($0))" } ?? ""))
        }
        return out
    }
}
