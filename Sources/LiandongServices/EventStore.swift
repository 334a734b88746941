import Foundation
import LiandongCore
import LibPQ

/// Writes batches of inbound messages: events, incidents, tasks, feed outbox and dead letters,
/// each batch in one transaction. Owns its connection; use it from one thread.
///
/// The hot path asks the database nothing per event: positions and grids come from `ReferenceData`,
/// correlation from the `HotWindow` of recent events of open incidents (only events observed
/// before the window's start are matched in PostgreSQL, in one query per batch), and the batch is
/// written with COPY plus one set-based incident update.
public final class EventStore {
    private let db: PGConnection
    private let rules: Rules
    private let maxDeadLetterBytes: Int
    private let correlator: Correlator
    /// Where the writer's time goes, by phase (seconds, cumulative; see `takePhases`).
    private var clock = PhaseClock()

    public init(conninfo: String, rules: Rules, maxDeadLetterBytes: Int = 65_536, windowCapacity: Int = 100_000) throws {
        db = try PGConnection(conninfo: conninfo)
        try db.execute("SET client_min_messages = warning")
        // If this client vanishes without closing (a network partition), the server ends the
        // session - and releases the writer lock below - within about half a minute.
        try db.execute("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3")
        // One writer per database: the correlation window is this process's memory, a second
        // writer would correlate without seeing the first one's events. Held for the session.
        guard try db.query("SELECT pg_try_advisory_lock($1::bigint)", [String(Self.writerLockKey)]).scalar == "t" else {
            throw WriterLockBusy()
        }
        self.rules = rules
        self.maxDeadLetterBytes = maxDeadLetterBytes
        correlator = try Correlator(db: db, rules: rules, windowCapacity: windowCapacity)
    }

    public var isConnected: Bool { db.isOK }

    /// Ends the session (and releases the writer lock) before a new store is opened.
    public func close() { db.close() }

    /// Session advisory lock taken by the writer ("liandong" in ASCII, 0x6c69616e646f6e67).
    public static let writerLockKey: Int64 = 0x6c69_616e_646f_6e67

    /// Events held in the correlation window (for the metrics).
    public var windowCount: Int { correlator.windowCount }

    /// Seconds spent per phase since the last call (for liandong_writer_seconds_total).
    public func takePhases() -> [String: Double] { clock.take() }

    /// Writes a batch in one transaction. When the database refuses the batch for a reason other
    /// than a broken connection, the items are written one by one so one bad item cannot block the
    /// rest; an item refused alone becomes a dead letter (store_error). Connection failures are
    /// thrown for the caller to retry.
    public func write(_ batch: [Inbound], now: Double = Date().timeIntervalSince1970) throws -> BatchResult {
        do {
            let result = try writeOnce(batch, now: now)
            correlator.committed()
            return result
        } catch let error as PQError where !error.isConnectionFailure && batch.count > 1 {
            var result = BatchResult(outcomes: [], messages: [])
            for item in batch {
                let one = try write([item], now: now)
                result.outcomes += one.outcomes
                result.messages += one.messages
                result.late += one.late
            }
            return result
        } catch let error as PQError where !error.isConnectionFailure {
            let rejection = Rejection(.storeError, "the database refused the event: \(error)")
            return try db.transaction { _ in
                try insertDeadLetters([(rejection, batch[0].raw)])
                return BatchResult(outcomes: [.rejected(rejection)], messages: [])
            }
        }
    }

    /// One transaction. The window is changed as the batch is correlated, so any failure
    /// (including at COMMIT) discards it; the next batch reloads it from what was committed.
    private func writeOnce(_ batch: [Inbound], now: Double) throws -> BatchResult {
        do {
            clock.start()
            let result = try db.transaction { _ in try writeInTransaction(batch, now: now) }
            clock.lap("commit")
            return result
        } catch {
            correlator.discardWindow()
            throw error
        }
    }

