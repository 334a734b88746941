import Foundation
import LiandongCore
import LibPQ

/// Writes batches of inbound messages: events, incidents, tasks, feed outbox and dead letters,
/// each batch in one transaction. Owns its connection; use it from one thread.
public final class EventStore {
    private let db: PGConnection
    private let rules: Rules
    private let maxDeadLetterBytes: Int

    public init(conninfo: String, rules: Rules, maxDeadLetterBytes: Int = 65_536) throws {
        db = try PGConnection(conninfo: conninfo)
        try db.execute("SET client_min_messages = warning")
        self.rules = rules
        self.maxDeadLetterBytes = maxDeadLetterBytes
    }

    public var isConnected: Bool { db.isOK }

    /// Writes a batch in one transaction. When the database refuses the batch for a reason other
    /// than a broken connection, the items are written one by one so one bad item cannot block the
    /// rest; an item refused alone becomes a dead letter (store_error). Connection failures are
    /// thrown for the caller to retry.
    public func write(_ batch: [Inbound], now: Double = Date().timeIntervalSince1970) throws -> BatchResult {
        do {
            return try db.transaction { _ in try writeInTransaction(batch, now: now) }
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
                [try TaskStore.json(items)])
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
        var tasks: [TaskFields] = []
        var messages: [TaskMessage] = []
        for snapshot in try TaskStore.load(db, incidentIDs: incidentIDs) {
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
                tasks.append(task)
                messages.append(TaskStore.message(snapshot, task, kind: kind, now: now))
            case .update:
                messages.append(TaskStore.message(snapshot, current!, kind: .update, now: now))
            }
        }
        if !tasks.isEmpty {
            try db.query("SELECT liandong.upsert_tasks($1::jsonb)", [try TaskStore.json(tasks)])
        }
        return try TaskStore.appendFeed(db, messages)
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
