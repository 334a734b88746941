import Foundation
import Synchronization
import LiandongCore
import LibPQ

/// The read side of the event store, run by the writer thread or, for the batch after the one
/// being written, by the prepare thread: placement (reference data), dedup and correlation on a
/// read-only session, and the rows and fresh tasks the batch writes. It owns the correlation
/// window. Shared between the two threads only as `SharedPreparer`, whose lock the compiler checks.
package final class BatchPreparer {
    /// Reads committed data only: a batch can be prepared here while the one before it is written.
    private let reader: PGConnection
    private let rules: Rules
    private let planner: TaskPlanner
    private let correlator: Correlator
    /// Where preparing takes its time, by phase (see `takePhases`).
    private var clock = PhaseClock()
    /// Per camera: until when (observed time) its analytics alarms are inhibited by a video-lost
    /// or tamper alarm. Loaded from stored alerts at start; only grows (safe to prepare again).
    private var inhibitedUntil: [String: Double] = [:]

    package init(reader: PGConnection, rules: Rules, windowCapacity: Int) throws {
        try reader.execute("SET default_transaction_read_only = on")
        self.reader = reader
        self.rules = rules
        planner = TaskPlanner(rules: rules)
        correlator = try Correlator(db: reader, rules: rules, windowCapacity: windowCapacity)
        if rules.inhibitSeconds > 0 {
            // Picture-lost alarms stored within the inhibition time: the payload says which.
            for row in try reader.query("""
                SELECT device_id, extract(epoch FROM observed_at), payload->>'alarm_method', payload->>'alarm_type'
                FROM liandong.events
                WHERE source = 'alert' AND observed_at > now() - make_interval(secs => $1) AND category IN ('tamper', 'device_fault')
                """, [String(rules.inhibitSeconds)]).rows {
                guard let device = row[0], let at = row[1].flatMap(Double.init), let method = row[2].flatMap(Int.init),
                    AlarmClass(alarmMethod: method, alarmType: row[3].flatMap(Int.init)) == .pictureLost
                else { continue }
                inhibitedUntil[device] = max(inhibitedUntil[device] ?? 0, at + rules.inhibitSeconds)
            }
        }
    }

    package var isConnected: Bool { reader.isOK }

    package func close() { reader.close() }

    /// Events held in the correlation window.
    package var windowCount: Int { correlator.windowCount }

    package func takePhases() -> [String: Double] { clock.take() }

    /// Whether a batch can be prepared while another is written: only with the window in memory
    /// (it holds the in-flight batch's events; a window reloaded from PostgreSQL would not).
    package var canPrepareAhead: Bool { correlator.hasWindow }

    /// After a commit, with no other batch being prepared: the window moves on.
    package func committed() { correlator.committed() }

    /// After any failure: the window was changed as batches were correlated; it is rebuilt from
    /// what was committed before the next batch. Batches prepared meanwhile must be prepared again.
    package func discardPrepared() { correlator.discardWindow() }

    /// Everything about a batch that needs no write: placement, dedup, correlation and the rows to
    /// write, on the read session. `inFlight`: the batch being written meanwhile (prepared just
    /// before this one, not yet committed): its events count as stored and its late events as
    /// correlated. Changes the window; any failure after this, of this batch or of `inFlight`,
    /// needs `discardPrepared()`.
    package func prepare(_ batch: [Inbound], now: Double = Date().timeIntervalSince1970, after inFlight: PreparedBatch? = nil)
        throws -> PreparedBatch
    {
        clock.start()
        var p = PreparedBatch(count: batch.count)
        func reject(_ index: Int, _ rejection: Rejection) {
            p.outcomes[index] = .rejected(rejection)
            p.deadLetters.append((rejection, batch[index].raw))
        }
        var events: [(index: Int, event: IngestEvent)] = []
        var reference = try correlator.currentReference()
        var rechecked = false
        for (index, inbound) in batch.enumerated() {
            switch inbound {
            case .rejected(let rejection, _): reject(index, rejection)
            case .event(var event, let raw):
                event.owner = raw.sender?.name ?? event.gatewayID ?? ""
                events.append((index, event))
            case .deviceStatus(let report, let raw):
                // Judged like an event: by the registry and the sender's scope.
                if !rechecked, reference.cameraGrids[report.deviceID] == nil {
                    rechecked = true
                    reference = try correlator.currentReference(force: true)  // imported a moment ago?
                }
                let grid = reference.cameraGrids[report.deviceID]
                let access = TrustPolicy.deviceStatus(from: raw.sender, device: report.deviceID, cameraGrid: grid,
                                                      knownCounty: reference.divisionNames[String(report.deviceID.prefix(6))] != nil)
                if case .forbidden(let why) = access {
                    reject(index, Rejection(grid == nil && raw.sender == nil ? .unknownDevice : .outOfScope, why))
                } else {
                    p.deviceStatuses.append(report)
                    p.outcomes[index] = .stored(incidentID: "")
                }
            }
        }
        guard !events.isEmpty else { return p }
        // Observed-time order: late and out-of-order events correlate as in-order ones do.
        events.sort { ($0.event.observedAt, $0.index) < ($1.event.observedAt, $1.index) }
        clock.lap("reference")
        // Placement first (in memory), so that one query answers both which events are stored
        // already and which window incidents they could join were closed meanwhile.
        var refusals: [Rejection?] = []  // per event; nil: placed, the next of `candidates`
        refusals.reserveCapacity(events.count)
        var candidates: [Placed] = []
        for (index, event) in events {
            var placement = reference.place(event)
            if case .failure = placement, !rechecked {
                // Before refusing: an import may have added the camera or grid a moment ago.
                rechecked = true
                reference = try correlator.currentReference(force: true)
                placement = reference.place(event)
            }
            if case .success(let at) = placement, let sender = batch[index].raw.sender,
                case .forbidden(let why) = TrustPolicy.event(from: sender, inGrid: at.grid.gridCode)
            {
                placement = .failure(Rejection(.outOfScope, why))
            }
            switch placement {
            case .failure(let rejection): refusals.append(rejection)
            case .success(let at):
                refusals.append(nil)
                candidates.append(Placed(index: index, event: event, rule: rules.rule(for: event.category),
                                         point: at.point, crs: at.crs, grid: at.grid))
            }
        }
        let (stored, closed) = try storedAlready(events.map(\.event), closedAmong: try correlator.candidates(candidates))
        clock.lap("dedup")
        // A repeat of an id stored already (or by this batch, or by the in-flight batch by the
        // time this one commits) has no effect; a repeat of a refused one is judged on its own,
        // as it would be in a later batch.
        var seen = inFlight?.storedKeys ?? []
        var placed: [Placed] = []
        var next = candidates.makeIterator()
        for ((index, event), refusal) in zip(events, refusals) {
            let item = refusal == nil ? next.next() : nil
            let key = Self.key(event)
            // The key holds the owner: only the sender's own ids are duplicates (another gateway's
            // id is judged as a new event, its scope included). A retransmission of a stored event
            // is a duplicate even when it could no longer be placed (a grid retired since).
            if seen.contains(key) || stored.contains(key) {
                p.outcomes[index] = .duplicate
            } else if let refusal {
                reject(index, refusal)
            } else {
                seen.insert(key)
                placed.append(item!)
            }
        }
        guard !placed.isEmpty else { return p }
        var touched = Set<UUID>(), loud = Set<UUID>()
        var mutedBy: [String?] = []
        let correlated = try correlator.correlate(placed, closed: closed, inFlight: inFlight?.lateEvents ?? [], &clock)
        p.counts.late = correlated.late
        p.counts.cut = correlated.cut
        p.lateEvents = correlated.lateEvents
        for (item, incident) in zip(placed, correlated.incidents) {
            p.outcomes[item.index] = .stored(incidentID: incident.uuidString.lowercased())
            p.storedKeys.insert(Self.key(item.event))
            if touched.insert(incident).inserted { p.touched.append(incident) }
            let e = item.event
            if let device = e.deviceID, e.alarmClass == .pictureLost, rules.inhibitSeconds > 0 {
                inhibitedUntil[device] = max(inhibitedUntil[device] ?? 0, e.observedAt + rules.inhibitSeconds)
            }
            if let silence = reference.silences.silencing(deviceID: e.deviceID, gridCode: item.grid.gridCode, category: e.category,
                                                          observedAt: e.observedAt) {
                p.counts.silenced += 1
                mutedBy.append("silence:\(silence.id)")
            } else if e.alarmClass == .analytics, let device = e.deviceID, let until = inhibitedUntil[device],
                e.observedAt < until, e.observedAt >= until - rules.inhibitSeconds
            {
                p.counts.inhibited += 1
                mutedBy.append("inhibited:\(device)")
            } else if e.source == .alert, let device = e.deviceID, reference.suppressedCameras.contains(device) {
                p.counts.suppressed += 1
                mutedBy.append("suppressed")
            } else {
                loud.insert(incident)
                mutedBy.append(nil)
            }
        }
        p.silencedOnly = touched.subtracting(loud)
        p.rows = try rows(placed, correlated, mutedBy: mutedBy)
        clock.lap("build_rows")
        // Incidents this batch opens: nothing stored can change them before it commits, so their
        // tasks are decided and built here, off the write session's path.
        let fresh = incidents(opened: correlated, placed, reference: reference)
        var created: [TaskRecord] = []
        for (id, incident) in fresh where !p.silencedOnly.contains(id) {
            guard let step = planner.evidence(on: incident, now: now)?.announced else { continue }
            created.append(step.task)
            p.freshTasks[id] = step.message
        }
        p.fresh = Set(fresh.keys)
        p.freshTaskRows = TaskRows(created: created)
        clock.lap("build_tasks")
        return p
    }

    // MARK: dedup

    private static func key(_ e: IngestEvent) -> String { e.source.rawValue + "\u{1F}" + e.owner + "\u{1F}" + e.sourceID }

    /// The batch's events already stored (by source and id, on the unique index) and which of
    /// `incidents` are no longer open, in one round trip.
    private func storedAlready(_ events: [IngestEvent], closedAmong incidents: Set<UUID>) throws
        -> (stored: Set<String>, closed: [UUID])
    {
        let rows = try reader.query("""
            SELECT x.s, x.o, x.i FROM unnest($1::text[], $2::text[], $4::text[]) AS x(s, i, o)
            WHERE EXISTS (SELECT 1 FROM liandong.event_keys v WHERE v.source = x.s AND v.owner = x.o AND v.source_id = x.i)
            UNION ALL
            SELECT NULL, NULL, id::text FROM liandong.incidents WHERE id = ANY($3::uuid[]) AND status <> 'open'
            """, [PGCopyText.arrayLiteral(events.map(\.source.rawValue)), PGCopyText.arrayLiteral(events.map(\.sourceID)),
                  TaskStore.uuidArray(incidents.map(\.uuidString)), PGCopyText.arrayLiteral(events.map(\.owner))])
        var stored = Set<String>(), closed: [UUID] = []
        for row in rows.typed {
            if let source = row[0] {
                stored.insert(source + "\u{1F}" + (try row.string(1)) + "\u{1F}" + (try row.string(2)))
            } else if let id = UUID(uuidString: try row.string(2)) {
                closed.append(id)
            }
        }
        return (stored, closed)
    }

    // MARK: rows

    /// The rows a correlated batch adds: new incidents and events as COPY data, grown incidents
    /// and gateway seqs as statement parameters.
    private func rows(_ placed: [Placed], _ c: Correlated, mutedBy: [String?]) throws -> BatchRows {
        var rows = BatchRows()
        if !c.opened.isEmpty {
            var copy = PGCopyText(reservingCapacity: c.opened.count * 200)
            for (id, n) in c.opened {
                copy.plain(id.uuidString)
                copy.field(n.category)
                copy.plain(String(n.growth.priority))
                copy.plain(Self.ewkb(n.point))
                copy.plain(n.gridCode)
                copy.plain(n.villageCode)
                copy.plain(Timestamp.formatUTC(n.growth.first))
                copy.plain(Timestamp.formatUTC(n.growth.last))
                copy.plain(String(n.growth.alerts))
                copy.plain(String(n.growth.reports))
                copy.plain(TaskStore.uuidArray(n.related.map(\.uuidString)))
                copy.endRow()
            }
            rows.incidents = copy.bytes
        }
        var copy = PGCopyText(reservingCapacity: placed.count * 600)
        var keySources: [String] = [], keyIDs: [String] = [], keyTimes: [String] = [], keyOwners: [String] = []
        for ((p, incident), muted) in zip(zip(placed, c.incidents), mutedBy) {
            let e = p.event
            let observed = Timestamp.formatUTC(e.observedAt)
            keySources.append(e.source.rawValue)
            keyIDs.append(e.sourceID)
            keyTimes.append(observed)
            keyOwners.append(e.owner)
            rows.days.insert(EventDay(e.observedAt))
            copy.plain(e.source.rawValue)
            copy.field(e.sourceID)
            copy.field(e.gatewayID)
            if let seq = e.gatewaySeq { copy.plain(String(seq)) } else { copy.field(nil) }
            copy.field(e.deviceID)
            copy.field(e.workerID)
            copy.field(e.category)
            copy.plain(String(e.priority))
            copy.plain(observed)
            copy.plain(Self.ewkb(p.point))
            copy.plain(p.crs)
            copy.plain(p.grid.gridCode)
            copy.plain(p.grid.villageCode)
            copy.plain(incident.uuidString)
            copy.field(e.body)
            copy.field(muted)
            copy.endRow()
        }
        rows.events = copy.bytes
        // Highest seq per gateway, for the gap tracker's seed at the next start.
        var highest: [String: Int64] = [:]
        for p in placed {
            if let gateway = p.event.gatewayID, let seq = p.event.gatewaySeq { highest[gateway] = max(highest[gateway] ?? seq, seq) }
        }
        struct Seq: Encodable { let g: String; let s: Int64 }
        struct Grown: Encodable {
            let id: String
            let priority, alerts, reports: Int
            let first, last: Double
        }
        let grown = c.grown.map { id, g in
            Grown(id: id.uuidString, priority: g.priority, alerts: g.alerts, reports: g.reports, first: g.first, last: g.last)
        }
        rows.update = [try TaskStore.json(highest.map { Seq(g: $0.key, s: $0.value) }), try TaskStore.json(grown),
                       TaskStore.uuidArray(grown.map(\.id)), PGCopyText.arrayLiteral(keySources),
                       PGCopyText.arrayLiteral(keyIDs), PGCopyText.arrayLiteral(keyTimes), PGCopyText.arrayLiteral(keyOwners)]
        return rows
    }

    /// A WGS-84 point as hex EWKB (SRID 4326), which geography columns take as text input.
    package static func ewkb(_ p: LonLat) -> String {
        var hex = "0101000020E6100000"
        for value in [p.lon, p.lat] {
            var bits = value.bitPattern.littleEndian
            withUnsafeBytes(of: &bits) { bytes in
                for b in bytes {
                    hex.append(Self.hexDigits[Int(b >> 4)])
                    hex.append(Self.hexDigits[Int(b & 0xF)])
                }
            }
        }
        return hex
    }

    private static let hexDigits = Array("0123456789ABCDEF")

    // MARK: tasks

    /// Incidents this batch opened, as `TaskStore.load` would read them back: everything about
    /// them is in hand, so only incidents that existed before the batch are read.
    private func incidents(opened c: Correlated, _ placed: [Placed], reference: ReferenceData) -> [UUID: IncidentState] {
        guard !c.opened.isEmpty else { return [:] }
        var evidence: [UUID: (alerts: [String], reports: [String])] = [:]
        var latest: [UUID: (alert: IngestEvent?, report: IngestEvent?)] = [:]
        // Most recent first, as the stored evidence is read (observed time, then arrival).
        for (p, incident) in zip(placed, c.incidents).reversed() where c.opened[incident] != nil {
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
            let alert = latest[id]?.alert, report = latest[id]?.report
            let details = IncidentContext.details(alert: alert.map { Array($0.body.utf8) }, report: report.map { Array($0.body.utf8) })
            out[id]!.context = IncidentContext(
                villageName: reference.divisionNames[n.villageCode], townshipName: reference.divisionNames[String(n.villageCode.prefix(9))],
                description: details.description, cameraName: alert?.deviceID.flatMap { reference.cameraNames[$0] }, media: details.media)
        }
        return out
    }
}

/// The preparer behind a lock: the writer thread and the prepare thread take turns with it (one
/// prepares the next batch while the other commits), and the compiler checks every hand-over.
public final class SharedPreparer: Sendable {
    private let preparer: Mutex<BatchPreparer>

    package init(_ preparer: sending BatchPreparer) {
        self.preparer = Mutex(preparer)
    }

    /// Runs `body` with the preparer, holding it meanwhile.
    package func with<R: Sendable>(_ body: (BatchPreparer) throws -> R) rethrows -> R {
        try preparer.withLock { p in try body(p) }
    }
}
