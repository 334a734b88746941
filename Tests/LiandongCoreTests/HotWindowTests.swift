import Foundation
import LiandongCore
import Testing

@Suite("Hot correlation window")
struct HotWindowTests {
    @Test("the nearest open incident in radius and window wins; category, distance and time are respected")
    func nearest() {
        var w = HotWindow(retention: 7200, capacity: 1000)
        let near = UUID(), far = UUID(), crowd = UUID(), old = UUID()
        w.insert(category: "intrusion", at: offset(origin, east: 50, north: 0), t: 1000, incident: near)
        w.insert(category: "intrusion", at: offset(origin, east: 250, north: 0), t: 1000, incident: far)
        w.insert(category: "crowd", at: origin, t: 1000, incident: crowd)
        w.insert(category: "intrusion", at: origin, t: 1000 - 901, incident: old)
        let best = w.best(category: "intrusion", near: origin, at: 1000, radius: 300, window: 900)
        #expect(best?.incident == near)
        #expect(abs((best?.distance ?? 0) - 50) < 0.5, "ellipsoidal metres, not degrees")
        #expect(w.incidents(category: "intrusion", near: origin, at: 1000, radius: 300, window: 900) == [near, far])
        #expect(w.best(category: "intrusion", near: origin, at: 1000, radius: 40, window: 900) == nil)
        #expect(w.best(category: "fire", near: origin, at: 1000, radius: 300, window: 900) == nil)
    }

    @Test("a storm at one spot is one entry; matching is unchanged: within the window of the run's first or last event, not beyond")
    func stormMerged() {
        var w = HotWindow(retention: 7200, capacity: 1000, mergeSeconds: 60)
        let storm = UUID(), other = UUID()
        // 500 a second for a minute at one spot.
        for k in 0..<30_000 { w.insert(category: "intrusion", at: origin, t: 1000 + Double(k) / 500, incident: storm) }
        #expect(w.count == 1)
        // Another incident's event there, and the storm again after a pause longer than mergeSeconds: new entries.
        w.insert(category: "intrusion", at: origin, t: 1010, incident: other)
        w.insert(category: "intrusion", at: origin, t: 1200, incident: storm)
        #expect(w.count == 3)
        let inside = w.best(category: "intrusion", near: origin, at: 1030, radius: 300, window: 900)
        #expect(inside?.seconds == 0 && inside?.incident == storm, "within the run: 0 s from it")
        #expect(w.best(category: "intrusion", near: origin, at: 1200 + 900, radius: 300, window: 900)?.incident == storm)
        #expect(w.best(category: "intrusion", near: origin, at: 1200 + 901, radius: 300, window: 900) == nil)
        #expect(w.best(category: "intrusion", near: origin, at: 1000 - 900, radius: 300, window: 900)?.seconds == 900)
        #expect(w.best(category: "intrusion", near: origin, at: 1000 - 901, radius: 300, window: 900) == nil)
        // Without merging, one entry per event.
        var plain = HotWindow(retention: 7200, capacity: 100_000)
        for k in 0..<100 { plain.insert(category: "intrusion", at: origin, t: 1000 + Double(k), incident: storm) }
        #expect(plain.count == 100)
    }

    @Test("a closed incident is not joined; the next candidate is")
    func closed() {
        var w = HotWindow(retention: 7200, capacity: 1000)
        let a = UUID(), b = UUID()
        w.insert(category: "intrusion", at: origin, t: 0, incident: a)
        w.insert(category: "intrusion", at: offset(origin, east: 100, north: 0), t: 0, incident: b)
        w.markClosed([a])
        #expect(w.best(category: "intrusion", near: origin, at: 10, radius: 300, window: 900)?.incident == b)
        w.advance()
        #expect(w.best(category: "intrusion", near: origin, at: 10, radius: 300, window: 900)?.incident == b)
    }

    @Test("equal distance: the nearer observed time wins, then the earlier event")
    func ties() {
        var w = HotWindow(retention: 7200, capacity: 1000)
        let first = UUID(), second = UUID(), closerInTime = UUID()
        w.insert(category: "c", at: origin, t: 100, incident: first)
        w.insert(category: "c", at: origin, t: 100, incident: second)
        #expect(w.best(category: "c", near: origin, at: 0, radius: 10, window: 900)?.incident == first)
        w.insert(category: "c", at: origin, t: 50, incident: closerInTime)
        #expect(w.best(category: "c", near: origin, at: 0, radius: 10, window: 900)?.incident == closerInTime)
    }

    @Test("start follows the newest time by the retention; events before it are not covered")
    func retention() {
        var w = HotWindow(retention: 3600, capacity: 1000)
        #expect(w.covers(t: -1e12, window: 900), "an empty window from -infinity covers everything")
        w.insert(category: "c", at: origin, t: 10_000, incident: UUID())
        w.advance()
        #expect(w.start == 6400)
        #expect(w.covers(t: 7300, window: 900))
        #expect(!w.covers(t: 7299, window: 900))
        w.insert(category: "c", at: origin, t: 6000, incident: UUID())
        #expect(w.count == 1, "an event before the start is left to the database")
    }

