import Foundation
import LiandongCore
import LibPQ

/// A task row as the planner left it, and the history row of its step (`event` nil: none), as
/// the statement of `TaskStore.write` reads them.
private struct TaskChangeRow: Encodable {
    let id, kind, state, tier, division_code, respond_by, resolve_by, last_announced_at, counts_sent_at, at: String
    let priority, escalations: Int
    let departments: [String]
    let overdue, closes: Bool
    let overdue_since, closed_at, update_due_at: String?
    let event, from_division_code, actor, note, update_id: String?

    init(_ t: TaskRecord, step: TaskStep?, at: Double) {
        id = t.id
        kind = t.kind.rawValue
        state = t.state.rawValue
        tier = t.tier.rawValue
        division_code = t.divisionCode
        respond_by = Timestamp.formatUTC(t.respondBy)
        resolve_by = Timestamp.formatUTC(t.resolveBy)
        last_announced_at = Timestamp.formatUTC(t.lastAnnouncedAt)
        counts_sent_at = Timestamp.formatUTC(t.countsSentAt)
        self.at = Timestamp.formatUTC(at)
        priority = t.priority
        escalations = t.escalations
        departments = t.departments
        overdue = t.overdue
        overdue_since = t.overdueSince.map(Timestamp.formatUTC)
        closed_at = t.closedAt.map(Timestamp.formatUTC)
        update_due_at = t.updateDueAt.map(Timestamp.formatUTC)
        event = step?.event?.rawValue
        // The step that finished the task closes its incident.
        closes = step?.event != nil && t.state.isTerminal
        from_division_code = step?.fromDivision
        actor = step?.event == nil ? nil : step?.actor
        note = step?.note
        update_id = step?.updateID
    }
}

/// Task rows to write, as the planner decided them (`TaskStore.write`): tasks it created as COPY
/// data with their 'created' history rows; every other step, and tasks changed without one (an
/// update owed by coalescing, or forgotten), as the parameter of one statement.
package struct TaskRows: Sendable {
    package var tasks: [UInt8] = []
    package var history: [UInt8] = []
    fileprivate var changed: [TaskChangeRow] = []

    package init() {}

    /// `steps` as the planner returned them; `records`: tasks changed at `at` without a step.
    package init(_ steps: [TaskStep], records: [TaskRecord] = [], at: Double = 0) {
        let created = steps.filter { $0.event == .created }
        changed = steps.filter { $0.event != .created }.map { TaskChangeRow($0.task, step: $0, at: $0.at) }
            + records.map { TaskChangeRow($0, step: nil, at: at) }
        guard !created.isEmpty else { return }
        var copy = PGCopyText(reservingCapacity: created.count * 320)
        var history = PGCopyText(reservingCapacity: created.count * 160)
        for step in created {
            let t = step.task
            let respondBy = Timestamp.formatUTC(t.respondBy), resolveBy = Timestamp.formatUTC(t.resolveBy)
            let at = Timestamp.formatUTC(step.at)
            copy.plain(t.id)
            copy.plain(t.incidentID)
            copy.plain(t.kind.rawValue)
            copy.plain(t.state.rawValue)
            copy.plain(t.tier.rawValue)
            copy.field(t.divisionCode)
            copy.field(t.gridCode)
            copy.field(t.category)
            copy.plain(String(t.priority))
            copy.field(PGCopyText.arrayLiteral(t.departments))
            copy.plain(respondBy)
            copy.plain(resolveBy)
            copy.plain(String(t.escalations))
            copy.plain(t.overdue ? "t" : "f")
            copy.field(t.overdueSince.map(Timestamp.formatUTC))
            copy.field(t.closedAt.map(Timestamp.formatUTC))
            copy.plain(Timestamp.formatUTC(t.lastAnnouncedAt))
            copy.plain(Timestamp.formatUTC(t.countsSentAt))
            copy.field(t.updateDueAt.map(Timestamp.formatUTC))
            copy.plain(at)
            copy.plain(at)
            copy.endRow()
            for value in [t.id, TaskEvent.created.rawValue, t.tier.rawValue, t.divisionCode, respondBy, resolveBy, step.actor, at] {
                history.field(value)
            }
            history.endRow()
        }
        tasks = copy.bytes
        self.history = history.bytes
    }

    package mutating func append(_ other: TaskRows) {
        tasks += other.tasks
        history += other.history
        changed += other.changed
    }
}

