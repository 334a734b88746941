import Foundation
import LiandongCore
import Testing

/// The batch planner without a database: the facts it asks for come from `FactsInMemory`, a
/// plain list of committed events and incidents that answers each request the obvious way.
@Suite("Batch planner (pure)")
struct BatchPlannerTests {
    static let grid = "620922100001001"
    static let village = "620922100001"

    /// One grid 20 km wide around `origin`.
    static func reference(cameras: [String: LonLat] = [:], silences: [Silence] = [], suppressed: Set<String> = []) -> ReferenceData {
        let sw = offset(origin, east: -10_000, north: -10_000), ne = offset(origin, east: 10_000, north: 10_000)
        let ring = [sw, LonLat(lon: ne.lon, lat: sw.lat), ne, LonLat(lon: sw.lon, lat: ne.lat), sw]
        let shape = GridShape(gridCode: grid, villageCode: village, polygons: [[ring]])
        var r = ReferenceData(version: "1", grids: GridMap(grids: [shape]), gridByCode: [grid: (shape, origin)], cameras: cameras,
                              workers: [grid: "w1"])
        r.cameraGrids = cameras.mapValues { _ in grid }
        r.divisionNames = ["620922": "瓜州县", village: "村"]
        r.silences = silences
        r.suppressedCameras = suppressed
        return r
    }

    /// fire: unbounded; crowd: bounded (span 600 m, duration 40 min).
    static let rules: Rules = {
        var r = Rules(categories: ["fire": CategoryRule(radiusMeters: 300, windowSeconds: 600, maxSpanMeters: 0, maxDurationSeconds: 0),
                                   "crowd": CategoryRule(radiusMeters: 250, windowSeconds: 900, maxSpanMeters: 600,
                                                         maxDurationSeconds: 2400)])
        r.updateIntervalSeconds = 0
        return r
    }()

    static func event(_ id: String, _ category: String, at p: LonLat, t: Double, source: EventSource = .report, device: String? = nil,
                      alarm: AlarmClass? = nil) -> IngestEvent {
        var e = IngestEvent(source: source, sourceID: id, gatewayID: "gw", deviceID: device, category: category, priority: 3,
                            observedAt: t, position: p, crs: .wgs84, body: "{}")
        e.alarmClass = alarm
        return e
    }

    static func inbound(_ e: IngestEvent) -> Inbound {
        .event(e, RawMessage(endpoint: "test", frames: [], receivedAt: e.observedAt))
    }

    /// Plans `batch` to the end, answering every request from `facts`; the requests asked, in order.
    static func plan(_ planner: inout BatchPlanner, _ batch: [Inbound], _ facts: FactsInMemory, reference: ReferenceData,
                     fresh: ReferenceData? = nil, now: Double = 1e9, after inFlight: BatchPlan? = nil) -> (BatchPlan, [PlanFactRequest])
    {
        var asked: [PlanFactRequest] = []
        var step = planner.start(batch, reference: reference, now: now, after: inFlight)
        while case .need(let request) = step {
            asked.append(request)
            step = planner.resume(facts.answer(request, fresh: fresh ?? reference))
        }
        guard case .done(let plan) = step else { fatalError() }
        return (plan, asked)
    }

