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
        // Every spot of every layout inside a grid (a camera's or phone's offset may still fall
        // outside: such an event is refused outside_area and left out of the figures).
        let offsets = Self.closeLayouts.flatMap { layout in
            categories.flatMap { c in (0..<16).map { (Double($0 % 4) * layout.spacing * c.radius, Double($0 / 4) * layout.spacing * c.radius) } }
        }
        let (base, inside) = try closeBase(db, cameras: cameras, offsets: offsets)
        print("close layouts at \(String(format: "%.5f, %.5f", base.p.lon, base.p.lat)) (grid \(base.grid)): "
            + "3 categories x 16 sites, 2 camera alerts and a report each, observed within a minute, sent in random order")
        let rounds = 3
        for (n, layout) in Self.closeLayouts.enumerated() {
            var together = 0, split = 0, merged = 0, made = 0, truth = 0, outside = 0
            for round in 0..<rounds {
                // Rounds and layouts two hours apart in observed time: they never meet.
                let slot = n * rounds + round, slots = Self.closeLayouts.count * rounds
                let t0 = now - 3600 - Double(slots - slot) * 7200
                var load: [Event] = []
                var group = 0, spotIndex = n * categories.count * 16
                for category in categories {
                    let step = layout.spacing * category.radius
                    for site in 0..<16 {
                        let spot = Self.moved(base.p, east: Double(site % 4) * step, north: Double(site / 4) * step)
                        spotIndex += 1
                        guard inside[spotIndex - 1] else { continue }  // outside every grid: not a site
                        group += 1
                        func near(_ metres: Double, _ rng: inout SplitMix64) -> LonLat { Self.near(spot, within: metres, &rng) }
                        let id = "c\(run)-\(slot)-\(group)"
                        for k in 0..<2 {
                            let camera = Camera(id: base.id, grid: base.grid, p: near(layout.offset * category.radius, &rng))
                            load.append(Bench.alert(id: "\(id)-a\(k)", group: group, camera: camera, type: category.alarmType,
                                                    gateway: "bench-close", at: t0 + Double(rng.next() % 60)))
                        }
                        let p = near(30, &rng)
                        var body = JSONText()
                        body.object {
                            $0.field("category", category.report)
                            $0.field("lat", number: p.lat)
                            $0.field("lon", number: p.lon)
                            $0.field("observed_at", Timestamp.formatCST(t0 + Double(rng.next() % 60)))
                            $0.field("report_id", "\(id)-r")
                            $0.field("schema", "liandong.report.v1")
                            $0.field("severity", integer: 3)
                            $0.field("worker_id", "w-bench")
                        }
                        load.append(Event(topic: "report", id: "\(id)-r", group: group, body: body.text, p: p, at: t0))
                    }
                }
                load.shuffle(using: &rng)
                for e in load { try send(e) }
                let prefix = "c\(run)-\(slot)-"
                let deadline = Date().addingTimeInterval(60)
                var incidentOf: [String: String] = [:]
                var refused = 0
                while Date() < deadline {
                    incidentOf = [:]
                    for r in try db.query("SELECT source_id, incident_id FROM liandong.events WHERE source_id LIKE $1", [prefix + "%"]).rows {
                        incidentOf[r[0]!] = r[1]!
                    }
                    refused = Int(try db.query("SELECT count(*) FROM liandong.rejected_messages WHERE convert_from(raw, 'UTF8') LIKE $1",
                                               ["%" + prefix + "%"]).scalar ?? "0") ?? 0
                    if incidentOf.count + refused >= load.count { break }
                    Thread.sleep(forTimeInterval: 0.1)
                }
                guard incidentOf.count + refused == load.count, incidentOf.count >= load.count * 8 / 10 else {
                    throw ValidationError("close layout \(n): \(incidentOf.count) of \(load.count) events stored, \(refused) refused")
                }
                let stored = load.filter { incidentOf[$0.id] != nil }
                for i in stored.indices {
                    for j in stored.indices where j > i {
                        let same = incidentOf[stored[i].id] == incidentOf[stored[j].id]
                        if stored[i].group == stored[j].group { if same { together += 1 } else { split += 1 } } else if same { merged += 1 }
                    }
                }
                made += Set(incidentOf.values).count
                truth += group
                outside += refused
            }
            let precision = Double(together) / Double(max(1, together + merged)), recall = Double(together) / Double(max(1, together + split))
            print(String(format: "close layout %.2f x radius apart, cameras up to %.2f x radius off: precision %.4f recall %.4f "
                         + "(%d rounds: %d true incidents inside grids, %d made; pairs merged %d, split %d; %d events outside every grid)",
                         layout.spacing, layout.offset, precision, recall, rounds, truth, made, merged, split, outside))
        }
    }

    /// The camera of the dataset from which most points `offsets` (metres east, north) lie in a
    /// grid, and which of them do.
    func closeBase(_ db: PGConnection, cameras: [Camera], offsets: [(Double, Double)]) throws -> (Camera, [Bool]) {
        var best: (Camera, [Bool])? = nil
        for camera in cameras {
            let points = offsets.map { Self.moved(camera.p, east: $0.0, north: $0.1) }
            let inside = try db.query("""
                SELECT EXISTS (SELECT 1 FROM liandong.grids g
                               WHERE g.valid_to IS NULL AND ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)))
                FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS p(lon, lat, k) ORDER BY p.k
                """, ["{" + points.map { String($0.lon) }.joined(separator: ",") + "}",
                      "{" + points.map { String($0.lat) }.joined(separator: ",") + "}"]).rows.map { $0[0] == "t" }
            if inside.filter({ $0 }).count > (best?.1.filter { $0 }.count ?? -1) { best = (camera, inside) }
        }
        guard let best, best.1.filter({ $0 }).count >= offsets.count / 2 else {
            throw ValidationError("no camera of the dataset has half the close layouts' sites inside grids")
        }
        return best
    }

    /// A point up to `metres` from `q`, in a random direction (the bench's position noise).
    static func near(_ q: LonLat, within metres: Double, _ rng: inout SplitMix64) -> LonLat {
        let angle = Double(rng.next() % 3600) * .pi / 1800, r = metres * Double(rng.next() % 1001) / 1000
        return moved(q, east: r * cos(angle), north: r * sin(angle))
    }

    /// `p` moved by metres east and north (spherical, near 40.5 N: 0.1 % of the distance).
    static func moved(_ p: LonLat, east: Double, north: Double) -> LonLat {
        LonLat(lon: p.lon + east / (111_320 * cos(p.lat * .pi / 180)), lat: p.lat + north / 110_574)
    }
}
