import Foundation
import LibPQ
import LiandongCore
@testable import LiandongServices
@testable import LiandongStorage
import Testing

/// Reference data that cannot be right is refused with the feature index; grids and cameras are
/// retired, never deleted.
@Suite("Reference data checks and retirement")
struct ReferenceDataTests {
    static let shipped = TestDatabase.data + "/grids.geojson"

    /// The shipped features, as JSON objects.
    static func shippedFeatures() throws -> [[String: Any]] {
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: shipped))) as! [String: Any]
        return root["features"] as! [[String: Any]]
    }

    /// A file of grid features: `square` polygons with the given codes.
    static func file(_ features: [[String: Any]]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: ["type": "FeatureCollection", "features": features])
        return try temporaryFile(String(decoding: data, as: UTF8.self))
    }

    static func feature(_ code: String, _ ring: [[Double]]) -> [String: Any] {
        ["type": "Feature", "properties": ["grid_code": code, "village_code": String(code.prefix(12)), "name": code],
         "geometry": ["type": "Polygon", "coordinates": [ring]]]
    }

    /// A square of `side` degrees with its south-west corner at (lon, lat).
    static func square(_ lon: Double, _ lat: Double, side: Double = 0.01) -> [[Double]] {
        [[lon, lat], [lon + side, lat], [lon + side, lat + side], [lon, lat + side], [lon, lat]]
    }

    func refusal(_ path: String, _ db: PGConnection, allowOverlap: Bool = false) -> String {
        do {
            let summary = try Importer(db: db).importGrids(path: path, allowOverlap: allowOverlap)
            return "(imported: \(summary))"
        } catch {
            return "\(error)"
        }
    }

    @Test("the shipped Guazhou grids do not overlap one another")
    func shippedDoNotOverlap() throws {
        let db = try PGConnection(conninfo: try TestDatabase.create())
        #expect(try db.int("SELECT count(*) FROM liandong.grids") == 767)
        let overlapping = try db.int("""
            SELECT count(*) FROM liandong.grids a JOIN liandong.grids b
              ON a.grid_code < b.grid_code AND a.geom && b.geom AND ST_Intersects(a.geom, b.geom)
            WHERE ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1
            """)
        #expect(overlapping == 0)
        // Importing them again needs no --allow-overlap.
        #expect(try Importer(db: db).importGrids(path: Self.shipped).updated == 767)
    }

    @Test("grids that cannot be right are refused with their feature index, and nothing is imported")
    func refusedGrids() throws {
        let db = try PGConnection(conninfo: try TestDatabase.create())
        let version = try db.int("SELECT version FROM liandong.reference_version")
        let free = "620922102201099"  // a new grid code in an imported village
        let cases: [(String, [[Double]], String)] = [
            ("projected metres", Self.square(500_000, 4_480_000, side: 1000), "projected metres"),
            ("latitude 95.7", Self.square(40.52, 95.7), "longitude and latitude swapped"),
            ("swapped inside range", Self.square(40.52, 85.0), "swapped"),
            ("outside the county", Self.square(103.83, 36.06), "km from the nearest other grid of county 620922"),
            ("self-intersecting", [[95.0, 40.0], [95.01, 40.01], [95.01, 40.0], [95.0, 40.01], [95.0, 40.0]], "Self-intersection"),
        ]
        for (what, ring, expected) in cases {
            // One good feature first, so the index names the bad one.
            let good = Self.feature("620922102201098", Self.square(95.30, 40.40))
            let message = refusal(try Self.file([good, Self.feature(free, ring)]), db)
            #expect(message.contains("feature 1") && message.contains(expected) && message.contains("nothing imported"),
                    "\(what): \(message)")
        }
        #expect(try db.int("SELECT count(*) FROM liandong.grids WHERE grid_code IN ('620922102201098', '\(free)')") == 0)
        #expect(try db.int("SELECT version FROM liandong.reference_version") == version)
    }

    @Test("a grid overlapping one in service is refused; --allow-overlap accepts it and says so")
    func overlaps() throws {
        let db = try PGConnection(conninfo: try TestDatabase.create())
        // A copy of an existing grid's polygon, shifted a little: it overlaps that grid.
        let existing = try Self.shippedFeatures().first { ($0["properties"] as! [String: Any])["grid_code"] as? String == Scene.ruralGrid }!
        let ring = ((existing["geometry"] as! [String: Any])["coordinates"] as! [[[Double]]])[0].map { [$0[0] + 0.002, $0[1]] }
        let path = try Self.file([Self.feature("620922102201099", ring)])
        let message = refusal(path, db)
        #expect(message.contains("feature 0 (grid 620922102201099) overlaps grid \(Scene.ruralGrid) (in service)")
            && message.contains("--allow-overlap"), "\(message)")
        let accepted = refusal(path, db, allowOverlap: true)
        #expect(accepted.contains("1 new") && accepted.contains("overlap(s) accepted"), "\(accepted)")
        // Between two new grids in free land: digitising noise (47 m²) is not an overlap, 940 m² is.
        let db2 = try PGConnection(conninfo: try TestDatabase.create())
        let a = Self.feature("620922102201097", Self.square(95.0, 40.9))
        let noise = refusal(try Self.file([a, Self.feature("620922102201098", Self.square(95.01 - 5e-7, 40.9))]), db2)
        #expect(noise.hasPrefix("(imported") && !noise.contains("overlap"), "\(noise)")
        let real = refusal(try Self.file([a, Self.feature("620922102201098", Self.square(95.01 - 1e-5, 40.9))]), db2)
        #expect(real.contains("feature 0 (grid 620922102201097) overlaps grid 620922102201098 (feature 1)"), "\(real)")
    }

    @Test("--replace retires what the file no longer holds: no new event is placed there, history stays, deleting is refused")
    func retirement() throws {
        let url = try TestDatabase.create()
        let db = try PGConnection(conninfo: url)
        let features = try Self.shippedFeatures()
        let kept = features.filter { ($0["properties"] as! [String: Any])["grid_code"] as? String != Scene.ruralGrid }
        let summary = try Importer(db: db).importGrids(path: try Self.file(kept), replace: true)
        #expect(summary.updated == 766 && summary.extra.contains("1 retired"), "\(summary)")
        #expect(try db.int("SELECT count(*) FROM liandong.grids WHERE valid_to IS NOT NULL") == 1)
        #expect(try db.query("SELECT valid_to IS NOT NULL FROM liandong.grids WHERE grid_code = $1", [Scene.ruralGrid]).scalar == "t")
        // The in-memory map places nothing in the retired grid; its code still resolves.
        let reference = try ReferenceData.load(db)
        let centre = try Scene.centre(of: Scene.ruralGrid, db)
        #expect(reference.grids.locate(centre)?.gridCode != Scene.ruralGrid)
        #expect(reference.gridByCode[Scene.ruralGrid] != nil)
        #expect(throws: PQError.self) { try db.query("DELETE FROM liandong.grids WHERE grid_code = $1", [Scene.ruralGrid]) }
        // Re-importing the whole file brings it back into service.
        let again = try Importer(db: db).importGrids(path: Self.shipped, replace: true)
        #expect(again.updated == 767 && !again.extra.contains("retired"))
        #expect(try db.int("SELECT count(*) FROM liandong.grids WHERE valid_to IS NOT NULL") == 0)
    }

    @Test("cameras --replace retires the county's cameras the file no longer holds; re-import brings them back")
    func cameraRetirement() throws {
        let db = try PGConnection(conninfo: try TestDatabase.create())
        let lines = try String(contentsOfFile: TestDatabase.data + "/cameras.csv", encoding: .utf8).split(separator: "\n")
        let fewer = try temporaryFile(lines.dropLast(3).joined(separator: "\n") + "\n")
        let summary = try Importer(db: db).importCameras(path: fewer, replace: true)
        #expect(summary.extra.contains("3 retired"), "\(summary)")
        #expect(try db.int("SELECT count(*) FROM liandong.cameras WHERE valid_to IS NOT NULL") == 3)
        #expect(throws: PQError.self) { try db.execute("DELETE FROM liandong.cameras") }
        _ = try Importer(db: db).importCameras(path: TestDatabase.data + "/cameras.csv", replace: true)
        #expect(try db.int("SELECT count(*) FROM liandong.cameras WHERE valid_to IS NOT NULL") == 0)
    }
}
