import Foundation
import LiandongCore
import LibPQ

/// A task step as task_history and the task columns record it (the JSON `TaskStore.apply` reads).
private struct TaskChangeRow: Encodable {
    let task_id, state, tier, division_code, respond_by, resolve_by, event, actor: String
    let escalated, overdue, terminal: Bool
    let from_division_code, note, update_id: String?

    init(_ step: TaskStep, event: TaskEvent) {
        let t = step.task
        task_id = t.id
        state = t.state.rawValue
        tier = t.tier.rawValue
        division_code = t.divisionCode
        respond_by = Timestamp.formatUTC(t.respondBy)
        resolve_by = Timestamp.formatUTC(t.resolveBy)
        self.event = event.rawValue
        actor = step.actor
        escalated = step.escalated
        overdue = t.overdue
        terminal = t.state.isTerminal
        from_division_code = step.fromDivision
        note = step.note
        update_id = step.updateID
    }
}

/// A new or upgraded task as liandong.upsert_tasks() reads it.
private struct TaskUpsertRow: Encodable {
    let id, incident_id, kind, tier, division_code, grid_code, category, respond_by, resolve_by: String
    let priority: Int
    let departments: [String]

    init(_ t: TaskRecord) {
        id = t.id
        incident_id = t.incidentID
        kind = t.kind.rawValue
        tier = t.tier.rawValue
        division_code = t.divisionCode
        grid_code = t.gridCode
        category = t.category
        respond_by = Timestamp.formatUTC(t.respondBy)
        resolve_by = Timestamp.formatUTC(t.resolveBy)
        priority = t.priority
        departments = t.departments
    }
}

