import Foundation

/// A candidate for correlation: an open incident with an event in reach.
public struct CorrelationMatch: Sendable, Equatable, Comparable {
    public let incident: UUID
    /// Metres between the two events.
    public let distance: Double
    /// Seconds of observed time between them.
    public let seconds: Double
    /// Order of the matched event (stored event id, or arrival order): the last tie-break.
    public let ordinal: Int64

    public init(incident: UUID, distance: Double, seconds: Double, ordinal: Int64) {
        self.incident = incident
        self.distance = distance
        self.seconds = seconds
        self.ordinal = ordinal
    }

    /// Nearest in space first, then in time, then the earlier event.
    public static func < (a: Self, b: Self) -> Bool {
        (a.distance, a.seconds, a.ordinal) < (b.distance, b.seconds, b.ordinal)
    }
}

/// The recent events of open incidents, in memory, indexed by category and position, so that a
/// new event finds the incident it belongs to without asking the database.
///
/// Invariant: every stored event of an open incident observed at or after `start` is here (plus,
/// until the next sweep, some older or closed ones that searches skip). An event whose window
/// reaches before `start` (`covers` is false) must also be matched against the database for the
/// older part. `start` moves forward as the newest observed time does (`retention` behind it) and
/// when more than `capacity` events would be held.
public struct HotWindow: Sendable {
    /// Events of one incident at one position observed within `mergeSeconds` of each other are
    /// one entry spanning their times: a camera firing 500 times a second at one spot is one entry,
    /// not thirty thousand a minute that every later event would have to look at.
    struct Entry: Sendable {
        var lon, lat: Double
        var first, last: Double
        var incident: UUID
        var ordinal: Int64

        /// Seconds from `t` to the nearest of its events' times (0 within the span: no two of them
        /// are farther apart than the window, so the nearest is within it).
        func seconds(to t: Double) -> Double { t < first ? first - t : (t > last ? t - last : 0) }
    }

    struct CellKey: Hashable, Sendable {
        var category: Int32
        var x: Int32
        var y: Int32
    }

    public let retention: Double
    public let capacity: Int
    /// Events of one incident at one position within this many seconds share an entry (0: never).
    /// At most the shortest correlation window, so that merging never changes which incident matches.
    public let mergeSeconds: Double
    public private(set) var start: Double
    public private(set) var watermark: Double = -.infinity
    public private(set) var count = 0

    /// About 280 x 210 m in Guazhou: a 300 m search looks at about 0.7 km² of cells, not 2.2 (a
    /// dense storm holds hundreds of entries per cell and category).
    private let cellDegrees = 0.0025
    private var cells: [CellKey: [Entry]] = [:]
    private var categoryIDs: [String: Int32] = [:]
    private var closed = Set<UUID>()
    private var nextOrdinal: Int64 = 1
    private var insertsSinceSweep = 0

    /// - Parameters:
    ///   - retention: seconds of observed time kept behind the newest event.
    ///   - capacity: most events held; beyond it `start` moves forward.
    ///   - start: the window is complete from this observed time on (-infinity: complete).
    public init(retention: Double, capacity: Int, start: Double = -.infinity, mergeSeconds: Double = 0) {
        precondition(retention > 0 && capacity > 0 && mergeSeconds >= 0)
        self.retention = retention
        self.capacity = capacity
        self.start = start
        self.mergeSeconds = mergeSeconds
    }

    /// True when every stored event that an event at `t` with this window could join is here.
    public func covers(t: Double, window: Double) -> Bool { t - window >= start }

    /// Every open incident with an event of `category` within `radius` metres and `window` seconds.
    public func incidents(category: String, near p: LonLat, at t: Double, radius: Double, window: Double) -> Set<UUID> {
        var found = Set<UUID>()
        visit(category: category, near: p, at: t, radius: radius, window: window) { entry, _ in
            found.insert(entry.incident)
        }
        return found
    }

    /// The best open incident to join: an event of `category` within `radius` metres and `window`
    /// seconds, nearest first (see `CorrelationMatch`).
    public func best(category: String, near p: LonLat, at t: Double, radius: Double, window: Double) -> CorrelationMatch? {
        var best: CorrelationMatch? = nil
        visit(category: category, near: p, at: t, radius: radius, window: window) { entry, distance in
            let match = CorrelationMatch(incident: entry.incident, distance: distance, seconds: entry.seconds(to: t),
                                         ordinal: entry.ordinal)
            if best == nil || match < best! { best = match }
        }
        return best
    }