    @Test("seeded random batches join exactly as a brute-force join over every event does (bounds, late events, closed incidents, duplicates, window reloads)",
          arguments: 1...24)
    func randomBatchesMatchBruteForce(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let facts = FactsInMemory()
        var model = BruteForceJoin(rules: Self.rules)
        // A small window: it fills, its start moves on, and older events are matched in "storage".
        var planner = BatchPlanner(rules: Self.rules, windowCapacity: 40)
        planner.load(window: facts.window(retention: planner.retention, capacity: planner.windowCapacity))
        var pairs: [UUID: Int] = [:], sent: [IngestEvent] = []
        var clock = 100_000.0, number = 0, joined = 0, late = 0, cut = 0
        for _ in 0..<40 {
            var batch: [IngestEvent] = []
            for _ in 0..<Int.random(in: 1...25, using: &rng) {
                if !sent.isEmpty, Double.random(in: 0..<1, using: &rng) < 0.05 {
                    batch.append(sent.randomElement(using: &rng)!)  // a retransmission
                    continue
                }
                clock += Double.random(in: 0..<40, using: &rng)
                // Mostly in order; some late by up to two hours (before the window's start).
                let t = Double.random(in: 0..<1, using: &rng) < 0.15 ? clock - Double.random(in: 0..<7200, using: &rng) : clock
                let p = offset(origin, east: Double.random(in: -1500..<1500, using: &rng), north: Double.random(in: -1500..<1500, using: &rng))
                number += 1
                batch.append(Self.event("e\(number)", Bool.random(using: &rng) ? "fire" : "crowd", at: p, t: t,
                                        source: Bool.random(using: &rng) ? .alert : .report))
            }
            let (plan, _) = Self.plan(&planner, batch.map(Self.inbound), facts, reference: Self.reference())
            let expected = model.add(batch)
            for (k, e) in batch.enumerated() {
                switch (plan.outcomes[k], expected[k]) {
                case (.duplicate?, nil): continue
                case (.stored(let id)?, let incident?):
                    let planned = UUID(uuidString: id)!
                    if let known = pairs[planned] {
                        #expect(known == incident, "seed \(seed): \(e.sourceID) joined another incident than the brute-force join")
                        joined += 1
                    } else {
                        let taken = pairs.values.contains(incident)
                        #expect(!taken, "seed \(seed): \(e.sourceID) opened an incident the brute-force join did not")
                        pairs[planned] = incident
                    }
                default:
                    Issue.record("seed \(seed): \(e.sourceID) was \(String(describing: plan.outcomes[k])), brute force: \(String(describing: expected[k]))")
                }
            }
            late += plan.counts.late
            cut += plan.counts.cut
            facts.commit(plan)
            planner.committed()
            sent += batch
            // Dispatchers close an incident now and then; a crash now and then loads the window again.
            if Double.random(in: 0..<1, using: &rng) < 0.3, let open = facts.openIncidents.randomElement(using: &rng) {
                facts.close(open)
                model.close(pairs[open]!)
            }
            if Double.random(in: 0..<1, using: &rng) < 0.1 { planner.discardWindow() }
        }
        #expect(joined > 20 && late > 0, "seed \(seed): the batches must exercise joins (\(joined)) and stored history (\(late))")
        // Most keys are answered by the planner's recent keys; late events, retransmissions and
        // every key after a window reload are asked.
        #expect(facts.keysAsked > 0 && facts.keysAsked < number / 2, "seed \(seed): \(facts.keysAsked) of \(number) keys asked")
        _ = cut
    }

    @Test("every seed together exercises bounds: some events are kept out of their nearest incident")
    func boundsExercised() {
        var cut = 0
        for seed in UInt64(1)...8 {
            var rng = SplitMix64(seed: seed)
            let facts = FactsInMemory()
            var planner = BatchPlanner(rules: Self.rules, windowCapacity: 1000)
            planner.load(window: facts.window(retention: planner.retention, capacity: planner.windowCapacity))
            var clock = 100_000.0
            for b in 0..<10 {
                let batch = (0..<20).map { k -> Inbound in
                    clock += Double.random(in: 0..<60, using: &rng)
                    // A line of crowd reports 200 m apart: chaining would make one incident kilometres wide.
                    return Self.inbound(Self.event("c\(b)-\(k)", "crowd", at: offset(origin, east: Double(b * 20 + k) * 200, north: 0), t: clock))
                }
                let (plan, _) = Self.plan(&planner, batch, facts, reference: Self.reference())
                cut += plan.counts.cut
                facts.commit(plan)
                planner.committed()
            }
        }
        #expect(cut > 0)
    }

