import Foundation
import LiandongCore
import Testing

/// Grid workers' positions (issue 30): the decoder, the plan step and the nearest-worker decision,
/// without a database.
@Suite("Worker positions")
struct WorkerPositionTests {
    static let now = 1_796_000_000.0

    static func fields(_ json: String) -> Fields {
        guard case .object(let o) = try! JSONValue.parse(Array(json.utf8)) else { fatalError() }
        return Fields(o)
    }

    static func decode(_ json: String) -> Result<WorkerPosition, Rejection> {
        var f = fields(json)
        return Result { try WorkerPosition.decode(&f, by: MessageDecoder(), now: now) }.mapError { $0 as! Rejection }
    }

    @Test("a position is read with its CRS converted to WGS-84, its time checked and its state; refusals name the field")
    func decoding() throws {
        let at = Timestamp.formatCST(Self.now - 30)
        let gcj = CoordinateConverter.fromWGS84(origin, to: .gcj02)
        let p = try Self.decode("""
            {"schema":"liandong.worker_position.v1","worker_id":"w-001","lon":\(gcj.lon),"lat":\(gcj.lat),"crs":"gcj02","at":"\(at)","state":"on_patrol"}
            """).get()
        #expect(p.workerID == "w-001" && p.state == .onPatrol && p.crs == .gcj02 && p.at == Self.now - 30)
        #expect(p.position.ellipsoidDistance(to: origin) < 2, "converted from GCJ-02")
        #expect(p.id == "position:w-001:\(at)")
        func reason(_ json: String) -> RejectReason? { if case .failure(let r) = Self.decode(json) { r.reason } else { nil } }
        let base = #""schema":"liandong.worker_position.v1","worker_id":"w-001","lon":95.78,"lat":40.52"#
        #expect(reason("{\(base),\"at\":\"\(at)\",\"state\":\"asleep\"}") == .invalidField)
        #expect(reason("{\(base),\"crs\":\"utm\",\"at\":\"\(at)\",\"state\":\"on_task\"}") == .invalidField)
        #expect(reason("{\(base),\"at\":\"\(Timestamp.formatCST(Self.now - 30 * 86_400))\",\"state\":\"on_task\"}") == .timeOutOfRange)
        #expect(reason(#"{"schema":"liandong.worker_position.v1","worker_id":"w-001","at":"\#(at)","state":"on_task"}"#) == .missingField)
        #expect(reason("{\"schema\":\"liandong.worker_position.v2\",\"worker_id\":\"w\"}") == .unknownSchema)
    }

    @Test("the plan step: a registered worker inside a grid, within the sender's scope; placed in that grid, with the worker's own")
    func planStep() {
        let grid = "620922100001001"
        let sw = offset(origin, east: -1000, north: -1000), ne = offset(origin, east: 1000, north: 1000)
        let shape = GridShape(gridCode: grid, villageCode: String(grid.prefix(12)),
                              polygons: [[[sw, LonLat(lon: ne.lon, lat: sw.lat), ne, LonLat(lon: sw.lon, lat: ne.lat), sw]]])
        var reference = ReferenceData(version: "1", grids: GridMap(grids: [shape]), gridByCode: [grid: (shape, origin)], cameras: [:],
                                      workers: [grid: "w-001"])
        reference.workerGrids = ["w-001": grid]
        let inside = WorkerPosition(workerID: "w-001", position: origin, at: Self.now, state: .onPatrol)
        #expect(inside.isKnown(to: reference) && inside.refusal(from: nil, reference: reference) == nil)
        let placed = inside.placed(by: reference)
        #expect(placed.gridCode == grid && placed.homeGridCode == grid && inside.gridCode == nil)
        let stranger = WorkerPosition(workerID: "w-999", position: origin, at: Self.now, state: .onPatrol)
        #expect(!stranger.isKnown(to: reference) && stranger.refusal(from: nil, reference: reference)?.reason == .unknownWorker)
        let away = WorkerPosition(workerID: "w-001", position: offset(origin, east: 5000, north: 0), at: Self.now, state: .onPatrol)
        #expect(away.refusal(from: nil, reference: reference)?.reason == .outsideArea)
        let township = Sender(name: "app-other", role: .gateway, scope: "620922101")
        #expect(inside.refusal(from: township, reference: reference)?.reason == .outOfScope)
        #expect(inside.refusal(from: Sender(name: "app", role: .gateway, scope: "620922100"), reference: reference) == nil)
    }

