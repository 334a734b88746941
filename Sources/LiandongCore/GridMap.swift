import Foundation

/// One grid as the correlator sees it: its code, its village and its boundary in WGS-84.
public struct GridShape: Sendable, Equatable {
    public let gridCode: String
    public let villageCode: String
    /// Polygons of the multipolygon; each is its rings, the first the exterior, the rest holes.
    public let polygons: [[[LonLat]]]

    public init(gridCode: String, villageCode: String, polygons: [[[LonLat]]]) {
        self.gridCode = gridCode
        self.villageCode = villageCode
        self.polygons = polygons
    }

    /// True when the point lies inside or on the boundary (PostGIS ST_Covers).
    public func covers(_ p: LonLat) -> Bool {
        for rings in polygons {
            guard let exterior = rings.first else { continue }
            if rings.contains(where: { Self.onBoundary(p, $0) }) { return true }
            if Self.inside(p, exterior) && !rings.dropFirst().contains(where: { Self.inside(p, $0) }) { return true }
        }
        return false
    }

    /// Even-odd ray casting; the result for points exactly on the ring is not defined (see onBoundary).
    static func inside(_ p: LonLat, _ ring: [LonLat]) -> Bool {
        var inside = false
        var j = ring.count - 1
        for i in 0..<ring.count {
            let a = ring[i], b = ring[j]
            if (a.lat > p.lat) != (b.lat > p.lat),
                p.lon < (b.lon - a.lon) * (p.lat - a.lat) / (b.lat - a.lat) + a.lon
            {
                inside.toggle()
            }
            j = i
        }
        return inside
    }

    /// True when the point lies on an edge of the ring (within 1e-10 degrees, ~0.01 mm).
    static func onBoundary(_ p: LonLat, _ ring: [LonLat]) -> Bool {
        let eps = 1e-10
        var j = ring.count - 1
        for i in 0..<ring.count {
            let a = ring[j], b = ring[i]
            j = i
            guard p.lon >= min(a.lon, b.lon) - eps, p.lon <= max(a.lon, b.lon) + eps,
                p.lat >= min(a.lat, b.lat) - eps, p.lat <= max(a.lat, b.lat) + eps else { continue }
            let dx = b.lon - a.lon, dy = b.lat - a.lat
            let length = (dx * dx + dy * dy).squareRoot()
            let cross = dx * (p.lat - a.lat) - dy * (p.lon - a.lon)
            if abs(cross) <= eps * max(length, eps) { return true }
        }
        return false
    }
}

/// Finds the grid covering a point, as `ST_Covers` on the grid polygons would, through a uniform
/// bucket index over the grids' bounding boxes. When several grids cover the point (a shared
/// boundary), the sender's grid wins, then the lowest grid code.
public struct GridMap: Sendable {
    public let grids: [GridShape]
    private let cell: Double
    private var buckets: [Int64: [Int32]] = [:]

    public init(grids: [GridShape], cellDegrees: Double = 0.02) {
        self.grids = grids.sorted { $0.gridCode < $1.gridCode }
        cell = cellDegrees
        for (index, grid) in self.grids.enumerated() {
            let points = grid.polygons.flatMap { $0.first ?? [] }
            guard let minLon = points.map(\.lon).min(), let maxLon = points.map(\.lon).max(),
                let minLat = points.map(\.lat).min(), let maxLat = points.map(\.lat).max() else { continue }
            for x in key(minLon)...key(maxLon) {
                for y in key(minLat)...key(maxLat) {
                    buckets[Self.pack(x, y), default: []].append(Int32(index))
                }
            }
        }
    }

    private func key(_ degrees: Double) -> Int64 { Int64((degrees / cell).rounded(.down)) }
    private static func pack(_ x: Int64, _ y: Int64) -> Int64 { (x << 32) ^ (y & 0xFFFF_FFFF) }

    /// The covering grid, or nil when the point lies outside every grid.
    public func locate(_ p: LonLat, preferring preferred: String? = nil) -> GridShape? {
        // A point on a bucket edge may belong to the neighbouring bucket's grids too.
        var seen = Set<Int32>()
        var found: GridShape? = nil
        let xs = Set([key(p.lon - 1e-9), key(p.lon + 1e-9)]), ys = Set([key(p.lat - 1e-9), key(p.lat + 1e-9)])
        for x in xs {
            for y in ys {
                for index in buckets[Self.pack(x, y)] ?? [] where seen.insert(index).inserted {
                    let grid = grids[Int(index)]
                    guard grid.covers(p) else { continue }
                    if grid.gridCode == preferred { return grid }
                    if found == nil || grid.gridCode < found!.gridCode { found = grid }
                }
            }
        }
        return found
    }
}

extension LonLat {
    /// Distance in metres on the WGS-84 ellipsoid, from the local radii of curvature at the mean
    /// latitude: within millimetres of the geodesic (PostGIS geography) at correlation distances
    /// (up to a few kilometres).
    public func ellipsoidDistance(to other: LonLat) -> Double {
        let a = 6_378_137.0, e2 = 0.006_694_379_990_14
        let phi = (lat + other.lat) / 2 * .pi / 180
        let s = sin(phi)
        let w = (1 - e2 * s * s).squareRoot()
        let meridional = a * (1 - e2) / (w * w * w)
        let normal = a / w
        var dLon = other.lon - lon
        if dLon > 180 { dLon -= 360 } else if dLon < -180 { dLon += 360 }
        let dx = dLon * .pi / 180 * normal * cos(phi)
        let dy = (other.lat - lat) * .pi / 180 * meridional
        return (dx * dx + dy * dy).squareRoot()
    }
}
