import ArgumentParser
import Foundation
import LiandongCore
import LibPQ
import ZeroMQ

/// `tools/bench --close`: incidents close together, the layout the default load never has. Per
/// layout, three categories (intrusion and fight, radius 300 m; crowd, 500 m) on a 4 x 4 lattice
/// whose sites are `spacing` x the radius apart; each site a true incident of two camera alerts
/// (each camera standing up to `offset` x the radius from the spot it watches; the alert carries
/// the camera's position) and a worker's report within 30 m of the spot, all observed within a
/// minute and sent in random order. Layouts are observed two hours apart, so they never meet.
/// Reports pairwise precision and recall per layout, against the sites.
extension Bench {
    struct CloseLayout {
        let spacing: Double
        let offset: Double
    }

    static let closeLayouts = [CloseLayout(spacing: 1.25, offset: 0.15), CloseLayout(spacing: 1.25, offset: 0.25),
                               CloseLayout(spacing: 1.5, offset: 0.25), CloseLayout(spacing: 2.0, offset: 0.25)]

    func closePhase(db: PGConnection, cameras: [Camera], send: (Event) throws -> Void, run: String, rng: inout SplitMix64) throws {
        let categories: [(name: String, alarmType: Int, report: String, radius: Double)] = [
            ("intrusion", 6, "闯入", 300), ("crowd", 10, "聚集", 500), ("fight", 12, "打架", 300),
        ]
        let now = Date().timeIntervalSince1970
        let base = try closeBase(db, cameras: cameras, extent: 3 * 2.0 * 500)
        print("close layouts at \(String(format: "%.5f, %.5f", base.p.lon, base.p.lat)) (grid \(base.grid)): "
            + "3 categories x 16 sites, 2 camera alerts and a report each, observed within a minute, sent in random order")
        for (n, layout) in Self.closeLayouts.enumerated() {
            let t0 = now - 3600 - Double(Self.closeLayouts.count - n) * 7200
            var load: [Event] = []
            var group = 0
            for category in categories {
                let step = layout.spacing * category.radius
                for site in 0..<16 {
                    let spot = Self.moved(base.p, east: Double(site % 4) * step, north: Double(site / 4) * step)
                    group += 1
                    func near(_ metres: Double, _ rng: inout SplitMix64) -> LonLat {
                        let angle = Double(rng.next() % 3600) * .pi / 1800, r = metres * Double(rng.next() % 1001) / 1000
                        return Self.moved(spot, east: r * cos(angle), north: r * sin(angle))
                    }
                    for k in 0..<2 {
                        let camera = Camera(id: base.id, grid: base.grid, p: near(layout.offset * category.radius, &rng))
                        load.append(Bench.alert(id: "c\(run)-\(n)-\(group)-a\(k)", group: group, camera: camera, type: category.alarmType,
                                                gateway: "bench-close", at: t0 + Double(rng.next() % 60)))
                    }
                    let p = near(30, &rng)
                    var body = JSONText()
                    body.object {
                        $0.field("category", category.report)
                        $0.field("lat", number: p.lat)
                        $0.field("lon", number: p.lon)
                        $0.field("observed_at", Timestamp.formatCST(t0 + Double(rng.next() % 60)))
                        $0.field("report_id", "c\(run)-\(n)-\(group)-r")
                        $0.field("schema", "liandong.report.v1")
                        $0.field("severity", integer: 3)
                        $0.field("worker_id", "w-bench")
                    }
                    load.append(Event(topic: "report", id: "c\(run)-\(n)-\(group)-r", group: group, body: body.text, p: p, at: t0))
                }
            }
            load.shuffle(using: &rng)
            for e in load { try send(e) }
            let prefix = "c\(run)-\(n)-"
            let deadline = Date().addingTimeInterval(60)
            var incidentOf: [String: String] = [:]
            while Date() < deadline {
                incidentOf = [:]
                for r in try db.query("SELECT source_id, incident_id FROM liandong.events WHERE source_id LIKE $1", [prefix + "%"]).rows {
                    incidentOf[r[0]!] = r[1]!
                }
                let refused = Int(try db.query("SELECT count(*) FROM liandong.rejected_messages WHERE convert_from(raw, 'UTF8') LIKE $1",
                                               ["%" + prefix + "%"]).scalar ?? "0") ?? 0
                if incidentOf.count + refused >= load.count { break }
                Thread.sleep(forTimeInterval: 0.1)
            }
            guard incidentOf.count == load.count else {
                throw ValidationError("close layout \(n): \(incidentOf.count) of \(load.count) events stored (some fell outside every grid?)")
            }
            var together = 0, split = 0, merged = 0
            for i in load.indices {
                for j in load.indices where j > i {
                    let same = incidentOf[load[i].id] == incidentOf[load[j].id]
                    if load[i].group == load[j].group { if same { together += 1 } else { split += 1 } } else if same { merged += 1 }
                }
            }
            let precision = Double(together) / Double(max(1, together + merged)), recall = Double(together) / Double(max(1, together + split))
            let incidents = Set(incidentOf.values).count
            print(String(format: "close layout %.2f x radius apart, cameras up to %.2f x radius off: precision %.4f recall %.4f "
                         + "(%d true incidents, %d made; pairs merged %d, split %d)",
                         layout.spacing, layout.offset, precision, recall, group, incidents, merged, split))
        }
    }

    /// A camera of the dataset whose square of `extent` metres to the north-east lies inside grids.
    func closeBase(_ db: PGConnection, cameras: [Camera], extent: Double) throws -> Camera {
        for camera in cameras {
            let corners = [(0.0, 0.0), (extent, 0), (0, extent), (extent, extent), (extent / 2, extent / 2)]
                .map { Self.moved(camera.p, east: $0.0, north: $0.1) }
            let inside = Int(try db.query("""
                SELECT count(*) FROM unnest($1::float8[], $2::float8[]) AS p(lon, lat)
                WHERE EXISTS (SELECT 1 FROM liandong.grids g
                              WHERE g.valid_to IS NULL AND ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)))
                """, ["{" + corners.map { String($0.lon) }.joined(separator: ",") + "}",
                      "{" + corners.map { String($0.lat) }.joined(separator: ",") + "}"]).scalar ?? "0") ?? 0
            if inside == corners.count { return camera }
        }
        throw ValidationError("no camera of the dataset has \(Int(extent)) m of grids to its north-east for the close layouts")
    }

    /// `p` moved by metres east and north (spherical, near 40.5 N: 0.1 % of the distance).
    static func moved(_ p: LonLat, east: Double, north: Double) -> LonLat {
        LonLat(lon: p.lon + east / (111_320 * cos(p.lat * .pi / 180)), lat: p.lat + north / 110_574)
    }
}
