import CoreMetrics
import Foundation
import LiandongCore
import LiandongStorage
import LibPQ
import Logging
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// Takes validated messages off the ingest queue in batches (ingest.batch_size / batch_ms), writes
/// each batch in one transaction and hands the committed feed messages to the publisher. When the
/// database is unreachable it keeps the batch and retries with backoff; nothing is dropped.
/// Runs until the ingest queue is closed and drained.
public final class WriterService: Service, Sendable {
    let context: ZMQContext
    let ackEndpoint: String
    let config: Config
    let input: BoundedQueue<Inbound>
    let output: BoundedQueue<FeedMessage>
    let logger: Logger
    let metrics: Metrics
    let handles: Handles

    /// The writer's metric handles, created once.
    struct Handles {
        let accepted, rejected, preparedAhead: CounterFamily
        /// Per kind of inbound record (`MessageDecoder.recordKinds`).
        let records: [ObjectIdentifier: CounterFamily]
        let duplicates, late, silenced, inhibited, coalesced, bounded, suppressed, reconnects: CoreMetrics.Counter
        let batchSize, commitSeconds: CoreMetrics.Recorder
        let window: CoreMetrics.Gauge
        let phases: SecondsFamily

        init(_ m: Metrics) {
            accepted = m.counters("liandong_events_accepted_total", by: "source", known: ["alert", "report"])
            rejected = m.counters("liandong_events_rejected_total", by: "reason", known: RejectReason.allCases.map(\.rawValue))
            preparedAhead = m.counters("liandong_batches_prepared_ahead_total", by: "outcome", known: ["used", "discarded"])
            records = Dictionary(uniqueKeysWithValues: MessageDecoder.recordKinds.map {
                (ObjectIdentifier($0), m.counters($0.counter.name, by: $0.counter.label, known: $0.counter.values))
            })
            duplicates = m.counter("liandong_events_duplicate_total")
            late = m.counter("liandong_events_late_total")
            silenced = m.counter("liandong_events_silenced_total")
            inhibited = m.counter("liandong_events_inhibited_total")
            coalesced = m.counter("liandong_updates_coalesced_total")
            bounded = m.counter("liandong_events_bounded_total")
            suppressed = m.counter("liandong_events_suppressed_total")
            reconnects = m.counter("liandong_db_reconnects_total")
            batchSize = m.histogram("liandong_batch_size")
            commitSeconds = m.histogram("liandong_batch_commit_seconds")
            window = m.gauge("liandong_correlation_window_events")
            phases = m.secondsCounters("liandong_writer_seconds_total", by: "phase")
        }
    }
    let spill: SpillFile?
    let gaps: BoundedQueue<SeqGap>
    let cancelled = StopFlag()
    /// ha.enabled: writes once this daemon leads; each session is fenced by the lease.
    let role: HARole
    /// Where the next batch is prepared while the writer thread writes the current one.
    let prepareThread = WorkerThread(name: "liandong-prepare", nice: 5)
    /// The database watchdog's findings: database.synchronous require: whether writing is allowed;
    /// whether the daemon is stopping (a statement cancelled then ends the writer).
    let database: DatabaseHealth

    package init(context: ZMQContext, ackEndpoint: String, config: Config, input: BoundedQueue<Inbound>,
                output: BoundedQueue<FeedMessage>, spill: SpillFile?, gaps: BoundedQueue<SeqGap>, role: HARole = .single(),
                database: DatabaseHealth? = nil, metrics: Metrics, logger: Logger) {
        self.database = database ?? DatabaseHealth(mode: .off)
        self.role = role
        self.gaps = gaps
        self.spill = spill
        self.metrics = metrics
        handles = Handles(metrics)
        self.context = context
        self.ackEndpoint = ackEndpoint
        self.config = config
        self.input = input
        self.output = output
        self.logger = logger
    }

    public func run() async throws {
        try await withTaskCancellationHandler {
            try await runOnDedicatedThread(name: "liandong-writer") { [self] in try loop() }
            // Stay in the group until it is our turn to stop, so shutdown runs in order.
            try? await gracefulShutdown()
        } onCancel: { [cancelled] in
            cancelled.set()
        }
    }

