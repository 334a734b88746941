/// Plausibility of a grid polygon's coordinates before PostGIS sees it: GeoJSON positions must be
/// WGS-84 degrees (longitude first) inside China. Catches the usual mistakes of a reference file:
/// projected metres (CGCS2000 / Gauss-Kruger), latitude and longitude swapped, a shifted digit.
public enum GridGeometryCheck {
    /// China's extent with a margin (Nansha islands to Mohe, Pamir to Fuyuan), in degrees.
    public static let chinaLongitudes = 73.0...136.0
    public static let chinaLatitudes = 3.0...54.0

    /// Why the coordinates of a Polygon or MultiPolygon cannot be right (nil when they can).
    public static func coordinateProblem(_ coordinates: JSONValue) -> String? {
        var problem: String? = nil
        var positions = 0
        func walk(_ value: JSONValue, depth: Int) {
            guard problem == nil else { return }
            guard case .array(let items) = value else {
                problem = "coordinates must be nested arrays of [longitude, latitude]"
                return
            }
            if case .number? = items.first {
                positions += 1
                problem = positionProblem(items)
                return
            }
            guard depth < 4 else {
                problem = "coordinates are nested too deeply for a Polygon or MultiPolygon"
                return
            }
            for item in items { walk(item, depth: depth + 1) }
        }
        walk(coordinates, depth: 0)
        if problem == nil && positions == 0 { return "the polygon has no coordinates" }
        return problem
    }

    static func positionProblem(_ position: [JSONValue]) -> String? {
        guard position.count >= 2, case .number(let lon) = position[0], case .number(let lat) = position[1] else {
            return "a position must be [longitude, latitude] numbers"
        }
        let shown = "[\(format(lon)), \(format(lat))]"
        if abs(lon) > 180 || abs(lat) > 180 {
            return "position \(shown) is not in degrees: projected metres? (GeoJSON is WGS-84 longitude, latitude)"
        }
        if abs(lat) > 90 {
            return "position \(shown): latitude \(format(lat)) is out of range - longitude and latitude swapped?"
        }
        if !chinaLongitudes.contains(lon) || !chinaLatitudes.contains(lat) {
            if chinaLongitudes.contains(lat) && chinaLatitudes.contains(lon) {
                return "position \(shown) lies outside China - longitude and latitude swapped?"
            }
            return "position \(shown) lies outside China (longitude 73...136, latitude 3...54)"
        }
        return nil
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