/// COPY data for new tasks and their 'created' history rows.
package struct TaskRows {
    package var tasks: [UInt8] = []
    package var history: [UInt8] = []

    package init() {}

    package init(created: [TaskRecord]) {
        guard !created.isEmpty else { return }
        var copy = PGCopyText(reservingCapacity: created.count * 256)
        var history = PGCopyText(reservingCapacity: created.count * 128)
        for t in created {
            let respondBy = Timestamp.formatUTC(t.respondBy), resolveBy = Timestamp.formatUTC(t.resolveBy)
            copy.plain(t.id)
            copy.plain(t.incidentID)
            copy.plain(t.kind.rawValue)
            copy.plain(t.tier.rawValue)
            copy.field(t.divisionCode)
            copy.field(t.gridCode)
            copy.field(t.category)
            copy.plain(String(t.priority))
            copy.field(PGCopyText.arrayLiteral(t.departments))
            copy.plain(respondBy)
            copy.plain(resolveBy)
            copy.endRow()
            for value in [t.id, TaskEvent.created.rawValue, t.tier.rawValue, t.divisionCode, respondBy, resolveBy, TaskStep.system] {
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
    package static func load(_ db: PGConnection, incidentIDs: [String] = [], taskIDs: [String] = [], lock: Bool = false,
                             span known: (first: String, last: String)? = nil) throws -> [IncidentState]
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
        if span == nil {
            let row = try db.query("""
                SELECT extract(epoch FROM min(s.first_observed_at)), extract(epoch FROM max(s.last_observed_at))
                FROM (SELECT i.first_observed_at, i.last_observed_at FROM liandong.incidents i
                      WHERE \(filters.joined(separator: " OR "))\(lock ? " FOR UPDATE OF i" : "")) s
                """, parameters).rows.first
            if let row, let first = row[0], let last = row[1] { span = (first, last) }
        }
        guard let span else { return [] }
        parameters += [span.first, span.last]
        let between = "to_timestamp($\(parameters.count - 1)::float8) AND to_timestamp($\(parameters.count)::float8)"
        // One round trip: each incident with its task, its grid's worker and the 20 most recent
        // alert and report ids (from events_incident_recent_idx, however large the incident).
        let rows = try db.query("""
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
                        FROM liandong.events e
                        WHERE e.incident_id = i.id AND e.source = s.source
                          -- The incident's time span: only the day partitions it covers are read.
                          AND e.observed_at BETWEEN \(between) AND e.observed_at BETWEEN i.first_observed_at AND i.last_observed_at
                        ORDER BY e.observed_at DESC, e.id DESC LIMIT 20) e),
                   extract(epoch FROM t.counts_sent_at), extract(epoch FROM t.update_due_at), i.related_incident_ids,
                   (SELECT d.name FROM liandong.divisions d WHERE d.code = i.village_code),
                   (SELECT d.name FROM liandong.divisions d WHERE d.code = left(i.village_code, 9))
            FROM liandong.incidents i
            -- LATERAL with LIMIT (one task per incident anyway) is not flattened into a join, so
            -- each incident probes tasks_incident_id_key: a hash join would read all tasks.
            LEFT JOIN LATERAL (SELECT * FROM liandong.tasks t WHERE t.incident_id = i.id LIMIT 1) t ON true
            WHERE \(filters.joined(separator: " OR "))
            ORDER BY i.first_observed_at, i.id
            """ + (lock ? " FOR UPDATE OF i" : ""), parameters)
        return try rows.typed.map { v in
            let alertCount = try v.int(7), reportCount = try v.int(8)
            let evidence = try evidenceItems(v[21])
            var incident = IncidentState(
                id: try v.string(0), category: try v.string(1), gridCode: try v.string(5), villageCode: try v.string(6),
                priority: try v.int(2), lon: try v.double(3), lat: try v.double(4), workerID: v[20],
                evidence: TaskEvidence(alerts: evidence.alerts, reports: evidence.reports,
                                       alertCount: alertCount, reportCount: reportCount),
                relatedIncidentIDs: parsePGTextArray(v[24] ?? "{}"))
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
            }
            return incident
        }
    }

    /// Applies task steps: task columns, one history row each, and closes the incident of a task
    /// that reached a terminal state. (Creations and upgrades are written by the event store.)
    package static func apply(_ db: PGConnection, _ steps: [TaskStep]) throws {
        let changes = steps.compactMap { step in step.event.map { TaskChangeRow(step, event: $0) } }
        guard !changes.isEmpty else { return }
        try db.query("""
            WITH x AS (
                SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
                    task_id uuid, state text, tier text, division_code text, respond_by timestamptz,
                    resolve_by timestamptz, escalated boolean, overdue boolean, terminal boolean, event text,
                    from_division_code text, actor text, note text, update_id text)
            ), u AS (
                UPDATE liandong.tasks t
                SET state = x.state, tier = x.tier, division_code = x.division_code, respond_by = x.respond_by,
                    resolve_by = x.resolve_by, escalations = t.escalations + x.escalated::integer,
                    overdue = x.overdue,
                    overdue_since = CASE WHEN x.overdue AND NOT t.overdue THEN now() ELSE t.overdue_since END,
                    closed_at = CASE WHEN x.terminal THEN now() ELSE NULL END,
                    -- Its message carries the counts: no update is owed after it.
                    last_announced_at = now(), counts_sent_at = now(), update_due_at = NULL, updated_at = now()
                FROM x WHERE t.id = x.task_id
                RETURNING t.id, t.incident_id
            ), h AS (
                INSERT INTO liandong.task_history (task_id, event, tier, division_code, from_division_code,
                                                   respond_by, resolve_by, actor, note, update_id, peer)
                SELECT x.task_id, x.event, x.tier, x.division_code, x.from_division_code,
                       x.respond_by, x.resolve_by, x.actor, x.note, x.update_id,
                       (SELECT tu.peer FROM liandong.task_updates tu WHERE tu.update_id = x.update_id)
                FROM x
            )
            UPDATE liandong.incidents i
            SET status = 'closed', resolution = x.state, closed_at = now(), updated_at = now()
            FROM x JOIN u ON u.id = x.task_id
            WHERE i.id = u.incident_id AND x.terminal
            """, [try json(changes)])
    }

    /// Records what evidence messages announced and what coalescing held back: `sent` (evidence
    /// updates and upgrades just announced: their priority, counts sent now, nothing owed) and
    /// `owed` (an update due at that time, unless one is owed earlier). One statement.
    package static func recordCounts(_ db: PGConnection, sent: [TaskRecord], owed: [(taskID: String, dueAt: Double)]) throws {
        struct Row: Encodable {
            let id: String
            let priority: Int?
            let due: Double?
        }
        let rows = sent.map { Row(id: $0.id, priority: $0.priority, due: nil) } + owed.map { Row(id: $0.taskID, priority: nil, due: $0.dueAt) }
        guard !rows.isEmpty else { return }
        try db.query("""
            UPDATE liandong.tasks t
            SET priority       = CASE WHEN x.due IS NULL THEN least(t.priority, x.priority) ELSE t.priority END,
                counts_sent_at = CASE WHEN x.due IS NULL THEN now() ELSE t.counts_sent_at END,
                update_due_at  = CASE WHEN x.due IS NULL THEN NULL
                                      ELSE least(t.update_due_at, to_timestamp(x.due)) END
            FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, priority smallint, due float8)
            WHERE t.id = x.id
            """, [try json(rows)])
    }

    /// Upgrades tasks (liandong.upsert_tasks(), which records 'upgraded') and reserves the feed
    /// seqs of `feedMessages` in the same statement; returns the seq before the first of them.
    package static func upgrade(_ db: PGConnection, _ tasks: [TaskRecord], feedMessages: Int) throws -> Int64 {
        let row = try db.query("\(feedHeadAdvance) SELECT base, liandong.upsert_tasks($2::jsonb) FROM head",
                               [String(feedMessages), try json(tasks.map(TaskUpsertRow.init))])
        guard let seq = row.scalar.flatMap(Int64.init) else { throw StorageError("liandong.feed_head has no row: the schema is damaged (see deploy/OPERATIONS.md, upgrade and backup)") }
        return seq
    }

    /// New tasks and their 'created' history rows, by COPY.
    package static func create(_ db: PGConnection, _ rows: TaskRows) throws {
        guard !rows.tasks.isEmpty else { return }
        try db.copy("""
            COPY liandong.tasks (id, incident_id, kind, tier, division_code, grid_code, category, priority, departments,
                                 respond_by, resolve_by) FROM STDIN
            """, rows.tasks)
        try db.copy("""
            COPY liandong.task_history (task_id, event, tier, division_code, respond_by, resolve_by, actor) FROM STDIN
            """, rows.history)
    }

    /// Appends messages to the feed outbox with the next gap-free seqs (the row lock on feed_head
    /// serialises writers until commit); returns them ready to publish after commit.
    /// A CTE `head(base)` that advances the feed head by $1 under its row lock (held until commit,
    /// so committed seqs have no holes); `base` is the seq before the first new one.
    package static let feedHeadAdvance = "WITH head AS (UPDATE liandong.feed_head SET seq = seq + $1 RETURNING seq - $1 AS base)"

    /// `base`: the seq before the first of `messages` when the caller has already advanced
    /// feed_head by their count in this transaction (see `feedHeadAdvance`).
    package static func appendFeed(_ db: PGConnection, _ messages: [TaskMessage], base reserved: Int64? = nil) throws -> [FeedMessage] {
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
            copy.plain(m.kind.rawValue)
            copy.plain(m.taskID)
            copy.field(body)
            copy.endRow()
            out.append(FeedMessage(seq: m.seq!, topic: m.topic, body: body, kind: m.kind.rawValue))
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

package func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

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