    /// One attempt to open the store; nil (logged) while the database is unreachable or another
    /// liandongd's writer holds it (the correlation window lives in one writer's memory).
    private func openStore(retryIn delay: Double, _ extra: Logger.Metadata = [:]) throws -> EventStore? {
        if database.unavailable != nil {
            if cancelled.isSet { throw WriterStopped(reason: "stopped while acknowledgements could not be replicated") }
            return nil  // said by the watchdog ("not acknowledging: ..."); it resumes by itself
        }
        do {
            return try EventStore(conninfo: config.databaseURL, rules: config.rules,
                                  maxDeadLetterBytes: config.maxDeadLetterBytes,
                                  deadLetterBytesPerHour: config.retention.deadLetterBytesPerHour, onConnect: role.fence)
        } catch let error as PQError where error.isConnectionFailure {
            if cancelled.isSet { throw error }
            logger.error("database unreachable, retrying",
                         metadata: extra.merging(["db.error": "\(error)", "retry.s": "\(delay)"]) { $1 })
        } catch let error as WriterLockBusy {
            if cancelled.isSet { throw WriterStopped(reason: "\(error)") }
            if !metrics.writerStandby.isOn {
                metrics.writerStandby.set(true)
                logger.warning("another liandongd is writing to this database; standing by until it stops",
                               metadata: extra.merging(["retry.s": "\(delay)"]) { $1 })
            }
        }
        return nil
    }

    typealias Pipeline = WriterPipeline<Inbound>
    typealias Batch = Pipeline.Batch

