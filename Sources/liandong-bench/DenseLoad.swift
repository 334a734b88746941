import ArgumentParser
import Foundation
import LiandongCore
import LibPQ

/// `tools/bench --dense` (issue 31): a county's worst hour - `events` camera alerts of nine
/// categories uniformly over 4 x 4 km of the county seat's grids, observed within 5 minutes and
/// published at once in observed order, so most of them join large incidents. The ground truth of
/// each alert is the incident the join rule gives it (`JoinOracle`, computed here over every event
/// in that order, as the daemon sees them), so precision and recall check the hot path exactly.
extension Bench {
    /// Alarm method/type of nine categories: eight video-analytics ones and a device fault.
    static let denseKinds: [(method: Int, type: Int)] = [(5, 1), (5, 2), (5, 3), (5, 4), (5, 7), (5, 8), (5, 10), (5, 12), (6, 1)]

    struct DenseLoad {
        var events: [Event]
        /// The square the alerts are in (south-west and north-east corners).
        var southWest: LonLat, northEast: LonLat
        var incidents: Int
    }

    func denseLoad(db: PGConnection, count: Int, run: String, rules: Rules, rng: inout SplitMix64) throws -> DenseLoad {
        // The county seat's grids (渊泉镇): 4 x 4 km around their centre, only points a grid covers.
        let centre = try db.query("""
            SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Union(geom)) c FROM liandong.grids
                                          WHERE grid_code LIKE '620922100%' AND valid_to IS NULL) s
            """)
        guard let lon = centre[0, "st_x"].flatMap(Double.init), let lat = centre[0, "st_y"].flatMap(Double.init) else {
            throw ValidationError("the dataset has no grids of 620922100 (渊泉镇): --dense needs the Guazhou dataset")
        }
        let c = LonLat(lon: lon, lat: lat)
        let sw = Self.moved(c, east: -2000, north: -2000), ne = Self.moved(c, east: 2000, north: 2000)
        let devices = try db.query("SELECT device_id FROM liandong.cameras WHERE valid_to IS NULL ORDER BY device_id").rows.map { $0[0]! }
        var points: [LonLat] = []
        while points.count < count {
            let candidates = (0..<(count - points.count) * 5 / 4 + 16).map { _ in
                LonLat(lon: sw.lon + (ne.lon - sw.lon) * unit(&rng), lat: sw.lat + (ne.lat - sw.lat) * unit(&rng))
            }
            let covered = try db.query("""
                SELECT x.n FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS x(lon, lat, n)
                WHERE EXISTS (SELECT 1 FROM liandong.grids g WHERE g.valid_to IS NULL
                              AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(x.lon, x.lat), 4326)))
                ORDER BY x.n
                """, ["{" + candidates.map { String($0.lon) }.joined(separator: ",") + "}",
                      "{" + candidates.map { String($0.lat) }.joined(separator: ",") + "}"]).rows.map { Int($0[0]!)! - 1 }
            points += covered.prefix(count - points.count).map { candidates[$0] }
        }
        // Observed within the last 5 minutes (to the millisecond, as the wire carries them), in
        // that order; equal times keep their order, as the daemon's batches do.
        let now = Date().timeIntervalSince1970
        let times = points.map { _ in ((now - 300 + 299 * unit(&rng)) * 1000).rounded() / 1000 }.sorted()
        var oracle = JoinOracle(rules: rules, origin: c)
        var events: [Event] = []
        events.reserveCapacity(count)
        for (k, (p, t)) in zip(points, times).enumerated() {
            let kind = Self.denseKinds[Int(rng.next() % UInt64(Self.denseKinds.count))]
            let category = rules.category(alarmMethod: kind.method, alarmType: kind.type)
            let id = "d\(run)-\(k)"
            var body = JSONText()
            body.object {
                $0.field("alarm_method", integer: kind.method)
                $0.field("alarm_type", integer: kind.type)
                $0.field("alert_id", id)
                $0.field("device_id", devices[Int(rng.next() % UInt64(devices.count))])
                $0.field("gateway_id", "bench-dense")
                $0.field("lat", number: p.lat)
                $0.field("lon", number: p.lon)
                $0.field("observed_at", Timestamp.formatCST(t))
                $0.field("priority", integer: 3)
                $0.field("schema", "liandong.alert.v1")
            }
            events.append(Event(topic: "alert", id: id, group: oracle.join(category: category, at: p, t: t), body: body.text, p: p, at: t))
        }
        return DenseLoad(events: events, southWest: sw, northEast: ne, incidents: oracle.incidents.count)
    }