/// Queries and statements about tasks shared by the writer, the update receiver and the sweeper.
/// Each call runs on the caller's connection, inside the caller's transaction.
package enum TaskStore {
    package static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    package static func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    package static func uuidArray(_ ids: [String]) -> String { "{" + ids.joined(separator: ",") + "}" }

    /// Loads incidents by id and/or tasks by id; `lock` takes the incident rows FOR UPDATE.
    /// Two set-based queries whatever the count: incidents with their tasks and grid workers, then
    /// the 20 most recent alert and report ids of each.
    /// `span`: the earliest first and latest last observed time (epoch seconds) of the incidents,
    /// when the caller knows it (the writer, from the statement that grew them).
    /// `evidence` false leaves out the evidence ids and what the newest events say (the writer
    /// reads them only for the incidents whose task announces something).
    /// `prepared` (the writer's small batches, its session set to generic plans): by incident ids
    /// only, run as a prepared statement that names the events partition of the span's day (a
    /// span over days runs unprepared). The span is always in the text, never a parameter.
    package static func load(_ db: PGConnection, incidentIDs: [String] = [], taskIDs: [String] = [], lock: Bool = false,
                             span known: (first: String, last: String)? = nil, evidence: Bool = true,
                             prepared: Bool = false) throws -> [IncidentState]
    {
        var filters: [String] = [], parameters: [String?] = []
        if !incidentIDs.isEmpty {
            parameters.append(uuidArray(incidentIDs))
            filters.append("i.id = ANY($\(parameters.count)::uuid[])")
        }
        if !taskIDs.isEmpty {
            parameters.append(uuidArray(taskIDs))
            filters.append("i.id IN (SELECT x.incident_id FROM liandong.tasks x WHERE x.id = ANY($\(parameters.count)::uuid[]))")
        }
        guard !filters.isEmpty else { return [] }
        // The span of their events, as constants for the evidence query: the planner then keeps
        // only those day partitions (a bound from each incident's row alone is not pruned at plan
        // time: every day of history, and the week ahead, would be planned - 1.8 ms a batch with
        // only a lower bound, 0.4 ms with both). Locked first when the load locks, so the span
        // cannot grow before the evidence is read.
        var span = known
        if span == nil, evidence {
            let row = try db.query("""
                SELECT extract(epoch FROM min(s.first_observed_at)), extract(epoch FROM max(s.last_observed_at))
                FROM (SELECT i.first_observed_at, i.last_observed_at FROM liandong.incidents i
                      WHERE \(filters.joined(separator: " OR "))\(lock ? " FOR UPDATE OF i" : "")) s
                """, parameters).rows.first
            if let row, let first = row[0], let last = row[1] { span = (first, last) }
        }
        let evidenceColumn: String
        // Prepared only by incident ids and, with evidence, for a span within one day.
        var statementOfDay = prepared && taskIDs.isEmpty && !lock
        if evidence {
            guard let span else { return [] }
            guard let first = Double(span.first), let last = Double(span.last), first.isFinite, last.isFinite else {
                throw PGDecodeError(column: "span", expected: "two epoch times", found: "\(span.first) \(span.last)")
            }
            // The span in the text, not a parameter: a generic plan prunes partitions only by
            // constants. A prepared statement reads the day's partition (every event of these
            // incidents is observed within the span).
            statementOfDay = statementOfDay && EventDay(first) == EventDay(last)
            let events = statementOfDay ? EventDay(first).partition : "liandong.events"
            let within = statementOfDay ? "" : "e.observed_at BETWEEN to_timestamp(\(first)::float8) AND to_timestamp(\(last)::float8) AND "
            evidenceColumn = """
                   (SELECT json_agg(CASE WHEN e.newest THEN json_build_array(s.source, e.source_id,
                                         jsonb_build_object('description', e.payload->'description', 'snapshot_url', e.payload->'snapshot_url',
                                                            'clip_url', e.payload->'clip_url', 'attachments', e.payload->'attachments'),
                                         (SELECT c.name FROM liandong.cameras c WHERE c.device_id = e.device_id))
                                    ELSE json_build_array(s.source, e.source_id) END
                                    ORDER BY s.source, e.observed_at DESC, e.id DESC)
                    FROM (VALUES ('alert'), ('report')) AS s(source)
                    CROSS JOIN LATERAL (
                        SELECT e.source_id, e.observed_at, e.id, e.device_id, e.payload,
                               row_number() OVER (ORDER BY e.observed_at DESC, e.id DESC) = 1 AS newest
                        FROM \(events) e
                        WHERE e.incident_id = i.id AND e.source = s.source
                          -- The incident's time span: only the day partitions it covers are read.
                          AND \(within)e.observed_at BETWEEN i.first_observed_at AND i.last_observed_at
                        ORDER BY e.observed_at DESC, e.id DESC LIMIT 20) e)
                """
        } else {
            evidenceColumn = "NULL::json"
        }
        // One round trip: each incident with its task, its grid's worker and the 20 most recent
        // alert and report ids (from events_incident_recent_idx, however large the incident).
        let sql = """
            SELECT i.id, i.category, i.priority, ST_X(i.geog::geometry), ST_Y(i.geog::geometry), i.grid_code,
                   i.village_code, i.alert_count, i.report_count, t.id, t.kind, t.state, t.tier, t.division_code,
                   extract(epoch FROM t.respond_by), extract(epoch FROM t.resolve_by), t.departments, t.priority,
                   t.overdue, extract(epoch FROM t.overdue_since),
                   (SELECT min(w.worker_id) FROM liandong.grid_workers w WHERE w.grid_code = i.grid_code),
                   -- The source comes from VALUES, not a constant: with a constant the planner used
                   -- its statistics for 'report' (none in a history of alerts) and scanned every
                   -- report through the (source, source_id) index, 60 ms a batch at 1M events.
                   -- The newest of each source also carries what IncidentContext reads of it (description,
                   -- media; only those fields) and, for an alert, its camera's name.
                   \(evidenceColumn),
                   extract(epoch FROM t.counts_sent_at), extract(epoch FROM t.update_due_at), i.related_incident_ids,
                   village.name, township.name,
                   t.escalations, extract(epoch FROM t.last_announced_at), extract(epoch FROM t.closed_at),
                   EXISTS (SELECT 1 FROM liandong.citizen_requests r WHERE r.incident_id = i.id)
            FROM liandong.incidents i
            -- LATERAL with LIMIT (one task per incident anyway) is not flattened into a join, so
            -- each incident probes tasks_incident_id_key: a hash join would read all tasks.
            LEFT JOIN LATERAL (SELECT * FROM liandong.tasks t WHERE t.incident_id = i.id LIMIT 1) t ON true
            -- Joined, not a subquery per incident: a hundred divisions are read by a sequential scan
            -- (cheaper than the key for one lookup), 20 µs an incident for the two names - 12 ms of a
            -- dense batch's 19 ms load of 612 incidents (issue 31).
            LEFT JOIN liandong.divisions village ON village.code = i.village_code
            LEFT JOIN liandong.divisions township ON township.code = left(i.village_code, 9)
            WHERE \(filters.joined(separator: " OR "))
            ORDER BY i.first_observed_at, i.id
            """ + (lock ? " FOR UPDATE OF i" : "")
        let rows = statementOfDay ? try db.queryPrepared(sql, parameters) : try db.query(sql, parameters)
        return try rows.typed.map { v in
            let alertCount = try v.int(7), reportCount = try v.int(8)
            let evidence = try evidenceItems(v[21])
            var incident = IncidentState(
                id: try v.string(0), category: try v.string(1), gridCode: try v.string(5), villageCode: try v.string(6),
                priority: try v.int(2), lon: try v.double(3), lat: try v.double(4), workerID: v[20],
                evidence: TaskEvidence(alerts: evidence.alerts, reports: evidence.reports,
                                       alertCount: alertCount, reportCount: reportCount),
                relatedIncidentIDs: parsePGTextArray(v[24] ?? "{}"))
            incident.residentRequest = try v.bool(30)
            let details = IncidentContext.details(alert: evidence.newestAlert, report: evidence.newestReport)
            incident.context = IncidentContext(villageName: v[25], townshipName: v[26], description: details.description,
                                               cameraName: evidence.camera, media: details.media)
            if let id = v[9] {
                guard let kind = v[10].flatMap(TaskKind.init(rawValue:)), let state = v[11].flatMap(TaskState.init(rawValue:)),
                      let tier = v[12].flatMap(Tier.init(rawValue:))
                else {
                    throw StorageError("task \(id) has an unknown kind, state or tier: \(v[10] ?? "")/\(v[11] ?? "")/\(v[12] ?? "")")
                }
                incident.task = TaskRecord(
                    id: id, incidentID: incident.id, kind: kind, state: state, tier: tier, divisionCode: try v.string(13),
                    gridCode: incident.gridCode, category: incident.category, priority: try v.int(17),
                    departments: parsePGTextArray(v[16] ?? "{}"),
                    respondBy: try v.double(14), resolveBy: try v.double(15),
                    overdue: try v.bool(18), overdueSince: try v.optionalDouble(19),
                    countsSentAt: try v.double(22), updateDueAt: try v.optionalDouble(23))
                incident.task!.escalations = try v.int(27)
                incident.task!.lastAnnouncedAt = try v.double(28)
                incident.task!.closedAt = try v.optionalDouble(29)
            }
            return incident
        }
    }

    /// Writes task rows exactly as the planner left them - every column and every time is the
    /// planner's, the SQL decides nothing - with one history row per step, closing the incident of
    /// a task its step finished. New tasks by COPY; the rest in one statement, which also reserves
    /// `feedMessages` feed seqs (one round trip less) and then returns the seq before the first of
    /// them (nil: none reserved; `appendFeed` then reserves its own).
    /// The caller holds the incidents' row locks (the writer grew them, the sweeper and the update
    /// receiver lock them first): nobody changes these tasks between their load and this write.
    @discardableResult
    package static func write(_ db: PGConnection, _ rows: TaskRows, reservingFeed feedMessages: Int = 0) throws -> Int64? {
        if !rows.tasks.isEmpty {
            try db.copy("""
                COPY liandong.tasks (id, incident_id, kind, state, tier, division_code, grid_code, category, priority, departments,
                                     respond_by, resolve_by, escalations, overdue, overdue_since, closed_at, last_announced_at,
                                     counts_sent_at, update_due_at, created_at, updated_at) FROM STDIN
                """, rows.tasks)
            try db.copy("""
                COPY liandong.task_history (task_id, event, tier, division_code, respond_by, resolve_by, actor, at) FROM STDIN
                """, rows.history)
        }
        guard !rows.changed.isEmpty else { return nil }
        // Prepared: its planning (five statements in one) took ~0.4 ms a call, four times its
        // execution for a small batch; its plan cannot depend on the values (one jsonb). `= ANY`
        // gives that plan the tasks' keys: it estimates 100 rows for jsonb_to_recordset and
        // joined them by hash against a sequential scan of every task (1.3 ms a batch at 12,000
        // tasks; from about 15,000 it turns to the key by itself) - with the keys it reads the key.
        let result = try db.queryPrepared("""
            WITH x AS (
                SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(
                    id uuid, kind text, state text, tier text, division_code text, priority smallint, departments text[],
                    respond_by timestamptz, resolve_by timestamptz, escalations integer, overdue boolean,
                    overdue_since timestamptz, closed_at timestamptz, last_announced_at timestamptz,
                    counts_sent_at timestamptz, update_due_at timestamptz, at timestamptz, closes boolean,
                    event text, from_division_code text, actor text, note text, update_id text)
            ), head AS (
                UPDATE liandong.feed_head SET seq = seq + $1 WHERE $1 > 0 RETURNING seq - $1 AS base
            ), u AS (
                UPDATE liandong.tasks t
                SET kind = x.kind, state = x.state, tier = x.tier, division_code = x.division_code, priority = x.priority,
                    departments = x.departments, respond_by = x.respond_by, resolve_by = x.resolve_by,
                    escalations = x.escalations, overdue = x.overdue, overdue_since = x.overdue_since,
                    closed_at = x.closed_at, last_announced_at = x.last_announced_at, counts_sent_at = x.counts_sent_at,
                    update_due_at = x.update_due_at, updated_at = x.at
                FROM x WHERE t.id = x.id AND t.id = ANY($3::uuid[])
                RETURNING t.id, t.incident_id
            ), h AS (
                INSERT INTO liandong.task_history (task_id, event, tier, division_code, from_division_code,
                                                   respond_by, resolve_by, actor, note, update_id, peer, at)
                SELECT x.id, x.event, x.tier, x.division_code, x.from_division_code, x.respond_by, x.resolve_by, x.actor,
                       x.note, x.update_id, (SELECT tu.peer FROM liandong.task_updates tu WHERE tu.update_id = x.update_id), x.at
                FROM x WHERE x.event IS NOT NULL
            ), closed AS (
                UPDATE liandong.incidents i
                SET status = 'closed', resolution = x.state, closed_at = x.at, updated_at = x.at
                FROM x JOIN u ON u.id = x.id
                WHERE i.id = u.incident_id AND x.closes
            ), reopened AS (
                UPDATE liandong.incidents i
                SET status = 'open', resolution = NULL, closed_at = NULL, updated_at = x.at
                FROM x JOIN u ON u.id = x.id
                WHERE i.id = u.incident_id AND x.event = 'reopened'
            )
            SELECT base FROM head
            """, [String(feedMessages), try json(rows.changed), uuidArray(rows.changed.map(\.id))])
        guard feedMessages > 0 else { return nil }
        guard let seq = result.scalar.flatMap(Int64.init) else {
            throw StorageError("liandong.feed_head has no row: the schema is damaged (see deploy/OPERATIONS.md, upgrade and backup)")
        }
        return seq
    }

    /// Writes `steps` (see `write(_:_:reservingFeed:)`), and `records` changed without a step as of
    /// `at`, and appends the steps' messages to the feed.
    package static func write(_ db: PGConnection, steps: [TaskStep], records: [TaskRecord] = [], at: Double = 0) throws
        -> [FeedMessage]
    {
        let base = try write(db, TaskRows(steps, records: records, at: at), reservingFeed: steps.count)
        return try appendFeed(db, steps.map(\.message), base: base)
    }

    /// Appends messages to the feed outbox with the next gap-free seqs (the row lock on feed_head
    /// serialises writers until commit); returns them ready to publish after commit.
    /// A CTE `head(base)` that advances the feed head by $1 under its row lock (held until commit,
    /// so committed seqs have no holes); `base` is the seq before the first new one.
    package static let feedHeadAdvance = "WITH head AS (UPDATE liandong.feed_head SET seq = seq + $1 RETURNING seq - $1 AS base)"

    /// `base`: the seq before the first of `messages` when the caller has already advanced
    /// feed_head by their count in this transaction (see `feedHeadAdvance`).
    package static func appendFeed<M: FeedEntry>(_ db: PGConnection, _ messages: [M], base reserved: Int64? = nil) throws -> [FeedMessage] {
        guard !messages.isEmpty else { return [] }
        let base: Int64
        if let reserved {
            base = reserved
        } else {
            let head = try db.query("\(feedHeadAdvance) SELECT base FROM head", [String(messages.count)])
            guard let seq = head.scalar.flatMap(Int64.init) else { throw StorageError("liandong.feed_head has no row: the schema is damaged (see deploy/OPERATIONS.md, upgrade and backup)") }
            base = seq
        }
        var copy = PGCopyText(reservingCapacity: messages.count * 1024)
        var out: [FeedMessage] = []
        out.reserveCapacity(messages.count)
        for (k, message) in messages.enumerated() {
            var m = message
            m.seq = base + 1 + Int64(k)
            let body = m.jsonText()
            copy.plain(String(m.seq!))
            copy.plain(m.messageID)
            copy.field(m.topic)
            copy.plain(m.feedKind)
            copy.field(m.feedTaskID)
            copy.field(body)
            copy.endRow()
            out.append(FeedMessage(seq: m.seq!, topic: m.topic, body: body, kind: m.feedKind))
        }
        try db.copy("COPY liandong.feed (seq, message_id, topic, kind, task_id, body) FROM STDIN", copy.bytes)
        return out
    }

    /// Writes dead letters: raw bytes (hex-encoded on the way) truncated to `maxBytes`, and none
    /// once this hour's dead letters hold `bytesPerHour` (the row, size, reason and detail stay).
    package static func insertDeadLetters(_ db: PGConnection, _ letters: [(Rejection, RawMessage)], maxBytes: Int,
                                  bytesPerHour: Int = 64 << 20) throws {
        struct Row: Encodable {
            let received_at, endpoint: String
            let topic: String?
            let raw: String
            let raw_size: Int
            let reason, detail: String
            let peer: String?
        }
        guard !letters.isEmpty else { return }
        let hourSQL = "date_trunc('hour', now())"
        var used = Int(try db.query("SELECT bytes FROM liandong.dead_letter_hours WHERE hour = \(hourSQL)").scalar ?? "0") ?? 0
        var stored = 0
        let rows = letters.map { rejection, raw -> Row in
            let topic = raw.frames.count > 1 ? raw.frames[0] : nil
            let body = Array((raw.frames.count > 1 ? raw.frames.dropFirst() : raw.frames[...]).joined())
            var kept = Array(body.prefix(maxBytes))
            var detail = rejection.detail
            if used + kept.count > bytesPerHour {
                kept = []
                detail += " [bytes not kept: retention.dead_letter_bytes_per_hour reached]"
            }
            used += kept.count
            stored += kept.count
            return Row(
                received_at: Timestamp.formatUTC(raw.receivedAt), endpoint: raw.endpoint, topic: topic.map(hex),
                raw: hex(kept), raw_size: body.count, reason: rejection.reason.rawValue, detail: detail, peer: raw.sender?.name)
        }
        try db.query("""
            INSERT INTO liandong.rejected_messages (received_at, endpoint, topic, raw, raw_size, reason, detail, peer)
            SELECT x.received_at, x.endpoint, decode(x.topic, 'hex'), decode(x.raw, 'hex'), x.raw_size, x.reason, x.detail, x.peer
            FROM jsonb_to_recordset($1::jsonb) AS x(received_at timestamptz, endpoint text, topic text, raw text,
                                                   raw_size integer, reason text, detail text, peer text)
            """, [try json(rows)])
        if stored > 0 {
            try db.query("""
                INSERT INTO liandong.dead_letter_hours (hour, bytes) VALUES (\(hourSQL), $1)
                ON CONFLICT (hour) DO UPDATE SET bytes = liandong.dead_letter_hours.bytes + excluded.bytes
                """, [String(stored)])
        }
    }
}

