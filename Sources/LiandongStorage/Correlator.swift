import Foundation
import LiandongCore
import LibPQ

/// The writer's correlation state and the only code that reads it: reference data (grids,
/// cameras, workers) and the hot window of recent events of open incidents, read on the store's
/// read session (committed data only). Joins each batch's events to incidents without a query per event; only events
/// observed before the window's start are matched in stored history. Use it from one thread.
package final class Correlator {
    private let db: PGConnection
    private var reference: ReferenceData?
    private var referenceCheckedAt: UInt64 = 0
    private var window: HotWindow?
    /// The extent (times and hull) of incidents that events may join, for the bounds
    /// (max_span_m, max_duration_s): of every incident whose events are all in the window, of
    /// those the batches have touched since, and of others read on demand (`ensureExtents`).
    /// Rebuilt with the window, so a failure part-way never leaves a wrong one.
    private var extents: [UUID: IncidentExtent] = [:]
    /// Whether any category has a bound (else extents are not kept at all).
    private let bounded: Bool
    /// Seconds of observed time the window keeps behind the newest event, and its size limit.
    private let retention: Double
    /// Events of one incident at one spot within this many seconds share a window entry.
    private let mergeSeconds: Double
    private let windowCapacity: Int

    package init(db: PGConnection, rules: Rules, windowCapacity: Int) throws {
        self.db = db
        let widest = ([rules.defaultCategory] + Array(rules.categories.values)).map(\.windowSeconds).max() ?? 3600
        retention = max(2 * widest, 3600)
        let narrowest = ([rules.defaultCategory] + Array(rules.categories.values)).map(\.windowSeconds).min() ?? 60
        mergeSeconds = min(60, narrowest)
        self.windowCapacity = windowCapacity
        bounded = ([rules.defaultCategory] + Array(rules.categories.values)).contains { $0.maxSpan > 0 || $0.maxDuration > 0 }
        // Loaded now, not on the first batch: at a province's scale this takes seconds.
        reference = try ReferenceData.load(db)
        referenceCheckedAt = DispatchTime.now().uptimeNanoseconds
        window = try currentWindow()
    }

    /// Events held in the window.
    package var windowCount: Int { window?.count ?? 0 }

    /// After a commit: the window moves on with the newest observed time; extents of incidents
    /// quiet since before the window's start are let go now and then (read again if needed).
    package func committed() {
        window?.advance()
        if let start = window?.start, extents.count > max(8192, 2 * (window?.count ?? 0)) {
            extents = extents.filter { $0.value.last >= start }
        }
    }

    /// Whether the window is in memory: a batch may be correlated while the one before it is
    /// still being written only then (a window reloaded from PostgreSQL would miss that batch).
    package var hasWindow: Bool { window != nil }

    /// After any failure (the window was changed as the batch was correlated): rebuilt from what
    /// was committed before the next batch.
    package func discardWindow() {
        window = nil
        extents = [:]
    }

    /// Grids, cameras and workers, reloaded when an import has changed them: checked at most once
    /// a second, and always before an event is refused as unknown or outside (`force`).
    package func currentReference(force: Bool = false) throws -> ReferenceData {
        let now = DispatchTime.now().uptimeNanoseconds
        if let reference, !force, now &- referenceCheckedAt < 1_000_000_000 { return reference }
        referenceCheckedAt = now
        if let reference, try ReferenceData.currentVersion(db) == reference.version { return reference }
        let loaded = try ReferenceData.load(db)
        reference = loaded
        return loaded
    }

    /// The window, loaded from the events of open incidents observed within `retention` of the
    /// newest (at most `windowCapacity` of them, newest first).
    private func currentWindow() throws -> HotWindow {
        if let window { return window }
        let newest = try db.query("""
            SELECT extract(epoch FROM max(last_observed_at)) FROM liandong.incidents WHERE status = 'open'
            """).scalar.flatMap(Double.init)
        guard let newest else {
            // No open incident: nothing stored can be joined, the empty window is complete.
            let empty = HotWindow(retention: retention, capacity: windowCapacity, mergeSeconds: mergeSeconds)
            extents = [:]
            window = empty
            return empty
        }
        let from = newest - retention
        let rows = try db.query("""
            SELECT e.category, ST_X(e.geog::geometry), ST_Y(e.geog::geometry), extract(epoch FROM e.observed_at),
                   e.incident_id, e.id, extract(epoch FROM i.first_observed_at)
            FROM liandong.incidents i JOIN liandong.events e ON e.incident_id = i.id
            WHERE i.status = 'open' AND i.last_observed_at >= to_timestamp($1) AND e.observed_at >= to_timestamp($1)
            ORDER BY e.observed_at DESC, e.id DESC
            LIMIT $2
            """, [String(from), String(windowCapacity)])
        var start = from
        let typed = rows.typed
        if rows.count == windowCapacity, let oldest = try typed.last?.double(3) {
            // Full: complete only after the oldest time loaded (some of its peers may be missing).
            start = oldest.nextUp
        }
        var loaded = HotWindow(retention: retention, capacity: windowCapacity, start: start, mergeSeconds: mergeSeconds)
        extents = [:]
        for row in typed.reversed() {
            let point = LonLat(lon: try row.double(1), lat: try row.double(2)), t = try row.double(3)
            let incident = try row.uuid(4)
            loaded.insert(category: try row.string(0), at: point, t: t, incident: incident, ordinal: try row.int64(5))
            // Every event of an incident that began within the window is here: its extent is known.
            if bounded, try row.double(6) >= start { extend(incident, point, at: t) }
        }
        window = loaded
        return loaded
    }


    /// Incidents in the window that these events could join: the writer asks PostgreSQL which of
    /// them were closed meanwhile (by dispatchers' updates) in the same query as its dedup.
    package func candidates(_ placed: [Placed]) throws -> Set<UUID> {
        let window = try currentWindow()
        var candidates = Set<UUID>()
        for p in placed {
            candidates.formUnion(window.incidents(category: p.event.category, near: p.point, at: p.event.observedAt,
                                                  radius: p.rule.radiusMeters, window: p.rule.windowSeconds))
        }
        try ensureExtents(candidates)
        return candidates
    }

    /// Reads the extents of `incidents` not known in memory: their observed-time span and the
    /// convex hull of their events' positions (PostGIS), one query for all of them.
    private func ensureExtents(_ incidents: Set<UUID>) throws {
        guard bounded else { return }
        let missing = incidents.filter { extents[$0] == nil }
        guard !missing.isEmpty else { return }
        let ids = TaskStore.uuidArray(missing.map(\.uuidString))
        guard let span = try db.query("""
            SELECT extract(epoch FROM min(first_observed_at)), extract(epoch FROM max(last_observed_at))
            FROM liandong.incidents WHERE id = ANY($1::uuid[])
            """, [ids]).rows.first, let first = span[0], let last = span[1] else { return }
        // The span as constants: only those day partitions are read.
        let rows = try db.query("""
            SELECT i.id, extract(epoch FROM i.first_observed_at), extract(epoch FROM i.last_observed_at), h.points
            FROM liandong.incidents i
            CROSS JOIN LATERAL (
                SELECT string_agg(ST_X(d.geom)::text || ' ' || ST_Y(d.geom)::text, ',') AS points
                FROM ST_DumpPoints((
                    SELECT ST_ConvexHull(ST_Collect(e.geog::geometry)) FROM liandong.events e
                    WHERE e.incident_id = i.id
                      AND e.observed_at BETWEEN to_timestamp($2::float8) AND to_timestamp($3::float8)
                      AND e.observed_at BETWEEN i.first_observed_at AND i.last_observed_at)) d) h
            WHERE i.id = ANY($1::uuid[])
            """, [ids, first, last])
        for row in rows.typed {
            guard let id = UUID(uuidString: try row.string(0)), let from = try row.optionalDouble(1), let to = try row.optionalDouble(2)
            else { continue }
            let points = (row[3] ?? "").split(separator: ",").compactMap { pair -> LonLat? in
                let xy = pair.split(separator: " ")
                guard xy.count == 2, let lon = Double(xy[0]), let lat = Double(xy[1]) else { return nil }
                return LonLat(lon: lon, lat: lat)
            }
            guard !points.isEmpty else { continue }
            extents[id] = IncidentExtent(points: points, first: from, last: to)
        }
    }

    /// An event of `incident` at `point`, observed at `t`, joins its extent (or starts it).
    private func extend(_ incident: UUID, _ point: LonLat, at t: Double) {
        if extents[incident] == nil { extents[incident] = IncidentExtent(point, at: t) } else { extents[incident]!.add(point, at: t) }
    }

    /// Whether the event may join `incident` within its category's bounds (an incident whose
    /// extent is unknown - none is, by construction - is not bounded).
    private func admits(_ incident: UUID, _ p: Placed) -> Bool {
        guard bounded, let extent = extents[incident] else { return true }
        return extent.admits(p.point, at: p.event.observedAt, maxSpan: p.rule.maxSpan, maxDuration: p.rule.maxDuration)
    }

    /// Joins each event to the nearest open incident of its category with an event within the
    /// category's radius and window, or opens a new incident; in observed-time order, so events
    /// of the same batch join each other. `closed`: candidates closed since they entered the window.
    /// `inFlight`: the late events of a batch correlated before this one and not yet committed
    /// (neither in the window nor visible to the stored-history query).
    package func correlate(_ placed: [Placed], closed: [UUID], inFlight: [LateEvent] = [], _ clock: inout PhaseClock) throws
        -> Correlated
    {
        var window = try currentWindow()
        // Taken out while it changes: the only reference, so inserting does not copy the whole
        // window (copy-on-write), and a failure part-way leaves no window (rebuilt next batch).
        self.window = nil
        window.markClosed(closed)
        let uncovered = placed.indices.filter {
            !window.covers(t: placed[$0].event.observedAt, window: placed[$0].rule.windowSeconds)
        }
        clock.lap("correlate")
        let stored = try storedMatches(uncovered.map { placed[$0] }, before: window.start)
        clock.lap("history")
        var result = Correlated(incidents: [], opened: [:], grown: [:], late: uncovered.count, lateEvents: [], cut: 0)
        // Events of this batch (and of the batch in flight) observed before the window's start:
        // not in the window, not yet in the database.
        var lateInBatch = inFlight
        var storedByItem: [Int: [CorrelationMatch]] = [:]
        for (n, i) in uncovered.enumerated() { storedByItem[i] = stored[n] }
        try ensureExtents(Set(stored.joined().map(\.incident)))
        for (i, p) in placed.enumerated() {
            let t = p.event.observedAt
            var best = window.best(category: p.event.category, near: p.point, at: t, radius: p.rule.radiusMeters,
                                   window: p.rule.windowSeconds)
            if let fromStore = storedByItem[i]?.first { best = [best, fromStore].compactMap { $0 }.min() }
            var lateMatches: [CorrelationMatch] = [], refused: [UUID] = []
            if !lateInBatch.isEmpty {
                for other in lateInBatch where other.category == p.event.category && abs(other.t - t) <= p.rule.windowSeconds {
                    let distance = p.point.ellipsoidDistance(to: other.point)
                    guard distance <= p.rule.radiusMeters else { continue }
                    let match = CorrelationMatch(incident: other.incident, distance: distance, seconds: abs(other.t - t),
                                                 ordinal: Int64.max)
                    lateMatches.append(match)
                    if best == nil || match < best! { best = match }
                }
            }
            // Bounded incidents: the nearest that the event keeps within max_span_m and
            // max_duration_s (usually the nearest of all), or a new one.
            if let nearest = best, !admits(nearest.incident, p) {
                var each: [UUID: CorrelationMatch] = [:]
                for m in window.matches(category: p.event.category, near: p.point, at: t, radius: p.rule.radiusMeters,
                                        window: p.rule.windowSeconds) + (storedByItem[i] ?? []) + lateMatches
                where each[m.incident].map({ m < $0 }) ?? true {
                    each[m.incident] = m
                }
                let ordered = each.values.sorted()
                best = ordered.first { admits($0.incident, p) }
                refused = ordered.filter { !admits($0.incident, p) }.prefix(3).map(\.incident)
                result.cut += 1
            }
            let incident: UUID
            if let best {
                incident = best.incident
                if result.opened[incident] != nil {
                    result.opened[incident]!.add(p.event)
                } else {
                    result.grown[incident, default: IncidentGrowth(first: p.event)].add(p.event)
                }
            } else {
                incident = UUID()
                result.opened[incident] = NewIncident(first: p, related: refused)
            }
            if bounded { extend(incident, p.point, at: t) }
            result.incidents.append(incident)
            if t >= window.start {
                window.insert(category: p.event.category, at: p.point, t: t, incident: incident)
            } else {
                lateInBatch.append(LateEvent(category: p.event.category, point: p.point, t: t, incident: incident))
                result.lateEvents.append(lateInBatch.last!)
            }
        }
        self.window = window
        clock.lap("correlate")
        return result
    }

    /// For events whose window reaches before the hot window's start: the open incidents among
    /// stored events observed before `before`, best first, one query for all of them: the 64
    /// nearest events of open incidents (KNN on the GiST index), each incident's best by distance,
    /// time and order.
    private func storedMatches(_ items: [Placed], before: Double) throws -> [[CorrelationMatch]] {
        guard !items.isEmpty else { return [] }
        struct Probe: Encodable {
            let k: Int
            let category: String
            let lon, lat, t, radius, window_s, before: Double
        }
        let probes = items.enumerated().map { k, p in
            Probe(k: k, category: p.event.category, lon: p.point.lon, lat: p.point.lat, t: p.event.observedAt,
                  radius: p.rule.radiusMeters, window_s: p.rule.windowSeconds, before: before)
        }
        let rows = try db.query("""
            SELECT x.k, c.incident_id, ST_X(c.geog::geometry), ST_Y(c.geog::geometry), extract(epoch FROM c.observed_at), c.id
            FROM jsonb_to_recordset($1::jsonb) AS x(k integer, category text, lon float8, lat float8, t float8,
                                                      radius float8, window_s float8, before float8)
            CROSS JOIN LATERAL (
                SELECT v.id, v.incident_id, v.geog, v.observed_at
                FROM liandong.events v
                WHERE v.category = x.category
                  -- The batch's span as constants: the planner keeps only those day partitions
                  -- (per-row bounds alone are not pruned at plan time; 374 partitions planned and
                  -- opened took 11 s for one probe).
                  AND v.observed_at BETWEEN to_timestamp($2::float8) AND to_timestamp($3::float8)
                  AND v.observed_at BETWEEN to_timestamp(x.t - x.window_s) AND to_timestamp(x.t + x.window_s)
                  AND v.observed_at < to_timestamp(x.before)
                  AND ST_DWithin(v.geog, ST_SetSRID(ST_MakePoint(x.lon, x.lat), 4326)::geography, x.radius)
                  -- Open incidents only, before the limit: closed history nearer by must not hide
                  -- an open incident a little farther away.
                  AND EXISTS (SELECT 1 FROM liandong.incidents i WHERE i.id = v.incident_id AND i.status = 'open')
                ORDER BY v.geog <-> ST_SetSRID(ST_MakePoint(x.lon, x.lat), 4326)::geography
                LIMIT 64) c
            """, [try TaskStore.json(probes), String(probes.map { $0.t - $0.window_s }.min()!),
                  String(min(before, probes.map { $0.t + $0.window_s }.max()!))])
        var best = [[UUID: CorrelationMatch]](repeating: [:], count: items.count)
        for row in rows.typed {
            let k = try row.int(0)
            guard items.indices.contains(k) else { throw PGDecodeError(column: "k", expected: "a probe index", found: row[0]) }
            let item = items[k]
            let at = LonLat(lon: try row.double(2), lat: try row.double(3))
            let match = CorrelationMatch(
                incident: try row.uuid(1), distance: item.point.ellipsoidDistance(to: at),
                seconds: abs(try row.double(4) - item.event.observedAt), ordinal: try row.int64(5))
            if best[k][match.incident].map({ match < $0 }) ?? true { best[k][match.incident] = match }
        }
        return best.map { $0.values.sorted() }
    }
}

