import Foundation
import LiandongCore
import LibPQ

/// Problems found in an import file; nothing was imported.
public struct ImportError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let problems: [String]

    public var description: String {
        let shown = problems.prefix(20).map { "  \(file): \($0)" }.joined(separator: "\n")
        let more = problems.count > 20 ? "\n  ... and \(problems.count - 20) more" : ""
        return "\(problems.count) problem(s), nothing imported:\n\(shown)\(more)"
    }
}

/// Counts of one import.
public struct ImportSummary: Sendable, CustomStringConvertible {
    public var kind: String
    public var inserted: Int
    public var updated: Int
    public var extra: String = ""

    public var description: String { "\(kind): \(inserted) new, \(updated) updated\(extra)" }
}

/// Loads reference data: each file all or nothing, in one transaction; re-importing the same
/// file updates rows in place (keyed by code / grid_code / device_id), never duplicates.
public struct Importer {
    package let db: PGConnection
    private let encoder: JSONEncoder

    public init(db: PGConnection) {
        self.db = db
        encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
    }

    private func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    package static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImportError(file: path, problems: ["cannot read the file"])
        }
        guard var text = String(data: data, encoding: .utf8) else {
            throw ImportError(file: path, problems: ["the file is not UTF-8 text"])
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        return text
    }

    /// Reads a CSV with a header; `required` columns must be present. Returns rows as dictionaries.
    package static func readCSV(_ path: String, required: [String]) throws -> [(line: Int, row: [String: String])] {
        let rows = parseCSV(try readText(path))
        guard let header = rows.first else { throw ImportError(file: path, problems: ["the file is empty"]) }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let missing = required.filter { !names.contains($0) }
        guard missing.isEmpty else {
            throw ImportError(file: path, problems: ["line 1: header lacks column(s) \(missing.joined(separator: ", ")) (has \(names.joined(separator: ",")))"])
        }
        var problems: [String] = []
        var out: [(Int, [String: String])] = []
        for row in rows.dropFirst() {
            guard row.fields.count == names.count else {
                problems.append("line \(row.line): \(row.fields.count) fields, the header has \(names.count)")
                continue
            }
            var dict: [String: String] = [:]
            for (name, value) in zip(names, row.fields) { dict[name] = value.trimmingCharacters(in: .whitespaces) }
            out.append((row.line, dict))
        }
        if !problems.isEmpty { throw ImportError(file: path, problems: problems) }
        return out.map { (line: $0.0, row: $0.1) }
    }

    // MARK: divisions

    /// code,name,kind[,parent_code]. kind: county, town (镇), township (乡), street (街道),
    /// village (村), community (社区). parent_code defaults to the code's own prefix.
    public func importDivisions(path: String) throws -> ImportSummary {
        struct Row: Encodable { let code, name, level, kind: String; let parent_code: String? }
        let levels: [String: String] = [
            "county": "county", "town": "township", "township": "township", "street": "township",
            "subdistrict": "township", "village": "village", "community": "village",
        ]
        var problems: [String] = []
        var rows: [Row] = []
        for (line, r) in try Self.readCSV(path, required: ["code", "name", "kind"]) {
            let code = r["code"]!, name = r["name"]!, kind = r["kind"]!.lowercased()
            guard [6, 9, 12].contains(code.count), code.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                problems.append("line \(line): code \"\(code)\" must be 6, 9 or 12 digits")
                continue
            }
            guard let level = levels[kind] else {
                problems.append("line \(line): kind \"\(kind)\" is not one of \(levels.keys.sorted().joined(separator: ", "))")
                continue
            }
            let expectedLength = ["county": 6, "township": 9, "village": 12][level]!
            guard code.count == expectedLength else {
                problems.append("line \(line): a \(kind) code has \(expectedLength) digits, \"\(code)\" has \(code.count)")
                continue
            }
            guard !name.isEmpty else {
                problems.append("line \(line): name is empty")
                continue
            }
            var parent = r["parent_code"].flatMap { $0.isEmpty ? nil : $0 }
            if level != "county" {
                let implied = String(code.prefix(expectedLength - (level == "township" ? 3 : 3)))
                if parent == nil { parent = implied }
                guard parent == implied else {
                    problems.append("line \(line): parent_code \(parent!) is not the prefix of \(code)")
                    continue
                }
            } else if parent != nil {
                problems.append("line \(line): a county has no parent_code")
                continue
            }
            if rows.contains(where: { $0.code == code }) {
                problems.append("line \(line): code \(code) appears twice")
                continue
            }
            rows.append(Row(code: code, name: name, level: level, kind: kind, parent_code: parent))
        }
        if !problems.isEmpty { throw ImportError(file: path, problems: problems) }
        rows.sort { $0.code.count < $1.code.count || ($0.code.count == $1.code.count && $0.code < $1.code) }
        let known = Set(rows.map(\.code))
        let parents = Set(rows.compactMap(\.parent_code)).subtracting(known)
        if !parents.isEmpty {
            let existing = try db.query(
                "SELECT code FROM liandong.divisions WHERE code = ANY($1::text[])", ["{" + parents.sorted().joined(separator: ",") + "}"])
            let missing = parents.subtracting(try existing.typed.map { try $0.string(0) })
            if !missing.isEmpty {
                throw ImportError(file: path, problems: missing.sorted().map { "parent division \($0) is neither in the file nor in the database" })
            }
        }
        let result = try db.transaction { db in
            try db.query("""
                INSERT INTO liandong.divisions AS d (code, name, level, kind, parent_code)
                SELECT x.code, x.name, x.level, x.kind, x.parent_code
                FROM jsonb_to_recordset($1::jsonb) AS x(code text, name text, level text, kind text, parent_code text)
                ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level, kind = excluded.kind,
                    parent_code = excluded.parent_code, updated_at = now()
                RETURNING (xmax = 0)
                """, [try json(rows)])
        }
        let inserted = result.rows.filter { $0[0] == "t" }.count
        return ImportSummary(kind: "divisions", inserted: inserted, updated: result.count - inserted)
    }

    // MARK: cameras

    /// device_id,name,lon,lat[,crs]. Positions are converted to WGS-84 and assigned a grid.
    /// `replace`: cameras of the file's counties (the first 6 digits of the device id) that the
    /// file no longer holds are retired.
    public func importCameras(path: String, replace: Bool = false) throws -> ImportSummary {
        struct Row: Encodable { let device_id, name: String; let lon, lat: Double; let crs: String }
        var problems: [String] = []
        var rows: [Row] = []
        var seen = Set<String>()
        for (line, r) in try Self.readCSV(path, required: ["device_id", "name", "lon", "lat"]) {
            let id = r["device_id"]!
            guard DeviceID(id) != nil else {
                problems.append("line \(line): device_id \"\(id)\" is not a 20-digit GB/T 28181 id")
                continue
            }
            guard seen.insert(id).inserted else {
                problems.append("line \(line): device_id \(id) appears twice")
                continue
            }
            guard let lon = Double(r["lon"]!), let lat = Double(r["lat"]!), LonLat(lon: lon, lat: lat).isValid else {
                problems.append("line \(line): lon/lat \"\(r["lon"]!)\",\"\(r["lat"]!)\" is not a valid position")
                continue
            }
            let crsText = (r["crs"] ?? "").isEmpty ? "wgs84" : r["crs"]!.lowercased()
            guard let crs = CRS(rawValue: crsText) else {
                problems.append("line \(line): crs \"\(crsText)\" is not one of wgs84, gcj02, bd09")
                continue
            }
            let p = CoordinateConverter.toWGS84(LonLat(lon: lon, lat: lat), from: crs)
            rows.append(Row(device_id: id, name: r["name"]!, lon: p.lon, lat: p.lat, crs: crs.rawValue))
        }
        if !problems.isEmpty { throw ImportError(file: path, problems: problems) }
        let payload = try json(rows)
        let (result, retired) = try db.transaction { db -> (PGRows, Int) in
            let result = try db.query("""
                INSERT INTO liandong.cameras AS c (device_id, name, geom, source_crs, grid_code)
                SELECT x.device_id, x.name, p.geom, x.crs,
                       (SELECT g.grid_code FROM liandong.grids g
                        WHERE g.valid_to IS NULL AND ST_Covers(g.geom, p.geom) ORDER BY g.grid_code LIMIT 1)
                FROM jsonb_to_recordset($1::jsonb) AS x(device_id text, name text, lon float8, lat float8, crs text)
                CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(x.lon, x.lat), 4326) AS geom) p
                ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, geom = excluded.geom,
                    source_crs = excluded.source_crs, grid_code = excluded.grid_code, valid_to = NULL, updated_at = now()
                RETURNING (xmax = 0), grid_code IS NULL
                """, [payload])
            let retired = replace ? try db.query("""
                WITH file AS (SELECT x.device_id FROM jsonb_to_recordset($1::jsonb) AS x(device_id text))
                UPDATE liandong.cameras c SET valid_to = now(), updated_at = now()
                WHERE c.valid_to IS NULL AND left(c.device_id, 6) IN (SELECT left(device_id, 6) FROM file)
                  AND c.device_id NOT IN (SELECT device_id FROM file)
                RETURNING device_id
                """, [payload]).count : 0
            return (result, retired)
        }
        let inserted = result.rows.filter { $0[0] == "t" }.count
        let outside = result.rows.filter { $0[1] == "t" }.count
        return ImportSummary(kind: "cameras", inserted: inserted, updated: result.count - inserted,
                             extra: (outside > 0 ? ", \(outside) outside every grid" : "") + (retired > 0 ? ", \(retired) retired" : ""))
    }

    // MARK: grid workers

    /// worker_id,name,grid_code: staff changes without touching the grids (a worker moved to
    /// another grid, a new one). Each worker's grid must be in service. Workers the file does not
    /// name are kept (a worker leaves with the grids file's next import, or by hand).
    public func importWorkers(path: String) throws -> ImportSummary {
        struct Row: Encodable { let line: Int; let worker_id, name, grid_code: String }
        var problems: [String] = []
        var rows: [Row] = []
        var seen = Set<String>()
        for (line, r) in try Self.readCSV(path, required: ["worker_id", "name", "grid_code"]) {
            let id = r["worker_id"]!, grid = r["grid_code"]!
            guard !id.isEmpty, id.count <= 128, !id.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                problems.append("line \(line): worker_id \"\(id.prefix(40))\" must be 1 to 128 characters without spaces")
                continue
            }
            guard seen.insert(id).inserted else {
                problems.append("line \(line): worker_id \(id) appears twice")
                continue
            }
            guard grid.count == 15, grid.allSatisfy(\.isASCII), grid.allSatisfy(\.isNumber) else {
                problems.append("line \(line): grid_code \"\(grid.prefix(40))\" is not a 15-digit grid code")
                continue
            }
            rows.append(Row(line: line, worker_id: id, name: r["name"]!, grid_code: grid))
        }
        if !problems.isEmpty { throw ImportError(file: path, problems: problems) }
        let payload = try json(rows)
        let unknown = try db.query("""
            SELECT x.line, x.grid_code FROM jsonb_to_recordset($1::jsonb) AS x(line integer, grid_code text)
            WHERE NOT EXISTS (SELECT 1 FROM liandong.grids g WHERE g.grid_code = x.grid_code AND g.valid_to IS NULL)
            ORDER BY x.line
            """, [payload]).rows.map { "line \($0[0]!): grid_code \($0[1]!) is not a grid in service (import the grids first)" }
        if !unknown.isEmpty { throw ImportError(file: path, problems: unknown) }
        let result = try db.transaction { db in
            try db.query("""
                INSERT INTO liandong.grid_workers AS w (worker_id, name, grid_code)
                SELECT x.worker_id, x.name, x.grid_code FROM jsonb_to_recordset($1::jsonb) AS x(worker_id text, name text, grid_code text)
                ON CONFLICT (worker_id) DO UPDATE SET name = excluded.name, grid_code = excluded.grid_code, updated_at = now()
                RETURNING (xmax = 0)
                """, [payload])
        }
        let inserted = result.rows.filter { $0[0] == "t" }.count
        return ImportSummary(kind: "workers", inserted: inserted, updated: result.count - inserted)
    }

    // MARK: grids

    /// Largest overlap between two grids, in square metres, taken for digitising noise.
    public static let overlapToleranceSquareMetres = 100.0
    /// A grid farther than this from every other grid of its county is refused: a shifted digit
    /// or the wrong county code, not a place in the county (whose grids cover it without gaps).
    public static let maxDistanceFromCountyKilometres = 100.0

    /// One grid feature of a GeoJSON file, checked on its own (no database): the row to import.
    package struct GridFeature: Encodable, Equatable {
        package let idx: Int
        package let grid_code, name, village_code: String
        package let worker_id, worker_name: String?
        package let geometry: JSONValue
    }

    /// The features of a grids GeoJSON FeatureCollection, or every problem found, by feature index.
    package static func parseGrids(_ text: String, path: String) throws -> [GridFeature] {
        guard case .object(let root)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
            throw ImportError(file: path, problems: ["not a JSON object (expected a GeoJSON FeatureCollection)"])
        }
        guard root["type"] == .string("FeatureCollection"), case .array(let features)? = root["features"] else {
            throw ImportError(file: path, problems: ["expected {\"type\":\"FeatureCollection\",\"features\":[...]}"])
        }
        var problems: [String] = []
        var rows: [GridFeature] = []
        var seen = Set<String>()
        for (i, feature) in features.enumerated() {
            let at = "feature \(i)"
            guard case .object(let f) = feature, case .object(let props)? = f["properties"],
                case .object(let geometry)? = f["geometry"]
            else {
                problems.append("\(at): needs \"properties\" and \"geometry\" objects")
                continue
            }
            func prop(_ k: String) -> String? {
                if case .string(let s)? = props[k], !s.isEmpty { return s }
                return nil
            }
            guard let code = prop("grid_code"), code.count == 15, code.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                problems.append("\(at): properties.grid_code must be 15 digits")
                continue
            }
            guard let village = prop("village_code"), village == String(code.prefix(12)) else {
                problems.append("\(at): properties.village_code must be the first 12 digits of grid_code \(code)")
                continue
            }
            guard geometry["type"] == .string("Polygon") || geometry["type"] == .string("MultiPolygon") else {
                problems.append("\(at): geometry must be a Polygon or MultiPolygon")
                continue
            }
            if let problem = GridGeometryCheck.coordinateProblem(geometry["coordinates"] ?? .null) {
                problems.append("\(at) (grid \(code)): \(problem)")
                continue
            }
            guard seen.insert(code).inserted else {
                problems.append("\(at): grid_code \(code) appears twice")
                continue
            }
            if (prop("worker_id") == nil) != (prop("worker_name") == nil) {
                problems.append("\(at): worker_id and worker_name go together")
                continue
            }
            rows.append(GridFeature(idx: i, grid_code: code, name: prop("name") ?? code, village_code: village,
                            worker_id: prop("worker_id"), worker_name: prop("worker_name"), geometry: .object(geometry)))
        }
        if !problems.isEmpty { throw ImportError(file: path, problems: problems) }
        return rows
    }

    /// A GeoJSON FeatureCollection of Polygon/MultiPolygon features with properties grid_code,
    /// name, village_code, worker_id, worker_name (WGS-84). Refused with the feature index: a
    /// polygon not in WGS-84 degrees inside China (projected metres, swapped axes), invalid
    /// (self-intersecting), far from the rest of its county, or overlapping another grid in service
    /// by more than `overlapToleranceSquareMetres` (`allowOverlap` accepts overlaps and reports
    /// them). `replace`: grids of the file's counties that the file no longer holds are retired.
    public func importGrids(path: String, replace: Bool = false, allowOverlap: Bool = false) throws -> ImportSummary {
        let rows = try Self.parseGrids(try Self.readText(path), path: path)
        let payload = try json(rows)
        let villages = Set(rows.map(\.village_code))
        if !villages.isEmpty {
            let existing = try db.query(
                "SELECT code FROM liandong.divisions WHERE level = 'village' AND code = ANY($1::text[])",
                ["{" + villages.sorted().joined(separator: ",") + "}"])
            let missing = villages.subtracting(try existing.typed.map { try $0.string(0) })
            if !missing.isEmpty {
                let missingRows = rows.filter { missing.contains($0.village_code) }
                throw ImportError(file: path, problems: missingRows.map {
                    "feature \($0.idx): village_code \($0.village_code) is not an imported village (import divisions first)"
                })
            }
        }
        let invalid = try db.query("""
            SELECT x.idx, coalesce(v.reason, 'unreadable geometry')
            FROM jsonb_to_recordset($1::jsonb) AS x(idx integer, geometry jsonb)
            CROSS JOIN LATERAL (SELECT CASE WHEN ST_IsValid(ST_GeomFromGeoJSON(x.geometry::text)) THEN NULL
                                       ELSE ST_IsValidReason(ST_GeomFromGeoJSON(x.geometry::text)) END AS reason) v
            WHERE v.reason IS NOT NULL
            ORDER BY x.idx
            """, [payload])
        if invalid.count > 0 {
            throw ImportError(file: path, problems: invalid.rows.map { "feature \(($0[0] ?? "?")): invalid polygon: \(($0[1] ?? "?"))" })
        }
        var overlapNote = ""
        let (result, retired) = try db.transaction { db -> (PGRows, Int) in
            try db.query("""
                CREATE TEMP TABLE import_grids ON COMMIT DROP AS
                SELECT x.idx, x.grid_code, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(x.geometry::text), 4326)) AS geom
                FROM jsonb_to_recordset($1::jsonb) AS x(idx integer, grid_code text, geometry jsonb)
                """, [payload])
            try db.execute("CREATE INDEX ON import_grids USING gist (geom); ANALYZE import_grids; ANALYZE liandong.grids")
            try checkCountyDistance(db, path: path, replace: replace)
            overlapNote = try checkOverlaps(db, path: path, replace: replace, allow: allowOverlap)
            let grids = try db.query("""
                INSERT INTO liandong.grids AS g (grid_code, name, village_code, geom)
                SELECT x.grid_code, x.name, x.village_code, i.geom
                FROM jsonb_to_recordset($1::jsonb) AS x(grid_code text, name text, village_code text)
                JOIN import_grids i USING (grid_code)
                ON CONFLICT (grid_code) DO UPDATE SET name = excluded.name, village_code = excluded.village_code,
                    geom = excluded.geom, valid_to = NULL, updated_at = now()
                RETURNING (xmax = 0)
                """, [payload])
            let retired = replace ? try db.query("""
                UPDATE liandong.grids g SET valid_to = now(), updated_at = now()
                WHERE g.valid_to IS NULL AND g.county_code IN (SELECT left(grid_code, 6) FROM import_grids)
                  AND NOT EXISTS (SELECT 1 FROM import_grids i WHERE i.grid_code = g.grid_code)
                RETURNING grid_code
                """).count : 0
            try db.query("""
                INSERT INTO liandong.grid_workers AS w (worker_id, name, grid_code)
                SELECT x.worker_id, x.worker_name, x.grid_code
                FROM jsonb_to_recordset($1::jsonb) AS x(grid_code text, worker_id text, worker_name text)
                WHERE x.worker_id IS NOT NULL
                ON CONFLICT (worker_id) DO UPDATE SET name = excluded.name, grid_code = excluded.grid_code, updated_at = now()
                """, [payload])
            // Cameras imported before their grid get it now; those in a retired grid move to the
            // grid in service that covers them.
            try db.query("""
                UPDATE liandong.cameras c SET grid_code = (SELECT g.grid_code FROM liandong.grids g
                    WHERE g.valid_to IS NULL AND ST_Covers(g.geom, c.geom) ORDER BY g.grid_code LIMIT 1)
                WHERE c.grid_code IS NULL
                   OR EXISTS (SELECT 1 FROM liandong.grids r WHERE r.grid_code = c.grid_code AND r.valid_to IS NOT NULL)
                """)
            return (grids, retired)
        }
        let inserted = result.rows.filter { $0[0] == "t" }.count
        return ImportSummary(kind: "grids", inserted: inserted, updated: result.count - inserted,
                             extra: (retired > 0 ? ", \(retired) retired" : "") + overlapNote)
    }

    /// Grids in service that the import is compared with: the file's (table import_grids) and
    /// those in the database the file does not hold - except, with `replace`, the ones it retires.
    private static func othersInService(replace: Bool) -> String {
        """
        SELECT g.grid_code, g.geom, NULL::integer AS idx FROM liandong.grids g
        WHERE g.valid_to IS NULL AND NOT EXISTS (SELECT 1 FROM import_grids i WHERE i.grid_code = g.grid_code)
          \(replace ? "AND g.county_code NOT IN (SELECT left(grid_code, 6) FROM import_grids)" : "")
        """
    }

    /// Refuses grids far from every other grid of their county (in the file or in service).
    private func checkCountyDistance(_ db: PGConnection, path: String, replace: Bool) throws {
        let far = try db.query("""
            WITH others AS (SELECT grid_code, geom, idx FROM import_grids UNION ALL \(Self.othersInService(replace: replace)))
            SELECT i.idx, i.grid_code, round(n.km::numeric, 1)
            FROM import_grids i
            CROSS JOIN LATERAL (
                SELECT ST_Distance(i.geom::geography, o.geom::geography) / 1000 AS km FROM others o
                WHERE left(o.grid_code, 6) = left(i.grid_code, 6) AND o.grid_code <> i.grid_code
                ORDER BY i.geom <-> o.geom LIMIT 1) n
            WHERE n.km > $1
            ORDER BY i.idx
            """, [String(Self.maxDistanceFromCountyKilometres)])
        guard far.count == 0 else {
            throw ImportError(file: path, problems: far.rows.map {
                "feature \(($0[0] ?? "?")) (grid \(($0[1] ?? "?"))): \(($0[2] ?? "?")) km from the nearest other grid of county \(($0[1] ?? "?").prefix(6)) "
                    + "(more than \(Int(Self.maxDistanceFromCountyKilometres)) km: wrong coordinates or the wrong county code?)"
            })
        }
    }

    /// Overlaps above the tolerance between grids of the file and with grids in service: refused,
    /// or with `allow` accepted and described for the summary.
    private func checkOverlaps(_ db: PGConnection, path: String, replace: Bool, allow: Bool) throws -> String {
        let overlaps = try db.query("""
            WITH others AS (SELECT grid_code, geom, idx FROM import_grids UNION ALL \(Self.othersInService(replace: replace))),
            pairs AS (
                SELECT a.idx, a.grid_code, o.grid_code AS other, o.idx AS other_idx,
                       ST_Area(ST_Intersection(a.geom, o.geom)::geography) AS m2
                FROM import_grids a JOIN others o
                  ON o.geom && a.geom AND ST_Intersects(a.geom, o.geom) AND (o.idx IS NULL OR o.idx > a.idx))
            SELECT idx, grid_code, other, other_idx, round(m2) FROM pairs WHERE m2 > $1 ORDER BY m2 DESC, idx
            """, [String(Self.overlapToleranceSquareMetres)])
        guard overlaps.count > 0 else { return "" }
        if allow {
            let top = overlaps.rows[0]
            return ", \(overlaps.count) overlap(s) accepted (largest \((top[4] ?? "?")) m²: \((top[1] ?? "?")) and \((top[2] ?? "?")))"
        }
        throw ImportError(file: path, problems: overlaps.rows.map {
            "feature \(($0[0] ?? "?")) (grid \(($0[1] ?? "?"))) overlaps grid \(($0[2] ?? "?"))" + ($0[3].map { " (feature \($0))" } ?? " (in service)")
                + " by \(($0[4] ?? "?")) m² (tolerance \(Int(Self.overlapToleranceSquareMetres)) m²; --allow-overlap accepts overlaps)"
        })
    }
}