    @Test("over capacity the oldest go and start moves past them; searches stay exact after it")
    func capacity() {
        var w = HotWindow(retention: 1e9, capacity: 100)
        var ids: [UUID] = []
        for i in 0..<101 {
            ids.append(UUID())
            w.insert(category: "c", at: offset(origin, east: Double(i) * 1000, north: 0), t: Double(i), incident: ids[i])
        }
        w.advance()
        #expect(w.count <= 100)
        #expect(w.start > 0)
        #expect(!w.covers(t: 0, window: 0))
        #expect(w.best(category: "c", near: offset(origin, east: 100_000, north: 0), at: 100, radius: 10, window: 5)?.incident == ids[100])
    }

    @Test("a dense cluster across cell borders is found whole")
    func cellBorders() {
        var w = HotWindow(retention: 7200, capacity: 10_000)
        let border = LonLat(lon: 95.8, lat: 40.5)  // on a 0.01-degree cell corner
        var n = 0
        for dx in stride(from: -200.0, through: 200, by: 50) {
            for dy in stride(from: -200.0, through: 200, by: 50) {
                w.insert(category: "c", at: offset(border, east: dx, north: dy), t: 0, incident: UUID())
                n += 1
            }
        }
        let found = w.incidents(category: "c", near: border, at: 0, radius: 300, window: 1)
        #expect(found.count == n, "every point within 283 m of the corner")
    }
}

@Suite("Grid map")
struct GridMapTests {
    static func square(_ code: String, _ lon0: Double, _ lat0: Double, _ size: Double) -> GridShape {
        let ring = [LonLat(lon: lon0, lat: lat0), LonLat(lon: lon0 + size, lat: lat0), LonLat(lon: lon0 + size, lat: lat0 + size),
                    LonLat(lon: lon0, lat: lat0 + size), LonLat(lon: lon0, lat: lat0)]
        return GridShape(gridCode: code, villageCode: String(code.prefix(12)), polygons: [[ring]])
    }

    @Test("inside, outside, on a shared edge (the sender's grid wins, else the lowest code), holes")
    func locate() {
        let a = Self.square("620922100201001", 95.0, 40.0, 0.1)
        let b = Self.square("620922100201002", 95.1, 40.0, 0.1)
        let outer = [LonLat(lon: 96, lat: 40), LonLat(lon: 96.3, lat: 40), LonLat(lon: 96.3, lat: 40.3), LonLat(lon: 96, lat: 40.3),
                     LonLat(lon: 96, lat: 40)]
        let hole = [LonLat(lon: 96.1, lat: 40.1), LonLat(lon: 96.2, lat: 40.1), LonLat(lon: 96.2, lat: 40.2), LonLat(lon: 96.1, lat: 40.2),
                    LonLat(lon: 96.1, lat: 40.1)]
        let ring = GridShape(gridCode: "620922100201003", villageCode: "620922100201", polygons: [[outer, hole]])
        let map = GridMap(grids: [b, a, ring])
        #expect(map.locate(LonLat(lon: 95.05, lat: 40.05))?.gridCode == a.gridCode)
        #expect(map.locate(LonLat(lon: 95.15, lat: 40.05))?.gridCode == b.gridCode)
        #expect(map.locate(LonLat(lon: 95.5, lat: 40.05)) == nil)
        #expect(map.locate(LonLat(lon: 95.1, lat: 40.05))?.gridCode == a.gridCode, "shared edge: lowest code")
        #expect(map.locate(LonLat(lon: 95.1, lat: 40.05), preferring: b.gridCode)?.gridCode == b.gridCode, "sender's grid")
        #expect(map.locate(LonLat(lon: 95.0, lat: 40.0))?.gridCode == a.gridCode, "a vertex is covered")
        #expect(map.locate(LonLat(lon: 96.15, lat: 40.15)) == nil, "in the hole")
        #expect(map.locate(LonLat(lon: 96.1, lat: 40.15))?.gridCode == ring.gridCode, "on the hole's edge is covered")
        #expect(map.locate(LonLat(lon: 96.05, lat: 40.15))?.gridCode == ring.gridCode)
    }

    @Test("ellipsoidal distance agrees with the geodesic at correlation distances")
    func distance() {
        // PostGIS: ST_Distance('SRID=4326;POINT(95.78 40.52)'::geography, 'SRID=4326;POINT(95.7835 40.5227)'::geography)
        let d = LonLat(lon: 95.78, lat: 40.52).ellipsoidDistance(to: LonLat(lon: 95.7835, lat: 40.5227))
        #expect(abs(d - 421.734) < 0.01, "got \(d)")
    }
}
