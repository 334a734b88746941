import Foundation
import LiandongCore
import LibPQ

/// Loads the facts `BatchPlanner` asks for, on the store's read session (committed data only):
/// the hot window, dedup keys, closed candidates, incidents' extents and stored history. Decides
/// nothing; each request is one or two queries.
package struct PlanFactStore {
    package let db: PGConnection
    /// workers.presence_s: how far back the grid workers' latest positions are loaded.
    package let presence: Double

    package init(db: PGConnection, presence: Double = 300) {
        self.db = db
        self.presence = presence
    }

    /// Answers one request of the planner (`.freshReference` is the preparer's: it caches it).
    package func load(_ request: PlanFactRequest, reference: () throws -> ReferenceData, _ clock: inout PhaseClock) throws -> PlanFacts {
        switch request {
        case .freshReference: return .reference(try reference())
        case .window(let retention, let capacity): return .window(try window(retention: retention, capacity: capacity))
        case .extents(let ids): return .extents(try extents(ids))
        case .stored(let r):
            let (stored, closed) = try storedAlready(r.keys, closedAmong: r.candidates)
            let extents = try extents(r.extents)
            clock.lap("dedup")
            let history = try history(r.probes, before: r.before)
            clock.lap("history")
            return .stored(StoredFacts(stored: stored, closed: closed, extents: extents, probes: r.probes, history: history))
        }
    }

    /// The events of open incidents observed within `retention` of the newest (at most
    /// `capacity` of them, newest first).
    package func window(retention: Double, capacity: Int) throws -> WindowFacts {
        let newest = try db.query("""
            SELECT extract(epoch FROM max(last_observed_at)) FROM liandong.incidents WHERE status = 'open'
            """).scalar.flatMap(Double.init)
        let sightings = try WorkerPositionStore.latest(db, within: presence)
        // The keys of the events stored within `retention` of now, at most `capacity` of them.
        let since = Date().timeIntervalSince1970 - retention
        let keyRows = try db.query("""
            SELECT source, owner, source_id, extract(epoch FROM observed_at) FROM liandong.event_keys
            WHERE observed_at >= to_timestamp($1::float8)
            ORDER BY observed_at DESC
            LIMIT $2
            """, [String(since), String(capacity)]).typed
        var keys: [(key: EventKey, t: Double)] = []
        keys.reserveCapacity(keyRows.count)
        for row in keyRows.reversed() {
            keys.append((EventKey(source: try row.string(0), owner: try row.string(1), id: try row.string(2)), try row.double(3)))
        }
        let complete = keys.count < capacity
        guard let newest else {
            return WindowFacts(newest: nil, events: [], sightings: sightings, keys: keys, keysHorizon: since, keysComplete: complete)
        }
        let rows = try db.query("""
            SELECT e.category, ST_X(e.geog::geometry), ST_Y(e.geog::geometry), extract(epoch FROM e.observed_at),
                   e.incident_id, e.id, extract(epoch FROM i.first_observed_at)
            FROM liandong.incidents i JOIN liandong.events e ON e.incident_id = i.id
            WHERE i.status = 'open' AND i.last_observed_at >= to_timestamp($1) AND e.observed_at >= to_timestamp($1)
            ORDER BY e.observed_at DESC, e.id DESC
            LIMIT $2
            """, [String(newest - retention), String(capacity)])
        return WindowFacts(newest: newest, events: try rows.typed.map {
            WindowEvent(category: try $0.string(0), point: LonLat(lon: try $0.double(1), lat: try $0.double(2)), t: try $0.double(3),
                        incident: try $0.uuid(4), ordinal: try $0.int64(5), incidentFirst: try $0.double(6))
        }, sightings: sightings, keys: keys, keysHorizon: since, keysComplete: complete)
    }

    /// Which of `keys` are stored already (on event_keys) and which of `incidents` are no longer
    /// open, in one round trip. Prepared once per session: every batch asks, and planning it took
    /// five times as long as running it (~180 vs ~30 µs) - time a batch waits for since the
    /// look-ahead is taken as late as its preparation allows. Its plan is the same for any
    /// number of keys (an index probe each; event_keys is not partitioned).
    private func storedAlready(_ keys: [EventKey], closedAmong incidents: Set<UUID>) throws -> (Set<EventKey>, [UUID]) {
        guard !keys.isEmpty || !incidents.isEmpty else { return ([], []) }
        let rows = try db.queryPrepared("""
            SELECT x.s, x.o, x.i FROM unnest($1::text[], $2::text[], $4::text[]) AS x(s, i, o)
            WHERE EXISTS (SELECT 1 FROM liandong.event_keys v WHERE v.source = x.s AND v.owner = x.o AND v.source_id = x.i)
            UNION ALL
            SELECT NULL, NULL, id::text FROM liandong.incidents WHERE id = ANY($3::uuid[]) AND status <> 'open'
            """, [PGCopyText.arrayLiteral(keys.map(\.source)), PGCopyText.arrayLiteral(keys.map(\.id)),
                  TaskStore.uuidArray(incidents.map(\.uuidString)), PGCopyText.arrayLiteral(keys.map(\.owner))])
        var stored = Set<EventKey>(), closed: [UUID] = []
        for row in rows.typed {
            if let source = row[0] {
                stored.insert(EventKey(source: source, owner: try row.string(1), id: try row.string(2)))
            } else {
                closed.append(try row.uuid(2))
            }
        }
        return (stored, closed)
    }

    /// The extents of `incidents`: their observed-time span, the convex hull of their events'
    /// positions (PostGIS) and their centre (the mean position), one query for all of them.
    package func extents(_ incidents: Set<UUID>) throws -> [UUID: IncidentExtent] {
        guard !incidents.isEmpty else { return [:] }
        let ids = TaskStore.uuidArray(incidents.map(\.uuidString))
        guard let span = try db.query("""
            SELECT extract(epoch FROM min(first_observed_at)), extract(epoch FROM max(last_observed_at))
            FROM liandong.incidents WHERE id = ANY($1::uuid[])
            """, [ids]).rows.first, let first = span[0], let last = span[1] else { return [:] }
        // The span as constants: only those day partitions are read.
        let rows = try db.query("""
            SELECT i.id, extract(epoch FROM i.first_observed_at), extract(epoch FROM i.last_observed_at), h.points, c.lon, c.lat, c.n
            FROM liandong.incidents i
            CROSS JOIN LATERAL (
                SELECT ST_Collect(e.geog::geometry) AS g, avg(ST_X(e.geog::geometry)) AS lon, avg(ST_Y(e.geog::geometry)) AS lat,
                       count(*) AS n
                FROM liandong.events e
                WHERE e.incident_id = i.id
                  AND e.observed_at BETWEEN to_timestamp($2::float8) AND to_timestamp($3::float8)
                  AND e.observed_at BETWEEN i.first_observed_at AND i.last_observed_at) c
            CROSS JOIN LATERAL (
                SELECT string_agg(ST_X(d.geom)::text || ' ' || ST_Y(d.geom)::text, ',') AS points
                FROM ST_DumpPoints(ST_ConvexHull(c.g)) d) h
            WHERE i.id = ANY($1::uuid[])
            """, [ids, first, last])
        var out: [UUID: IncidentExtent] = [:]
        for row in rows.typed {
            guard let from = try row.optionalDouble(1), let to = try row.optionalDouble(2),
                  let lon = try row.optionalDouble(4), let lat = try row.optionalDouble(5) else { continue }
            let points = (row[3] ?? "").split(separator: ",").compactMap { pair -> LonLat? in
                let xy = pair.split(separator: " ")
                guard xy.count == 2, let lon = Double(xy[0]), let lat = Double(xy[1]) else { return nil }
                return LonLat(lon: lon, lat: lat)
            }
            guard !points.isEmpty else { continue }
            out[try row.uuid(0)] = IncidentExtent(points: points, first: from, last: to, centre: LonLat(lon: lon, lat: lat),
                                                  count: try row.int(6))
        }
        return out
    }

    /// For events whose window reaches before the hot window's start: the open incidents among
    /// stored events observed before `before`, best first, one query for all of them: the 64
    /// nearest events of open incidents (KNN on the GiST index), each incident's best by distance,
    /// time and order.
    private func history(_ probes: [HistoryProbe], before: Double) throws -> [[CorrelationMatch]] {
        guard !probes.isEmpty else { return [] }
        struct Probe: Encodable {
            let k: Int
            let category: String
            let lon, lat, t, radius, window_s, before: Double
        }
        let encoded = probes.enumerated().map { k, p in
            Probe(k: k, category: p.category, lon: p.point.lon, lat: p.point.lat, t: p.t, radius: p.radius, window_s: p.window,
                  before: before)
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
            """, [try TaskStore.json(encoded), String(encoded.map { $0.t - $0.window_s }.min()!),
                  String(min(before, encoded.map { $0.t + $0.window_s }.max()!))])
        var best = [[UUID: CorrelationMatch]](repeating: [:], count: probes.count)
        for row in rows.typed {
            let k = try row.int(0)
            guard probes.indices.contains(k) else { throw PGDecodeError(column: "k", expected: "a probe index", found: row[0]) }
            let probe = probes[k]
            let at = LonLat(lon: try row.double(2), lat: try row.double(3))
            let match = CorrelationMatch(
                incident: try row.uuid(1), distance: probe.point.ellipsoidDistance(to: at),
                seconds: abs(try row.double(4) - probe.t), ordinal: try row.int64(5))
            if best[k][match.incident].map({ match < $0 }) ?? true { best[k][match.incident] = match }
        }
        return best.map { $0.values.sorted() }
    }

    /// Per camera, until when its analytics alarms are inhibited: the picture-lost alarms stored
    /// within `seconds` (the payload says which).
    package func inhibitions(seconds: Double) throws -> [String: Double] {
        guard seconds > 0 else { return [:] }
        var until: [String: Double] = [:]
        for row in try db.query("""
            SELECT device_id, extract(epoch FROM observed_at), payload->>'alarm_method', payload->>'alarm_type'
            FROM liandong.events
            WHERE source = 'alert' AND observed_at > now() - make_interval(secs => $1) AND category IN ('tamper', 'device_fault')
            """, [String(seconds)]).rows {
            guard let device = row[0], let at = row[1].flatMap(Double.init), let method = row[2].flatMap(Int.init),
                AlarmClass(alarmMethod: method, alarmType: row[3].flatMap(Int.init)) == .pictureLost
            else { continue }
            until[device] = max(until[device] ?? 0, at + seconds)
        }
        return until
    }
}
