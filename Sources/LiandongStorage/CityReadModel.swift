import Foundation
import LibPQ

/// The city (地级市) read model: each county database publishes its divisions, grids, cameras,
/// incidents, tasks and task history (PostgreSQL logical replication, column lists so county
/// migrations do not break the city), and the city database subscribes to every county. The city
/// has the same table names (replication matches by name), no foreign keys (tables are copied in
/// any order), a county_code on every row, task_history keyed by (county_code, id) because step
/// numbers repeat across counties, and views `city_division_kpis` and `city_open_incidents`.
public struct CityReadModel {
    /// Publications on a county: what changes, and the history that is only ever added to (its
    /// deletions by the county's retention do not reach the city, which keeps the longer record).
    public static let publication = "liandong_city", historyPublication = "liandong_city_history"

    static let published: [(table: String, columns: String)] = [
        ("divisions", "code, name, level, kind, parent_code, updated_at"),
        ("grids", "grid_code, name, village_code, geom, updated_at, valid_to"),
        ("cameras", "device_id, name, geom, grid_code, updated_at, valid_to"),
        ("incidents", "id, category, status, priority, geog, grid_code, village_code, first_observed_at, last_observed_at, "
            + "alert_count, report_count, opened_at, updated_at, closed_at, resolution, related_incident_ids"),
        ("tasks", "id, incident_id, kind, state, tier, division_code, grid_code, category, priority, departments, respond_by, "
            + "resolve_by, created_at, updated_at, overdue, overdue_since, last_announced_at, escalations, closed_at"),
    ]
    static let history = (table: "task_history", columns: "id, task_id, at, event, tier, division_code, from_division_code, respond_by, resolve_by, actor")

    public struct Problem: Error, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    let city: PGConnection

    public init(city: PGConnection) { self.city = city }