    @Test("close incidents stay apart: lattices 1.25 x the radius apart, cameras up to 0.25 x the radius from the spot, any arrival order",
          arguments: 1...12)
    func closeIncidentsStayApart(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let facts = FactsInMemory()
        var planner = BatchPlanner(rules: Rules(), windowCapacity: 100_000)
        planner.load(window: facts.window(retention: planner.retention, capacity: planner.windowCapacity))
        // Three categories (radius 300, 500, 300 m), a 4 x 4 lattice each, observed within a minute.
        var events: [(IngestEvent, truth: Int)] = []
        for (c, category) in ["intrusion", "crowd", "fight"].enumerated() {
            let radius = Rules().rule(for: category).radiusMeters
            for site in 0..<16 {
                let spot = offset(origin, east: Double(site % 4) * 1.25 * radius + Double(c) * 10, north: Double(site / 4) * 1.25 * radius)
                func near(_ metres: Double) -> LonLat {
                    let angle = Double.random(in: 0..<(2 * .pi), using: &rng), r = metres * Double.random(in: 0...1, using: &rng)
                    return offset(spot, east: r * cos(angle), north: r * sin(angle))
                }
                for (k, p) in [near(0.25 * radius), near(0.25 * radius), near(30)].enumerated() {
                    let e = Self.event("\(category)-\(site)-\(k)", category, at: p, t: 100_000 + Double.random(in: 0..<60, using: &rng),
                                       source: k < 2 ? .alert : .report)
                    events.append((e, c * 16 + site))
                }
            }
        }
        events.shuffle(using: &rng)
        var incidentOf: [String: String] = [:]
        var start = 0
        while start < events.count {
            let n = Int.random(in: 1...20, using: &rng)
            let batch = Array(events[start..<min(start + n, events.count)])
            start += n
            let (plan, _) = Self.plan(&planner, batch.map { Self.inbound($0.0) }, facts, reference: Self.reference())
            for (k, item) in batch.enumerated() { if case .stored(let id)? = plan.outcomes[k] { incidentOf[item.0.sourceID] = id } }
            facts.commit(plan)
            planner.committed()
        }
        // Pairwise: every two events of a true incident together, no two of different ones.
        var together = 0, apart = 0, merged = 0, split = 0
        for i in events.indices {
            for j in events.indices where j > i {
                let same = incidentOf[events[i].0.sourceID] == incidentOf[events[j].0.sourceID]
                if events[i].truth == events[j].truth { if same { together += 1 } else { split += 1 } } else if same { merged += 1 } else { apart += 1 }
            }
        }
        #expect(merged == 0 && split == 0, "seed \(seed): \(merged) pairs of two incidents merged, \(split) pairs of one split")
        #expect(together == 48 * 3 && apart > 0)
    }

    @Test("an unknown camera asks for the reference data once, then is refused; a camera imported meanwhile is placed")
    func freshReferenceOnce() {
        let facts = FactsInMemory()
        var planner = BatchPlanner(rules: Self.rules, windowCapacity: 100)
        planner.load(window: facts.window(retention: planner.retention, capacity: 100))
        var alert = Self.event("a1", "fire", at: origin, t: 1000, source: .alert, device: "62092200001320000001")
        alert.position = nil
        let (refused, asked) = Self.plan(&planner, [Self.inbound(alert)], facts, reference: Self.reference())
        #expect(asked.first == .freshReference && asked.filter { $0 == .freshReference }.count == 1)
        guard case .rejected(let r)? = refused.outcomes[0] else { Issue.record("not refused"); return }
        #expect(r.reason == .unknownDevice)
        #expect(refused.deadLetters.count == 1)
        let imported = Self.reference(cameras: ["62092200001320000001": origin])
        let (placed, _) = Self.plan(&planner, [Self.inbound(alert)], facts, reference: Self.reference(), fresh: imported)
        guard case .stored? = placed.outcomes[0] else { Issue.record("not stored: \(String(describing: placed.outcomes[0]))"); return }
        #expect(placed.events.first?.placed.crs == "camera")
    }