    /// Every open incident in reach with its best match (as `best`), best first.
    public func matches(category: String, near p: LonLat, at t: Double, radius: Double, window: Double) -> [CorrelationMatch] {
        var best: [UUID: CorrelationMatch] = [:]
        visit(category: category, near: p, at: t, radius: radius, window: window) { entry, distance in
            let match = CorrelationMatch(incident: entry.incident, distance: distance, seconds: entry.seconds(to: t),
                                         ordinal: entry.ordinal)
            if let known = best[entry.incident], known < match { return }
            best[entry.incident] = match
        }
        return best.values.sorted()
    }

    private func visit(category: String, near p: LonLat, at t: Double, radius: Double, window: Double,
                       _ body: (Entry, Double) -> Void)
    {
        guard let id = categoryIDs[category] else { return }
        let reachLat = radius / 110_000 + 1e-9
        let reachLon = radius / (111_000 * max(cos(p.lat * .pi / 180), 0.01)) + 1e-9
        let boxLat = reachLat * 1.01, boxLon = reachLon * 1.01
        let x0 = cell(p.lon - reachLon), x1 = cell(p.lon + reachLon)
        let y0 = cell(p.lat - reachLat), y1 = cell(p.lat + reachLat)
        for x in x0...x1 {
            for y in y0...y1 {
                guard let entries = cells[CellKey(category: id, x: x, y: y)] else { continue }
                // Cheapest test first: the reach box (a little larger than the circle) leaves out
                // most entries of a dense cell before any trigonometry or hashing.
                for entry in entries where abs(entry.lat - p.lat) <= boxLat && abs(entry.lon - p.lon) <= boxLon
                    && entry.seconds(to: t) <= window
                {
                    let distance = p.ellipsoidDistance(to: LonLat(lon: entry.lon, lat: entry.lat))
                    if distance <= radius, !closed.contains(entry.incident) { body(entry, distance) }
                }
            }
        }
    }

    private func cell(_ degrees: Double) -> Int32 {
        Int32(clamping: Int64((degrees / cellDegrees).rounded(.down)))
    }

    /// Adds a stored event. `ordinal` is its stored id when known (loading), else arrival order.
    /// Events observed before `start` are not kept (they are matched in the database).
    public mutating func insert(category: String, at p: LonLat, t: Double, incident: UUID, ordinal: Int64? = nil) {
        let ord = ordinal ?? nextOrdinal
        nextOrdinal = max(nextOrdinal, ord + 1)
        watermark = max(watermark, t)
        guard t >= start else { return }
        let id: Int32
        if let known = categoryIDs[category] {
            id = known
        } else {
            id = Int32(categoryIDs.count)
            categoryIDs[category] = id
        }
        let key = CellKey(category: id, x: cell(p.lon), y: cell(p.lat))
        if mergeSeconds > 0, let entries = cells[key] {
            // The cell's most recent entries: a storm's next event continues the last one.
            for k in entries.indices.reversed().prefix(4) {
                let e = entries[k]
                guard e.incident == incident, e.lon == p.lon, e.lat == p.lat,
                      t >= e.first - mergeSeconds, t <= e.last + mergeSeconds else { continue }
                cells[key]![k].first = min(e.first, t)
                cells[key]![k].last = max(e.last, t)
                return
            }
        }
        cells[key, default: []].append(Entry(lon: p.lon, lat: p.lat, first: t, last: t, incident: incident, ordinal: ord))
        count += 1
        insertsSinceSweep += 1
    }

    /// Incidents closed since they were loaded: their events are no longer candidates.
    public mutating func markClosed<S: Sequence>(_ incidents: S) where S.Element == UUID {
        closed.formUnion(incidents)
    }

    /// Moves `start` to `retention` behind the newest observed time and, from time to time (or
    /// when over capacity), drops what no search can use any more.
    public mutating func advance() {
        start = max(start, watermark - retention)
        if insertsSinceSweep >= max(8192, count / 2) || count > capacity || closed.count > 4096 {
            sweep()
        }
    }

    private mutating func sweep() {
        if count > capacity {
            // Keep the newest three quarters of the capacity.
            var times: [Double] = []
            times.reserveCapacity(count)
            for entries in cells.values { for e in entries { times.append(e.last) } }
            times.sort(by: >)
            start = max(start, times[capacity * 3 / 4])
        }
        var kept = 0
        for key in Array(cells.keys) {
            let entries = cells[key]!.filter { $0.last >= start && !closed.contains($0.incident) }
            if entries.isEmpty { cells[key] = nil } else { cells[key] = entries }
            kept += entries.count
        }
        count = kept
        closed.removeAll()
        insertsSinceSweep = 0
    }
}