    /// A uniform number in [0, 1).
    func unit(_ rng: inout SplitMix64) -> Double { Double(rng.next() >> 11) / Double(1 << 53) }

    /// The lean rows a COPY ceiling of the dense load writes: uuid, kind, time, point, priority.
    func writeLeanCopyFile(_ load: [Event], _ path: String) throws {
        var out = ""
        out.reserveCapacity(load.count * 120)
        for e in load {
            out += "\(UUID().uuidString.lowercased()),alert,\(Timestamp.formatUTC(e.at)),SRID=4326;POINT(\(e.p.lon) \(e.p.lat)),3\n"
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// The join rule over events in observed order, written for clarity and checked against the
/// daemon (as the core's tests check the planner against a brute-force join): of the open
/// incidents of the category with an event within the radius and window, those the event keeps
/// within max_span_m and max_duration_s and whose nearest event lies within 0.6 x radius or whose
/// centre within 0.7 x radius; of those the one with the nearest event (metres, then seconds);
/// else a new incident. Events are found through a hash of radius-sized cells per category.
struct JoinOracle {
    struct Incident {
        var points: [LonLat] = []
        var first = Double.infinity, last = -Double.infinity
        var sumLon = 0.0, sumLat = 0.0
    }

    let rules: Rules
    let origin: LonLat
    private(set) var incidents: [Incident] = []
    /// Per category and cell: (point, time, incident) of its events.
    private var cells: [String: [Cell: [(p: LonLat, t: Double, incident: Int)]]] = [:]

    struct Cell: Hashable { let x: Int, y: Int }

    init(rules: Rules, origin: LonLat) {
        self.rules = rules
        self.origin = origin
    }

    private func cell(_ p: LonLat, size: Double) -> Cell {
        let x = (p.lon - origin.lon) * 111_320 * cos(origin.lat * .pi / 180), y = (p.lat - origin.lat) * 110_574
        return Cell(x: Int((x / size).rounded(.down)), y: Int((y / size).rounded(.down)))
    }

    /// The incident (numbered from 0) the event joins or opens.
    mutating func join(category: String, at p: LonLat, t: Double) -> Int {
        let rule = rules.rule(for: category)
        let home = cell(p, size: rule.radiusMeters)
        var nearest: [Int: (Double, Double)] = [:]
        for dx in -1...1 {
            for dy in -1...1 {
                for o in cells[category]?[Cell(x: home.x + dx, y: home.y + dy)] ?? [] where abs(o.t - t) <= rule.windowSeconds {
                    let d = (p.ellipsoidDistance(to: o.p), abs(o.t - t))
                    if d.0 <= rule.radiusMeters, nearest[o.incident].map({ d < $0 }) ?? true { nearest[o.incident] = d }
                }
            }
        }
        var best: (incident: Int, nearest: (Double, Double))? = nil
        for (k, n) in nearest {
            let i = incidents[k]
            if rule.maxDuration > 0 && max(i.last, t) - min(i.first, t) > rule.maxDuration { continue }
            if rule.maxSpan > 0 && !i.points.allSatisfy({ $0.ellipsoidDistance(to: p) <= rule.maxSpan }) { continue }
            let centre = LonLat(lon: i.sumLon / Double(i.points.count), lat: i.sumLat / Double(i.points.count))
            guard n.0 <= rule.linkMeters || p.ellipsoidDistance(to: centre) <= rule.centreMeters else { continue }
            if best.map({ n < $0.nearest }) ?? true { best = (k, n) }
        }
        let k = best?.incident ?? { incidents.append(Incident()); return incidents.count - 1 }()
        incidents[k].points.append(p)
        incidents[k].first = min(incidents[k].first, t)
        incidents[k].last = max(incidents[k].last, t)
        incidents[k].sumLon += p.lon
        incidents[k].sumLat += p.lat
        cells[category, default: [:]][home, default: []].append((p, t, k))
        return k
    }
}
