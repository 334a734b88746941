import Foundation

/// Decides what one batch of inbound messages comes to, without I/O: placement and trust, dedup,
/// correlation (the join rule, bounded extents), the mute order (silence, inhibition, noisy-camera
/// suppression) and the tasks of the incidents it opens. A state machine in the manner of
/// postgres-nio's: `start` and `resume` return either the facts it needs next (`PlanFactRequest`,
/// which the store loads and hands back) or the finished `BatchPlan`, which the store only turns
/// into rows. It owns the correlation state that outlives a batch: the `HotWindow` of recent
/// events of open incidents, the extents of incidents that may be joined (for max_span_m and
/// max_duration_s) and until when each camera's analytics alarms are inhibited.
///
/// One batch at a time: `start` forgets any batch left unfinished (its fact load failed).
package struct BatchPlanner: Sendable {
    package let rules: Rules
    private let tasks: TaskPlanner
    /// Seconds of observed time the window keeps behind the newest event, and its size limit.
    package let retention: Double
    package let windowCapacity: Int
    /// Events of one incident at one spot within this many seconds share a window entry.
    private let mergeSeconds: Double
    /// nil: not in memory (at first, and after any failure): loaded before the next batch.
    private var window: HotWindow?
    /// The extent of incidents that events may join: of every incident whose events are all in
    /// the window, of those batches have touched since, and of others loaded on demand.
    private var extents: [UUID: IncidentExtent] = [:]
    /// Per camera: until when (observed time) its analytics alarms are inhibited by a video-lost
    /// or tamper alarm. Only grows (a batch planned again changes nothing).
    private var inhibitedUntil: [String: Double]
    /// The batch being planned, between `start` and the finished plan.
    private var pending: Pending?
    /// Where the grid workers were last seen: loaded with the window, kept by the positions of
    /// the batches planned since (a failure discards it with the window).
    private var presence: WorkerPresence
    /// The keys of recently stored events: dedup asks the database only about the others
    /// (loaded with the window, kept by the batches planned since, discarded with it).
    private var keys: RecentKeys

    /// - Parameters:
    ///   - inhibitedUntil: from the picture-lost alarms stored within `rules.inhibitSeconds`.
    ///   - newID: new task and message ids (tests pass a counter).
    package init(rules: Rules, windowCapacity: Int, inhibitedUntil: [String: Double] = [:],
                 newID: @escaping @Sendable () -> String = { UUID().uuidString.lowercased() })
    {
        self.rules = rules
        tasks = TaskPlanner(rules: rules, newID: newID)
        let all = [rules.defaultCategory] + Array(rules.categories.values)
        retention = max(2 * (all.map(\.windowSeconds).max() ?? 3600), 3600)
        mergeSeconds = min(60, all.map(\.windowSeconds).min() ?? 60)
        self.windowCapacity = windowCapacity
        self.inhibitedUntil = inhibitedUntil
        presence = WorkerPresence(seconds: rules.workerPresenceSeconds)
        keys = RecentKeys(capacity: windowCapacity)
    }

    // MARK: the window between batches

    /// Events held in the window.
    package var windowCount: Int { window?.count ?? 0 }

    /// Whether the window is in memory: a batch may be planned while the one before it is still
    /// being written only then (a window loaded from PostgreSQL would miss that batch).
    package var hasWindow: Bool { window != nil }

    /// After a commit: the window moves on with the newest observed time; extents of incidents
    /// quiet since before the window's start are let go now and then (loaded again if needed).
    package mutating func committed() {
        window?.advance()
        if let start = window?.start, extents.count > max(8192, 2 * (window?.count ?? 0)) {
            extents = extents.filter { $0.value.last >= start }
        }
    }

    /// After any failure: the window was changed as batches were planned; it is loaded again
    /// from what was committed before the next batch.
    package mutating func discardWindow() {
        window = nil
        extents = [:]
        pending = nil
        keys.forget()
    }

    /// What the window needs loaded when it is not in memory (see `PlanFactRequest.window`).
    package var windowRequest: PlanFactRequest? { window == nil ? .window(retention: retention, capacity: windowCapacity) : nil }

    /// Builds the window from loaded events (`PlanFactRequest.window`).
    package mutating func load(window facts: WindowFacts) {
        var loaded: HotWindow
        extents = [:]
        presence = WorkerPresence(seconds: rules.workerPresenceSeconds, sightings: facts.sightings)
        keys.load(horizon: facts.keysHorizon, keys: facts.keys, complete: facts.keysComplete)
        guard let newest = facts.newest else {
            // No open incident: nothing stored can be joined, the empty window is complete.
            window = HotWindow(retention: retention, capacity: windowCapacity, mergeSeconds: mergeSeconds)
            return
        }
        var start = newest - retention
        if facts.events.count >= windowCapacity, let oldest = facts.events.last?.t {
            // Full: complete only after the oldest time loaded (some of its peers may be missing).
            start = oldest.nextUp
        }
        loaded = HotWindow(retention: retention, capacity: windowCapacity, start: start, mergeSeconds: mergeSeconds)
        for e in facts.events.reversed() {
            loaded.insert(category: e.category, at: e.point, t: e.t, incident: e.incident, ordinal: e.ordinal)
            // Every event of an incident that began within the window is here: its extent is known.
            if e.incidentFirst >= start { extend(e.incident, e.point, at: e.t) }
        }
        window = loaded
    }

    // MARK: planning one batch

    /// Begins planning `batch` against `reference`. `inFlight`: the batch being written meanwhile
    /// (planned just before this one, not yet committed): its events count as stored and its late
    /// events as correlated. `verifyKeys`: ask the database about every event's key, not only those
    /// the recent keys cannot answer (after a refused batch: an id reused with another observed time
    /// is found there, not here). Any failure after this, of this batch or of `inFlight`, needs
    /// `discardWindow()`.
    package mutating func start(_ batch: [Inbound], reference: ReferenceData, now: Double, after inFlight: BatchPlan? = nil,
                                verifyKeys: Bool = false) -> PlanStep
    {
        pending = Pending(batch: batch, now: now, reference: reference, verifyKeys: verifyKeys,
                          inFlightKeys: inFlight?.storedKeys ?? [], inFlightLate: inFlight?.lateEvents ?? [])
        pending!.inFlightRecords = inFlight?.records ?? []
        return place()
    }

    /// Goes on with the facts asked for.
    package mutating func resume(_ facts: PlanFacts) -> PlanStep {
        guard pending != nil else { preconditionFailure("BatchPlanner.resume without a batch being planned") }
        switch facts {
        case .reference(let fresh):
            pending!.reference = fresh
            pending!.rechecked = true
            return place()
        case .window(let loaded):
            load(window: loaded)
            return askStored()
        case .stored(let stored):
            for (id, extent) in stored.extents { extents[id] = extent }
            let missing = Set(stored.history.joined().map(\.incident)).filter { extents[$0] == nil }
            guard missing.isEmpty else {
                pending!.stored = stored
                return .need(.extents(missing))
            }
            return finish(stored)
        case .extents(let loaded):
            for (id, extent) in loaded { extents[id] = extent }
            guard let stored = pending!.stored else { preconditionFailure("extents came before the stored facts") }
            return finish(stored)
        }
    }

    /// Trust and placement of every item (in memory). A refusal that an import a moment ago may
    /// have made wrong asks for the reference data again first (once a batch).
    private mutating func place() -> PlanStep {
        var p = pending!
        p.plan = BatchPlan(count: p.batch.count)
        p.events = []
        p.sightings = []
        p.refusals = []
        p.candidates = []
        // What records not yet committed change in the reference data (a catalog's channels)
        // places this batch's events as it will once they are.
        var reference = p.reference
        for record in p.inFlightRecords { record.amend(&reference) }
        for (index, inbound) in p.batch.enumerated() {
            switch inbound {
            case .rejected(let rejection, _): p.plan.reject(index, rejection, inbound.raw)
            case .event(var event, let raw):
                event.owner = raw.sender?.name ?? event.gatewayID ?? ""
                p.events.append((index, event))
            case .record(let record, let raw):
                if !record.isKnown(to: reference), !p.rechecked { return askFreshReference(p) }
                if let refusal = record.refusal(from: raw.sender, reference: reference) {
                    p.plan.reject(index, refusal, raw)
                } else {
                    let record = record.placed(by: reference)
                    record.amend(&reference)
                    p.plan.records.append(record)
                    p.plan.outcomes[index] = .stored(incidentID: "")
                    // The one record the planner itself reads: where a worker is.
                    if let position = record as? WorkerPosition, let home = position.homeGridCode {
                        p.sightings.append(WorkerSighting(workerID: position.workerID, gridCode: home, position: position.position,
                                                          at: position.at, state: position.state))
                    }
                }
            }
        }
        // Where the batch's workers are, for the task messages it makes (noting twice, when the
        // batch is placed again with fresh reference data, changes nothing).
        for s in p.sightings { presence.note(s) }
        presence.forget(before: p.now - presence.seconds)
        // Observed-time order: late and out-of-order events correlate as in-order ones do.
        p.events.sort { ($0.event.observedAt, $0.index) < ($1.event.observedAt, $1.index) }
        p.refusals.reserveCapacity(p.events.count)
        for (index, event) in p.events {
            var placement = reference.place(event)
            if case .failure = placement, !p.rechecked { return askFreshReference(p) }
            if case .success(let at) = placement, let sender = p.batch[index].raw.sender,
                case .forbidden(let why) = TrustPolicy.event(from: sender, inGrid: at.grid.gridCode)
            {
                placement = .failure(Rejection(.outOfScope, why))
            }
            switch placement {
            case .failure(let rejection): p.refusals.append(rejection)
            case .success(let at):
                p.refusals.append(nil)
                p.candidates.append(Placed(index: index, event: event, rule: rules.rule(for: event.category),
                                           point: at.point, crs: at.crs, grid: at.grid, parent: at.parent))
            }
        }
        pending = p
        guard !p.events.isEmpty else { return done() }
        if let request = windowRequest { return .need(request) }
        return askStored()
    }

    private mutating func askFreshReference(_ p: Pending) -> PlanStep {
        pending = p
        return .need(.freshReference)
    }

    /// One round trip's worth: which events are stored already, which window incidents in reach
    /// were closed meanwhile, the extents not in memory, and the stored history for events whose
    /// correlation window reaches before the hot window's start.
    private mutating func askStored() -> PlanStep {
        let window = window!
        var request = StoredFactsRequest(before: window.start)
        // Only the keys that may be stored: of an event observed since the keys' horizon whose
        // key is not among them, the answer is known.
        let verify = pending!.verifyKeys
        request.keys = pending!.events.compactMap {
            let key = EventKey($0.event)
            return verify || keys.mayBeStored(key, observedAt: $0.event.observedAt) ? key : nil
        }
        for (k, c) in pending!.candidates.enumerated() {
            let t = c.event.observedAt
            request.candidates.formUnion(window.incidents(category: c.event.category, near: c.point, at: t,
                                                          radius: c.rule.radiusMeters, window: c.rule.windowSeconds))
            if !window.covers(t: t, window: c.rule.windowSeconds) {
                request.probes.append(HistoryProbe(candidate: k, category: c.event.category, point: c.point, t: t,
                                                   radius: c.rule.radiusMeters, window: c.rule.windowSeconds))
            }
        }
        request.extents = request.candidates.filter { extents[$0] == nil }
        return .need(.stored(request))
    }

    /// Dedup, the join, the mute order and the tasks of new incidents: everything is in hand.
    private mutating func finish(_ stored: StoredFacts) -> PlanStep {
        var p = pending!
        // A repeat of an id stored already (or by this batch, or by the in-flight batch by the
        // time this one commits) has no effect; a repeat of a refused one is judged on its own,
        // as it would be in a later batch. The key holds the owner: only the sender's own ids are
        // duplicates. A retransmission of a stored event is a duplicate even when it could no
        // longer be placed (a grid retired since).
        var seen = p.inFlightKeys
        var placed: [Placed] = [], history: [[CorrelationMatch]] = []
        var historyByCandidate: [Int: [CorrelationMatch]] = [:]
        for (probe, matches) in zip(stored.probes, stored.history) { historyByCandidate[probe.candidate] = matches }
        var next = p.candidates.enumerated().makeIterator()
        for ((index, event), refusal) in zip(p.events, p.refusals) {
            let item = refusal == nil ? next.next() : nil
            let key = EventKey(event)
            if seen.contains(key) || stored.stored.contains(key) {
                p.plan.outcomes[index] = .duplicate
            } else if let refusal {
                p.plan.reject(index, refusal, p.batch[index].raw)
            } else {
                seen.insert(key)
                placed.append(item!.element)
                history.append(historyByCandidate[item!.offset] ?? [])
            }
        }
        pending = p
        guard !placed.isEmpty else { return done() }
        let correlated = correlate(placed, history: history, closed: stored.closed, inFlight: p.inFlightLate)
        p.plan.counts.late = correlated.late
        p.plan.counts.cut = correlated.cut
        p.plan.lateEvents = correlated.lateEvents
        p.plan.opened = correlated.opened
        p.plan.grown = correlated.grown
        var touched = Set<UUID>(), loud = Set<UUID>()
        let reference = p.reference
        for (item, incident) in zip(placed, correlated.incidents) {
            p.plan.outcomes[item.index] = .stored(incidentID: incident.uuidString.lowercased())
            let key = EventKey(item.event)
            p.plan.storedKeys.insert(key)
            keys.insert(key, observedAt: item.event.observedAt)
            if touched.insert(incident).inserted { p.plan.touched.append(incident) }
            let muted = mute(item, reference: reference, &p.plan.counts)
            if muted == nil { loud.insert(incident) }
            p.plan.events.append(PlannedEvent(placed: item, incident: incident, mutedBy: muted))
        }
        p.plan.silencedOnly = touched.subtracting(loud)
        // Incidents this batch opens: nothing stored can change them before it commits, so their
        // tasks are decided here, off the write session's path.
        let fresh = incidents(opened: correlated, placed, reference: reference)
        for (id, incident) in fresh where !p.plan.silencedOnly.contains(id) {
            guard var step = tasks.evidence(on: incident, now: p.now)?.announced else { continue }
            presence.suggest(&step.message, now: p.now)
            p.plan.created.append(step)
            p.plan.freshTasks[id] = step.message
        }
        p.plan.fresh = Set(fresh.keys)
        pending = p
        return done()
    }

    private mutating func done() -> PlanStep {
        var plan = pending!.plan
        plan.presence = presence
        pending = nil
        return .done(plan)
    }

    /// Why a stored event makes no task message, in order: a silence, its camera's picture-lost
    /// inhibition (analytics alarms), the camera's suppression as noisy; nil: it does.
    private mutating func mute(_ item: Placed, reference: ReferenceData, _ counts: inout BatchCounts) -> String? {
        let e = item.event
        if let device = e.deviceID, e.alarmClass == .pictureLost, rules.inhibitSeconds > 0 {
            inhibitedUntil[device] = max(inhibitedUntil[device] ?? 0, e.observedAt + rules.inhibitSeconds)
        }
        if let silence = reference.silences.silencing(deviceID: e.deviceID, gridCode: item.grid.gridCode, category: e.category,
                                                      observedAt: e.observedAt) {
            counts.silenced += 1
            return "silence:\(silence.id)"
        }
        if e.alarmClass == .analytics, let device = e.deviceID, let until = inhibitedUntil[device],
            e.observedAt < until, e.observedAt >= until - rules.inhibitSeconds
        {
            counts.inhibited += 1
            return "inhibited:\(device)"
        }
        if e.source == .alert, let device = e.deviceID, reference.suppressedCameras.contains(device) {
            counts.suppressed += 1
            return "suppressed"
        }
        return nil
    }

    // MARK: the join

    /// The join rule. An event's candidates are the open incidents of its category with an event
    /// within the category's radius and window (in the hot window, in stored history, among the
    /// late events of this batch and of the batch in flight). It joins the nearest of those it
    /// fits (by its nearest event, then time, then order) - the incident's bounds (max_span_m,
    /// max_duration_s) kept, and its nearest event within `CategoryRule.linkMeters` (0.6 x radius)
    /// or its centre (the mean position of its events) within `centreMeters` (0.7 x radius);
    /// fitting none, it opens a new incident that names the candidates it could not join. Events go in
    /// observed-time order, so events of the same batch join each other. Two incidents close
    /// together stay apart: an event of the second lies within the radius of the first's events,
    /// but neither near its centre nor near any of them; a crowd moving along a street is followed
    /// from event to event. `history`: per event, the stored
    /// matches older than the window (empty when the window covers it). `closed`: candidates
    /// closed since they entered the window. `inFlight`: the late events of a batch planned before
    /// this one and not yet committed (neither in the window nor in stored history).
    private mutating func correlate(_ placed: [Placed], history: [[CorrelationMatch]], closed: [UUID], inFlight: [LateEvent])
        -> Correlated
    {
        var window = self.window!
        // Taken out while it changes: the only reference, so inserting does not copy the whole
        // window (copy-on-write).
        self.window = nil
        window.markClosed(closed)
        var result = Correlated(incidents: [], opened: [:], grown: [:], late: 0, lateEvents: [], cut: 0)
        result.late = placed.filter { !window.covers(t: $0.event.observedAt, window: $0.rule.windowSeconds) }.count
        // Events of this batch (and of the batch in flight) observed before the window's start:
        // not in the window, not yet in the database.
        var lateInBatch = inFlight
        for (p, stored) in zip(placed, history) {
            let t = p.event.observedAt, rule = p.rule
            var best = window.best(category: p.event.category, near: p.point, at: t, radius: rule.radiusMeters, window: rule.windowSeconds)
            if let fromStore = stored.first { best = [best, fromStore].compactMap { $0 }.min() }
            var lateMatches: [CorrelationMatch] = [], related: [UUID] = []
            for other in lateInBatch where other.category == p.event.category && abs(other.t - t) <= rule.windowSeconds {
                let distance = p.point.ellipsoidDistance(to: other.point)
                guard distance <= rule.radiusMeters else { continue }
                let match = CorrelationMatch(incident: other.incident, distance: distance, seconds: abs(other.t - t), ordinal: Int64.max)
                lateMatches.append(match)
                if best == nil || match < best! { best = match }
            }
            // The incident of the nearest event, if the event fits it (usually); else the nearest
            // that it fits, or a new one naming those in reach.
            if let nearest = best, !fits(nearest, p) {
                var each: [UUID: CorrelationMatch] = [:]
                for m in window.matches(category: p.event.category, near: p.point, at: t, radius: rule.radiusMeters,
                                        window: rule.windowSeconds) + stored + lateMatches
                where each[m.incident].map({ m < $0 }) ?? true {
                    each[m.incident] = m
                }
                let ordered = each.values.sorted()
                best = ordered.first { fits($0, p) }
                related = ordered.filter { !fits($0, p) }.prefix(3).map(\.incident)
                result.cut += 1
            }
            let joined = best
            let incident: UUID
            if let joined {
                incident = joined.incident
                if result.opened[incident] != nil {
                    result.opened[incident]!.add(p.event)
                } else {
                    result.grown[incident, default: IncidentGrowth(first: p.event)].add(p.event)
                }
            } else {
                incident = UUID()
                result.opened[incident] = NewIncident(first: p, related: related)
            }
            extend(incident, p.point, at: t)
            result.incidents.append(incident)
            if t >= window.start {
                window.insert(category: p.event.category, at: p.point, t: t, incident: incident)
            } else {
                lateInBatch.append(LateEvent(category: p.event.category, point: p.point, t: t, incident: incident))
                result.lateEvents.append(lateInBatch.last!)
            }
        }
        self.window = window
        return result
    }

    /// An event of `incident` at `point`, observed at `t`, joins its extent (or starts it).
    private mutating func extend(_ incident: UUID, _ point: LonLat, at t: Double) {
        if extents[incident] == nil { extents[incident] = IncidentExtent(point, at: t) } else { extents[incident]!.add(point, at: t) }
    }

    /// Whether the event may join the candidate: within its category's bounds, and within
    /// `linkMeters` of its nearest event (`m.distance`) or `centreMeters` of its centre. (An
    /// incident whose extent is unknown - none is, by construction - is judged by its nearest
    /// event alone.)
    private func fits(_ m: CorrelationMatch, _ p: Placed) -> Bool {
        guard let extent = extents[m.incident] else { return true }
        guard extent.admits(p.point, at: p.event.observedAt, maxSpan: p.rule.maxSpan, maxDuration: p.rule.maxDuration) else { return false }
        return m.distance <= p.rule.linkMeters || p.point.ellipsoidDistance(to: extent.centre) <= p.rule.centreMeters
    }

    // MARK: tasks of new incidents

    /// Incidents this batch opened, as the task store would read them back: everything about
    /// them is in hand, so only incidents that existed before the batch are read at commit.
    private func incidents(opened c: Correlated, _ placed: [Placed], reference: ReferenceData) -> [UUID: IncidentState] {
        guard !c.opened.isEmpty else { return [:] }
        var evidence: [UUID: (alerts: [String], reports: [String])] = [:]
        var latest: [UUID: (alert: IngestEvent?, report: IngestEvent?)] = [:]
        var residents = Set<UUID>()
        // Most recent first, as the stored evidence is read (observed time, then arrival).
        for (p, incident) in zip(placed, c.incidents).reversed() where c.opened[incident] != nil {
            if p.event.citizen != nil { residents.insert(incident) }
            if p.event.source == .alert, latest[incident]?.alert == nil { latest[incident, default: (nil, nil)].alert = p.event }
            if p.event.source == .report, latest[incident]?.report == nil { latest[incident, default: (nil, nil)].report = p.event }
            if p.event.source == .alert {
                if (evidence[incident]?.alerts.count ?? 0) < 20 { evidence[incident, default: ([], [])].alerts.append(p.event.sourceID) }
            } else if (evidence[incident]?.reports.count ?? 0) < 20 {
                evidence[incident, default: ([], [])].reports.append(p.event.sourceID)
            }
        }
        var out: [UUID: IncidentState] = [:]
        for (id, n) in c.opened {
            let g = n.growth
            out[id] = IncidentState(
                id: id.uuidString.lowercased(), category: n.category, gridCode: n.gridCode, villageCode: n.villageCode,
                priority: g.priority, lon: n.point.lon, lat: n.point.lat, workerID: reference.workers[n.gridCode],
                evidence: TaskEvidence(alerts: evidence[id]?.alerts ?? [], reports: evidence[id]?.reports ?? [],
                                       alertCount: g.alerts, reportCount: g.reports),
                relatedIncidentIDs: n.related.map { $0.uuidString.lowercased() })
            out[id]!.residentRequest = residents.contains(id)
            let alert = latest[id]?.alert, report = latest[id]?.report
            let details = IncidentContext.details(alert: alert.map { Array($0.body.utf8) }, report: report.map { Array($0.body.utf8) })
            out[id]!.context = IncidentContext(
                villageName: reference.divisionNames[n.villageCode], townshipName: reference.divisionNames[String(n.villageCode.prefix(9))],
                description: details.description, cameraName: alert?.deviceID.flatMap { reference.cameraNames[$0] }, media: details.media)
        }
        return out
    }

    /// The batch being planned.
    private struct Pending: Sendable {
        let batch: [Inbound]
        let now: Double
        var reference: ReferenceData
        /// Every key is asked of the database (`start`).
        let verifyKeys: Bool
        /// The reference data was loaded again for this batch (it is not asked for twice).
        var rechecked = false
        let inFlightKeys: Set<EventKey>
        let inFlightLate: [LateEvent]
        /// The in-flight batch's records: what they change in the reference data counts already.
        var inFlightRecords: [any InboundRecord] = []
        var plan = BatchPlan(count: 0)
        /// The batch's events in observed-time order with their batch index, and per event why it
        /// cannot be placed (nil: placed, the next of `candidates`).
        var events: [(index: Int, event: IngestEvent)] = []
        var refusals: [Rejection?] = []
        var candidates: [Placed] = []
        /// Stored facts held while the extents they named are loaded.
        var stored: StoredFacts?
        /// Positions of the batch, noted in the presence once the batch is planned.
        var sightings: [WorkerSighting] = []

        init(batch: [Inbound], now: Double, reference: ReferenceData, verifyKeys: Bool, inFlightKeys: Set<EventKey>,
             inFlightLate: [LateEvent]) {
            self.batch = batch
            self.now = now
            self.reference = reference
            self.verifyKeys = verifyKeys
            self.inFlightKeys = inFlightKeys
            self.inFlightLate = inFlightLate
        }
    }
}
