import Foundation

/// The language of `BatchPlanner`: the facts it asks for and is given, and the plan it returns.

// MARK: what the planner asks and is told

/// What `BatchPlanner` needs loaded before it can go on.
package enum PlanFactRequest: Sendable, Equatable {
    /// The reference data again, now: an import may have added a camera or grid a moment ago
    /// (asked before any item is refused as unknown or outside, at most once a batch).
    case freshReference
    /// The hot window: the newest observed time of open incidents and the events of open incidents
    /// observed within `retention` seconds of it, at most `capacity` of them, newest first.
    case window(retention: Double, capacity: Int)
    /// Dedup, closed candidates, extents and stored history, in one round trip.
    case stored(StoredFactsRequest)
    /// The extents (observed-time span and hull of their events' positions) of these incidents.
    case extents(Set<UUID>)
}

/// The facts answering a `PlanFactRequest`, in the same order of cases.
package enum PlanFacts: Sendable {
    case reference(ReferenceData)
    case window(WindowFacts)
    case stored(StoredFacts)
    case extents([UUID: IncidentExtent])
}

/// What `start` and `resume` come to: more facts needed, or the plan.
package enum PlanStep: Sendable {
    case need(PlanFactRequest)
    case done(BatchPlan)
}

/// The events of open incidents the window starts with (`PlanFactRequest.window`).
package struct WindowFacts: Sendable {
    /// Latest last_observed_at of any open incident (nil: none is open).
    package var newest: Double?
    /// Newest first (observed time, then id).
    package var events: [WindowEvent]
    /// Each grid worker's latest position within workers.presence_s (the presence the task
    /// messages' suggested workers come from).
    package var sightings: [WorkerSighting]
    /// The keys of the events stored with an observed time at or after `keysHorizon`, oldest
    /// first (`RecentKeys.load`); not `keysComplete`: only the newest of them (the window's capacity).
    package var keys: [(key: EventKey, t: Double)]
    package var keysHorizon: Double
    package var keysComplete: Bool

    package init(newest: Double?, events: [WindowEvent], sightings: [WorkerSighting] = [],
                 keys: [(key: EventKey, t: Double)] = [], keysHorizon: Double = .infinity, keysComplete: Bool = true)
    {
        self.newest = newest
        self.events = events
        self.sightings = sightings
        self.keys = keys
        self.keysHorizon = keysHorizon
        self.keysComplete = keysComplete
    }
}

/// A stored event of an open incident, as the window holds it.
package struct WindowEvent: Sendable {
    package var category: String
    package var point: LonLat
    package var t: Double
    package var incident: UUID
    /// Its stored id (the join's last tie-break).
    package var ordinal: Int64
    /// When its incident's first event was observed.
    package var incidentFirst: Double

    package init(category: String, point: LonLat, t: Double, incident: UUID, ordinal: Int64, incidentFirst: Double) {
        self.category = category
        self.point = point
        self.t = t
        self.incident = incident
        self.ordinal = ordinal
        self.incidentFirst = incidentFirst
    }
}

/// An event's identity for dedup: its source, the sender that owns its id, and the id.
package struct EventKey: Hashable, Sendable {
    package var source: String
    package var owner: String
    package var id: String

    package init(source: String, owner: String, id: String) {
        self.source = source
        self.owner = owner
        self.id = id
    }

    package init(_ e: IngestEvent) { self.init(source: e.source.rawValue, owner: e.owner, id: e.sourceID) }
}

/// An event matched against stored history: events of open incidents of its category observed
/// before `StoredFactsRequest.before`, within `radius` metres and `window` seconds.
package struct HistoryProbe: Sendable, Equatable {
    /// Which placed event of the batch (for the answer).
    package var candidate: Int
    package var category: String
    package var point: LonLat
    package var t: Double
    package var radius: Double
    package var window: Double
}

/// `PlanFactRequest.stored`.
package struct StoredFactsRequest: Sendable, Equatable {
    /// Which of these are stored already (event_keys).
    package var keys: [EventKey] = []
    /// Which of these incidents are no longer open.
    package var candidates = Set<UUID>()
    /// Incidents whose extents are needed.
    package var extents = Set<UUID>()
    /// Stored history to match, observed before `before` (the window's start).
    package var probes: [HistoryProbe] = []
    package var before: Double

    package init(before: Double) { self.before = before }
}

