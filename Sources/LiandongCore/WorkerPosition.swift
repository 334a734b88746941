import Foundation

/// A grid worker's position (liandong.worker_position.v1, topic `position[.x]`), sent by the
/// workers' app gateway every 30-60 s while on duty: where the worker is and whether on patrol, on
/// a task or off duty. Its decoder and its plan step as an `InboundRecord`; its rows are
/// `WorkerPositionStore`'s (liandong.worker_positions, day partitions).
public struct WorkerPosition: Sendable, Equatable {
    public static let schema = "liandong.worker_position.v1"

    public enum State: String, Sendable, CaseIterable {
        case onPatrol = "on_patrol", onTask = "on_task", offDuty = "off_duty"

        /// On duty: a worker who may be suggested for a task.
        public var onDuty: Bool { self != .offDuty }
    }

    public var workerID: String
    /// WGS-84 (converted from `crs` as sent).
    public var position: LonLat
    public var crs: CRS
    /// Unix seconds, and as sent (part of the id).
    public var at: Double
    public var atText: String
    public var state: State
    /// Set by the plan step (`placed(by:)`): the grid the position lies in, and the worker's own.
    public var gridCode: String?
    public var homeGridCode: String?

    public init(workerID: String, position: LonLat, crs: CRS = .wgs84, at: Double, state: State) {
        self.workerID = workerID
        self.position = position
        self.crs = crs
        self.at = at
        atText = Timestamp.formatCST(at)
        self.state = state
    }
}

extension WorkerPosition: InboundRecord {
    package static let topic = "position"

    package static func decode(_ f: inout Fields, by decoder: MessageDecoder, now: Double) throws -> WorkerPosition {
        let schema = try f.string("schema")
        guard schema == Self.schema else {
            throw Rejection(.unknownSchema, "schema \"\(schema.prefix(64))\" is not supported on topic position (expected \(Self.schema))")
        }
        let worker = try f.identifier("worker_id")
        let (point, crs) = try decoder.location(&f, required: true, what: "a position")
        let atText = try f.string("at")
        guard let at = Timestamp.parse(atText) else {
            throw Rejection(.invalidTime, "at \"\(atText.prefix(40))\" is not an RFC 3339 time")
        }
        try decoder.checkTime(at, atText, field: "at", now: now)
        let stateText = try f.string("state")
        guard let state = State(rawValue: stateText) else {
            throw Rejection(.invalidField, "state \"\(stateText.prefix(20))\" is none of on_patrol, on_task, off_duty")
        }
        var p = WorkerPosition(workerID: worker, position: point!, crs: crs, at: at, state: state)
        p.atText = atText
        return p
    }

    /// A repeat of a position has the same id.
    package var id: String { "position:\(workerID):\(atText)" }

    package func isKnown(to reference: ReferenceData) -> Bool { reference.workerGrids[workerID] != nil }

    /// A registered worker, inside a grid, and (security.curve) a sender whose scope covers the
    /// worker's grid.
    package func refusal(from sender: Sender?, reference: ReferenceData) -> Rejection? {
        guard let grid = reference.workerGrids[workerID] else {
            return Rejection(.unknownWorker, "worker_id \(workerID) is not a grid worker of liandong.grid_workers")
        }
        guard reference.grids.locate(position, preferring: grid) != nil else {
            return Rejection(.outsideArea, "position (\(position.lon), \(position.lat)) lies outside every grid")
        }
        if let sender, case .forbidden(let why) = TrustPolicy.event(from: sender, inGrid: grid) {
            return Rejection(.outOfScope, why)
        }
        return nil
    }

    /// The grid it lies in (the worker's own where grids touch) and the worker's grid.
    package func placed(by reference: ReferenceData) -> WorkerPosition {
        var p = self
        p.homeGridCode = reference.workerGrids[workerID]
        p.gridCode = reference.grids.locate(position, preferring: p.homeGridCode)?.gridCode
        return p
    }

    package static let counter = (name: "liandong_worker_positions_total", label: "state", values: State.allCases.map(\.rawValue))

    package var counterValue: String { state.rawValue }
}

/// A grid worker as last seen: who, in which grid (registered), where, when, on duty or not.
public struct WorkerSighting: Sendable, Equatable {
    public var workerID: String
    public var gridCode: String
    public var position: LonLat
    public var at: Double
    public var state: WorkerPosition.State

    public init(workerID: String, gridCode: String, position: LonLat, at: Double, state: WorkerPosition.State) {
        self.workerID = workerID
        self.gridCode = gridCode
        self.position = position
        self.at = at
        self.state = state
    }
}

/// A worker task.v1 suggests for a task (`suggested_workers`: worker_id, grid_code, distance_m,
/// seen_at as RFC 3339 in CST).
public struct SuggestedWorker: Sendable, Equatable, Codable {
    public var workerID: String
    public var gridCode: String
    /// Metres from the incident, rounded.
    public var distanceMeters: Int
    public var seenAt: Double

    public init(workerID: String, gridCode: String, distanceMeters: Int, seenAt: Double) {
        self.workerID = workerID
        self.gridCode = gridCode
        self.distanceMeters = distanceMeters
        self.seenAt = seenAt
    }

