import LiandongCore
import LibPQ

/// What the duty officer's console reads (liandong-console, as an operator: the rows its role's
/// scope allows, narrowed here to the user's scope, a division-code prefix). Every answer is the
/// JSON the page reads, built by PostgreSQL; times are epoch seconds.
package enum ConsoleStore {
    /// The division code a task is in the scope of: a task is the user's when its responsible
    /// division's code starts with the user's scope (the feed topic `task.<code>` does too).
    static let taskFields = """
        json_build_object(
            'id', t.id, 'kind', t.kind, 'state', t.state, 'tier', t.tier, 'division_code', t.division_code,
            'division_name', (SELECT d.name FROM liandong.divisions d WHERE d.code = t.division_code),
            'village_name', (SELECT d.name FROM liandong.divisions d WHERE d.code = i.village_code),
            'township_name', (SELECT d.name FROM liandong.divisions d WHERE d.code = left(i.village_code, 9)),
            'grid_code', t.grid_code, 'category', t.category, 'priority', t.priority,
            'source', CASE WHEN i.alert_count > 0 AND i.report_count > 0 THEN 'both'
                           WHEN i.alert_count > 0 THEN 'camera' ELSE 'report' END,
            'alerts', i.alert_count, 'reports', i.report_count, 'escalations', t.escalations,
            'created_at', extract(epoch FROM t.created_at),
            'handed_at', extract(epoch FROM coalesce((SELECT max(h.at) FROM liandong.task_history h WHERE h.task_id = t.id
                AND h.event IN ('created', 'upgraded', 'escalated', 'rejected', 'reassigned', 'reopened')), t.created_at)),
            'respond_by', extract(epoch FROM t.respond_by), 'resolve_by', extract(epoch FROM t.resolve_by),
            'overdue', t.overdue, 'lon', ST_X(i.geog::geometry), 'lat', ST_Y(i.geog::geometry))
        """

    /// The user's open tasks by deadline (respond_by while open, then resolve_by) and the strip:
    /// today's (CST) new, closed, escalated; overdue now; the camera online rate; the divisions
    /// one level down ranked by overdue tasks.
    /// `tasks` false: the strip alone (the page refreshes it as messages come).
    package static func snapshot(_ db: PGConnection, scope: String, tasks: Bool = true) throws -> String {
        let rows = try db.query("""
            WITH today AS (SELECT date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' AS start),
            open AS (
                SELECT t.*, i.village_code, i.alert_count, i.report_count, i.geog,
                       (t.overdue OR CASE WHEN t.state = 'open' THEN t.respond_by ELSE t.resolve_by END <= now()) AS late
                FROM liandong.tasks t JOIN liandong.incidents i ON i.id = t.incident_id
                WHERE t.division_code LIKE $1 || '%' AND t.state NOT IN ('resolved', 'false_alarm')
            ),
            history AS (
                SELECT h.* FROM liandong.task_history h, today WHERE h.at >= today.start
            )
            SELECT json_build_object(
                'now', extract(epoch FROM now()),
                'scope', $1::text,
                'scope_name', (SELECT d.name FROM liandong.divisions d WHERE d.code = $1),
                'tasks', CASE WHEN $2::boolean THEN coalesce((SELECT json_agg(\(taskFields) ORDER BY CASE WHEN t.state = 'open' THEN t.respond_by ELSE t.resolve_by END, t.id)
                                   FROM open t JOIN liandong.incidents i ON i.id = t.incident_id), '[]'::json) ELSE '[]'::json END,
                'strip', json_build_object(
                    'new', (SELECT count(*) FROM history h WHERE h.event = 'created' AND h.division_code LIKE $1 || '%'),
                    'closed', (SELECT count(*) FROM history h WHERE h.event IN ('resolved', 'false_alarm') AND h.division_code LIKE $1 || '%'),
                    'escalated', (SELECT count(*) FROM history h WHERE h.event IN ('escalated', 'rejected')
                                    AND h.from_division_code LIKE $1 || '%'),
                    'overdue', (SELECT count(*) FROM open WHERE late),
                    'open', (SELECT count(*) FROM open),
                    'camera_online_pct', (SELECT r.online_pct FROM liandong.camera_online_rate r
                                            WHERE r.division_code = $1 ORDER BY r.day DESC LIMIT 1),
                    'ranked', coalesce((SELECT json_agg(json_build_object('code', d.code, 'name', d.name, 'overdue', x.n, 'open', x.o)
                                                        ORDER BY x.n DESC, x.o DESC, d.code)
                                        FROM liandong.divisions d
                                        CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE o.late) AS n, count(*) AS o FROM open o
                                                            WHERE o.grid_code LIKE d.code || '%') x
                                        WHERE d.parent_code = $1), '[]'::json)))::text
            """, [scope, tasks ? "true" : "false"])
        return rows.rows.first?[0] ?? "{}"
    }

    /// The grids of the user's scope as SVG path data (PostGIS `ST_AsSVG`, y = -latitude, simplified
    /// to about 10 m) and the bounding box, so the page draws the map without any tile server.
    package static func map(_ db: PGConnection, scope: String) throws -> String {
        let rows = try db.query("""
            SELECT json_build_object(
                'grids', coalesce(json_agg(json_build_object('code', g.grid_code, 'name', g.name,
                                            'd', ST_AsSVG(ST_SimplifyPreserveTopology(g.geom, 0.0001), 0, 5)) ORDER BY g.grid_code), '[]'::json),
                'box', json_build_array(ST_XMin(ST_Extent(g.geom)), ST_YMin(ST_Extent(g.geom)),
                                        ST_XMax(ST_Extent(g.geom)), ST_YMax(ST_Extent(g.geom))))::text
            FROM liandong.grids g WHERE g.grid_code LIKE $1 || '%'
            """, [scope])
        return rows.rows.first?[0] ?? "{}"
    }

    /// One task: its fields, history, evidence (newest 50 events) and its latest feed message
    /// (description, media, camera name as dispatchers received them). Nil when there is no such
    /// task in the scope.
    package static func task(_ db: PGConnection, id: String, scope: String) throws -> String? {
        guard isUUID(id) else { return nil }
        let rows = try db.query("""
            SELECT json_build_object(
                'task', \(taskFields),
                'history', coalesce((SELECT json_agg(json_build_object('at', extract(epoch FROM h.at), 'event', h.event, 'tier', h.tier,
                                        'division_code', h.division_code, 'from_division_code', h.from_division_code,
                                        'actor', h.actor, 'note', h.note) ORDER BY h.at, h.id)
                                     FROM liandong.task_history h WHERE h.task_id = t.id), '[]'::json),
                'evidence', coalesce((SELECT json_agg(json_build_object('source', e.source, 'source_id', e.source_id,
                                        'category', e.category, 'observed_at', extract(epoch FROM e.observed_at),
                                        'device_id', e.device_id, 'worker_id', e.worker_id,
                                        'camera', (SELECT c.name FROM liandong.cameras c WHERE c.device_id = e.device_id),
                                        'description', e.payload->'description', 'snapshot_url', e.payload->'snapshot_url',
                                        'clip_url', e.payload->'clip_url', 'attachments', e.payload->'attachments')
                                        ORDER BY e.observed_at DESC, e.id DESC)
                                      FROM (SELECT * FROM liandong.events e WHERE e.incident_id = t.incident_id
                                              AND e.observed_at BETWEEN i.first_observed_at AND i.last_observed_at
                                            ORDER BY e.observed_at DESC, e.id DESC LIMIT 50) e), '[]'::json),
                'message', (SELECT f.body FROM liandong.feed f WHERE f.task_id = t.id ORDER BY f.seq DESC LIMIT 1))::text
            FROM liandong.tasks t JOIN liandong.incidents i ON i.id = t.incident_id
            WHERE t.id = $1::uuid AND t.division_code LIKE $2 || '%'
            """, [id, scope])
        return rows.rows.first?[0]
    }

    /// The task's responsible division (nil: no such task), for the console's scope check before
    /// it acts.
    package static func division(_ db: PGConnection, task id: String) throws -> String? {
        guard isUUID(id) else { return nil }
        return try db.query("SELECT division_code FROM liandong.tasks WHERE id = $1::uuid", [id]).rows.first?[0]
    }

    /// The newest feed seq (where a console that starts now begins listening).
    package static func head(_ db: PGConnection) throws -> Int64 {
        Int64(try db.query("SELECT coalesce(max(seq), 0) FROM liandong.feed").rows.first?[0] ?? "0") ?? 0
    }

    static func isUUID(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard u.count == 36 else { return false }
        for (i, c) in u.enumerated() {
            if [8, 13, 18, 23].contains(i) { if c != UInt8(ascii: "-") { return false } } else if !Hex.isDigit(c) { return false }
        }
        return true
    }
}
