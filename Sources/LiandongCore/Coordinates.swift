import Foundation

/// Coordinate reference systems a message may use. Stored geometry is always WGS-84.
public enum CRS: String, Sendable, CaseIterable, Codable {
    /// GPS, SRID 4326.
    case wgs84
    /// The offset system mandated for public maps in China (AMap, Tencent).
    case gcj02
    /// Baidu's system, a further offset of GCJ-02.
    case bd09
}

/// A WGS-84-or-other longitude/latitude pair in degrees.
public struct LonLat: Sendable, Equatable {
    public var lon: Double
    public var lat: Double
    public init(lon: Double, lat: Double) {
        self.lon = lon
        self.lat = lat
    }

    public var isValid: Bool { lon.isFinite && lat.isFinite && (-180...180).contains(lon) && (-90...90).contains(lat) }

    /// Great-circle distance in metres (haversine on the mean Earth radius).
    public func distance(to other: LonLat) -> Double {
        let r = 6_371_008.8
        let p1 = lat * .pi / 180, p2 = other.lat * .pi / 180
        let dp = (other.lat - lat) * .pi / 180, dl = (other.lon - lon) * .pi / 180
        let a = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2)
        return 2 * r * asin(min(1, sqrt(a)))
    }
}

/// Conversions between WGS-84, GCJ-02 and BD-09 using the published approximate formulas.
/// GCJ-02 -> WGS-84 inverts the forward transform by fixed-point iteration (error well under
/// a metre); outside mainland China GCJ-02 equals WGS-84.
public enum CoordinateConverter {
    private static let a = 6_378_245.0
    private static let ee = 0.006_693_421_622_965_943_23
    private static let xPi = Double.pi * 3000.0 / 180.0

    /// Converts `point` given in `crs` to WGS-84.
    public static func toWGS84(_ point: LonLat, from crs: CRS) -> LonLat {
        switch crs {
        case .wgs84: point
        case .gcj02: gcj02ToWGS84(point)
        case .bd09: gcj02ToWGS84(bd09ToGCJ02(point))
        }
    }

    /// Converts a WGS-84 point to `crs` (used by simulators and tests).
    public static func fromWGS84(_ point: LonLat, to crs: CRS) -> LonLat {
        switch crs {
        case .wgs84: point
        case .gcj02: wgs84ToGCJ02(point)
        case .bd09: gcj02ToBD09(wgs84ToGCJ02(point))
        }
    }

    static func outOfChina(_ p: LonLat) -> Bool {
        !(72.004...137.8347).contains(p.lon) || !(0.8293...55.8271).contains(p.lat)
    }

    public static func wgs84ToGCJ02(_ p: LonLat) -> LonLat {
        if outOfChina(p) { return p }
        let d = delta(p)
        return LonLat(lon: p.lon + d.lon, lat: p.lat + d.lat)
    }

    public static func gcj02ToWGS84(_ g: LonLat) -> LonLat {
        if outOfChina(g) { return g }
        // Fixed-point iteration: find w with wgs84ToGCJ02(w) == g.
        var w = g
        for _ in 0..<30 {
            let f = wgs84ToGCJ02(w)
            let dLon = f.lon - g.lon, dLat = f.lat - g.lat
            w = LonLat(lon: w.lon - dLon, lat: w.lat - dLat)
            if abs(dLon) < 1e-10 && abs(dLat) < 1e-10 { break }
        }
        return w
    }

    public static func bd09ToGCJ02(_ b: LonLat) -> LonLat {
        let x = b.lon - 0.0065, y = b.lat - 0.006
        let z = sqrt(x * x + y * y) - 0.000_02 * sin(y * xPi)
        let theta = atan2(y, x) - 0.000_003 * cos(x * xPi)
        return LonLat(lon: z * cos(theta), lat: z * sin(theta))
    }

    public static func gcj02ToBD09(_ g: LonLat) -> LonLat {
        let x = g.lon, y = g.lat
        let z = sqrt(x * x + y * y) + 0.000_02 * sin(y * xPi)
        let theta = atan2(y, x) + 0.000_003 * cos(x * xPi)
        return LonLat(lon: z * cos(theta) + 0.0065, lat: z * sin(theta) + 0.006)
    }

    private static func delta(_ p: LonLat) -> LonLat {
        let x = p.lon - 105.0, y = p.lat - 35.0
        var dLat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt(abs(x))
        dLat += (20.0 * sin(6.0 * x * .pi) + 20.0 * sin(2.0 * x * .pi)) * 2.0 / 3.0
        dLat += (20.0 * sin(y * .pi) + 40.0 * sin(y / 3.0 * .pi)) * 2.0 / 3.0
        dLat += (160.0 * sin(y / 12.0 * .pi) + 320 * sin(y * .pi / 30.0)) * 2.0 / 3.0
        var dLon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt(abs(x))
        dLon += (20.0 * sin(6.0 * x * .pi) + 20.0 * sin(2.0 * x * .pi)) * 2.0 / 3.0
        dLon += (20.0 * sin(x * .pi) + 40.0 * sin(x / 3.0 * .pi)) * 2.0 / 3.0
        dLon += (150.0 * sin(x / 12.0 * .pi) + 300.0 * sin(x / 30.0 * .pi)) * 2.0 / 3.0
        let radLat = p.lat / 180.0 * .pi
        var magic = sin(radLat)
        magic = 1 - ee * magic * magic
        let sqrtMagic = sqrt(magic)
        dLat = (dLat * 180.0) / ((a * (1 - ee)) / (magic * sqrtMagic) * .pi)
        dLon = (dLon * 180.0) / (a / sqrtMagic * cos(radLat) * .pi)
        return LonLat(lon: dLon, lat: dLat)
    }
}
