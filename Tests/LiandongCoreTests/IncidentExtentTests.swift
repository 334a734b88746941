import Foundation
import LiandongCore
import Testing

/// Bounded incidents without a database: the extent an incident keeps and what it admits.
@Suite("Incident extent (bounds)")
struct IncidentExtentTests {
    @Test("a chain of events 240 m apart: admitted while every event is within max_span_m, refused after")
    func chain() {
        var extent = IncidentExtent(origin, at: 0)
        for i in 1...4 {
            let p = offset(origin, east: Double(i) * 240, north: 0)
            #expect(extent.admits(p, at: Double(i) * 10, maxSpan: 1000, maxDuration: 0))
            extent.add(p, at: Double(i) * 10)
        }
        // 1,200 m from the first event, 240 m from the last: the chain is cut here.
        let fifth = offset(origin, east: 1200, north: 0)
        #expect(!extent.admits(fifth, at: 50, maxSpan: 1000, maxDuration: 0))
        #expect(abs(extent.farthest(from: fifth) - 1200) < 5, "the test's offsets are spherical, distances ellipsoidal")
        #expect(extent.admits(fifth, at: 50, maxSpan: 0, maxDuration: 0), "0: unbounded")
        #expect(extent.hull.count == 2, "collinear events: the two ends")
    }

    @Test("the hull keeps the extreme events only, however many events join; the farthest is found from any side")
    func hull() {
        var extent = IncidentExtent(origin, at: 0)
        // A square 400 m wide, with 500 events inside and on it.
        var k = 0.0
        for east in stride(from: -200.0, through: 200, by: 20) {
            for north in stride(from: -200.0, through: 200, by: 20) {
                k += 1
                extent.add(offset(origin, east: east, north: north), at: k)
            }
        }
        #expect(extent.hull.count == 4, "\(extent.hull.count) vertices")
        // The diagonal is 566 m: a point 100 m beyond one corner is 100 + 566 m from the opposite one.
        let beyond = offset(origin, east: 270.71, north: 270.71)
        #expect(abs(extent.farthest(from: beyond) - 665.7) < 5)
        #expect(extent.admits(beyond, at: k, maxSpan: 700, maxDuration: 0))
        #expect(!extent.admits(beyond, at: k, maxSpan: 600, maxDuration: 0))
        // The same position many times: one vertex.
        var still = IncidentExtent(origin, at: 0)
        for t in 1...1000 { still.add(origin, at: Double(t)) }
        #expect(still.hull == [origin] && still.first == 0 && still.last == 1000)
    }

    @Test("max_duration_s: the incident's observed times, with the new event, within the bound; late events count too")
    func duration() {
        var extent = IncidentExtent(origin, at: 1000)
        extent.add(origin, at: 3000)
        #expect(extent.admits(origin, at: 4600, maxSpan: 0, maxDuration: 3600))
        #expect(!extent.admits(origin, at: 4601, maxSpan: 0, maxDuration: 3600))
        #expect(!extent.admits(origin, at: -601, maxSpan: 0, maxDuration: 3600), "an event observed long before the first")
        #expect(extent.admits(origin, at: 99_999, maxSpan: 1000, maxDuration: 0))
        let rebuilt = IncidentExtent(points: [origin, offset(origin, east: 300, north: 0), origin], first: 1000, last: 3000)
        #expect(rebuilt.first == 1000 && rebuilt.last == 3000 && rebuilt.hull.count == 2)
    }

    @Test("the centre is the mean position of every event, however it was built")
    func centre() {
        var extent = IncidentExtent(origin, at: 0)
        extent.add(offset(origin, east: 300, north: 0), at: 1)
        extent.add(offset(origin, east: 300, north: 0), at: 2)  // inside the hull: still counted
        #expect(extent.count == 3 && abs(extent.centre.ellipsoidDistance(to: offset(origin, east: 200, north: 0))) < 0.5)
        let loaded = IncidentExtent(points: [origin, offset(origin, east: 300, north: 0)], first: 0, last: 2,
                                    centre: offset(origin, east: 200, north: 0), count: 3)
        #expect(loaded.count == 3 && loaded.centre.ellipsoidDistance(to: extent.centre) < 0.01)
        var grown = loaded
        grown.add(offset(origin, east: 200, north: 0), at: 3)
        #expect(grown.count == 4 && grown.centre.ellipsoidDistance(to: offset(origin, east: 200, north: 0)) < 0.5)
        #expect(Rules().rule(for: "intrusion").centreMeters == 210)
    }

    @Test("defaults: max_span_m twice the radius, max_duration_s four times the window; explicit values and 0 win")
    func defaults() {
        let crowd = Rules().rule(for: "crowd")
        #expect(crowd.maxSpan == 1000 && crowd.maxDuration == 7200)
        let custom = CategoryRule(radiusMeters: 300, windowSeconds: 900, maxSpanMeters: 0, maxDurationSeconds: 1800)
        #expect(custom.maxSpan == 0 && custom.maxDuration == 1800)
    }

    @Test("every incident in reach with its best match, best first")
    func matches() {
        var w = HotWindow(retention: 7200, capacity: 1000)
        let a = UUID(), b = UUID()
        w.insert(category: "crowd", at: offset(origin, east: 100, north: 0), t: 1000, incident: a)
        w.insert(category: "crowd", at: offset(origin, east: 30, north: 0), t: 1000, incident: a)
        w.insert(category: "crowd", at: offset(origin, east: 60, north: 0), t: 1000, incident: b)
        let found = w.matches(category: "crowd", near: origin, at: 1000, radius: 500, window: 1800)
        #expect(found.map(\.incident) == [a, b])
        #expect(abs(found[0].distance - 30) < 0.5 && abs(found[1].distance - 60) < 0.5)
    }
}