package func hex(_ bytes: [UInt8]) -> String { Hex.lowercase(bytes) }

/// Parses PostgreSQL's text output of a text[] of simple words ("{police,fire}").
/// Evidence ids from a JSON array of [source, id] pairs, most recent first (ids may hold any
/// character; NULL when the incident has no events).
/// The evidence query's items: [source, id] each, newest first per source; the newest of each
/// source as [source, id, fields, camera name] (what IncidentContext reads).
package func evidenceItems(_ text: String?) throws
    -> (alerts: [String], reports: [String], newestAlert: JSONValue?, newestReport: JSONValue?, camera: String?)
{
    guard let text else { return ([], [], nil, nil, nil) }
    guard case .array(let items) = try JSONValue.parse(Array(text.utf8)) else {
        throw StorageError("expected a JSON array of evidence pairs, got \(text.prefix(80))")
    }
    var out: (alerts: [String], reports: [String], newestAlert: JSONValue?, newestReport: JSONValue?, camera: String?) = ([], [], nil, nil, nil)
    for item in items {
        guard case .array(let p) = item, p.count >= 2, case .string(let source) = p[0], case .string(let id) = p[1] else { continue }
        let isAlert = source == "alert"
        if isAlert { out.alerts.append(id) } else { out.reports.append(id) }
        guard p.count == 4 else { continue }
        if isAlert {
            out.newestAlert = p[2]
            if case .string(let name) = p[3] { out.camera = name }
        } else {
            out.newestReport = p[2]
        }
    }
    return out
}

package func parsePGTextArray(_ text: String) -> [String] {
    let inner = text.dropFirst().dropLast()
    guard !inner.isEmpty else { return [] }
    return inner.split(separator: ",").map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
}