    enum CodingKeys: String, CodingKey {
        case workerID = "worker_id", gridCode = "grid_code", distanceMeters = "distance_m", seenAt = "seen_at"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        workerID = try c.decode(String.self, forKey: .workerID)
        gridCode = try c.decode(String.self, forKey: .gridCode)
        distanceMeters = try c.decode(Int.self, forKey: .distanceMeters)
        let text = try c.decode(String.self, forKey: .seenAt)
        guard let t = Timestamp.parse(text) else {
            throw DecodingError.dataCorruptedError(forKey: .seenAt, in: c, debugDescription: "seen_at \(text) is not an RFC 3339 time")
        }
        seenAt = t
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(workerID, forKey: .workerID)
        try c.encode(gridCode, forKey: .gridCode)
        try c.encode(distanceMeters, forKey: .distanceMeters)
        try c.encode(Timestamp.formatCST(seenAt), forKey: .seenAt)
    }
}

/// The nearest workers on duty (就近派单), pure: of each worker's latest sighting, those on duty
/// (on patrol or on a task) and seen within `presence` seconds (`workers.presence_s`, 300) of
/// `now`, nearest the incident first - equally near (within a metre): a worker of the incident's
/// grid first, then by id - at most `limit` (3). None is a fine answer. A sighting a little
/// ahead of `now` (a phone's clock ahead, within ingest.max_future_s) counts as seen now.
public enum WorkerSuggestion {
    public static func nearest<S: Sequence>(to point: LonLat, grid: String, among sightings: S, now: Double,
                                            presence: Double = 300, limit: Int = 3) -> [SuggestedWorker]
        where S.Element == WorkerSighting
    {
        var latest: [String: WorkerSighting] = [:]
        for s in sightings where latest[s.workerID].map({ s.at > $0.at }) ?? true { latest[s.workerID] = s }
        return nearest(to: point, grid: grid, amongLatest: latest.values, now: now, presence: presence, limit: limit)
    }

    /// The same over sightings already one per worker (`WorkerPresence`): the writer asks this for
    /// every verify and village-tier message, over every worker of the county, so it keeps the best
    /// `limit` as it goes instead of sorting them all.
    static func nearest<S: Sequence>(to point: LonLat, grid: String, amongLatest sightings: S, now: Double, presence: Double,
                                     limit: Int) -> [SuggestedWorker] where S.Element == WorkerSighting
    {
        typealias Candidate = (sighting: WorkerSighting, metres: Double)
        func before(_ a: Candidate, _ b: Candidate) -> Bool {
            if abs(a.metres - b.metres) > 1 { return a.metres < b.metres }
            let aHome = a.sighting.gridCode == grid, bHome = b.sighting.gridCode == grid
            if aHome != bHome { return aHome }
            return a.sighting.workerID < b.sighting.workerID
        }
        // The best so far, in order; a candidate further than the worst of them (by more than the
        // metre of a tie) is passed over at once.
        var best: [Candidate] = []
        best.reserveCapacity(limit + 1)
        for s in sightings where s.state.onDuty && now - s.at <= presence {
            // A degree of latitude is at least 110,574 m anywhere: a worker further north or south
            // than the worst of the best is passed over without the trigonometry.
            if best.count == limit, let worst = best.last, abs(s.position.lat - point.lat) * 110_574 > worst.metres + 1 { continue }
            let c = (sighting: s, metres: point.ellipsoidDistance(to: s.position))
            if best.count == limit, let worst = best.last, c.metres > worst.metres + 1 { continue }
            best.insert(c, at: best.firstIndex { before(c, $0) } ?? best.endIndex)
            if best.count > limit { best.removeLast() }
        }
        return best.map {
            SuggestedWorker(workerID: $0.sighting.workerID, gridCode: $0.sighting.gridCode, distanceMeters: Int($0.metres.rounded()),
                            seenAt: min($0.sighting.at, now))
        }
    }
}

/// Where the grid workers were last seen: the writer's memory of positions (loaded with the
/// correlation window, then kept by the batches it plans), from which task messages name the
/// nearest workers on duty.
public struct WorkerPresence: Sendable, Equatable {
    /// workers.presence_s: a worker seen longer ago is not suggested.
    public let seconds: Double
    /// Each worker's latest sighting.
    public private(set) var latest: [String: WorkerSighting] = [:]

    public init(seconds: Double = 300, sightings: [WorkerSighting] = []) {
        self.seconds = seconds
        for s in sightings { note(s) }
    }

    /// A position accepted (a late one older than the latest changes nothing).
    public mutating func note(_ s: WorkerSighting) {
        if latest[s.workerID].map({ s.at > $0.at }) ?? true { latest[s.workerID] = s }
    }

    /// Sightings too old to matter any more are let go (the registry may have thousands).
    public mutating func forget(before t: Double) {
        if latest.values.contains(where: { $0.at < t }) { latest = latest.filter { $0.value.at >= t } }
    }

    /// Sets `suggested_workers` on a message of a verify task or of a task at the village: the
    /// nearest workers on duty now (possibly none). Other messages carry none.
    public func suggest(_ m: inout TaskMessage, now: Double) {
        guard m.kind == .verify || m.tier == .village else { return }
        m.suggestedWorkers = WorkerSuggestion.nearest(to: LonLat(lon: m.lon, lat: m.lat), grid: m.gridCode, amongLatest: latest.values,
                                                      now: now, presence: seconds, limit: 3)
    }
}
