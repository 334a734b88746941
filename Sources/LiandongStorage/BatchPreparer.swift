import Foundation
import Synchronization
import LiandongCore
import LibPQ

/// The read side of the event store, run by the writer thread or, for the batch after the one
/// being written, by the prepare thread: it drives the pure `BatchPlanner` - loading the facts it
/// asks for on a read-only session (`PlanFactStore`) - and turns its plan into the rows the batch
/// writes. Shared between the two threads only as `SharedPreparer`, whose lock the compiler checks.
package final class BatchPreparer {
    /// Reads committed data only: a batch can be prepared here while the one before it is written.
    private let reader: PGConnection
    private let facts: PlanFactStore
    private var planner: BatchPlanner
    /// Grids, cameras and workers, reloaded when an import has changed them (`currentReference`).
    private var reference: ReferenceData
    private var referenceCheckedAt: UInt64
    /// A batch prepared since the last commit holds a record that changes the reference data.
    private var referenceChangeCommitted = false
    /// Where preparing takes its time, by phase (see `takePhases`).
    private var clock = PhaseClock()

    package init(reader: PGConnection, rules: Rules, windowCapacity: Int) throws {
        try reader.execute("SET default_transaction_read_only = on")
        self.reader = reader
        facts = PlanFactStore(db: reader, presence: rules.workerPresenceSeconds)
        // Loaded now, not on the first batch: at a province's scale this takes seconds.
        reference = try ReferenceData.load(reader)
        referenceCheckedAt = DispatchTime.now().uptimeNanoseconds
        planner = BatchPlanner(rules: rules, windowCapacity: windowCapacity,
                               inhibitedUntil: try facts.inhibitions(seconds: rules.inhibitSeconds))
        if let request = planner.windowRequest, case .window(let retention, let capacity) = request {
            planner.load(window: try facts.window(retention: retention, capacity: capacity))
        }
    }

    package var isConnected: Bool { reader.isOK }

    package func close() { reader.close() }

    /// Events held in the correlation window.
    package var windowCount: Int { planner.windowCount }

    package func takePhases() -> [String: Double] { clock.take() }

    /// Whether a batch can be prepared while another is written: only with the window in memory
    /// (it holds the in-flight batch's events; a window reloaded from PostgreSQL would not).
    package var canPrepareAhead: Bool { planner.hasWindow }

    /// After a commit, with no other batch being prepared: the window moves on.
    package func committed() {
        planner.committed()
        // A record that changes what places events (a catalog's channels) was committed: the
        // next batch checks the reference data whatever the time since the last check.
        if referenceChangeCommitted { referenceCheckedAt = 0 }
        referenceChangeCommitted = false
    }

    /// After any failure: the window was changed as batches were planned; it is rebuilt from
    /// what was committed before the next batch. Batches prepared meanwhile must be prepared again.
    package func discardPrepared() { planner.discardWindow() }

    /// Grids, cameras and workers, reloaded when an import has changed them: checked at most once
    /// a second, and always when the planner asks before refusing an item as unknown (`force`).
    private func currentReference(force: Bool = false) throws -> ReferenceData {
        let now = DispatchTime.now().uptimeNanoseconds
        if !force, now &- referenceCheckedAt < 1_000_000_000 { return reference }
        referenceCheckedAt = now
        if try ReferenceData.currentVersion(reader) == reference.version { return reference }
        reference = try ReferenceData.load(reader)
        return reference
    }

    /// Plans a batch (loading the facts the planner asks for) and builds the rows it writes.
    /// `inFlight`: the batch being written meanwhile (prepared just before this one, not yet
    /// committed). Changes the window; any failure after this, of this batch or of `inFlight`,
    /// needs `discardPrepared()`.
    /// `verifyKeys`: dedup asks the database about every key (`BatchPlanner.start`).
    package func prepare(_ batch: [Inbound], now: Double = Date().timeIntervalSince1970, after inFlight: PreparedBatch? = nil,
                         verifyKeys: Bool = false) throws -> PreparedBatch
    {
        clock.start()
        let reference = try currentReference()
        clock.lap("reference")
        var step = planner.start(batch, reference: reference, now: now, after: inFlight?.plan, verifyKeys: verifyKeys)
        clock.lap("place")
        while case .need(let request) = step {
            let loaded = try facts.load(request, reference: { try currentReference(force: true) }, &clock)
            clock.lap(request == .freshReference ? "reference" : "history")
            step = planner.resume(loaded)
            clock.lap("correlate")
        }
        guard case .done(let plan) = step else { preconditionFailure("the planner stopped without a plan") }
        if plan.records.contains(where: { type(of: $0).changesReference }) { referenceChangeCommitted = true }
        var p = PreparedBatch(plan)
        if !plan.events.isEmpty {
            p.rows = try rows(plan)
            p.freshTaskRows = TaskRows(plan.created)
            clock.lap("build_rows")
        }
        return p
    }

    // MARK: rows

    /// The rows a correlated batch adds: new incidents and events as COPY data, grown incidents
    /// and gateway seqs as statement parameters.
    private func rows(_ plan: BatchPlan) throws -> BatchRows {
        var rows = BatchRows()
        if !plan.opened.isEmpty {
            var copy = PGCopyText(reservingCapacity: plan.opened.count * 200)
            for (id, n) in plan.opened {
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
        var copy = PGCopyText(reservingCapacity: plan.events.count * 600)
        var keySources: [String] = [], keyIDs: [String] = [], keyTimes: [String] = [], keyOwners: [String] = []
        for planned in plan.events {
            let p = planned.placed, e = p.event
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
            copy.plain(planned.incident.uuidString)
            copy.field(e.body)
            copy.field(planned.mutedBy)
            copy.field(p.parent)
            copy.endRow()
        }
        rows.events = copy.bytes
        rows.citizens = try CitizenStore.rows(plan.events)
        // Highest seq per gateway, for the gap tracker's seed at the next start.
        var highest: [String: Int64] = [:]
        for planned in plan.events {
            if let gateway = planned.placed.event.gatewayID, let seq = planned.placed.event.gatewaySeq { highest[gateway] = max(highest[gateway] ?? seq, seq) }
        }
        struct Seq: Encodable { let g: String; let s: Int64 }
        struct Grown: Encodable {
            let id: String
            let priority, alerts, reports: Int
            let first, last: Double
        }
        let grown = plan.grown.map { id, g in
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