    @Test("the mute order: a silence before an inhibition before a noisy camera; only loud events make tasks")
    func muteOrder() {
        let facts = FactsInMemory()
        var planner = BatchPlanner(rules: Self.rules, windowCapacity: 100)
        planner.load(window: facts.window(retention: planner.retention, capacity: 100))
        let cam = "62092200001320000001", other = "62092200001320000002", noisy = "62092200001320000003"
        let silence = Silence(id: 7, devicePrefix: cam, divisionPrefix: "", category: nil, startsAt: 0, endsAt: 2000)
        let reference = Self.reference(cameras: [cam: origin, other: origin, noisy: origin], silences: [silence], suppressed: [noisy])
        let far = offset(origin, east: 3000, north: 0), farther = offset(origin, east: 6000, north: 0)
        let batch = [
            Self.event("lost", "fire", at: far, t: 1000, source: .alert, device: other, alarm: .pictureLost),
            Self.event("analytic", "fire", at: far, t: 1100, source: .alert, device: other, alarm: .analytics),
            Self.event("silenced", "fire", at: origin, t: 1000, source: .alert, device: cam, alarm: .analytics),
            Self.event("noisy", "fire", at: farther, t: 1000, source: .alert, device: noisy),
        ]
        let (plan, _) = Self.plan(&planner, batch.map(Self.inbound), facts, reference: reference)
        let muted = Dictionary(uniqueKeysWithValues: plan.events.map { ($0.placed.event.sourceID, $0.mutedBy) })
        #expect(muted["silenced"] == "silence:7")
        #expect(muted["analytic"] == "inhibited:\(other)")
        #expect(muted["noisy"] == "suppressed")
        #expect(muted["lost"] == .some(nil))
        #expect(plan.counts.silenced == 1 && plan.counts.inhibited == 1 && plan.counts.suppressed == 1)
        // Three incidents; the silenced one's and the noisy one's make no task, the picture-lost one's does.
        #expect(plan.opened.count == 3 && plan.silencedOnly.count == 2)
        #expect(plan.freshTasks.count == 1 && plan.created.count == 1)
        #expect(plan.created.first?.task.incidentID == plan.events.first { $0.placed.event.sourceID == "lost" }?.incident.uuidString.lowercased())
    }

    @Test("a batch planned while the one before it is written sees its ids as stored and its late events as correlated")
    func inFlight() {
        let facts = FactsInMemory()
        var planner = BatchPlanner(rules: Self.rules, windowCapacity: 100)
        // A stored open incident makes the window start at newest - retention.
        let seed = Self.event("seed", "fire", at: offset(origin, east: 5000, north: 0), t: 100_000)
        let (first, _) = Self.plan(&planner, [Self.inbound(seed)], facts, reference: Self.reference())
        facts.commit(first)
        planner.discardWindow()
        planner.load(window: facts.window(retention: planner.retention, capacity: 100))
        let oldT = 100_000 - planner.retention - 500
        let lateOne = Self.event("late1", "fire", at: origin, t: oldT)
        let (writing, _) = Self.plan(&planner, [Self.inbound(lateOne)], facts, reference: Self.reference())
        #expect(writing.lateEvents.count == 1 && writing.counts.late == 1)
        // Not committed yet: the next batch repeats its id and sends another late event beside it.
        let lateTwo = Self.event("late2", "fire", at: offset(origin, east: 50, north: 0), t: oldT + 10)
        let (next, _) = Self.plan(&planner, [Self.inbound(lateOne), Self.inbound(lateTwo)], facts, reference: Self.reference(),
                                  after: writing)
        #expect(next.outcomes[0] == .duplicate)
        #expect(next.outcomes[1] == writing.outcomes[0], "joins the in-flight batch's incident")
    }

    @Test("positions a batch plans are where its and later batches' verify tasks find the nearest workers on duty; a reloaded window brings them back")
    func suggestedWorkers() {
        let facts = FactsInMemory()
        var planner = BatchPlanner(rules: Self.rules, windowCapacity: 100)
        var reference = Self.reference(cameras: ["62092200001320000001": origin])
        reference.workerGrids = ["w1": Self.grid, "w2": Self.grid, "w3": Self.grid]
        let now = 1e9
        func position(_ worker: String, east: Double, state: WorkerPosition.State, at t: Double) -> Inbound {
            .record(WorkerPosition(workerID: worker, position: offset(origin, east: east, north: 0), at: t, state: state),
                    RawMessage(endpoint: "test", frames: [], receivedAt: t))
        }
        let (positions, _) = Self.plan(&planner, [position("w1", east: 400, state: .onPatrol, at: now - 20),
                                                  position("w2", east: 100, state: .offDuty, at: now - 10),
                                                  position("w3", east: 900, state: .onTask, at: now - 30)],
                                       facts, reference: reference, now: now)
        #expect(positions.records.count == 3 && (positions.records[0] as? WorkerPosition)?.gridCode == Self.grid)
        #expect(positions.presence.latest.count == 3)
        facts.commit(positions)
        let alert = Self.event("a1", "intrusion", at: origin, t: now, source: .alert, device: "62092200001320000001")
        let (plan, _) = Self.plan(&planner, [Self.inbound(alert)], facts, reference: reference, now: now)
        let verify = plan.freshTasks.values.first
        #expect(verify?.kind == .verify)
        #expect(verify?.suggestedWorkers?.map(\.workerID) == ["w1", "w3"], "w2 is off duty")
        #expect(verify?.suggestedWorkers?.first?.seenAt == now - 20)
        // After a failure the window is loaded again, with the positions committed meanwhile.
        facts.commit(plan)
        planner.discardWindow()
        facts.sightings.append(WorkerSighting(workerID: "w3", gridCode: Self.grid, position: offset(origin, east: 50, north: 0), at: now,
                                              state: .onPatrol))
        planner.load(window: facts.window(retention: planner.retention, capacity: 100))
        let again = Self.event("a2", "intrusion", at: offset(origin, east: 5000, north: 0), t: now + 1, source: .alert,
                               device: "62092200001320000001")
        let (later, _) = Self.plan(&planner, [Self.inbound(again)], facts, reference: reference, now: now + 1)
        let reloaded = later.freshTasks.values.first?.suggestedWorkers ?? []
        #expect(reloaded.map(\.workerID) == ["w1", "w3"] && reloaded.last?.seenAt == now, "w3 as last committed, 50 m east")
    }
}