/// An event with its position and grid, ready to correlate.
package struct Placed {
    package let index: Int
    package let event: IngestEvent
    package let rule: CategoryRule
    package let point: LonLat
    package let crs: String
    package let grid: GridShape
}

/// What a batch adds to one incident.
package struct IncidentGrowth {
    package var priority: Int
    package var first, last: Double
    package var alerts = 0, reports = 0

    package init(first event: IngestEvent) {
        priority = event.priority
        first = event.observedAt
        last = event.observedAt
    }

    package mutating func add(_ e: IngestEvent) {
        priority = min(priority, e.priority)
        first = min(first, e.observedAt)
        last = max(last, e.observedAt)
        if e.source == .alert { alerts += 1 } else { reports += 1 }
    }
}

/// An incident opened by this batch: at its first event's position and grid.
package struct NewIncident {
    package let category: String
    package let point: LonLat
    package let gridCode, villageCode: String
    package var growth: IncidentGrowth
    /// Incidents its first event could not join without breaking their bounds, nearest first.
    package let related: [UUID]

    package init(first p: Placed, related: [UUID] = []) {
        self.related = related
        category = p.event.category
        point = p.point
        gridCode = p.grid.gridCode
        villageCode = p.grid.villageCode
        growth = IncidentGrowth(first: p.event)
        growth.add(p.event)
    }

    package mutating func add(_ e: IngestEvent) { growth.add(e) }
}

/// The outcome of correlating a batch: the incident of each placed event, in order.
package struct Correlated {
    package var incidents: [UUID]
    package var opened: [UUID: NewIncident]
    package var grown: [UUID: IncidentGrowth]
    /// Events matched against stored history (observed before the window's start).
    package var late: Int
    /// Those of them correlated before the window's start: the next batch, correlated before this
    /// one is committed, must see them (`Correlator.correlate(inFlight:)`).
    package var lateEvents: [LateEvent]
    /// Events whose nearest incident would have broken a bound (max_span_m, max_duration_s).
    package var cut: Int
}

/// An event observed before the window's start, with the incident it was put in.
package struct LateEvent {
    package let category: String
    package let point: LonLat
    package let t: Double
    package let incident: UUID
}