    /// Sets up `county` (its publications) and the city (its schema, a subscription to the county).
    /// `countyURL` is how the city's server reaches the county's (a libpq conninfo or URI).
    public func attach(county: PGConnection, countyURL: String) throws -> String {
        guard try county.query("SHOW wal_level").scalar == "logical" else {
            throw Problem("the county database's server has wal_level = \(try county.query("SHOW wal_level").scalar ?? "?"); logical "
                + "replication needs wal_level = logical (postgresql.conf, then restart it)")
        }
        guard try county.query("SELECT to_regclass('liandong.schema_migrations') IS NOT NULL").scalar == "t" else {
            throw Problem("--county is not a Liandong county database (no liandong.schema_migrations): run liandongd migrate there first")
        }
        let code = try Self.countyCode(county)
        let name = "liandong_\(code)"
        // Names resolve the same whatever the roles are called: a role named like the schema
        // ("liandong") has "$user" put the schema first, and pg_get_viewdef then leaves it out of
        // the definition it gives, which the city cannot resolve.
        try county.execute("SET search_path TO pg_catalog")
        try city.execute("SET search_path TO public, pg_catalog")
        // Whatever this attach creates is removed again when a later step fails.
        var undo: [(String, () throws -> Void)] = []
        do {
            for publication in try publish(county) {
                undo.append(("publication \(publication) on the county", { try county.execute("DROP PUBLICATION IF EXISTS \(publication)") }))
            }
            let cityWasEmpty = try city.query("SELECT to_regnamespace('liandong') IS NULL").scalar == "t"
            if try createPostGIS() {
                undo.append(("extension postgis on the city", { try city.execute("DROP EXTENSION IF EXISTS postgis") }))
            }
            try createSchema()
            if cityWasEmpty { undo.append(("schema liandong on the city", { try city.execute("DROP SCHEMA IF EXISTS liandong CASCADE") })) }
            try createAssessmentViews(from: county)
            if try city.query("SELECT count(*) FROM pg_subscription WHERE subname = $1", [name]).scalar != "0" {
                // Its slot is on the county's server unless the county's database changed server.
                if try county.query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", [name]).scalar != "0" {
                    return "county \(code) is already attached (subscription \(name)); `liandongd city detach` first to attach it anew"
                }
                return try resynchronise(county: county, code: code, subscription: name, countyURL: countyURL)
            }
            try city.execute("""
                CREATE SUBSCRIPTION \(name) CONNECTION \(Self.literal(countyURL))
                PUBLICATION \(Self.publication), \(Self.historyPublication)
                """)
        } catch {
            var left: [String] = []
            for (what, step) in undo.reversed() {
                do { try step() } catch { left.append("\(what) (\(error))") }
            }
            throw Problem("\(error)" + (undo.isEmpty ? "" : left.isEmpty
                ? "; undone: " + undo.map(\.0).joined(separator: ", ")
                : "; could not undo: " + left.joined(separator: ", ") + " - drop them by hand"))
        }
        return "county \(code) attached: publications \(Self.publication), \(Self.historyPublication) on the county, subscription \(name) "
            + "on the city (its current rows are being copied; changes follow within seconds). "
            + "Views: liandong.city_division_kpis, liandong.city_open_incidents"
    }

    /// A county attached before whose replication slot is not on its database's server now: the
    /// county failed over (PostgreSQL 15 does not move logical slots to a promoted standby) or the
    /// slot was dropped. The subscription cannot continue, and what changed meanwhile never
    /// reaches the city. The subscription is made anew and the county's rows are copied again:
    /// first the city's copy of them is removed - every row of divisions, grids, cameras, incidents
    /// and tasks (the county holds them all) and the task steps the county still holds (older ones,
    /// gone from the county by its retention, stay: the city keeps the longer record) - so the new
    /// subscription's initial copy brings each row once.
    func resynchronise(county: PGConnection, code: String, subscription name: String, countyURL: String) throws -> String {
        try city.execute("ALTER SUBSCRIPTION \(name) DISABLE")
        try city.execute("ALTER SUBSCRIPTION \(name) SET (slot_name = NONE)")
        try city.execute("DROP SUBSCRIPTION \(name)")
        let oldest = try county.query("SELECT min(id) FROM liandong.task_history").scalar
        var replaced = 0, kept = 0
        try city.transaction { db in
            for table in ["tasks", "incidents", "cameras", "grids", "divisions"] {
                replaced += try db.query("DELETE FROM liandong.\(table) WHERE county_code = $1", [code]).affected
            }
            if let oldest {
                replaced += try db.query("DELETE FROM liandong.task_history WHERE county_code = $1 AND id >= $2::bigint",
                                         [code, oldest]).affected
            }
            kept = Int(try db.query("SELECT count(*) FROM liandong.task_history WHERE county_code = $1", [code]).scalar ?? "0") ?? 0
        }
        try city.execute("""
            CREATE SUBSCRIPTION \(name) CONNECTION \(Self.literal(countyURL))
            PUBLICATION \(Self.publication), \(Self.historyPublication)
            """)
        return "county \(code) resynchronised: its replication slot was not on the county database's server (a failover: "
            + "PostgreSQL 15 does not move logical replication slots to a promoted standby), so subscription \(name) was made "
            + "anew; the city's \(replaced) rows of the county are being copied again from the county (seconds to minutes)"
            + (kept > 0 ? "; \(kept) task steps older than the county keeps were kept" : "")
    }

    /// Stops the city's subscription to a county and removes that county's rows from the city.
    /// `county` (when reachable) is only used to name its code.
    public func detach(countyCode code: String) throws -> String {
        guard code.utf8.count == 6, code.utf8.allSatisfy({ (48...57).contains($0) }) else { throw Problem("county code \"\(code)\" is not 6 digits") }
        let name = "liandong_\(code)"
        guard try city.query("SELECT count(*) FROM pg_subscription WHERE subname = $1", [name]).scalar != "0" else {
            throw Problem("no subscription \(name) on the city database: county \(code) is not attached")
        }
        var note = ""
        do {
            try city.execute("DROP SUBSCRIPTION \(name)")
        } catch {
            // The county is unreachable: drop the subscription without its slot, and say so.
            try city.execute("ALTER SUBSCRIPTION \(name) DISABLE")
            try city.execute("ALTER SUBSCRIPTION \(name) SET (slot_name = NONE)")
            try city.execute("DROP SUBSCRIPTION \(name)")
            note = "; the county was unreachable: drop its replication slot \(name) there "
                + "(SELECT pg_drop_replication_slot('\(name)')), or it keeps WAL for ever"
        }
        var removed = 0
        try city.transaction { db in
            for table in ["task_history", "tasks", "incidents", "cameras", "grids", "divisions"] {
                removed += try db.query("DELETE FROM liandong.\(table) WHERE county_code = $1", [code]).affected
            }
        }
        return "county \(code) detached: subscription \(name) dropped, \(removed) rows of it removed from the city\(note)"
    }

    /// The county's code: its one division of level county.
    public static func countyCode(_ db: PGConnection) throws -> String {
        let codes = try db.query("SELECT code FROM liandong.divisions WHERE level = 'county' ORDER BY code").typed.map { try $0.string(0) }
        guard codes.count == 1 else {
            throw Problem(codes.isEmpty ? "the county database holds no county division: import its divisions first"
                : "the county database holds \(codes.count) counties (\(codes.joined(separator: ", "))): one database per county")
        }
        return codes[0]
    }


    /// Creates (or brings up to date) the two publications on a county; returns those it created.
    func publish(_ county: PGConnection) throws -> [String] {
        var created: [String] = []
        let tables = Self.published.map { "liandong.\($0.table) (\($0.columns))" }.joined(separator: ", ")
        let exists = { (name: String) in try county.query("SELECT count(*) FROM pg_publication WHERE pubname = $1", [name]).scalar != "0" }
        if try exists(Self.publication) {
            try county.execute("ALTER PUBLICATION \(Self.publication) SET TABLE \(tables)")
        } else {
            try county.execute("CREATE PUBLICATION \(Self.publication) FOR TABLE \(tables) WITH (publish = 'insert, update')")
            created.append(Self.publication)
        }
        let history = "liandong.\(Self.history.table) (\(Self.history.columns))"
        if try exists(Self.historyPublication) {
            try county.execute("ALTER PUBLICATION \(Self.historyPublication) SET TABLE \(history)")
        } else {
            try county.execute("CREATE PUBLICATION \(Self.historyPublication) FOR TABLE \(history) WITH (publish = 'insert')")
            created.append(Self.historyPublication)
        }
        return created
    }

    /// The city's tables and views (idempotent). A county database is refused as the city.
    func createSchema() throws {
        guard try city.query("SELECT to_regclass('liandong.schema_migrations') IS NULL").scalar == "t" else {
            throw Problem("--city is a county database (it has liandong.schema_migrations): the city needs a database of its own")
        }
        try city.transaction { db in try db.execute(Self.schema) }
    }

    /// Creates PostGIS on the city database when it is not there yet and this role may (a
    /// superuser, or where PostGIS is trusted the database owner); returns whether it did.
    func createPostGIS() throws -> Bool {
        guard try city.query("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'").scalar == "0" else { return false }
        do {
            try city.execute("CREATE EXTENSION postgis")
            return true
        } catch let error as PQError {
            throw Problem("the city database lacks PostGIS and this role cannot create it (\(error.message)): "
                + "CREATE EXTENSION postgis there as a superuser first")
        }
    }

    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }

    /// The hand-over views of the city: the county's own `task_assignments` definition (migration
    /// 025: one definition of a hand-over and what became of it, read with pg_get_viewdef; task ids
    /// are unique across counties, so it holds across them) and the figures over it.
    func createAssessmentViews(from county: PGConnection) throws {
        guard var definition = try county.query("SELECT pg_get_viewdef('liandong.task_assignments'::regclass, true)").scalar else {
            throw Problem("the county database has no liandong.task_assignments view: migrate it first")
        }
        definition = definition.trimmingCharacters(in: .whitespacesAndNewlines)
        if definition.hasSuffix(";") { definition.removeLast() }
        try city.transaction { db in
            try db.execute("DROP VIEW IF EXISTS liandong.city_division_kpis, liandong.city_task_assignments")
            try db.execute("CREATE VIEW liandong.city_task_assignments AS " + definition)
            try db.execute(Self.assessmentViews)
        }
    }

    static let assessmentViews = """
        COMMENT ON VIEW liandong.city_task_assignments IS 'Each hand-over of a task to a division and what became of it there, across the attached counties (the definition of task_assignments in the county attached last).';

        CREATE VIEW liandong.city_division_kpis AS
        SELECT left(o.division_code, 6) AS county_code, c.name AS county_name, o.division_code, d.name AS division_name, d.level,
               (o.at AT TIME ZONE 'Asia/Shanghai')::date AS day,
               count(*) AS tasks_received,
               count(o.accepted_at) AS accepted,
               round(100.0 * count(*) FILTER (WHERE o.accepted_at <= o.respond_by) / count(*), 1) AS accepted_on_time_pct,
               count(o.resolved_at) AS resolved,
               round(100.0 * count(*) FILTER (WHERE o.resolved_at <= o.resolve_by) / count(*), 1) AS resolved_on_time_pct,
               round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.accepted_at - o.at) / 60))::numeric, 1)
                   AS median_minutes_to_accept,
               count(*) FILTER (WHERE o.escalated) AS escalations,
               count(*) FILTER (WHERE o.false_alarm) AS false_alarms
        FROM liandong.city_task_assignments o
        LEFT JOIN liandong.divisions d ON d.code = o.division_code
        LEFT JOIN liandong.divisions c ON c.code = left(o.division_code, 6)
        GROUP BY left(o.division_code, 6), c.name, o.division_code, d.name, d.level, (o.at AT TIME ZONE 'Asia/Shanghai')::date;
        COMMENT ON VIEW liandong.city_division_kpis IS 'Per county, division and day (China Standard Time): tasks received, accepted and resolved (on time), median minutes to accept, escalations, false alarms - division_kpis across the attached counties.';
        """

    /// The city's schema: the published columns, county_code on every row, no foreign keys.
    static let schema = """
        CREATE SCHEMA IF NOT EXISTS liandong;
        COMMENT ON SCHEMA liandong IS 'Liandong city read model: every attached county''s divisions, grids, cameras, incidents, tasks and task history (logical replication; liandongd city attach).';
        CREATE TABLE IF NOT EXISTS liandong.divisions (
            code text PRIMARY KEY, name text NOT NULL, level text NOT NULL, kind text, parent_code text, updated_at timestamptz,
            county_code text GENERATED ALWAYS AS (left(code, 6)) STORED);
        CREATE TABLE IF NOT EXISTS liandong.grids (
            grid_code text PRIMARY KEY, name text, village_code text, geom geometry(Geometry, 4326), updated_at timestamptz,
            valid_to timestamptz, county_code text GENERATED ALWAYS AS (left(grid_code, 6)) STORED);
        CREATE TABLE IF NOT EXISTS liandong.cameras (
            device_id text PRIMARY KEY, name text, geom geometry(Point, 4326), grid_code text, updated_at timestamptz,
            valid_to timestamptz, county_code text GENERATED ALWAYS AS (left(device_id, 6)) STORED);
        CREATE TABLE IF NOT EXISTS liandong.incidents (
            id uuid PRIMARY KEY, category text, status text, priority smallint, geog geography(Point, 4326), grid_code text,
            village_code text, first_observed_at timestamptz, last_observed_at timestamptz, alert_count integer,
            report_count integer, opened_at timestamptz, updated_at timestamptz, closed_at timestamptz, resolution text,
            related_incident_ids uuid[], county_code text GENERATED ALWAYS AS (left(grid_code, 6)) STORED);
        CREATE INDEX IF NOT EXISTS incidents_open_idx ON liandong.incidents (county_code) WHERE status = 'open';
        CREATE TABLE IF NOT EXISTS liandong.tasks (
            id uuid PRIMARY KEY, incident_id uuid, kind text, state text, tier text, division_code text, grid_code text,
            category text, priority smallint, departments text[], respond_by timestamptz, resolve_by timestamptz,
            created_at timestamptz, updated_at timestamptz, overdue boolean, overdue_since timestamptz,
            last_announced_at timestamptz, escalations integer, closed_at timestamptz,
            county_code text GENERATED ALWAYS AS (left(grid_code, 6)) STORED);
        CREATE INDEX IF NOT EXISTS tasks_incident_idx ON liandong.tasks (incident_id);
        CREATE TABLE IF NOT EXISTS liandong.task_history (
            id bigint NOT NULL, task_id uuid NOT NULL, at timestamptz, event text, tier text, division_code text NOT NULL,
            from_division_code text, respond_by timestamptz, resolve_by timestamptz, actor text,
            county_code text GENERATED ALWAYS AS (left(division_code, 6)) STORED,
            PRIMARY KEY (county_code, id));
        CREATE INDEX IF NOT EXISTS task_history_task_idx ON liandong.task_history (task_id, at);
        COMMENT ON TABLE liandong.divisions IS 'Every attached county''s divisions (replicated).';
        COMMENT ON TABLE liandong.grids IS 'Every attached county''s grids (replicated).';
        COMMENT ON TABLE liandong.cameras IS 'Every attached county''s cameras (replicated).';
        COMMENT ON TABLE liandong.incidents IS 'Every attached county''s incidents (replicated).';
        COMMENT ON TABLE liandong.tasks IS 'Every attached county''s tasks (replicated).';
        COMMENT ON TABLE liandong.task_history IS 'Every attached county''s task steps (replicated inserts: the county''s retention does not remove them here); step ids repeat across counties, so the key is (county_code, id).';

        CREATE OR REPLACE VIEW liandong.city_open_incidents AS
        SELECT i.county_code, c.name AS county_name, i.id, i.category, i.priority, i.grid_code, i.village_code,
               v.name AS village_name, v.parent_code AS township_code, t.name AS township_name,
               i.first_observed_at, i.last_observed_at, i.alert_count, i.report_count, i.geog,
               k.id AS task_id, k.kind AS task_kind, k.state AS task_state, k.tier AS task_tier, k.division_code AS task_division_code,
               k.overdue AS task_overdue
        FROM liandong.incidents i
        LEFT JOIN liandong.divisions c ON c.code = i.county_code
        LEFT JOIN liandong.divisions v ON v.code = i.village_code
        LEFT JOIN liandong.divisions t ON t.code = v.parent_code
        LEFT JOIN LATERAL (SELECT * FROM liandong.tasks k WHERE k.incident_id = i.id ORDER BY k.created_at DESC LIMIT 1) k ON true
        WHERE i.status = 'open';
        COMMENT ON VIEW liandong.city_open_incidents IS 'Open incidents of every attached county with their place and their task (kind, state, tier, overdue).';
        """
}