/// The answer to a `StoredFactsRequest`.
package struct StoredFacts: Sendable {
    package var stored: Set<EventKey>
    package var closed: [UUID]
    package var extents: [UUID: IncidentExtent]
    /// The probes asked, and per probe the open incidents in reach with each one's best match,
    /// best first (see `CorrelationMatch`).
    package var probes: [HistoryProbe]
    package var history: [[CorrelationMatch]]

    package init(stored: Set<EventKey>, closed: [UUID], extents: [UUID: IncidentExtent], probes: [HistoryProbe],
                 history: [[CorrelationMatch]])
    {
        self.stored = stored
        self.closed = closed
        self.extents = extents
        self.probes = probes
        self.history = history
    }
}

// MARK: the plan

/// What a batch comes to, for the store to write.
package struct BatchPlan: Sendable {
    /// Per item, in input order (stored, duplicate or refused; nil only while being planned).
    package var outcomes: [ItemOutcome?]
    package var deadLetters: [(Rejection, RawMessage)] = []
    /// The events it stores, in observed-time order, with their incident and why they are muted.
    package var events: [PlannedEvent] = []
    /// Incidents the batch opens and what it adds to those it grows.
    package var opened: [UUID: NewIncident] = [:]
    package var grown: [UUID: IncidentGrowth] = [:]
    /// Incidents its events went to, in first-touched order, and those it opened.
    package var touched: [UUID] = []
    package var fresh = Set<UUID>()
    /// Incidents touched only by silenced, inhibited or suppressed events: no task message for them from this batch.
    package var silencedOnly = Set<UUID>()
    /// Late, silenced, inhibited, suppressed and cut events (coalesced updates are counted at commit).
    package var counts = BatchCounts()
    /// Its events observed before the window's start: the next batch, planned before this one is
    /// committed, must see them.
    package var lateEvents: [LateEvent] = []
    /// Dedup keys of the events it stores.
    package var storedKeys = Set<EventKey>()
    /// The tasks of the incidents it opens (none when no task is due yet) and their messages.
    package var created: [TaskStep] = []
    package var freshTasks: [UUID: TaskMessage] = [:]
    /// Records (device status reports, ...: `InboundRecord`), written in the batch's transaction.
    package var records: [any InboundRecord] = []
    /// Where the grid workers were as of this batch (its positions included): the committer
    /// suggests workers on the messages of incidents that existed before it.
    package var presence = WorkerPresence()

    package init(count: Int) {
        outcomes = [ItemOutcome?](repeating: nil, count: count)
    }

    package mutating func reject(_ index: Int, _ rejection: Rejection, _ raw: RawMessage) {
        outcomes[index] = .rejected(rejection)
        deadLetters.append((rejection, raw))
    }
}

/// A stored event of the plan.
package struct PlannedEvent: Sendable {
    package var placed: Placed
    package var incident: UUID
    /// silence:ID, inhibited:DEVICE or suppressed (nil: not muted).
    package var mutedBy: String?
}

/// An event with its position and grid, ready to correlate.
package struct Placed: Sendable {
    package let index: Int
    package let event: IngestEvent
    package let rule: CategoryRule
    package let point: LonLat
    package let crs: String
    package let grid: GridShape
    /// The device that lists the event's device as a catalog channel (nil: none does).
    package var parent: String? = nil
}

/// What a batch adds to one incident.
package struct IncidentGrowth: Sendable {
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
package struct NewIncident: Sendable {
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
struct Correlated {
    var incidents: [UUID]
    var opened: [UUID: NewIncident]
    var grown: [UUID: IncidentGrowth]
    /// Events matched against stored history (observed before the window's start).
    var late: Int
    var lateEvents: [LateEvent]
    /// Events whose nearest incident would have broken a bound (max_span_m, max_duration_s).
    var cut: Int
}

/// An event observed before the window's start, with the incident it was put in.
package struct LateEvent: Sendable {
    package let category: String
    package let point: LonLat
    package let t: Double
    package let incident: UUID

    package init(category: String, point: LonLat, t: Double, incident: UUID) {
        self.category = category
        self.point = point
        self.t = t
        self.incident = incident
    }
}
