import Foundation
import LiandongCore
import LibPQ
import Testing

/// deploy/qgis/liandong.qgs: every layer's table or view, key, geometry and the columns its style
/// and labels use exist, and an operator login can read them.
@Suite("QGIS project")
struct QgisProjectTests {
    struct Layer {
        var table, key, geometry, type, filter: String
        var fields: [String]
    }

    static func layers() throws -> [Layer] {
        let path = TestDatabase.repository.appendingPathComponent("deploy/qgis/liandong.qgs").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var out: [Layer] = []
        for chunk in text.components(separatedBy: "<maplayer ").dropFirst() {
            guard let open = chunk.range(of: "<datasource>"), let close = chunk.range(of: "</datasource>") else { continue }
            let source = String(chunk[open.upperBound..<close.lowerBound])
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
                .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
            func capture(_ pattern: String, in text: String) -> [String] {
                let regex = try! NSRegularExpression(pattern: pattern)
                return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map {
                    String(text[Range($0.range(at: 1), in: text)!])
                }
            }
            #expect(source.hasPrefix("service='liandong' ") && !source.contains("password") && !source.contains("user="),
                    "connect by service name only: \(source)")
            let table = capture(#"table="liandong"\."([a-z_]+)""#, in: source).first ?? ""
            out.append(Layer(table: table, key: capture(#"key='([a-z_]+)'"#, in: source).first ?? "",
                             geometry: capture(#"\(([a-z_]+)\)"#, in: source).first ?? "",
                             type: capture(#"type=([A-Za-z]+)"#, in: source).first ?? "",
                             filter: source.components(separatedBy: " sql=").last ?? "",
                             fields: capture(#"(?:attr|fieldName)="([a-z_]+)""#, in: chunk)))
        }
        return out
    }

    @Test("seven layers from PostGIS, by service name; each readable by an operator with its key, geometry (SRID 4326, the declared type) and styled columns")
    func layersExist() throws {
        let layers = try Self.layers()
        #expect(layers.map(\.table) == ["township_areas", "village_areas", "grids", "patrol_tracks", "cameras", "open_incidents",
                                           "overdue_task_points"])
        let s = try Scene(environment: [
            "LIANDONG_SLA_VILLAGE_RESPOND_MINUTES": "0.01,0.01,0.01,0.01", "LIANDONG_SLA_TOWNSHIP_RESPOND_MINUTES": "0.01,0.01,0.01,0.01",
            "LIANDONG_SLA_COUNTY_RESPOND_MINUTES": "0.01,0.01,0.01,0.01", "LIANDONG_ESCALATION_SWEEP_MS": "100",
        ])
        try s.send("alert", Wire.alert(id: "qgis-1", priority: 3, at: s.now, position: s.centre))
        // A worker's walk of today: a track.
        for k in 0..<3 {
            try s.send("position", Wire.json(["schema": "liandong.worker_position.v1", "worker_id": "w-0267", "lon": s.centre.lon + 0.0003 * Double(k),
                                              "lat": s.centre.lat, "at": Timestamp.formatCST(s.now - 60 + 30 * Double(k)), "state": "on_patrol"]))
        }
        // Marked overdue at the county: it stays overdue (before that it is overdue only between a
        // missed deadline and the sweep that hands it up with new ones).
        try s.daemon.waitUntil(timeout: 20, "a task overdue at the county") { try s.count("SELECT count(*) FROM liandong.tasks WHERE overdue") == 1 }
        let role = "ld_qgis_\(UUID().uuidString.lowercased().prefix(8))"
        #expect(try liandongd(["operator", "grant", role, "--scope", "620922"], database: s.daemon.database).status == 0)
        let op = try PGConnection(conninfo: s.daemon.database.replacingOccurrences(of: "user=postgres", with: "user=\(role)"))
        for layer in layers {
            let columns = ([layer.key, layer.geometry] + layer.fields).map { "\"\($0)\"" }.joined(separator: ", ")
            let filter = layer.filter.isEmpty ? "true" : layer.filter
            let rows = try op.query("SELECT \(columns) FROM liandong.\(layer.table) WHERE \(filter) LIMIT 3")
            #expect(rows.count > 0, "\(layer.table): the operator sees rows")
            let shape = try op.query("""
                SELECT DISTINCT ST_SRID(\(layer.geometry)), GeometryType(\(layer.geometry)) FROM liandong.\(layer.table) WHERE \(filter)
                """)
            #expect(shape.count == 1 && shape[0, "st_srid"] == "4326" && shape[0, "geometrytype"]?.uppercased() == layer.type.uppercased(),
                    "\(layer.table): \(shape.rows)")
            let unique = try op.query("SELECT count(*) = count(DISTINCT \(layer.key)) FROM liandong.\(layer.table) WHERE \(filter)").scalar
            #expect(unique == "t", "\(layer.table): key \(layer.key) is unique")
        }
        #expect(try op.int("SELECT count(*) FROM liandong.township_areas") == 15)
        #expect(try op.int("SELECT sum(grids) FROM liandong.village_areas") == 767)
    }
}
