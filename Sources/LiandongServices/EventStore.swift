import Foundation
import LiandongCore
import LibPQ

/// Writes batches of inbound messages: events, incidents, tasks, feed outbox and dead letters,
/// each batch in one transaction. Owns its connection; use it from one thread.
public final class EventStore {
    private let db: PGConnection
    private let rules: Rules
    private let maxDeadLetterBytes: Int
    private let encoder: JSONEncoder
    /// Events stored since the last ANALYZE, and how many trigger the next one.
    private var storedSinceAnalyze = 0
    private var analyzeThreshold = 1000

    public init(conninfo: String, rules: Rules, maxDeadLetterBytes: Int = 65_536) throws {
        db = try PGConnection(conninfo: conninfo)
        try db.execute("SET client_min_messages = warning")
        self.rules = rules
        self.maxDeadLetterBytes = maxDeadLetterBytes
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    public var isConnected: Bool { db.isOK }

    /// Writes a batch in one transaction. When the database refuses the batch for a reason other
    /// than a broken connection, the items are written one by one so one bad item cannot block the
    /// rest; an item refused alone becomes a dead letter (store_error). Connection failures are
    /// thrown for the caller to retry.
    public func write(_ batch: [Inbound], now: Double = Date().timeIntervalSince1970) throws -> BatchResult {
        do {
            let result = try db.transaction { _ in try writeInTransaction(batch, now: now) }
            try refreshStatistics(stored: result.stored)
            return result
        } catch let error as PQError where !error.isConnectionFailure && batch.count > 1 {
            var result = BatchResult(outcomes: [], messages: [])
            for item in batch {
                let one = try write([item], now: now)
                result.outcomes += one.outcomes
                result.messages += one.messages
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

    /// Keeps planner statistics in step with fast-growing tables: without them, plans made while
    /// the tables were nearly empty stay in use long after (autovacuum runs only every minute).
    /// ANALYZE runs each time the stored count doubles, so O(log n) times.
    private func refreshStatistics(stored: Int) throws {
        storedSinceAnalyze += stored
        guard storedSinceAnalyze >= analyzeThreshold else { return }
        try db.execute("ANALYZE liandong.events, liandong.incidents, liandong.tasks, liandong.feed")
        analyzeThreshold = max(analyzeThreshold, storedSinceAnalyze) * 2
        storedSinceAnalyze = 0
    }

    private func writeInTransaction(_ batch: [Inbound], now: Double) throws -> BatchResult {
        var outcomes = [ItemOutcome?](repeating: nil, count: batch.count)
        var deadLetters: [(Rejection, RawMessage)] = []
        var items: [BatchItem] = []
        for (index, inbound) in batch.enumerated() {
            switch inbound {
            case .rejected(let rejection, let raw):
                outcomes[index] = .rejected(rejection)
                deadLetters.append((rejection, raw))
            case .event(let event, _):
                items.append(BatchItem(index: index, event: event, rule: rules.rule(for: event.category)))
            }
        }
        var touched: [String] = []
        if !items.isEmpty {
            let rows = try db.query(
                "SELECT idx, outcome, reason, detail, incident_id FROM liandong.ingest_batch($1::jsonb)",
                [try json(items)])
            for row in rows.rows {
                let index = Int(row[0]!)!
                switch row[1]! {
                case "stored":
                    outcomes[index] = .stored(incidentID: row[4]!)
                    if !touched.contains(row[4]!) { touched.append(row[4]!) }
                case "duplicate":
                    outcomes[index] = .duplicate
                default:
                    let rejection = Rejection(RejectReason(rawValue: row[2] ?? "") ?? .storeError, row[3] ?? "")
                    outcomes[index] = .rejected(rejection)
                    deadLetters.append((rejection, batch[index].raw))
                }
            }
        }
        try insertDeadLetters(deadLetters)
        let messages = try emitTasks(for: touched, now: now)
        return BatchResult(outcomes: outcomes.map { $0 ?? .duplicate }, messages: messages)
    }

    // MARK: tasks

    private func emitTasks(for incidentIDs: [String], now: Double) throws -> [FeedMessage] {
        guard !incidentIDs.isEmpty else { return [] }
        let rows = try db.query(Self.incidentQuery, ["{" + incidentIDs.joined(separator: ",") + "}"])
        var tasks: [TaskRow] = []
        var messages: [TaskMessage] = []
        for r in 0..<rows.count {
            let incident = IncidentRow(rows, r)
            let decision = emissionDecision(
                for: IncidentEvidence(
                    alertCount: incident.alertCount, reportCount: incident.reportCount,
                    priority: incident.priority, taskKind: incident.taskKind),
                dispatchSeverity: rules.dispatchSeverity)
            let kind: TaskKind
            var task: TaskRow
            switch decision {
            case .none:
                continue
            case .create(let k), .upgrade(let k):
                kind = k
                let tier = incident.tier ?? .village
                let sla = rules.sla(for: tier)
                task = TaskRow(
                    id: incident.taskID ?? UUID().uuidString.lowercased(), incident_id: incident.id, kind: k.rawValue,
                    tier: tier.rawValue, division_code: incident.divisionCode ?? incident.villageCode,
                    grid_code: incident.gridCode, category: incident.category, priority: incident.priority,
                    departments: rules.rule(for: incident.category).departments,
                    respond_by: Timestamp.formatUTC(now + sla.respondSeconds(priority: incident.priority)),
                    resolve_by: Timestamp.formatUTC(now + sla.resolveSeconds(priority: incident.priority)))
                tasks.append(task)
            case .update:
                kind = .update
                task = incident.existingTask!
            }
            let taskKind = TaskKind(rawValue: task.kind)!
            messages.append(TaskMessage(
                topic: TaskMessage.topic(kind: taskKind, divisionCode: task.division_code, gridCode: task.grid_code),
                messageID: UUID().uuidString.lowercased(), kind: kind, taskID: task.id, incidentID: incident.id,
                tier: Tier(rawValue: task.tier)!, divisionCode: task.division_code, gridCode: task.grid_code,
                workerID: incident.workerID, category: incident.category, priority: task.priority,
                lon: incident.lon, lat: incident.lat, departments: task.departments,
                respondBy: Timestamp.formatCST(Timestamp.parse(task.respond_by)!),
                resolveBy: Timestamp.formatCST(Timestamp.parse(task.resolve_by)!),
                evidence: incident.evidence, emittedAt: Timestamp.formatCST(now)))
        }
        if !tasks.isEmpty {
            try db.query("SELECT liandong.upsert_tasks($1::jsonb)", [try json(tasks)])
        }
        guard !messages.isEmpty else { return [] }
        let feed = try db.query("SELECT seq, topic, body FROM liandong.append_feed($1::jsonb)", [try json(messages)])
        return feed.rows.map { FeedMessage(seq: Int64($0[0]!)!, topic: $0[1]!, body: $0[2]!) }.sorted { $0.seq < $1.seq }
    }

    static let incidentQuery = """
        SELECT i.id, i.category, i.priority, ST_X(i.geog::geometry), ST_Y(i.geog::geometry), i.grid_code,
               i.village_code, i.alert_count, i.report_count, t.id, t.kind, t.tier, t.division_code,
               extract(epoch FROM t.respond_by), extract(epoch FROM t.resolve_by), t.departments, t.priority,
               (SELECT w.worker_id FROM liandong.grid_workers w WHERE w.grid_code = i.grid_code
                ORDER BY w.worker_id LIMIT 1),
               (SELECT coalesce(json_agg(s.source_id), '[]') FROM (
                    SELECT e.source_id FROM liandong.events e WHERE e.incident_id = i.id AND e.source = 'alert'
                    ORDER BY e.observed_at DESC, e.id DESC LIMIT 20) s),
               (SELECT coalesce(json_agg(s.source_id), '[]') FROM (
                    SELECT e.source_id FROM liandong.events e WHERE e.incident_id = i.id AND e.source = 'report'
                    ORDER BY e.observed_at DESC, e.id DESC LIMIT 20) s)
        FROM liandong.incidents i
        LEFT JOIN liandong.tasks t ON t.incident_id = i.id
        WHERE i.id = ANY($1::uuid[])
        ORDER BY i.first_observed_at, i.id
        """

    // MARK: dead letters

    private func insertDeadLetters(_ letters: [(Rejection, RawMessage)]) throws {
        guard !letters.isEmpty else { return }
        let rows = letters.map { rejection, raw -> DeadLetterRow in
            let topic = raw.frames.count > 1 ? raw.frames[0] : nil
            let body = Array((raw.frames.count > 1 ? raw.frames.dropFirst() : raw.frames[...]).joined())
            return DeadLetterRow(
                received_at: Timestamp.formatUTC(raw.receivedAt), endpoint: raw.endpoint,
                topic: topic.map(hex), raw: hex(Array(body.prefix(maxDeadLetterBytes))), raw_size: body.count,
                reason: rejection.reason.rawValue, detail: rejection.detail)
        }
        try db.query("""
            INSERT INTO liandong.rejected_messages (received_at, endpoint, topic, raw, raw_size, reason, detail)
            SELECT x.received_at, x.endpoint, decode(x.topic, 'hex'), decode(x.raw, 'hex'), x.raw_size, x.reason, x.detail
            FROM jsonb_to_recordset($1::jsonb) AS x(received_at timestamptz, endpoint text, topic text, raw text,
                                                   raw_size integer, reason text, detail text)
            """, [try json(rows)])
    }

    private func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

private func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// One event as ingest_batch() reads it.
private struct BatchItem: Encodable {
    let idx: Int
    let source: String
    let source_id: String
    let gateway_id: String?
    let seq: Int64?
    let device_id: String?
    let worker_id: String?
    let grid_code: String?
    let category: String
    let priority: Int
    let observed_at: String
    let lon: Double?
    let lat: Double?
    let crs: String
    let radius_m: Double
    let window_s: Double
    let payload: String

    init(index: Int, event: IngestEvent, rule: CategoryRule) {
        idx = index
        source = event.source.rawValue
        source_id = event.sourceID
        gateway_id = event.gatewayID
        seq = event.gatewaySeq
        device_id = event.deviceID
        worker_id = event.workerID
        grid_code = event.gridCode
        category = event.category
        priority = event.priority
        observed_at = Timestamp.formatUTC(event.observedAt)
        lon = event.position?.lon
        lat = event.position?.lat
        crs = event.crs.rawValue
        radius_m = rule.radiusMeters
        window_s = rule.windowSeconds
        payload = event.body
    }
}

/// One task as upsert_tasks() reads it.
private struct TaskRow: Encodable {
    let id: String
    let incident_id: String
    let kind: String
    let tier: String
    let division_code: String
    let grid_code: String
    let category: String
    let priority: Int
    let departments: [String]
    let respond_by: String
    let resolve_by: String
}

/// One dead letter as the rejected_messages insert reads it.
private struct DeadLetterRow: Encodable {
    let received_at: String
    let endpoint: String
    let topic: String?
    let raw: String
    let raw_size: Int
    let reason: String
    let detail: String
}

/// One row of `incidentQuery`.
private struct IncidentRow {
    let id, category, gridCode, villageCode: String
    let priority, alertCount, reportCount: Int
    let lon, lat: Double
    let taskID: String?
    let taskKind: TaskKind?
    let tier: Tier?
    let divisionCode: String?
    let workerID: String?
    let evidence: TaskEvidence
    let existingTask: TaskRow?

    init(_ rows: PGRows, _ r: Int) {
        let v = rows.rows[r]
        id = v[0]!
        category = v[1]!
        priority = Int(v[2]!)!
        lon = Double(v[3]!)!
        lat = Double(v[4]!)!
        gridCode = v[5]!
        villageCode = v[6]!
        alertCount = Int(v[7]!)!
        reportCount = Int(v[8]!)!
        taskID = v[9]
        taskKind = v[10].flatMap(TaskKind.init(rawValue:))
        tier = v[11].flatMap(Tier.init(rawValue:))
        divisionCode = v[12]
        workerID = v[17]
        let decode = { (text: String?) -> [String] in
            (try? JSONDecoder().decode([String].self, from: Data((text ?? "[]").utf8))) ?? []
        }
        evidence = TaskEvidence(alerts: decode(v[18]), reports: decode(v[19]), alertCount: alertCount, reportCount: reportCount)
        if let taskID, let kind = v[10], let tier = v[11], let division = v[12] {
            existingTask = TaskRow(
                id: taskID, incident_id: id, kind: kind, tier: tier, division_code: division, grid_code: gridCode,
                category: category, priority: Int(v[16]!)!, departments: parsePGTextArray(v[15] ?? "{}"),
                respond_by: Timestamp.formatUTC(Double(v[13]!)!), resolve_by: Timestamp.formatUTC(Double(v[14]!)!))
        } else {
            existingTask = nil
        }
    }
}

/// Parses PostgreSQL's text output of a text[] of simple words ("{police,fire}").
func parsePGTextArray(_ text: String) -> [String] {
    let inner = text.dropFirst().dropLast()
    guard !inner.isEmpty else { return [] }
    return inner.split(separator: ",").map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
}
