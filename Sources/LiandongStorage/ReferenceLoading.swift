import Foundation
import LiandongCore
import LibPQ

/// Loading the writer's reference data (`ReferenceData`, in the core) from PostgreSQL.
extension ReferenceData {
    /// Bumped by a statement trigger on each of the three tables (migration 008).
    package static let versionSQL = "SELECT version::text FROM liandong.reference_version"

    package static func currentVersion(_ db: PGConnection) throws -> String {
        try db.query(versionSQL).scalar ?? ""
    }

    package static func load(_ db: PGConnection) throws -> ReferenceData {
        let version = try currentVersion(db)
        var shapes: [GridShape] = []
        var byCode: [String: (GridShape, LonLat)] = [:]
        // Retired grids place no event by position; a report naming one by grid_code still lands there.
        let rows = try db.query("""
            SELECT grid_code, village_code, ST_AsGeoJSON(geom, 15), ST_X(p), ST_Y(p), valid_to IS NULL
            FROM liandong.grids, ST_PointOnSurface(geom) AS p
            """)
        for row in rows.typed {
            let geometry = try JSONDecoder().decode(GeoJSONMultiPolygon.self, from: Data(try row.string(2).utf8))
            let shape = GridShape(
                gridCode: try row.string(0), villageCode: try row.string(1),
                polygons: geometry.coordinates.map { $0.map { $0.map { LonLat(lon: $0[0], lat: $0[1]) } } })
            if row[5] == "t" { shapes.append(shape) }
            byCode[shape.gridCode] = (shape, LonLat(lon: try row.double(3), lat: try row.double(4)))
        }
        var cameras: [String: LonLat] = [:], cameraNames: [String: String] = [:], cameraGrids: [String: String] = [:]
        for row in try db.query("SELECT device_id, ST_X(geom), ST_Y(geom), name, grid_code FROM liandong.cameras").typed {
            let device = try row.string(0)
            cameras[device] = LonLat(lon: try row.double(1), lat: try row.double(2))
            cameraNames[device] = row[3]
            cameraGrids[device] = row[4] ?? ""
        }
        var workers: [String: String] = [:], workerGrids: [String: String] = [:]
        for row in try db.query("SELECT worker_id, grid_code FROM liandong.grid_workers ORDER BY worker_id").typed {
            let worker = try row.string(0), grid = try row.string(1)
            workerGrids[worker] = grid
            if workers[grid] == nil { workers[grid] = worker }
        }
        var reference = ReferenceData(version: version, grids: GridMap(grids: shapes), gridByCode: byCode, cameras: cameras,
                                      workers: workers)
        reference.cameraNames = cameraNames
        reference.workerGrids = workerGrids
        reference.cameraGrids = cameraGrids
        for row in try db.query("SELECT code, name FROM liandong.divisions").typed { reference.divisionNames[try row.string(0)] = row[1] }
        reference.suppressedCameras = Set(try db.query(
            "SELECT device_id FROM liandong.camera_suppressions WHERE suppressed_since IS NOT NULL").typed.map { try $0.string(0) })
        reference.silences = try db.query("""
            SELECT id, device_prefix, division_prefix, category, extract(epoch FROM starts_at), extract(epoch FROM ends_at)
            FROM liandong.silences WHERE ends_at > now() - interval '3650 days' ORDER BY id
            """).typed.map {
            Silence(id: try $0.int64(0), devicePrefix: try $0.string(1), divisionPrefix: try $0.string(2), category: $0[3],
                    startsAt: try $0.double(4), endsAt: try $0.double(5))
        }
        // A channel listed by several devices (a camera behind an NVR and a platform) is placed by
        // the latest listing.
        for row in try db.query("""
            SELECT DISTINCT ON (channel_id) channel_id, device_id, longitude, latitude FROM liandong.device_channels
            WHERE gone_at IS NULL ORDER BY channel_id, updated_at DESC, device_id
            """).typed {
            let position: LonLat? = if row[2] != nil { LonLat(lon: try row.double(2), lat: try row.double(3)) } else { nil }
            reference.channels[try row.string(0)] = (try row.string(1), position)
        }
        return reference
    }
}

/// ST_AsGeoJSON of a MultiPolygon: polygons -> rings -> [lon, lat].
private struct GeoJSONMultiPolygon: Decodable {
    package let coordinates: [[[[Double]]]]
}
