import Foundation
import LiandongCore
import LibPQ

/// Writes batches of inbound messages: events, incidents, tasks, feed outbox and dead letters,
/// each batch in one transaction. Two halves along the thread boundary: a `BatchPreparer` (read
/// session, reference data, correlation) that the prepare thread may use for the next batch
/// while the writer thread commits the current one with the `BatchCommitter` (write session,
/// writer lock, COPY); they exchange a Sendable `PreparedBatch`.
///
/// The hot path asks the database nothing per event: positions and grids come from `ReferenceData`,
/// correlation from the `HotWindow` of recent events of open incidents (only events observed
/// before the window's start are matched in PostgreSQL, in one query per batch), and the batch is
/// written with COPY plus one set-based incident update.
public final class EventStore {
    private let committer: BatchCommitter
    /// Shared with the prepare thread.
    public let preparer: SharedPreparer

    public init(conninfo: String, rules: Rules, maxDeadLetterBytes: Int = 65_536, deadLetterBytesPerHour: Int = 64 << 20,
                windowCapacity: Int = 100_000, onConnect: @Sendable (PGConnection) throws -> Void = { _ in }) throws {
        // `onConnect` runs before the writer lock is taken (ha: the lease must name this daemon).
        committer = try BatchCommitter(db: try Self.open(conninfo, "writer", onConnect), rules: rules, maxDeadLetterBytes: maxDeadLetterBytes,
                                       deadLetterBytesPerHour: deadLetterBytesPerHour)
        preparer = SharedPreparer(try BatchPreparer(reader: try Self.open(conninfo, "reader", onConnect), rules: rules, windowCapacity: windowCapacity))
    }

    private static func open(_ conninfo: String, _ name: String, _ onConnect: @Sendable (PGConnection) throws -> Void) throws -> PGConnection {
        // If this client vanishes without closing (a network partition), the server ends the
        // session - and releases the writer lock - within about half a minute.
        try Sessions.open(conninfo, name: name, prepare: onConnect)
    }

    public var isConnected: Bool { committer.isConnected && preparer.with { $0.isConnected } }

    /// Ends the sessions (and releases the writer lock) before a new store is opened.
    public func close() {
        committer.close()
        preparer.with { $0.close() }
    }

    /// Session advisory lock taken by the writer ("liandong" in ASCII, 0x6c69616e646f6e67).
    public static let writerLockKey: Int64 = 0x6c69_616e_646f_6e67

    /// Events held in the correlation window (for the metrics).
    public var windowCount: Int { preparer.with { $0.windowCount } }

    /// Seconds spent per phase since the last call (for liandong_writer_seconds_total): writing,
    /// and preparing (which may run on another thread meanwhile).
    public func takePhases() -> [String: Double] {
        committer.takePhases().merging(preparer.with { $0.takePhases() }, uniquingKeysWith: +)
    }

    /// Writes a batch in one transaction. When the database refuses the batch for a reason other
    /// than a broken connection, the items are written one by one so one bad item cannot block the
    /// rest; an item refused alone becomes a dead letter (store_error). Connection failures are
    /// thrown for the caller to retry.
    /// `verifyKeys`: dedup asks the database about every key (`BatchPlanner.start`).
    package func write(_ batch: [Inbound], now: Double = Date().timeIntervalSince1970, verifyKeys: Bool = false) throws -> BatchResult {
        do {
            let result = try commit(try preparer.prepare(batch, now: now, verifyKeys: verifyKeys), now: now)
            committed()
            return result
        } catch where Self.isRefusal(error) {
            discardPrepared()
            return try writeSeparately(batch, refusedWith: error, now: now, verified: verifyKeys)
        } catch {
            discardPrepared()
            throw error
        }
    }

    /// After a batch the database refused (`error`): its items one by one, so one bad item cannot
    /// block the rest, each with every key asked of the database (the refusal may have been an id
    /// the writer's recent keys did not hold: reused with another observed time, it is a
    /// duplicate); an item refused alone, so asked (`verified`), becomes a dead letter (store_error).
    package func writeSeparately(_ batch: [Inbound], refusedWith error: any Error, now: Double = Date().timeIntervalSince1970,
                                 verified: Bool = false) throws -> BatchResult
    {
        guard batch.count == 1, verified else {
            var result = BatchResult(outcomes: [], messages: [])
            for item in batch {
                let one = try write([item], now: now, verifyKeys: true)
                result.outcomes += one.outcomes
                result.messages += one.messages
                result.counts += one.counts
            }
            return result
        }
        let rejection = Rejection(.storeError, "the database refused the event: \(error)")
        try committer.writeRefused(rejection, batch[0].raw)
        return BatchResult(outcomes: [.rejected(rejection)], messages: [])
    }