    private func loop() throws {
        // Answers for acknowledged gateways go back through the ingest thread, which owns the ROUTER.
        let acks = try AckChannel(context: context, endpoint: ackEndpoint, logger: logger)
        defer { acks.finish() }
        defer { prepareThread.stop() }
        // A standby writes nothing; the ingest keeps what arrives on its SUB socket meanwhile.
        guard role.waitForLead({ cancelled.isSet || input.isClosed }) else { return }
        // Which batch is next, what a failure does with the batches in hand: see WriterPipeline.
        var pipeline = Pipeline(batchSize: config.batchSize, hasSpill: spill != nil)
        guard let opened = try reconnect(spilling: spill, after: false, acks: acks) else { return }
        var store = opened.0
        pipeline.reconnected(held: opened.1)
        metrics.databaseUp.set(true)
        let linger = Double(config.batchMilliseconds) / 1000
        let decoder = MessageDecoder(rules: config.rules, limits: config.limits)
        var unrecorded: [SeqGap] = []
        var busySinceTrim = false
        // Where the writer thread's time goes outside the store (waiting, spill, handing on).
        var clock = PhaseClock()
        clock.start()
        // The preparation of the batch the pipeline holds ahead, when it succeeded.
        var preparedAhead: PreparedBatch? = nil
        // When the batch prepared ahead is taken off the queue: as late as its preparation still
        // ends with the commit (LookAheadTiming).
        var timing = LookAheadTiming()
        var step: Pipeline.Next? = nil
        while true {
            if step == nil {
                unrecorded += gaps.popBatch(max: 1000, idle: 0, linger: 0) ?? []
                if !unrecorded.isEmpty, (try? store.recordGaps(unrecorded)) != nil { unrecorded = [] }
            }
            let spillPending = !(spill?.isEmpty ?? true)
            switch step ?? pipeline.next(spillPending: spillPending) {
            case .takeFromQueue(let wait):
                let taken = input.popBatch(max: config.batchSize, idle: wait ? 0.2 : 0, linger: wait ? linger : 0)
                clock.lap("wait")
                step = pipeline.taken(taken, spillPending: spillPending)
            case .readSpill:
                let (raws, end) = spill!.read(max: config.batchSize)
                clock.lap("spill_read")
                step = pipeline.readFromSpill(raws.map { Inbound($0, decodedBy: decoder) }, end: end)
            case .idle:
                step = nil
                if busySinceTrim {
                    // Idle after work: give the memory a burst needed back to the system, so the
                    // resident size returns to the steady state.
                    busySinceTrim = false
                    releaseFreeMemory()
                }
                // Idle time counts as it passes, so rate(wait) reads 1 on an idle writer.
                recordStore(store, clock.take())
            case .finished:
                logger.info("writer drained")
                return
            case .write(let batch, let ahead, let lookAhead):
                step = nil
                busySinceTrim = true
                let started = Date()
                let prepared = ahead ? preparedAhead : nil
                preparedAhead = nil
                switch try write(batch, prepared: prepared, lookAhead: lookAhead, store, &pipeline, &timing, decoder) {
                case .committed(let result, let pending):
                    clock.skip()  // the store measures its own phases
                    logger.debug("batch committed", metadata: [
                        "batch.size": "\(batch.items.count)", "batch.stored": "\(result.stored)",
                        "batch.duplicates": "\(result.duplicates)", "batch.rejected": "\(result.rejected)",
                        "batch.messages": "\(result.messages.count)",
                        "batch.ms": "\(Int(Date().timeIntervalSince(started) * 1000))",
                    ])
                    record(batch.items, result, seconds: Date().timeIntervalSince(started))
                    for message in result.messages { output.push(message) }
                    sendAcks(batch.items, result, acks)
                    clock.lap("hand_on")
                    let next = pending?.wait()
                    clock.lap("prepare_wait")
                    preparedAhead = try? next?.prepared.get()
                    if let next {
                        handles.preparedAhead.increment(preparedAhead == nil ? "discarded" : "used")
                        handles.phases.add(next.phases)
                        timing.prepared(seconds: next.preparing)
                    }
                    let after = pipeline.committed(ahead: next?.taken, aheadPrepared: preparedAhead != nil)
                    // Failed part-way, the preparation ahead may have left its events in the window: rebuilt.
                    if after.discardWindow { store.discardPrepared() }
                    // Only now: the window moves on with nothing being prepared, and the spill
                    // is not truncated under a read ahead.
                    store.committed()
                    if let end = after.commitSpill { try spill?.commit(end) }
                    recordStore(store, clock.take())
                case .lost(let error, let ahead):
                    preparedAhead = nil
                    // Stopping, a loss ends the writer: what it holds goes to the spill file.
                    let loss = pipeline.connectionLost(ahead: ahead, stopping: cancelled.isSet || database.isStopping)
                    if case .stop = loss {} else {
                        metrics.databaseUp.set(false)
                        if error is ReplicationUnavailable {
                            logger.warning("not writing: \(error); what arrives goes to the spill file, gateways are answered \"unavailable\"", metadata: ["batch.size": "\(batch.items.count)"])
                        } else {
                            handles.reconnects.increment()
                            logger.error("database connection lost", metadata: ["db.error": "\(error)", "batch.size": "\(batch.items.count)"])
                        }
                        store.close()
                    }
                    let delay: Double
                    switch loss {
                    case .stop(let current, let carried):
                        store.close()
                        return try stopUnwritten((current ?? []) + carried, after: error)
                    case .retry(let d): delay = d
                    case .spillOut(let current, let carried):
                        // With a spill file, what is in hand and in memory goes to disk for the
                        // outage, so a crash meanwhile loses nothing read from the sockets.
                        let all = current.map { spill!.appendAll($0.map(\.raw)) == $0.count } ?? true
                        switch pipeline.spilled(current: all, carried: all ? spill!.appendAll(carried.map(\.raw)) : 0) {
                        case .reconnectSpilling:
                            guard let (reopened, held) = try reconnect(spilling: spill, after: true, holding: pipeline.carried,
                                                                       acks: acks) else {
                                return
                            }
                            store = reopened
                            pipeline.reconnected(held: held)
                            continue
                        case .retry(let d): delay = d
                        }
                    }
                    // The batch is only in memory: keep trying until the graceful shutdown time
                    // is up (then cancelled: the loss is counted and reported).
                    Thread.sleep(forTimeInterval: delay)
                    store = try reconnect(spilling: nil, after: true, acks: acks)!.0
                    step = pipeline.reconnectedForRetry()
                }
            }
        }
    }

    /// How writing a batch ended.
    enum WriteOutcome {
        /// Committed (whole, or item by item after a refusal); `pending`: the next batch being
        /// taken and prepared meanwhile, waited for after the result is handed on.
        case committed(BatchResult, pending: Pending<LookAhead?>?)
        /// The connection failed, a statement was cancelled or, in require mode, acknowledgements
        /// would not be replicated; `ahead`: a batch taken meanwhile.
        case lost(any Error, ahead: Batch?)
    }

