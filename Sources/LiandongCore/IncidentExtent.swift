import Foundation

/// The shape of an incident so far - when its events were observed and where (the convex hull of
/// their positions) - so that correlation can keep it bounded: no two of its events farther apart
/// than the category's `max_span_m`, its observed times within `max_duration_s`. Without bounds an
/// incident grows by chaining (16 crowd alerts 250 m apart on a line became one incident 3.75 km
/// wide). The farthest of an incident's events from any point is a vertex of their convex hull,
/// so the hull is all a check needs; it stays small (a handful of vertices) however many events.
public struct IncidentExtent: Sendable, Equatable {
    public private(set) var first: Double
    public private(set) var last: Double
    /// Hull vertices, counter-clockwise in the local plane (one or two while degenerate).
    public private(set) var hull: [LonLat]
    /// The sums of its events' longitudes and latitudes and their number: the centre (`centre`)
    /// an event must lie near to join (`CategoryRule.centreMeters`).
    public private(set) var sumLon: Double
    public private(set) var sumLat: Double
    public private(set) var count: Int

    public init(_ point: LonLat, at t: Double) {
        first = t
        last = t
        hull = [point]
        sumLon = point.lon
        sumLat = point.lat
        count = 1
    }

    /// From a set of positions (any order, repeats allowed) and the observed-time span; `centre`
    /// and `count`: of all its events (the positions may be the hull's vertices only).
    public init(points: [LonLat], first: Double, last: Double, centre: LonLat? = nil, count: Int? = nil) {
        precondition(!points.isEmpty)
        self.first = first
        self.last = last
        hull = Self.convexHull(points)
        let n = count ?? points.count
        let c = centre ?? LonLat(lon: points.map(\.lon).reduce(0, +) / Double(points.count),
                                 lat: points.map(\.lat).reduce(0, +) / Double(points.count))
        self.count = max(n, 1)
        sumLon = c.lon * Double(self.count)
        sumLat = c.lat * Double(self.count)
    }

    /// The mean position of its events (degrees: the events of one incident lie within a few
    /// kilometres, where the mean of the coordinates is the centroid to a fraction of a metre).
    public var centre: LonLat { LonLat(lon: sumLon / Double(count), lat: sumLat / Double(count)) }

    /// Whether an event at `point`, observed at `t`, may join: every event of the incident within
    /// `maxSpan` metres of it and the incident's observed times, with it, within `maxDuration`
    /// seconds (0: that bound is off).
    public func admits(_ point: LonLat, at t: Double, maxSpan: Double, maxDuration: Double) -> Bool {
        if maxDuration > 0 && max(last, t) - min(first, t) > maxDuration { return false }
        if maxSpan > 0 { return hull.allSatisfy { $0.ellipsoidDistance(to: point) <= maxSpan } }
        return true
    }

    /// The farthest event of the incident from `point`, in metres.
    public func farthest(from point: LonLat) -> Double {
        hull.map { $0.ellipsoidDistance(to: point) }.max() ?? 0
    }

    /// An event joined.
    public mutating func add(_ point: LonLat, at t: Double) {
        first = min(first, t)
        last = max(last, t)
        sumLon += point.lon
        sumLat += point.lat
        count += 1
        if hull.contains(point) { return }
        hull = Self.convexHull(hull + [point])
    }

    /// The convex hull (Andrew's monotone chain) in a plane tangent at the first point: metres
    /// east and north, from the ellipsoid's radii of curvature there (as `ellipsoidDistance`).
    static func convexHull(_ points: [LonLat]) -> [LonLat] {
        let origin = points[0]
        let a = 6_378_137.0, e2 = 0.006_694_379_990_14
        let phi = origin.lat * .pi / 180
        let s = sin(phi), w = (1 - e2 * s * s).squareRoot()
        let kx = .pi / 180 * a / w * cos(phi), ky = .pi / 180 * a * (1 - e2) / (w * w * w)
        struct P { let x, y: Double; let point: LonLat }
        var ps = points.map { p -> P in
            var dLon = p.lon - origin.lon
            if dLon > 180 { dLon -= 360 } else if dLon < -180 { dLon += 360 }
            return P(x: dLon * kx, y: (p.lat - origin.lat) * ky, point: p)
        }
        ps.sort { ($0.x, $0.y) < ($1.x, $1.y) }
        // Positions closer than a millimetre are one.
        var unique: [P] = []
        for p in ps where unique.last.map({ abs($0.x - p.x) > 1e-3 || abs($0.y - p.y) > 1e-3 }) ?? true { unique.append(p) }
        guard unique.count > 2 else { return unique.map(\.point) }
        func cross(_ o: P, _ a: P, _ b: P) -> Double { (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x) }
        var lower: [P] = [], upper: [P] = []
        for p in unique {
            while lower.count >= 2 && cross(lower[lower.count - 2], lower[lower.count - 1], p) <= 0 { lower.removeLast() }
            lower.append(p)
        }
        for p in unique.reversed() {
            while upper.count >= 2 && cross(upper[upper.count - 2], upper[upper.count - 1], p) <= 0 { upper.removeLast() }
            upper.append(p)
        }
        return (lower.dropLast() + upper.dropLast()).map(\.point)
    }
}