    /// Whether `error` refuses the batch (the database said no, or stored data this binary cannot
    /// read), as opposed to a lost connection: the batch is then written item by item.
    public static func isRefusal(_ error: any Error) -> Bool {
        if let e = error as? PQError { return !e.isConnectionFailure }
        return error is StorageError || error is PGDecodeError
    }

    // MARK: pipelining

    /// See `BatchPreparer.canPrepareAhead`.
    public var canPrepareAhead: Bool { preparer.with { $0.canPrepareAhead } }

    /// After a commit, with no other batch being prepared: the window moves on.
    public func committed() { preparer.with { $0.committed() } }

    /// After any failure: the window is rebuilt before the next batch (see `BatchPreparer.discardPrepared`).
    public func discardPrepared() { preparer.with { $0.discardPrepared() } }

    /// Prepares a batch on the calling thread (see `BatchPreparer.prepare`).
    package func prepare(_ batch: [Inbound], now: Double = Date().timeIntervalSince1970, after inFlight: PreparedBatch? = nil)
        throws -> PreparedBatch
    {
        try preparer.prepare(batch, now: now, after: inFlight)
    }

    /// Writes a prepared batch in one transaction (see `BatchCommitter.commit`).
    public func commit(_ p: PreparedBatch, now: Double = Date().timeIntervalSince1970) throws -> BatchResult {
        try committer.commit(p, now: now)
    }

    /// The highest seq stored per gateway (the gap tracker's seed at start).
    package static func gatewaySeqs(_ db: PGConnection) throws -> [String: Int64] {
        try db.query("SELECT gateway_id, highest_seq FROM liandong.gateway_seqs").typed
            .reduce(into: [String: Int64]()) { $0[try $1.string(0)] = try $1.int64(1) }
    }

    /// Records per-gateway seq gaps found on the SUB path.
    public func recordGaps(_ gaps: [SeqGap]) throws { try committer.recordGaps(gaps) }
}

extension SharedPreparer {
    /// Prepares a batch (see `BatchPreparer.prepare`), on whichever thread calls it.
    package func prepare(_ batch: [Inbound], now: Double = Date().timeIntervalSince1970, after inFlight: PreparedBatch? = nil,
                         verifyKeys: Bool = false) throws -> PreparedBatch
    {
        try with { try $0.prepare(batch, now: now, after: inFlight, verifyKeys: verifyKeys) }
    }
}

/// Another session holds the writer lock: another liandongd writes to this database.
public struct WriterLockBusy: Error, CustomStringConvertible {
    public var description: String {
        "another liandongd holds the writer lock on this database (pg_advisory_lock \(EventStore.writerLockKey))"
    }
}

/// A batch ready to write: what the `BatchPlanner` decided, and the rows that say it.
public struct PreparedBatch: Sendable {
    package var plan: BatchPlan
    package var rows = BatchRows()
    /// The rows of the tasks for the incidents the batch opens.
    package var freshTaskRows = TaskRows()

    package init(_ plan: BatchPlan) { self.plan = plan }

    /// Per item, in input order.
    public var outcomes: [ItemOutcome?] { plan.outcomes }
}

/// COPY data for new incidents and events; parameters of the grown-incident and gateway-seq statement.
package struct BatchRows: Sendable {
    package var incidents: [UInt8]?
    package var events: [UInt8]?
    /// The days (CST) the events were observed on: each needs its partition.
    package var days = Set<EventDay>()
    /// Parameters of the statement that records gateway seqs, grows incidents and adds the
    /// events' keys (event_keys).
    package var update: [String?]?
    /// The residents' requests among the events (liandong.record_citizen_requests), JSON.
    package var citizens: String?
}

/// A day in China Standard Time, as days since 1970-01-01: the partition of liandong.events an
/// event observed then goes to (liandong.events_YYYYMMDD).
package struct EventDay: Hashable, Comparable, Sendable {
    package let number: Int

    package init(_ observedAt: Double) { number = Int(((observedAt + 8 * 3600) / 86_400).rounded(.down)) }

    package static func < (a: EventDay, b: EventDay) -> Bool { a.number < b.number }

    /// The SQL date of this day.
    package var sql: String { "DATE '1970-01-01' + \(number)" }

    /// Its partition of liandong.events (created by liandong.ensure_event_partitions).
    package var partition: String {
        // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil, inverted).
        let z = number + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "liandong.events_\(y)\(two(m))\(two(d))"
    }
}