    private func writeInTransaction(_ batch: [Inbound], now: Double) throws -> BatchResult {
        var outcomes = [ItemOutcome?](repeating: nil, count: batch.count)
        var deadLetters: [(Rejection, RawMessage)] = []
        func reject(_ index: Int, _ rejection: Rejection) {
            outcomes[index] = .rejected(rejection)
            deadLetters.append((rejection, batch[index].raw))
        }
        var events: [(index: Int, event: IngestEvent)] = []
        for (index, inbound) in batch.enumerated() {
            switch inbound {
            case .rejected(let rejection, _): reject(index, rejection)
            case .event(let event, _): events.append((index, event))
            }
        }
        var touched: [UUID] = [], touchedSet = Set<UUID>()
        var fresh: [UUID: TaskSnapshot] = [:]
        var late = 0
        if !events.isEmpty {
            // Observed-time order: late and out-of-order events correlate as in-order ones do.
            events.sort { ($0.event.observedAt, $0.index) < ($1.event.observedAt, $1.index) }
            clock.lap("begin")
            var reference = try correlator.currentReference()
            var rechecked = false
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
            var seen = Set<String>()
            var placed: [Placed] = []
            var next = candidates.makeIterator()
            for ((index, event), refusal) in zip(events, refusals) {
                let item = refusal == nil ? next.next() : nil
                let key = Self.key(event)
                guard seen.insert(key).inserted, !stored.contains(key) else {
                    outcomes[index] = .duplicate
                    continue
                }
                if let refusal { reject(index, refusal) } else { placed.append(item!) }
            }
            if !placed.isEmpty {
                let correlated = try correlator.correlate(placed, closed: closed, &clock)
                late = correlated.late
                try insert(placed, correlated)
                clock.lap("write_events")
                for (item, incident) in zip(placed, correlated.incidents) {
                    outcomes[item.index] = .stored(incidentID: incident.uuidString.lowercased())
                    if touchedSet.insert(incident).inserted { touched.append(incident) }
                }
                fresh = snapshots(opened: correlated, placed, workers: reference.workers)
            }
        }
        try insertDeadLetters(deadLetters)
        clock.lap("dead_letters")
        let messages = try emitTasks(for: touched, fresh: fresh, now: now)
        return BatchResult(outcomes: outcomes.map { $0 ?? .duplicate }, messages: messages, late: late)
    }

    // MARK: dedup, reference data, window

    private static func key(_ e: IngestEvent) -> String { e.source.rawValue + "\u{1F}" + e.sourceID }

    /// The batch's events already stored (by source and id, on the unique index) and which of
    /// `incidents` are no longer open, in one round trip.
    private func storedAlready(_ events: [IngestEvent], closedAmong incidents: Set<UUID>) throws
        -> (stored: Set<String>, closed: [UUID])
    {
        struct Key: Encodable { let s, i: String }
        let rows = try db.query("""
            SELECT x.s, x.i FROM jsonb_to_recordset($1::jsonb) AS x(s text, i text)
            WHERE EXISTS (SELECT 1 FROM liandong.events v WHERE v.source = x.s AND v.source_id = x.i)
            UNION ALL
            SELECT NULL, id::text FROM liandong.incidents WHERE id = ANY($2::uuid[]) AND status <> 'open'
            """, [try TaskStore.json(events.map { Key(s: $0.source.rawValue, i: $0.sourceID) }),
                  TaskStore.uuidArray(incidents.map(\.uuidString))])
        var stored = Set<String>(), closed: [UUID] = []
        for row in rows.rows {
            if let source = row[0] { stored.insert(source + "\u{1F}" + row[1]!) } else if let id = UUID(uuidString: row[1]!) { closed.append(id) }
        }
        return (stored, closed)
    }

    // MARK: writing