/// Committed events and incidents in memory, answering the planner's requests as the
/// PostgreSQL queries of `PlanFactStore` do (without their LIMIT of 64 nearest events).
final class FactsInMemory {
    struct Stored {
        var key: EventKey
        var category: String
        var point: LonLat
        var t: Double
        var incident: UUID
        var id: Int64
    }

    var events: [Stored] = []
    var open: [UUID: Bool] = [:]
    var span: [UUID: (first: Double, last: Double)] = [:]
    /// Workers' positions committed (the window's presence: the latest of each).
    var sightings: [WorkerSighting] = []
    /// How many keys the planner asked about (the others it knew were not stored).
    var keysAsked = 0

    var openIncidents: [UUID] { open.filter(\.value).map(\.key).sorted { $0.uuidString < $1.uuidString } }

    func close(_ id: UUID) { open[id] = false }

    func commit(_ plan: BatchPlan) {
        for case let w as WorkerPosition in plan.records {
            sightings.append(WorkerSighting(workerID: w.workerID, gridCode: w.homeGridCode ?? "", position: w.position, at: w.at, state: w.state))
        }
        for id in plan.opened.keys { open[id] = true }
        for e in plan.events {
            let t = e.placed.event.observedAt
            events.append(Stored(key: EventKey(e.placed.event), category: e.placed.event.category, point: e.placed.point, t: t,
                                 incident: e.incident, id: Int64(events.count + 1)))
            let s = span[e.incident]
            span[e.incident] = (min(s?.first ?? t, t), max(s?.last ?? t, t))
        }
    }

    func window(retention: Double, capacity: Int) -> WindowFacts {
        let latest = Dictionary(sightings.map { ($0.workerID, $0) }, uniquingKeysWith: { $0.at >= $1.at ? $0 : $1 })
        // The recent keys, as PlanFactStore.window loads them: within `retention` of the newest
        // event (the store: of now), at most `capacity`, the newest.
        let horizon = (events.map(\.t).max() ?? 0) - retention
        let recent = events.filter { $0.t >= horizon }.sorted { $0.t < $1.t }.suffix(capacity)
        let keys = recent.map { (key: $0.key, t: $0.t) }
        guard let newest = span.filter({ open[$0.key] == true }).map(\.value.last).max() else {
            return WindowFacts(newest: nil, events: [], sightings: Array(latest.values), keys: keys, keysHorizon: horizon,
                               keysComplete: keys.count < capacity)
        }
        let from = newest - retention
        let rows = events.filter { open[$0.incident] == true && span[$0.incident]!.last >= from && $0.t >= from }
            .sorted { ($0.t, $0.id) > ($1.t, $1.id) }.prefix(capacity)
        return WindowFacts(newest: newest, events: rows.map {
            WindowEvent(category: $0.category, point: $0.point, t: $0.t, incident: $0.incident, ordinal: $0.id,
                        incidentFirst: span[$0.incident]!.first)
        }, sightings: Array(latest.values), keys: keys, keysHorizon: horizon, keysComplete: keys.count < capacity)
    }

    func extents(_ ids: Set<UUID>) -> [UUID: IncidentExtent] {
        var out: [UUID: IncidentExtent] = [:]
        for id in ids {
            let points = events.filter { $0.incident == id }.map(\.point)
            if let s = span[id], !points.isEmpty { out[id] = IncidentExtent(points: points, first: s.first, last: s.last) }
        }
        return out
    }

