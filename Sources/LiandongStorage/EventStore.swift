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
    /// Writes, in transactions; holds the writer lock.
    private let db: PGConnection
    /// Reads that prepare a batch (reference data, window, dedup, history), committed data only:
    /// a batch can be prepared here while the one before it is written on `db`.
    private let reader: PGConnection
    private let rules: Rules
    private let planner: TaskPlanner
    private let maxDeadLetterBytes: Int
    private let correlator: Correlator
    /// Where the time goes, by phase (seconds, cumulative; see `takePhases`): writing, and
    /// preparing (which may run on another thread meanwhile).
    private var clock = PhaseClock()
    private var prepareClock = PhaseClock()

    /// Raw dead-letter bytes stored per hour at most (retention.dead_letter_bytes_per_hour).
    private let deadLetterBytesPerHour: Int

    public init(conninfo: String, rules: Rules, maxDeadLetterBytes: Int = 65_536, deadLetterBytesPerHour: Int = 64 << 20,
                windowCapacity: Int = 100_000) throws {
        db = try Self.open(conninfo)
        // One writer per database: the correlation window is this process's memory, a second
        // writer would correlate without seeing the first one's events. Held for the session.
        guard try db.query("SELECT pg_try_advisory_lock($1::bigint)", [String(Self.writerLockKey)]).scalar == "t" else {
            throw WriterLockBusy()
        }
        reader = try Self.open(conninfo)
        try reader.execute("SET default_transaction_read_only = on")
        self.rules = rules
        planner = TaskPlanner(rules: rules)
        self.maxDeadLetterBytes = maxDeadLetterBytes
        self.deadLetterBytesPerHour = deadLetterBytesPerHour
        correlator = try Correlator(db: reader, rules: rules, windowCapacity: windowCapacity)
    }

    private static func open(_ conninfo: String) throws -> PGConnection {
        let db = try PGConnection(conninfo: conninfo)
        try db.execute("SET client_min_messages = warning")
        // If this client vanishes without closing (a network partition), the server ends the
        // session - and releases the writer lock below - within about half a minute.
        try db.execute("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3")
        return db
    }

    public var isConnected: Bool { db.isOK && reader.isOK }

    /// Ends the sessions (and releases the writer lock) before a new store is opened.
    public func close() {
        db.close()
        reader.close()
    }

    /// Session advisory lock taken by the writer ("liandong" in ASCII, 0x6c69616e646f6e67).
    public static let writerLockKey: Int64 = 0x6c69_616e_646f_6e67

    /// Events held in the correlation window (for the metrics).
    public var windowCount: Int { correlator.windowCount }

    /// Seconds spent per phase since the last call (for liandong_writer_seconds_total).
    public func takePhases() -> [String: Double] { clock.take().merging(prepareClock.take(), uniquingKeysWith: +) }

    /// Writes a batch in one transaction. When the database refuses the batch for a reason other
    /// than a broken connection, the items are written one by one so one bad item cannot block the
    /// rest; an item refused alone becomes a dead letter (store_error). Connection failures are
    /// thrown for the caller to retry.
    public func write(_ batch: [Inbound], now: Double = Date().timeIntervalSince1970) throws -> BatchResult {
        do {
            let result = try commit(try prepare(batch, now: now), now: now)
            committed()
            return result
        } catch let error as PQError where !error.isConnectionFailure {
            discardPrepared()
            return try writeSeparately(batch, refusedWith: error, now: now)
        } catch {
            discardPrepared()
            throw error
        }
    }

    /// After a batch the database refused (`error`): its items one by one, so one bad item cannot
    /// block the rest; an item refused alone becomes a dead letter (store_error).
    public func writeSeparately(_ batch: [Inbound], refusedWith error: PQError, now: Double = Date().timeIntervalSince1970)
        throws -> BatchResult
    {
        guard batch.count == 1 else {
            var result = BatchResult(outcomes: [], messages: [])
            for item in batch {
                let one = try write([item], now: now)
                result.outcomes += one.outcomes
                result.messages += one.messages
                result.late += one.late
            }
            return result
        }
        let rejection = Rejection(.storeError, "the database refused the event: \(error)")
        return try db.transaction { _ in
            try insertDeadLetters([(rejection, batch[0].raw)])
            return BatchResult(outcomes: [.rejected(rejection)], messages: [])
        }
    }

    // MARK: pipelining

    /// Whether a batch can be prepared while `inFlight` is written: only with the window in memory
    /// (it holds the in-flight batch's events; a window reloaded from PostgreSQL would not).
    public var canPrepareAhead: Bool { correlator.hasWindow }

    /// After a commit, with no other batch being prepared: the window moves on.
    public func committed() { correlator.committed() }

    /// After any failure: the window was changed as batches were correlated; it is rebuilt from
    /// what was committed before the next batch. Batches prepared meanwhile must be prepared again.
    public func discardPrepared() { correlator.discardWindow() }

    /// Everything about a batch that needs no write: placement, dedup, correlation and the rows to
    /// write, on the read session. `inFlight`: the batch being written meanwhile (prepared just
    /// before this one, not yet committed): its events count as stored and its late events as
    /// correlated. Changes the window; any failure after this, of this batch or of `inFlight`,
    /// needs `discardPrepared()`.
    public func prepare(_ batch: [Inbound], now: Double = Date().timeIntervalSince1970, after inFlight: PreparedBatch? = nil)
        throws -> PreparedBatch
    {
        prepareClock.start()
        var p = PreparedBatch(count: batch.count)
        func reject(_ index: Int, _ rejection: Rejection) {
            p.outcomes[index] = .rejected(rejection)
            p.deadLetters.append((rejection, batch[index].raw))
        }
        var events: [(index: Int, event: IngestEvent)] = []
        for (index, inbound) in batch.enumerated() {
            switch inbound {
            case .rejected(let rejection, _): reject(index, rejection)
            case .event(let event, _): events.append((index, event))
            }
        }
        guard !events.isEmpty else { return p }
        // Observed-time order: late and out-of-order events correlate as in-order ones do.
        events.sort { ($0.event.observedAt, $0.index) < ($1.event.observedAt, $1.index) }
        var reference = try correlator.currentReference()
        var rechecked = false
        prepareClock.lap("reference")
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
        prepareClock.lap("dedup")
        // A repeat of an id stored already (or by this batch, or by the in-flight batch by the
        // time this one commits) has no effect; a repeat of a refused one is judged on its own,
        // as it would be in a later batch.
        var seen = inFlight?.storedKeys ?? []
        var placed: [Placed] = []
        var next = candidates.makeIterator()
        for ((index, event), refusal) in zip(events, refusals) {
            let item = refusal == nil ? next.next() : nil
            let key = Self.key(event)
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
        var touched = Set<UUID>()
        let correlated = try correlator.correlate(placed, closed: closed, inFlight: inFlight?.lateEvents ?? [], &prepareClock)
        p.late = correlated.late
        p.lateEvents = correlated.lateEvents
        for (item, incident) in zip(placed, correlated.incidents) {
            p.outcomes[item.index] = .stored(incidentID: incident.uuidString.lowercased())
            p.storedKeys.insert(Self.key(item.event))
            if touched.insert(incident).inserted { p.touched.append(incident) }
        }
        p.rows = try rows(placed, correlated)
        prepareClock.lap("build_rows")
        // Incidents this batch opens: nothing stored can change them before it commits, so their
        // tasks are decided and built here, off the write session's path.
        let fresh = incidents(opened: correlated, placed, workers: reference.workers)
        var created: [TaskRecord] = []
        for (id, incident) in fresh {
            guard let step = planner.evidence(on: incident, now: now) else { continue }
            created.append(step.task)
            p.freshTasks[id] = step.message
        }
        p.fresh = Set(fresh.keys)
        p.freshTaskRows = TaskRows(created: created)
        prepareClock.lap("build_tasks")
        return p
    }

    /// Writes a prepared batch in one transaction. Any failure is thrown (the caller discards the
    /// window and, when the database refused the batch, writes it with `writeSeparately`); on
    /// success the caller calls `committed()` once no other batch is being prepared.
    public func commit(_ p: PreparedBatch, now: Double = Date().timeIntervalSince1970) throws -> BatchResult {
        clock.start()
        let result = try db.transaction { _ in
            try insert(p.rows)
            clock.lap("write_events")
            try insertDeadLetters(p.deadLetters)
            clock.lap("dead_letters")
            let messages = try emitTasks(p, now: now)
            return BatchResult(outcomes: p.outcomes.map { $0 ?? .duplicate }, messages: messages, late: p.late)
        }
        clock.lap("commit")
        return result
    }

    // MARK: dedup, reference data, window

    private static func key(_ e: IngestEvent) -> String { e.source.rawValue + "\u{1F}" + e.sourceID }

    /// The batch's events already stored (by source and id, on the unique index) and which of
    /// `incidents` are no longer open, in one round trip.
    private func storedAlready(_ events: [IngestEvent], closedAmong incidents: Set<UUID>) throws
        -> (stored: Set<String>, closed: [UUID])
    {
        let rows = try reader.query("""
            SELECT x.s, x.i FROM unnest($1::text[], $2::text[]) AS x(s, i)
            WHERE EXISTS (SELECT 1 FROM liandong.events v WHERE v.source = x.s AND v.source_id = x.i)
            UNION ALL
            SELECT NULL, id::text FROM liandong.incidents WHERE id = ANY($3::uuid[]) AND status <> 'open'
            """, [PGCopyText.arrayLiteral(events.map(\.source.rawValue)), PGCopyText.arrayLiteral(events.map(\.sourceID)),
                  TaskStore.uuidArray(incidents.map(\.uuidString))])
        var stored = Set<String>(), closed: [UUID] = []
        for row in rows.rows {
            if let source = row[0] { stored.insert(source + "\u{1F}" + row[1]!) } else if let id = UUID(uuidString: row[1]!) { closed.append(id) }
        }
        return (stored, closed)
    }

    // MARK: writing

    /// The rows a correlated batch adds: new incidents and events as COPY data, grown incidents
    /// and gateway seqs as statement parameters.
    private func rows(_ placed: [Placed], _ c: Correlated) throws -> BatchRows {
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
                copy.endRow()
            }
            rows.incidents = copy.bytes
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
        rows.events = copy.bytes
        // Highest seq per gateway, for the gap tracker's seed at the next start.
        var highest: [String: Int64] = [:]
        for p in placed {
            if let gateway = p.event.gatewayID, let seq = p.event.gatewaySeq { highest[gateway] = max(highest[gateway] ?? seq, seq) }
        }
        guard !highest.isEmpty || !c.grown.isEmpty else { return rows }
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
                       TaskStore.uuidArray(grown.map(\.id))]
        return rows
    }

    /// New incidents and events by COPY, grown incidents and gateway seqs in one statement.
    private func insert(_ rows: BatchRows) throws {
        if let incidents = rows.incidents {
            try db.copy("""
                COPY liandong.incidents (id, category, priority, geog, grid_code, village_code, first_observed_at,
                                         last_observed_at, alert_count, report_count) FROM STDIN
                """, incidents)
        }
        if let events = rows.events {
            try db.copy("""
                COPY liandong.events (source, source_id, gateway_id, gateway_seq, device_id, worker_id, category, priority,
                                      observed_at, geog, source_crs, grid_code, village_code, incident_id, payload) FROM STDIN
                """, events)
        }
        guard let update = rows.update else { return }
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
            """, update)
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
    private func incidents(opened c: Correlated, _ placed: [Placed], workers: [String: String]) -> [UUID: IncidentState] {
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
        var out: [UUID: IncidentState] = [:]
        for (id, n) in c.opened {
            let g = n.growth
            out[id] = IncidentState(
                id: id.uuidString.lowercased(), category: n.category, gridCode: n.gridCode, villageCode: n.villageCode,
                priority: g.priority, lon: n.point.lon, lat: n.point.lat, workerID: workers[n.gridCode],
                evidence: TaskEvidence(alerts: evidence[id]?.alerts ?? [], reports: evidence[id]?.reports ?? [],
                                       alertCount: g.alerts, reportCount: g.reports))
        }
        return out
    }

    /// Tasks and messages for the incidents the batch touched, in the order it touched them:
    /// those it opened were planned by `prepare`; the others are read (with their tasks) and
    /// planned here.
    private func emitTasks(_ p: PreparedBatch, now: Double) throws -> [FeedMessage] {
        guard !p.touched.isEmpty else { return [] }
        var upgraded: [TaskRecord] = [], created: [TaskRecord] = []
        var messages: [TaskMessage] = []
        var stored: [UUID: IncidentState] = [:]
        let existing = p.touched.filter { !p.fresh.contains($0) }
        if !existing.isEmpty {
            for incident in try TaskStore.load(db, incidentIDs: existing.map { $0.uuidString.lowercased() }) {
                stored[UUID(uuidString: incident.id)!] = incident
            }
        }
        clock.lap("snapshots")
        let emittedAt = Timestamp.formatCST(now)
        for id in p.touched {
            if p.fresh.contains(id) {
                guard var built = p.freshTasks[id] else { continue }
                built.emittedAt = emittedAt
                messages.append(built)
                continue
            }
            guard let incident = stored[id], let step = planner.evidence(on: incident, now: now) else { continue }
            switch step.event {
            case .created?: created.append(step.task)
            case .upgraded?: upgraded.append(step.task)
            default: break
            }
            messages.append(step.message)
        }
        var rows = p.freshTaskRows
        rows.append(TaskRows(created: created))
        // Every upgrade is announced, so there are feed messages to reserve seqs for: the upgrade
        // statement reserves them (one round trip less).
        let base = upgraded.isEmpty ? nil : try TaskStore.upgrade(db, upgraded, feedMessages: messages.count)
        try TaskStore.create(db, rows)
        clock.lap("upsert_tasks")
        let feed = try TaskStore.appendFeed(db, messages, base: base)
        clock.lap("feed")
        return feed
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
        try TaskStore.insertDeadLetters(db, letters, maxBytes: maxDeadLetterBytes, bytesPerHour: deadLetterBytesPerHour)
    }
}

/// Another session holds the writer lock: another liandongd writes to this database.
public struct WriterLockBusy: Error, CustomStringConvertible {
    public var description: String {
        "another liandongd holds the writer lock on this database (pg_advisory_lock \(EventStore.writerLockKey))"
    }
}

/// A batch ready to write: what `EventStore.prepare` decided, and the rows that say it.
public struct PreparedBatch {
    /// Per item, in input order (stored, duplicate or refused; nil only while being prepared).
    public internal(set) var outcomes: [ItemOutcome?]
    package var deadLetters: [(Rejection, RawMessage)] = []
    /// Incidents the batch's events went to, in first-touched order, and those it opened.
    package var touched: [UUID] = []
    package var fresh = Set<UUID>()
    package var late = 0
    package var lateEvents: [LateEvent] = []
    /// Dedup keys of the events it stores.
    package var storedKeys = Set<String>()
    package var rows = BatchRows()
    /// The messages of the tasks for the incidents the batch opens (none when no task is due yet), and their rows.
    package var freshTasks: [UUID: TaskMessage] = [:]
    package var freshTaskRows = TaskRows()

    package init(count: Int) {
        outcomes = [ItemOutcome?](repeating: nil, count: count)
    }
}

/// COPY data for new incidents and events; parameters of the grown-incident and gateway-seq statement.
package struct BatchRows {
    package var incidents: [UInt8]?
    package var events: [UInt8]?
    package var update: [String?]?
}