    /// New incidents and events by COPY, grown incidents in one UPDATE.
    private func insert(_ placed: [Placed], _ c: Correlated) throws {
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
                copy.endRow()
            }
            try db.copy("""
                COPY liandong.incidents (id, category, priority, geog, grid_code, village_code, first_observed_at,
                                         last_observed_at, alert_count, report_count) FROM STDIN
                """, copy.bytes)
        }
        var copy = PGCopyText(reservingCapacity: placed.count * 600)
        for (p, incident) in zip(placed, c.incidents) {
            let e = p.event
            copy.plain(e.source.rawValue)
            copy.field(e.sourceID)
            copy.field(e.gatewayID)
            if let seq = e.gatewaySeq { copy.plain(String(seq)) } else { copy.field(nil) }
            copy.field(e.deviceID)
            copy.field(e.workerID)
            copy.field(e.category)
            copy.plain(String(e.priority))
            copy.plain(Timestamp.formatUTC(e.observedAt))
            copy.plain(Self.ewkb(p.point))
            copy.plain(p.crs)
            copy.plain(p.grid.gridCode)
            copy.plain(p.grid.villageCode)
            copy.plain(incident.uuidString)
            copy.field(e.body)
            copy.endRow()
        }
        try db.copy("""
            COPY liandong.events (source, source_id, gateway_id, gateway_seq, device_id, worker_id, category, priority,
                                  observed_at, geog, source_crs, grid_code, village_code, incident_id, payload) FROM STDIN
            """, copy.bytes)
        // Highest seq per gateway, for the gap tracker's seed at the next start.
        var highest: [String: Int64] = [:]
        for p in placed {
            if let gateway = p.event.gatewayID, let seq = p.event.gatewaySeq { highest[gateway] = max(highest[gateway] ?? seq, seq) }
        }
        guard !highest.isEmpty || !c.grown.isEmpty else { return }
        struct Seq: Encodable { let g: String; let s: Int64 }
        struct Grown: Encodable {
            let id: String
            let priority, alerts, reports: Int
            let first, last: Double
        }
        let grown = c.grown.map { id, g in
            Grown(id: id.uuidString, priority: g.priority, alerts: g.alerts, reports: g.reports, first: g.first, last: g.last)
        }
        // One round trip for both. `= ANY` gives the planner the exact incident keys (it guesses
        // 100 rows for jsonb_to_recordset and, on a young incidents table, chose a hash join over
        // all of it: 4 ms a batch).
        try db.query("""
            WITH seqs AS (
                INSERT INTO liandong.gateway_seqs AS t (gateway_id, highest_seq)
                SELECT x.g, x.s FROM jsonb_to_recordset($1::jsonb) AS x(g text, s bigint)
                ON CONFLICT (gateway_id) DO UPDATE SET highest_seq = greatest(t.highest_seq, excluded.highest_seq), updated_at = now()
                WHERE excluded.highest_seq > t.highest_seq
            ), grown AS (
                UPDATE liandong.incidents i
                SET priority          = least(i.priority, x.priority),
                    first_observed_at = least(i.first_observed_at, to_timestamp(x.first)),
                    last_observed_at  = greatest(i.last_observed_at, to_timestamp(x.last)),
                    alert_count       = i.alert_count + x.alerts,
                    report_count      = i.report_count + x.reports,
                    updated_at        = now()
                FROM jsonb_to_recordset($2::jsonb) AS x(id uuid, priority smallint, alerts integer, reports integer,
                                                         first float8, last float8)
                WHERE i.id = x.id AND i.id = ANY($3::uuid[])
            )
            SELECT 1
            """, [try TaskStore.json(highest.map { Seq(g: $0.key, s: $0.value) }), try TaskStore.json(grown),
                  TaskStore.uuidArray(grown.map(\.id))])
    }

    /// A WGS-84 point as hex EWKB (SRID 4326), which geography columns take as text input.
    static func ewkb(_ p: LonLat) -> String {
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
    private func snapshots(opened c: Correlated, _ placed: [Placed], workers: [String: String]) -> [UUID: TaskSnapshot] {
        guard !c.opened.isEmpty else { return [:] }
        var evidence: [UUID: (alerts: [String], reports: [String])] = [:]
        // Most recent first, as the stored evidence is read (observed time, then arrival).
        for (p, incident) in zip(placed, c.incidents).reversed() where c.opened[incident] != nil {
            if p.event.source == .alert {
                if (evidence[incident]?.alerts.count ?? 0) < 20 { evidence[incident, default: ([], [])].alerts.append(p.event.sourceID) }
            } else if (evidence[incident]?.reports.count ?? 0) < 20 {
                evidence[incident, default: ([], [])].reports.append(p.event.sourceID)
            }
        }
        var out: [UUID: TaskSnapshot] = [:]
        for (id, n) in c.opened {
            let g = n.growth
            out[id] = TaskSnapshot(
                incidentID: id.uuidString.lowercased(), category: n.category, gridCode: n.gridCode, villageCode: n.villageCode,
                incidentPriority: g.priority, alertCount: g.alerts, reportCount: g.reports, lon: n.point.lon, lat: n.point.lat,
                workerID: workers[n.gridCode],
                evidence: TaskEvidence(alerts: evidence[id]?.alerts ?? [], reports: evidence[id]?.reports ?? [],
                                       alertCount: g.alerts, reportCount: g.reports),
                task: nil)
        }
        return out
    }

    private func emitTasks(for incidents: [UUID], fresh: [UUID: TaskSnapshot], now: Double) throws -> [FeedMessage] {
        guard !incidents.isEmpty else { return [] }
        var tasks: [(task: TaskFields, isNew: Bool)] = []
        var messages: [TaskMessage] = []
        var stored: [UUID: TaskSnapshot] = [:]
        let existing = incidents.filter { fresh[$0] == nil }
        if !existing.isEmpty {
            for snapshot in try TaskStore.load(db, incidentIDs: existing.map { $0.uuidString.lowercased() }) {
                stored[UUID(uuidString: snapshot.incidentID)!] = snapshot
            }
        }
        clock.lap("snapshots")
        for snapshot in incidents.compactMap({ fresh[$0] ?? stored[$0] }) {
            let current = snapshot.task
            if let current, current.taskState.isTerminal { continue }
            let decision = emissionDecision(
                for: IncidentEvidence(
                    alertCount: snapshot.alertCount, reportCount: snapshot.reportCount,
                    priority: snapshot.incidentPriority, taskKind: current?.taskKind),
                dispatchSeverity: rules.dispatchSeverity)
            switch decision {
            case .none:
                continue
            case .create(let kind), .upgrade(let kind):
                let task = route(snapshot, kind: kind, current: current, now: now)
                tasks.append((task, isNew: current == nil))
                messages.append(TaskStore.message(snapshot, task, kind: kind, now: now))
            case .update:
                messages.append(TaskStore.message(snapshot, current!, kind: .update, now: now))
            }
        }
        let base = try saveTasks(tasks, feedMessages: messages.count)
        clock.lap("upsert_tasks")
        let feed = try TaskStore.appendFeed(db, messages, base: base)
        clock.lap("feed")
        return feed
    }

    /// New tasks (and their 'created' history rows) by COPY; upgraded ones (verify -> joint_dispatch) by liandong.upsert_tasks().
    /// With upgrades, the same statement reserves the feed seqs of the batch's `feedMessages`
    /// (one round trip less) and their base is returned.
    private func saveTasks(_ tasks: [(task: TaskFields, isNew: Bool)], feedMessages: Int) throws -> Int64? {
        var base: Int64? = nil
        let upgraded = tasks.filter { !$0.isNew }.map(\.task)
        if !upgraded.isEmpty {
            // Every upgrade is announced, so there are feed messages to reserve seqs for.
            let row = try db.query("\(TaskStore.feedHeadAdvance) SELECT base, liandong.upsert_tasks($2::jsonb) FROM head",
                                   [String(feedMessages), try TaskStore.json(upgraded)])
            guard let seq = row.scalar.flatMap(Int64.init) else { throw PQError(kind: .query, message: "liandong.feed_head has no row") }
            base = seq
        }
        let created = tasks.filter(\.isNew).map(\.task)
        guard !created.isEmpty else { return base }
        var copy = PGCopyText(reservingCapacity: created.count * 256)
        for t in created {
            copy.plain(t.id)
            copy.plain(t.incident_id)
            copy.plain(t.kind)
            copy.plain(t.tier)
            copy.field(t.division_code)
            copy.field(t.grid_code)
            copy.field(t.category)
            copy.plain(String(t.priority))
            copy.field(PGCopyText.arrayLiteral(t.departments))
            copy.plain(t.respond_by)
            copy.plain(t.resolve_by)
            copy.endRow()
        }
        try db.copy("""
            COPY liandong.tasks (id, incident_id, kind, tier, division_code, grid_code, category, priority, departments,
                                 respond_by, resolve_by) FROM STDIN
            """, copy.bytes)
        var history = PGCopyText(reservingCapacity: created.count * 128)
        for t in created {
            for value in [t.id, "created", t.tier, t.division_code, t.respond_by, t.resolve_by, "liandong"] { history.field(value) }
            history.endRow()
        }
        try db.copy("""
            COPY liandong.task_history (task_id, event, tier, division_code, respond_by, resolve_by, actor) FROM STDIN
            """, history.bytes)
        return base
    }

    /// Where a new (or upgraded) task goes: a verify task to the grid's village; others by the
    /// routing table (minor -> village, serious -> township, critical -> county), never below the
    /// tier an upgraded task already reached.
    private func route(_ s: TaskSnapshot, kind: TaskKind, current: TaskFields?, now: Double) -> TaskFields {
        let route = rules.route(for: s.category)
        var tier = kind == .verify ? Tier.village : route.startTier(priority: s.incidentPriority)
        if let current, current.taskTier > tier { tier = current.taskTier }
        let deadlines = rules.deadlines(tier: tier, priority: s.incidentPriority, from: now)
        return TaskFields(
            id: current?.id ?? UUID().uuidString.lowercased(), incident_id: s.incidentID, kind: kind.rawValue,
            state: TaskState.open.rawValue, tier: tier.rawValue, division_code: tier.divisionCode(village: s.villageCode),
            grid_code: s.gridCode, category: s.category, priority: s.incidentPriority, departments: route.departments,
            respond_by: Timestamp.formatUTC(deadlines.respondBy), resolve_by: Timestamp.formatUTC(deadlines.resolveBy),
            overdue: false)
    }

    /// Records per-gateway seq gaps found on the SUB path.
    public func recordGaps(_ gaps: [SeqGap]) throws {
        struct Row: Encodable { let gateway_id: String; let from_seq, to_seq: Int64 }
        try db.query("""
            INSERT INTO liandong.ingest_gaps (gateway_id, from_seq, to_seq)
            SELECT x.gateway_id, x.from_seq, x.to_seq
            FROM jsonb_to_recordset($1::jsonb) AS x(gateway_id text, from_seq bigint, to_seq bigint)
            """, [try TaskStore.json(gaps.map { Row(gateway_id: $0.gateway, from_seq: $0.from, to_seq: $0.to) })])
    }

    private func insertDeadLetters(_ letters: [(Rejection, RawMessage)]) throws {
        try TaskStore.insertDeadLetters(db, letters, maxBytes: maxDeadLetterBytes)
    }
}

/// Another session holds the writer lock: another liandongd writes to this database.
public struct WriterLockBusy: Error, CustomStringConvertible {
    public var description: String {
        "another liandongd holds the writer lock on this database (pg_advisory_lock \(EventStore.writerLockKey))"
    }
}