    func answer(_ request: PlanFactRequest, fresh: ReferenceData) -> PlanFacts {
        switch request {
        case .freshReference: return .reference(fresh)
        case .window(let retention, let capacity): return .window(window(retention: retention, capacity: capacity))
        case .extents(let ids): return .extents(extents(ids))
        case .stored(let r):
            keysAsked += r.keys.count
            let keys = Set(events.map(\.key))
            let history = r.probes.map { probe -> [CorrelationMatch] in
                var best: [UUID: CorrelationMatch] = [:]
                for e in events where e.category == probe.category && abs(e.t - probe.t) <= probe.window && e.t < r.before
                    && open[e.incident] == true
                {
                    let d = probe.point.ellipsoidDistance(to: e.point)
                    guard d <= probe.radius else { continue }
                    let m = CorrelationMatch(incident: e.incident, distance: d, seconds: abs(e.t - probe.t), ordinal: e.id)
                    if best[e.incident].map({ m < $0 }) ?? true { best[e.incident] = m }
                }
                return best.values.sorted()
            }
            return .stored(StoredFacts(stored: Set(r.keys.filter { keys.contains($0) }), closed: r.candidates.filter { open[$0] == false },
                                       extents: extents(r.extents), probes: r.probes, history: history))
        }
    }
}

/// The join rule stated directly: each event, in observed-time order, among the open incidents of
/// its category with an event within the radius and window (all events before it, no window, no
/// index, no database), joins the nearest (by its nearest such event, then time) of those whose
/// bounds it keeps and whose nearest event lies within 0.6 x the radius or whose centre (the mean
/// of its events' positions) within 0.7 x; else it opens a new incident.
struct BruteForceJoin {
    let rules: Rules
    var events: [(category: String, point: LonLat, t: Double, incident: Int)] = []
    var closed = Set<Int>()
    var ids = Set<String>()
    var next = 0

    init(rules: Rules) { self.rules = rules }

    mutating func close(_ incident: Int) { closed.insert(incident) }

    /// The incident of each event of the batch, in input order (nil: a duplicate).
    mutating func add(_ batch: [IngestEvent]) -> [Int?] {
        var out = [Int?](repeating: nil, count: batch.count)
        for (k, e) in batch.enumerated().sorted(by: { ($0.element.observedAt, $0.offset) < ($1.element.observedAt, $1.offset) }) {
            guard ids.insert(e.sourceID).inserted else { continue }
            let rule = rules.rule(for: e.category), p = e.position!
            var candidates: [Int: (Double, Double)] = [:]  // incident -> its nearest event in reach (metres, seconds)
            for o in events where o.category == e.category && !closed.contains(o.incident) && abs(o.t - e.observedAt) <= rule.windowSeconds {
                let d = (p.ellipsoidDistance(to: o.point), abs(o.t - e.observedAt))
                if d.0 <= rule.radiusMeters, candidates[o.incident].map({ d < $0 }) ?? true { candidates[o.incident] = d }
            }
            var best: (incident: Int, nearest: (Double, Double))? = nil
            for (incident, nearest) in candidates {
                let mine = events.filter { $0.incident == incident }
                let first = min(mine.map(\.t).min()!, e.observedAt), last = max(mine.map(\.t).max()!, e.observedAt)
                if rule.maxDuration > 0 && last - first > rule.maxDuration { continue }
                if rule.maxSpan > 0 && !mine.allSatisfy({ $0.point.ellipsoidDistance(to: p) <= rule.maxSpan }) { continue }
                let centre = LonLat(lon: mine.map(\.point.lon).reduce(0, +) / Double(mine.count),
                                    lat: mine.map(\.point.lat).reduce(0, +) / Double(mine.count))
                guard nearest.0 <= 0.6 * rule.radiusMeters || p.ellipsoidDistance(to: centre) <= 0.7 * rule.radiusMeters else { continue }
                if best.map({ nearest < $0.nearest }) ?? true { best = (incident, nearest) }
            }
            let incident = best?.incident ?? { next += 1; return next }()
            events.append((e.category, p, e.observedAt, incident))
            out[k] = incident
        }
        return out
    }
}
