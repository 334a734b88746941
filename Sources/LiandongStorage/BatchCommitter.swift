import Foundation
import LiandongCore
import LibPQ

/// The write side of the event store, run by the writer thread only: the write session that
/// holds the writer lock, a prepared batch's COPYs and statements in one transaction, the tasks
/// of the incidents it grew (read under the write session, planned by the `TaskPlanner`) and the
/// feed outbox.
package final class BatchCommitter {
    /// Writes, in transactions; holds the writer lock.
    private let db: PGConnection
    private let planner: TaskPlanner
    private let maxDeadLetterBytes: Int
    /// Raw dead-letter bytes stored per hour at most (retention.dead_letter_bytes_per_hour).
    private let deadLetterBytesPerHour: Int
    /// How the session plans: nil until set (and after a failure).
    private var genericPlans: Bool?

    /// A batch that touched at most this many incidents runs its statements prepared, with generic
    /// plans (planned once per session); a larger one has them planned for its values.
    static let genericPlansUpTo = 32

    /// Where committing takes its time, by phase (see `takePhases`).
    private var clock = PhaseClock()
    /// Days whose events partition exists (created by the sweeper ahead of time, or here).
    private var partitioned = Set<EventDay>()
    /// Days this transaction created partitions for (known once it commits).
    private var partitioning = Set<EventDay>()

    /// Takes the writer lock on `db` (`WriterLockBusy` when another session holds it).
    package init(db: PGConnection, rules: Rules, maxDeadLetterBytes: Int, deadLetterBytesPerHour: Int) throws {
        // One writer per database: the correlation window is this process's memory, a second
        // writer would correlate without seeing the first one's events. Held for the session.
        guard try db.query("SELECT pg_try_advisory_lock($1::bigint)", [String(EventStore.writerLockKey)]).scalar == "t" else {
            throw WriterLockBusy()
        }
        self.db = db
        planner = TaskPlanner(rules: rules)
        self.maxDeadLetterBytes = maxDeadLetterBytes
        self.deadLetterBytesPerHour = deadLetterBytesPerHour
    }

    package var isConnected: Bool { db.isOK }

    package func close() { db.close() }

    package func takePhases() -> [String: Double] { clock.take() }

    /// Writes a prepared batch in one transaction. Any failure is thrown (the caller discards the
    /// window and, when the database refused the batch, writes it with `writeSeparately`); on
    /// success the caller calls `committed()` once no other batch is being prepared.
    package func commit(_ p: PreparedBatch, now: Double = Date().timeIntervalSince1970) throws -> BatchResult {
        clock.start()
        // A small batch's statements (the latency case: a few events, one at a time) are planned
        // once per session, generically: planning them was ~0.65 ms of a small batch's ~2.2 ms on
        // the server (issue 31). A backlog's batch of hundreds of incidents keeps plans made for
        // its arrays (generic ones, which assume ten, made those statements 1.5 times slower).
        // Set outside the transaction (a rollback would undo it), only when it changes.
        let generic = p.plan.touched.count <= Self.genericPlansUpTo
        if genericPlans != generic {
            genericPlans = nil
            // None of the writer's statements leaves partition pruning to a parameter: a prepared
            // one names its partition, the others put the time span in their text (TaskStore.load).
            try db.execute("SET plan_cache_mode = \(generic ? "force_generic_plan" : "auto")")
            genericPlans = generic
        }
        // After any failure, which partitions exist is checked again: one dropped meanwhile (by
        // retention, or by hand) is re-created when the batch or its items are written again.
        let result = try withPartitionsForgottenOnFailure { try db.transaction { _ in
            let grownSpan = try insert(p.rows, prepared: generic)
            clock.lap("write_events")
            try insertDeadLetters(p.plan.deadLetters)
            clock.lap("dead_letters")
            if !p.plan.records.isEmpty {
                try RecordWriter.write(db, p.plan.records)
                clock.lap("records")
            }
            let (messages, coalesced) = try emitTasks(p, grownSpan: grownSpan, prepared: generic, now: now)
            if p.plan.outcomes.contains(where: { if case .duplicate? = $0 { true } else { $0 == nil } }) {
                // A duplicate is answered "stored" too: the row it found may be one a cancelled
                // commit left on this server alone, so this commit waits for the standby like a write.
                try db.query("SELECT pg_logical_emit_message(true, 'liandong', 'duplicates answered')")
            }
            var counts = p.plan.counts
            counts.coalesced = coalesced
            return BatchResult(outcomes: p.plan.outcomes.map { $0 ?? .duplicate }, messages: messages, counts: counts)
        } }
        partitioned.formUnion(partitioning)
        partitioning = []
        clock.lap("commit")
        return result
    }

    /// Runs `body`; after any failure, which partitions exist is checked again, and when the
    /// failure was a partition this writer believed in that is gone (undefined_table: dropped by
    /// retention or by hand meanwhile), `body` runs once more, re-creating it.
    private func withPartitionsForgottenOnFailure<R>(_ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch {
            let believed = !partitioned.isEmpty
            partitioned = []
            partitioning = []
            guard believed, let e = error as? PQError, e.sqlState == "42P01" else { throw error }
            return try body()
        }
    }

    /// Makes sure the events partitions of `days` exist: normally known already (one set lookup);
    /// a day not seen yet by this writer - the first batch, a new day, an event observed days ago -
    /// is checked, and its partition created if the sweeper has not (a gateway's backlog after
    /// a long outage needs the partitions of days long past).
    private func ensurePartitions(_ days: Set<EventDay>) throws {
        partitioning = []
        let missing = days.subtracting(partitioned)
        guard let first = missing.min(), let last = missing.max() else { return }
        try db.query("SELECT liandong.ensure_event_partitions(\(first.sql), \(last.sql))")
        partitioning = missing
    }

    /// Writes one message refused by the database as a dead letter (store_error), in its own transaction.
    package func writeRefused(_ rejection: Rejection, _ raw: RawMessage) throws {
        try db.transaction { _ in try insertDeadLetters([(rejection, raw)]) }
    }

    /// New incidents and events by COPY; gateway seqs, grown incidents and the events' keys in
    /// one statement. Returns the span of observed time of the grown incidents (nil: none grew).
    private func insert(_ rows: BatchRows, prepared: Bool) throws -> (first: String, last: String)? {
        if let incidents = rows.incidents {
            try db.copy("""
                COPY liandong.incidents (id, category, priority, geog, grid_code, village_code, first_observed_at,
                                         last_observed_at, alert_count, report_count, related_incident_ids) FROM STDIN
                """, incidents)
        }
        try ensurePartitions(rows.days)
        if let events = rows.events {
            // A batch of one day (the usual case) goes straight into that day's partition: the
            // same rows and checks (the partition's range is a constraint), without routing.
            let table = rows.days.count == 1 ? rows.days.first!.partition : "liandong.events"
            try db.copy("""
                COPY \(table) (source, source_id, gateway_id, gateway_seq, device_id, worker_id, category, priority,
                                      observed_at, geog, source_crs, grid_code, village_code, incident_id, payload, muted_by,
                                      parent_device_id) FROM STDIN
                """, events)
        }
        if let citizens = rows.citizens {
            try db.query("SELECT liandong.record_citizen_requests($1::jsonb)", [citizens])
        }
        guard let update = rows.update else { return nil }
        // One round trip for all three (a repeated key refuses the batch here, as the unique
        // index on events did before partitioning). The grown incidents' span comes back for the
        // evidence query (TaskStore.load), which then needs no query of its own for it. `= ANY` gives the planner the exact incident keys (it guesses
        // 100 rows for jsonb_to_recordset and, on a young incidents table, chose a hash join over
        // all of it: 4 ms a batch).
        let span = try (prepared ? db.queryPrepared : db.query)("""
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
                RETURNING i.first_observed_at, i.last_observed_at
            ), keys AS (
                INSERT INTO liandong.event_keys (source, source_id, observed_at, owner)
                SELECT * FROM unnest($4::text[], $5::text[], $6::timestamptz[], $7::text[])
            )
            SELECT extract(epoch FROM min(first_observed_at)), extract(epoch FROM max(last_observed_at)) FROM grown
            """, update)
        guard let row = span.rows.first, let first = row[0], let last = row[1] else { return nil }
        return (first, last)
    }

    /// Tasks and messages for the incidents the batch touched, in the order it touched them:
    /// those it opened were planned by `prepare`; the others are read (with their tasks) and
    /// planned here. Also returns how many evidence updates coalescing held back.
    private func emitTasks(_ p: PreparedBatch, grownSpan: (first: String, last: String)?, prepared: Bool, now: Double) throws
        -> (feed: [FeedMessage], coalesced: Int)
    {
        guard !p.plan.touched.isEmpty else { return ([], 0) }
        var steps: [TaskStep] = [], owed: [TaskRecord] = []
        var coalesced = 0
        var messages: [TaskMessage] = []
        var announced: [UUID: TaskStep] = [:]
        let existing = p.plan.touched.filter { !p.plan.fresh.contains($0) && !p.plan.silencedOnly.contains($0) }
        if !existing.isEmpty {
            // Tasks and counts first: they decide (most new evidence of a busy incident is
            // coalesced); the evidence ids and what the newest events say are read only for the
            // incidents whose task announces something (issue 31: the snapshots were a quarter of
            // the writer's time under a dense load). Reading evidence costs ~50 µs an incident, a
            // second round trip ~0.3 ms: a batch that grew a few incidents reads it all at once.
            var announcing: [String] = []
            let atOnce = existing.count <= Self.evidenceAtOnce
            func announce(_ step: TaskStep, of incident: IncidentState) {
                var step = step
                p.plan.presence.suggest(&step.message, now: now)
                announced[UUID(uuidString: incident.id)!] = step
            }
            for incident in try TaskStore.load(db, incidentIDs: existing.map { $0.uuidString.lowercased() }, span: grownSpan,
                                               evidence: atOnce, prepared: prepared) {
                switch planner.evidence(on: incident, now: now) {
                case .announce(let step)?: if atOnce { announce(step, of: incident) } else { announcing.append(incident.id) }
                case .coalesced(let task)?:
                    coalesced += 1
                    // Written only when it changes the task: an update owed already is owed at
                    // the same time (under a dense storm most grown incidents are such).
                    if !Self.owedAlready(task, incident.task) { owed.append(task) }
                case nil: continue
                }
            }
            if !announcing.isEmpty {
                for incident in try TaskStore.load(db, incidentIDs: announcing, span: grownSpan, prepared: prepared) {
                    // The same task and counts under the same row locks: the same decision.
                    guard case .announce(let step)? = planner.evidence(on: incident, now: now) else {
                        throw StorageError("incident \(incident.id): its task announced nothing when read again in the same transaction")
                    }
                    announce(step, of: incident)
                }
            }
        }
        clock.lap("snapshots")
        let emittedAt = Timestamp.formatCST(now)
        for id in p.plan.touched {
            if p.plan.fresh.contains(id) {
                guard var built = p.plan.freshTasks[id] else { continue }
                built.emittedAt = emittedAt
                messages.append(built)
            } else if let step = announced[id] {
                steps.append(step)
                messages.append(step.message)
            }
        }
        var rows = p.freshTaskRows
        rows.append(TaskRows(steps, records: owed, at: now))
        // The incidents' rows are locked by this transaction (grown above): the sweeper and the
        // update receiver, which lock the incident before its task, cannot change these tasks
        // meanwhile. The statement that writes changed tasks reserves the feed seqs too.
        let base = try TaskStore.write(db, rows, reservingFeed: messages.count)
        clock.lap("upsert_tasks")
        let feed = try TaskStore.appendFeed(db, messages, base: base)
        clock.lap("feed")
        return (feed, coalesced)
    }

    /// Whether `owing` (a coalesced outcome) is `stored` as it was: the same update owed at the
    /// same time (within half a millisecond: the stored time is rounded to the microsecond).
    static func owedAlready(_ owing: TaskRecord, _ stored: TaskRecord?) -> Bool {
        guard let stored, let due = owing.updateDueAt, let was = stored.updateDueAt, abs(due - was) < 0.000_5 else { return false }
        var same = owing
        same.updateDueAt = was
        return same == stored
    }

    /// Up to this many grown incidents are read with their evidence in one query; more, and only
    /// those whose task announces something get their evidence read (a second query).
    static let evidenceAtOnce = 8

    /// Records per-gateway seq gaps found on the SUB path.
    package func recordGaps(_ gaps: [SeqGap]) throws {
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