    /// Writes `batch` (prepared ahead, or now) in one transaction and meanwhile, when `lookAhead`
    /// allows, takes the next batch on the prepare thread if one is waiting and prepares it:
    /// PostgreSQL writes one batch while this process places, deduplicates and correlates the
    /// next. When the database refuses the batch, it is written item by item (one bad item cannot
    /// block the rest).
    private func write(_ batch: Batch, prepared: PreparedBatch?, lookAhead: Bool, _ store: EventStore,
                       _ pipeline: inout Pipeline, _ timing: inout LookAheadTiming, _ decoder: MessageDecoder) throws -> WriteOutcome
    {
        var aheadTaken: Batch? = nil
        // database.synchronous require without a synchronous standby: nothing is written (spilled).
        if let reason = database.unavailable { return .lost(ReplicationUnavailable(reason: reason), ahead: nil) }
        do {
            let p: PreparedBatch
            do {
                p = try prepared ?? store.prepare(batch.items)
            } catch where EventStore.isRefusal(error) {
                store.discardPrepared()
                let again = pipeline.refused(ahead: nil)
                return .committed(try store.writeSeparately(again.items, refusedWith: error), pending: nil)
            } catch {
                store.discardPrepared()
                throw error
            }
            // From the spill (a backlog on disk), the next batch is taken at once.
            let started = Date()
            let takeAt = batch.spillEnd == nil && (spill?.isEmpty ?? true) ? started.addingTimeInterval(timing.hold) : started
            let pending = lookAhead && store.canPrepareAhead
                ? self.lookAhead(store.preparer, after: p, takeAt: takeAt, spillFrom: batch.spillEnd, decoder) : nil
            do {
                let result = try store.commit(p)
                timing.committed(seconds: Date().timeIntervalSince(started))
                return .committed(result, pending: pending)
            } catch {
                // The batch prepared ahead was correlated with this one's incidents: prepared again later.
                if let next = pending?.wait() {
                    handles.preparedAhead.increment("discarded")
                    aheadTaken = next.taken
                }
                store.discardPrepared()
                guard EventStore.isRefusal(error) else { throw error }
                let again = pipeline.refused(ahead: aheadTaken)
                aheadTaken = nil
                return .committed(try store.writeSeparately(again.items, refusedWith: error), pending: nil)
            }
        } catch let error as PQError where error.isConnectionFailure {
            return .lost(error, ahead: aheadTaken)
        }
    }

    /// On the prepare thread: the next batch if one is waiting at `takeAt` (the queue first,
    /// taken at once when it holds a full batch, then the spill after `spillFrom`), prepared with
    /// `inFlight` being written meanwhile.
    private func lookAhead(_ preparer: SharedPreparer, after inFlight: PreparedBatch, takeAt: Date, spillFrom: UInt64?,
                           _ decoder: MessageDecoder) -> Pending<LookAhead?>
    {
        Pending(on: prepareThread) { [input, spill, config] in
            var clock = PhaseClock()
            let entered = Date()
            var taken: Batch
            let queued = input.popBatch(max: config.batchSize, until: takeAt)
            clock.skip()  // holding for takeAt is no phase of the writer's
            if let batch = queued, !batch.isEmpty {
                taken = Batch(batch)
            } else if let spill {
                let (raws, end) = spill.read(max: config.batchSize, from: spillFrom)
                guard !raws.isEmpty else { return nil }
                taken = Batch(raws.map { Inbound($0, decodedBy: decoder) }, spillEnd: end)
                clock.lap("spill_read")
            } else {
                return nil
            }
            // Counted from the moment it was due (this thread may wake late on a busy machine,
            // and that delays the batch as much), or from when it was taken, if earlier.
            let from = min(Date(), max(entered, takeAt))
            let prepared = Result { try preparer.prepare(taken.items, after: inFlight) }
            return LookAhead(taken: taken, prepared: prepared, phases: clock.take(),
                             preparing: Date().timeIntervalSince(from))
        }
    }