    @Test("the nearest workers on duty: latest sighting only, off duty and stale left out, the incident's grid first when equally near, at most 3")
    func nearest() {
        let g = "620922100001001", other = "620922100001002", now = Self.now
        func at(_ east: Double) -> LonLat { offset(origin, east: east, north: 0) }
        let sightings = [
            WorkerSighting(workerID: "far", gridCode: other, position: at(900), at: now - 10, state: .onPatrol),
            WorkerSighting(workerID: "near", gridCode: other, position: at(100), at: now - 10, state: .onTask),
            WorkerSighting(workerID: "home", gridCode: g, position: at(-100), at: now - 20, state: .onPatrol),
            // Went off duty since the on-duty sighting beside the incident.
            WorkerSighting(workerID: "gone", gridCode: g, position: at(10), at: now - 100, state: .onPatrol),
            WorkerSighting(workerID: "gone", gridCode: g, position: at(2000), at: now - 50, state: .offDuty),
            // Seen last six minutes ago.
            WorkerSighting(workerID: "stale", gridCode: g, position: at(5), at: now - 301, state: .onPatrol),
            WorkerSighting(workerID: "fourth", gridCode: g, position: at(1500), at: now - 5, state: .onPatrol),
        ]
        let picked = WorkerSuggestion.nearest(to: origin, grid: g, among: sightings, now: now)
        #expect(picked.map(\.workerID) == ["home", "near", "far"], "equally near (100 m): the incident's grid first")
        #expect(picked.first?.distanceMeters == 100 && picked.first?.seenAt == now - 20)
        #expect(WorkerSuggestion.nearest(to: origin, grid: g, among: sightings, now: now, limit: 5).map(\.workerID)
                == ["home", "near", "far", "fourth"])
        // A phone's clock ahead (within ingest.max_future_s): seen now.
        let ahead = sightings + [WorkerSighting(workerID: "ahead", gridCode: g, position: at(1), at: now + 30, state: .onPatrol)]
        #expect(WorkerSuggestion.nearest(to: origin, grid: g, among: ahead, now: now).first
                == SuggestedWorker(workerID: "ahead", gridCode: g, distanceMeters: 1, seenAt: now))
        #expect(WorkerSuggestion.nearest(to: origin, grid: g, among: [], now: now).isEmpty)
    }

    @Test("the nearest three of a county's workers, kept as it goes, are those a full sort gives (seeded random counties)")
    func nearestAsSorted() {
        var rng = SplitMix64(seed: 30)
        for round in 0..<20 {
            let now = Self.now
            let sightings = (0..<767).map { k -> WorkerSighting in
                let east = Double(rng.next() % 40_000) - 20_000, north = Double(rng.next() % 40_000) - 20_000
                let state = WorkerPosition.State.allCases[Int(rng.next() % 3)]
                return WorkerSighting(workerID: String(format: "w-%04d", k), gridCode: "62092210000100\(k % 10)",
                                      position: offset(origin, east: east, north: north), at: now - Double(rng.next() % 600), state: state)
            }
            let sorted = sightings.filter { $0.state.onDuty && now - $0.at <= 300 }
                .map { ($0, origin.ellipsoidDistance(to: $0.position)) }
                .sorted { ($0.1, $0.0.workerID) < ($1.1, $1.0.workerID) }
                .prefix(3).map(\.0.workerID)
            #expect(WorkerSuggestion.nearest(to: origin, grid: "620922100001000", among: sightings, now: now).map(\.workerID) == Array(sorted),
                    "round \(round)")
        }
    }
}
