import Foundation
import LiandongCore

/// Metres -> degrees near Guazhou (40.5 N), for placing test points (spherical: distances
/// measured on the ellipsoid differ by about 0.1 %).
func offset(_ p: LonLat, east: Double, north: Double) -> LonLat {
    LonLat(lon: p.lon + east / (111_320 * cos(p.lat * .pi / 180)), lat: p.lat + north / 110_574)
}

/// A point in Guazhou.
let origin = LonLat(lon: 95.78, lat: 40.52)
