import Foundation
import LibPQ

/// `liandongd camera sync --from-catalog`: the camera registry from the devices' catalogs. A
/// channel (not gone) with a position inside a grid that is not a camera yet is added; a camera
/// whose channel's position moved more than a metre is moved (and regridded); everything else is
/// said and skipped, with the reason. Writes in one transaction (rolled back for a dry run); the
/// registry's trigger tells running daemons to reload.
public enum CatalogSync {
    public enum Change: Sendable, Equatable {
        case added(channel: String, name: String, grid: String)
        case moved(channel: String, fromGrid: String?, toGrid: String, metres: Double)
        case skipped(channel: String, reason: String)
    }

    public static func run(_ db: PGConnection, division: String?, dryRun: Bool) throws -> [Change] {
        try db.execute("BEGIN")
        do {
            let changes = try sync(db, division: division)
            try db.execute(dryRun ? "ROLLBACK" : "COMMIT")
            return changes
        } catch {
            if db.isOK { try? db.execute("ROLLBACK") }
            throw error
        }
    }

    static func sync(_ db: PGConnection, division: String?) throws -> [Change] {
        let rows = try db.query("""
            SELECT DISTINCT ON (d.channel_id) d.channel_id, coalesce(d.name, d.channel_id), d.longitude, d.latitude,
                   (SELECT g.grid_code FROM liandong.grids g
                    WHERE d.longitude IS NOT NULL AND g.valid_to IS NULL
                      AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(d.longitude, d.latitude), 4326)) LIMIT 1),
                   c.device_id IS NOT NULL, c.grid_code,
                   ST_Distance(c.geom::geography, ST_SetSRID(ST_MakePoint(d.longitude, d.latitude), 4326)::geography),
                   EXISTS (SELECT 1 FROM liandong.divisions v WHERE v.code = left(d.channel_id, 6))
            FROM liandong.device_channels d
            LEFT JOIN liandong.cameras c ON c.device_id = d.channel_id AND c.valid_to IS NULL
            WHERE d.gone_at IS NULL
            ORDER BY d.channel_id, d.updated_at DESC
            """).rows
        var changes: [Change] = []
        for r in rows {
            let channel = r[0]!, name = r[1]!
            let registered = r[5] == "t"
            guard let lon = r[2].flatMap(Double.init), let lat = r[3].flatMap(Double.init) else {
                if !registered { changes.append(.skipped(channel: channel, reason: "its catalog gives no position")) }
                continue
            }
            guard let grid = r[4] else {
                changes.append(.skipped(channel: channel, reason: "its position \(lon), \(lat) lies outside every grid"))
                continue
            }
            if let division, !grid.hasPrefix(division) {
                changes.append(.skipped(channel: channel, reason: "its grid \(grid) is outside division \(division)"))
                continue
            }
            let point = "SRID=4326;POINT(\(lon) \(lat))"
            if !registered {
                guard r[8] == "t" else {
                    changes.append(.skipped(channel: channel, reason: "its id names no county of liandong.divisions"))
                    continue
                }
                try db.query("""
                    INSERT INTO liandong.cameras (device_id, name, geom, source_crs, grid_code)
                    VALUES ($1, $2, ST_GeomFromEWKT($3), 'wgs84', $4)
                    """, [channel, String(name.prefix(200)), point, grid])
                changes.append(.added(channel: channel, name: name, grid: grid))
            } else if let metres = r[7].flatMap(Double.init), metres > 1 {
                try db.query("UPDATE liandong.cameras SET geom = ST_GeomFromEWKT($2), grid_code = $3, updated_at = now() WHERE device_id = $1",
                             [channel, point, grid])
                changes.append(.moved(channel: channel, fromGrid: r[6], toGrid: grid, metres: metres))
            }
        }
        return changes
    }
}