    /// Opens the store, retrying with backoff. With a spill file, whatever reaches the queue while
    /// the database is unreachable goes to the spill as it arrives, so a crash meanwhile loses
    /// nothing read from the sockets; this holds at start too: a daemon that starts before its
    /// database must not keep a queue's worth of events only in memory. Returns the store and what
    /// was taken off the queue but did not fit into a full spill (to be written first).
    ///
    /// Returns nil when the daemon stops meanwhile with everything it received on disk: the ingest
    /// has closed the queue, the queue is drained into the spill and nothing is held in memory
    /// (`holding`: what the caller still keeps). What is spilled is written at the next start.
    private func reconnect(spilling spill: SpillFile?, after failure: Bool, holding: [Inbound] = [], acks: AckChannel) throws
        -> (EventStore, [Inbound])?
    {
        var delay = 0.1
        var waited = failure
        var held: [Inbound] = []
        while true {
            let opened: EventStore?
            do {
                opened = try openStore(retryIn: delay, spill.map { ["spill.bytes": "\($0.pendingBytes)"] } ?? [:])
            } catch where cancelled.isSet {
                let lost = held.count + holding.count + input.count
                throw WriterStopped(reason: "stopped before the database could be written (\(error)): \(lost) received "
                    + "messages were not written" + (spill.map { " (the spill file \($0.path) keeps the rest)" } ?? ""))
            }
            if let store = opened {
                metrics.writerStandby.set(false)
                if waited, let spill {
                    logger.notice("database reachable again; writing what was spilled", metadata: ["spill.bytes": "\(spill.pendingBytes)"])
                }
                return (store, held)
            }
            waited = true
            if let spill {
                let drained = spillArrivals(to: spill, until: Date(timeIntervalSinceNow: delay), held: &held, acks: acks)
                if drained && held.isEmpty && holding.isEmpty {
                    if spill.isEmpty {
                        logger.notice("stopped before writing; nothing received is left unwritten")
                    } else {
                        logger.notice("stopped before writing; what was received is in the spill file and is written at the next start",
                                      metadata: ["spill.path": "\(spill.path)", "spill.bytes": "\(spill.pendingBytes)"])
                    }
                    return nil
                }
            } else {
                Thread.sleep(forTimeInterval: delay)
            }
            delay = min(delay * 2, 5)
        }
    }

    /// Moves messages to the spill as they reach the queue, until `deadline`. When the spill is
    /// full, what did not fit is held (never pushed back: the reader may have refilled the queue)
    /// and nothing more is taken, so the queue fills and the reader waits (backpressure).
    /// Returns true once the queue is closed and drained (the ingest has stopped).
    private func spillArrivals(to spill: SpillFile, until deadline: Date, held: inout [Inbound], acks: AckChannel) -> Bool {
        while !cancelled.isSet {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return false }
            guard held.isEmpty else {
                Thread.sleep(forTimeInterval: left)  // holding what the full spill refused
                return false
            }
            guard var waiting = input.popBatch(max: 10_000, idle: left, linger: 0) else { return true }
            // require without a synchronous standby: acknowledged gateways hear so at once and
            // resend later (nothing of theirs is kept); the SUB path's messages are spilled.
            if let reason = database.unavailable {
                waiting.removeAll { inbound in
                    guard let envelope = inbound.raw.replyEnvelope else { return false }
                    acks.send(envelope + [IngestAnswer.refused(inbound.id, error: "unavailable: " + reason).json()])
                    return true
                }
            }
            let spilled = spill.appendAll(waiting.map(\.raw))
            if spilled < waiting.count {
                held = Array(waiting[spilled...])
            }
        }
        return false
    }

    /// Stopping after a loss (the database away, a statement cancelled so the daemon need not
    /// wait): what is only in memory - `inHand` and what the queue still holds - goes to the spill
    /// file, written at the next start; none of it was acknowledged (gateways resend). Without a
    /// spill file, or when it is full, what did not fit is reported as not written.
    private func stopUnwritten(_ inHand: [Inbound], after error: any Error) throws {
        var left = inHand
        while let more = input.popBatch(max: 10_000, idle: 0, linger: 0), !more.isEmpty { left += more }
        let raws = left.map(\.raw)
        let spilled = spill.map { $0.appendAll(raws) } ?? 0
        guard spilled == raws.count else {
            throw WriterStopped(reason: "stopped while the database could not take a batch (\(error)): \(raws.count - spilled) "
                + "received messages were not written" + (spill.map { " (the spill file \($0.path) keeps \(spilled))" } ?? ""))
        }
        logger.notice("stopped while the database could not take a batch: what was not committed is in the spill file and is written at the next start; nothing of it was acknowledged", metadata: [
            "db.error": "\(error)", "spill.messages": "\(spilled)", "spill.bytes": "\(spill?.pendingBytes ?? 0)",
        ])
    }

    private func record(_ batch: [Inbound], _ result: BatchResult, seconds: Double) {
        metrics.databaseUp.set(true)
        handles.batchSize.record(batch.count)
        handles.commitSeconds.record(seconds)
        // Counted per batch, then added: one registry call per label, not per event.
        var accepted: [String: Int] = [:], rejected: [String: Int] = [:], kinds: [String: Int] = [:]
        var records: [ObjectIdentifier: [String: Int]] = [:]
        var duplicates = 0
        for (inbound, outcome) in zip(batch, result.outcomes) {
            switch (inbound, outcome) {
            case (.event(let e, _), .stored): accepted[e.source.rawValue, default: 0] += 1
            case (.record(let r, _), .stored): records[ObjectIdentifier(type(of: r)), default: [:]][r.counterValue, default: 0] += 1
            case (_, .duplicate): duplicates += 1
            case (_, .rejected(let r)): rejected[r.reason.rawValue, default: 0] += 1
            default: break
            }
        }
        for m in result.messages { kinds[m.kind, default: 0] += 1 }
        for (source, n) in accepted { handles.accepted.increment(source, by: n) }
        for (kind, values) in records { for (value, n) in values { handles.records[kind]?.increment(value, by: n) } }
        for (reason, n) in rejected { handles.rejected.increment(reason, by: n) }
        for (kind, n) in kinds { metrics.feedMessages.increment(kind, by: n) }
        if duplicates > 0 { handles.duplicates.increment(by: duplicates) }
        let c = result.counts
        for (counter, n) in [(handles.late, c.late), (handles.silenced, c.silenced), (handles.inhibited, c.inhibited),
                             (handles.suppressed, c.suppressed), (handles.bounded, c.cut), (handles.coalesced, c.coalesced)] where n > 0 {
            counter.increment(by: n)
        }
    }

    private func recordStore(_ store: EventStore, _ loop: [String: Double]) {
        handles.window.record(store.windowCount)
        handles.phases.add(store.takePhases().merging(loop, uniquingKeysWith: +))
    }

    /// Answers acknowledged gateways, after commit: ok for stored and duplicate, the reason otherwise.
    private func sendAcks(_ batch: [Inbound], _ result: BatchResult, _ acks: AckChannel) {
        for (inbound, outcome) in zip(batch, result.outcomes) {
            guard let envelope = inbound.raw.replyEnvelope else { continue }
            let answer: IngestAnswer
            switch outcome {
            case .stored: answer = .stored(inbound.id ?? "")  // stored and duplicate items always have an id
            case .duplicate: answer = .duplicate(inbound.id ?? "")
            case .rejected(let rejection): answer = .refused(inbound.id, error: "\(rejection.reason.rawValue): \(rejection.detail)")
            }
            acks.send(envelope + [answer.json()])
        }
    }
}

/// The writer's side of the inproc channel to the ingest thread, which owns the ROUTER and sends
/// the answers on. A send never blocks: when the ingest thread is gone (it failed to start, or has
/// stopped), the answers have nowhere to go - the gateways resend what was not answered, and a
/// resent id has one effect - so they are dropped, said once in the log.
final class AckChannel {
    private let socket: ZMQSocket
    private let logger: Logger
    private var dropping = false

    init(context: ZMQContext, endpoint: String, logger: Logger) throws {
        socket = try ZMQSocket(context: context, type: .push)
        // Unbounded while the ingest thread reads it: a send fails only when nobody is there.
        try socket.setSendHighWaterMark(0)
        // Answers already sent are delivered after close (the last one is `writerDone`).
        try socket.setLinger(milliseconds: 1000)
        try socket.connect(endpoint)
        self.logger = logger
    }

    func send(_ frames: [[UInt8]]) {
        do {
            try socket.send(frames, dontWait: true)
        } catch {
            noteDropped()
        }
    }

    /// Tells the ingest thread the writer has written its last batch (nobody to tell when it is gone).
    func finish() {
        try? socket.send([IngestService.writerDone], dontWait: true)
    }

    private func noteDropped() {
        guard !dropping else { return }
        dropping = true
        logger.warning("the ingest thread is gone; acknowledgements are dropped (gateways resend what was not answered)")
    }
}

/// database.synchronous require: no synchronous standby is attached, so nothing is written now.
struct ReplicationUnavailable: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}

/// The writer stopped (shutdown or cancellation) before it could write what it holds.
public struct WriterStopped: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public var description: String { reason }
}

/// A batch taken and prepared while the one before it was written.
struct LookAhead {
    var taken: WriterPipeline<Inbound>.Batch
    var prepared: Result<PreparedBatch, Error>
    /// Time spent taking it (spill reads), for liandong_writer_seconds_total.
    var phases: [String: Double]
    /// Seconds its preparation took (LookAheadTiming).
    var preparing: Double
}
