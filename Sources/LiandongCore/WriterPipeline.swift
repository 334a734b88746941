/// The writer's bookkeeping as a pure state machine: which batch is written next (one prepared
/// ahead, what a failure carried back, the queue, the spill file), what a commit, a refusal or a
/// lost connection does with the batch in hand and the one prepared ahead, and when the writer
/// has drained everything. The writer thread performs the I/O each action names and reports the
/// outcome back; nothing here does I/O, so every transition is unit-tested without a database.
///
/// The rule it keeps: an item leaves the pipeline only by being committed (its answer sent after
/// commit), by being appended to the spill file (which keeps it until it is committed from there)
/// or, at shutdown, by being appended to the spill file or counted as unwritten.
///
///     idle --next--> take from queue --(nothing)--> read spill --(nothing)--> idle | finished
///       \                 |                              |
///        +-- ahead, carried --+----------- write --------+
///     write --committed--> idle (the batch prepared meanwhile is next)
///     write --refused--> write item by item --committed--> idle (a batch taken ahead is carried back)
///     write --connection lost--> spill out (current, carried) --> reconnect --> idle
///                           \--> (no spill, or it is full) wait, reconnect, write the same batch again
public struct WriterPipeline<Item: Sendable>: Sendable {
    /// A batch taken for writing. `spillEnd`: read from the spill, the offset to commit once written.
    public struct Batch: Sendable {
        public var items: [Item]
        public var spillEnd: UInt64?

        public init(_ items: [Item], spillEnd: UInt64? = nil) {
            self.items = items
            self.spillEnd = spillEnd
        }

        /// Only in this process's memory (taken from the queue or carried), not in the spill.
        public var inMemoryOnly: Bool { spillEnd == nil }
    }

    /// What to do next when nothing is being written.
    public enum Next: Sendable {
        /// Take up to `batchSize` from the queue; `linger`: wait a little for a fuller batch (not
        /// while the spill has work waiting). Report with `taken(_:spillPending:)`.
        case takeFromQueue(linger: Bool)
        /// Read up to `batchSize` from the spill. Report with `readFromSpill(_:end:)`.
        case readSpill
        /// Write this batch (`preparedAhead`: prepared while the one before it was written).
        /// `lookAhead`: the next batch may be taken and prepared while this one is written (from
        /// the queue, or from the spill after `batch.spillEnd`); not while a failure's items are
        /// carried (they go first, batch by batch). Report with `committed`, `refused` or `connectionLost`.
        case write(Batch, preparedAhead: Bool, lookAhead: Bool)
        /// Nothing waiting: housekeeping, then `next` again.
        case idle
        /// The queue is closed and drained and the spill is empty: the writer is done.
        case finished
    }

    /// After a commit.
    public struct AfterCommit: Sendable, Equatable {
        /// Advance the spill to this offset (the batch came from it).
        public var commitSpill: UInt64?
        /// The batch prepared ahead failed part-way: rebuild the correlation window before using it.
        public var discardWindow: Bool

        public init(commitSpill: UInt64?, discardWindow: Bool) {
            self.commitSpill = commitSpill
            self.discardWindow = discardWindow
        }
    }

    /// After the connection was lost while writing.
    public enum AfterLoss: Sendable {
        /// Shutting down: the writer stops. `current` (nil: it came from the spill and is there
        /// already) and `carried` are in this process's memory only: appended to the spill file
        /// when there is one (written at the next start), else counted as not written.
        case stop(current: [Item]?, carried: [Item])
        /// Append to the spill `current` (nil: it came from the spill and is there already), then
        /// the carried items, and report with `spilled(current:carried:)`.
        case spillOut(current: [Item]?, carried: [Item])
        /// No spill file: wait `delay` seconds, reconnect, and report `reconnected(held: [])`.
        case retry(delay: Double)
    }

    /// After spilling out.
    public enum AfterSpill: Sendable, Equatable {
        /// Everything in hand is on disk: reconnect while spilling arrivals; report `reconnected(held:)`.
        case reconnectSpilling
        /// The spill could not take the batch in hand: wait `delay` seconds, reconnect, write it again.
        case retry(delay: Double)
    }

    public enum State: Sendable, Equatable {
        /// No store: connecting (at start or after a loss).
        case connecting
        /// Nothing being written.
        case idle
        /// A batch is being written.
        case writing
        /// A batch the database refused is being written item by item.
        case writingSeparately
        /// The queue is closed and drained, the spill empty.
        case finished
    }

    public let batchSize: Int
    public let hasSpill: Bool
    public private(set) var state: State = .connecting
    /// Items taken but not written, to be written before anything else (taken during an outage
    /// when the spill was full, or a batch taken ahead when the one before it failed).
    public private(set) var carried: [Item] = []
    /// The batch being written.
    public private(set) var current: Batch?
    /// The batch taken (and, unless `aheadPrepared` is false, prepared) while `current` was written.
    public private(set) var ahead: Batch?
    public private(set) var aheadPrepared = false
    /// The queue was closed (the ingest has stopped).
    public private(set) var queueClosed = false
    /// Backoff while the database is unreachable without a spill to fall back on.
    private var backoff = Backoff(first: Self.firstDelay, limit: Self.maxDelay)
    /// The delay the next retry waits.
    public var delay: Double { backoff.current }

    public static var firstDelay: Double { 0.1 }
    public static var maxDelay: Double { 5 }

    public init(batchSize: Int, hasSpill: Bool) {
        precondition(batchSize > 0)
        self.batchSize = batchSize
        self.hasSpill = hasSpill
    }

    // MARK: connection

    /// The store is open. `held`: what was taken off the queue while reconnecting that a full
    /// spill could not take; written first.
    public mutating func reconnected(held: [Item]) {
        precondition(state == .connecting, "reconnected while \(state)")
        carried += held
        state = .idle
    }

    // MARK: choosing the next batch

    /// What to do next. `spillPending`: the spill file holds unwritten messages.
    public mutating func next(spillPending: Bool) -> Next {
        precondition(state == .idle, "next while \(state)")
        if let batch = ahead {
            ahead = nil
            return write(batch, preparedAhead: aheadPrepared)
        }
        if !carried.isEmpty {
            let batch = Batch(Array(carried.prefix(batchSize)))
            carried.removeFirst(batch.items.count)
            return write(batch, preparedAhead: false)
        }
        return .takeFromQueue(linger: !spillPending)
    }

    /// What `takeFromQueue` found: items, none for now (empty), or nil when the queue is closed and drained.
    public mutating func taken(_ items: [Item]?, spillPending: Bool) -> Next {
        precondition(state == .idle, "taken while \(state)")
        guard let items else {
            queueClosed = true
            return spillPending ? .readSpill : .finish(&state)
        }
        if !items.isEmpty { return write(Batch(items), preparedAhead: false) }
        // The queue first (older), then what was spilled to disk while it was full.
        return spillPending ? .readSpill : (queueClosed ? .finish(&state) : .idle)
    }

    /// What `readSpill` found, up to offset `end`.
    public mutating func readFromSpill(_ items: [Item], end: UInt64) -> Next {
        precondition(state == .idle, "readFromSpill while \(state)")
        if !items.isEmpty { return write(Batch(items, spillEnd: end), preparedAhead: false) }
        return queueClosed ? .finish(&state) : .idle
    }

    private mutating func write(_ batch: Batch, preparedAhead: Bool) -> Next {
        current = batch
        state = .writing
        aheadPrepared = false
        return .write(batch, preparedAhead: preparedAhead, lookAhead: carried.isEmpty)
    }

    // MARK: outcomes

    /// `current` is committed. `ahead`: the batch taken while it was written (`aheadPrepared`:
    /// and prepared without error), which is written next.
    public mutating func committed(ahead next: Batch?, aheadPrepared prepared: Bool) -> AfterCommit {
        precondition(state == .writing || state == .writingSeparately, "committed while \(state)")
        precondition(state == .writing || next == nil, "nothing is taken ahead of a batch written item by item")
        let done = current!
        current = nil
        state = .idle
        backoff.reset()
        if let next, !next.items.isEmpty {
            ahead = next
            aheadPrepared = prepared
        }
        return AfterCommit(commitSpill: done.spillEnd, discardWindow: next != nil && !prepared)
    }

    /// The database refused `current` (not a connection failure), in preparing or in committing.
    /// A batch taken ahead meanwhile was correlated with it: one from memory is carried back to
    /// go first, one from the spill stays there to be read again. Returns the batch to write again
    /// item by item (an item refused alone becomes a dead letter); then report
    /// `committed(ahead: nil, aheadPrepared: false)` or `connectionLost`.
    public mutating func refused(ahead next: Batch?) -> Batch {
        precondition(state == .writing, "refused while \(state)")
        carryBack(next)
        state = .writingSeparately
        return current!
    }

    /// The connection was lost while writing `current` (`ahead`: taken meanwhile, see `refused`).
    /// `stopping`: the daemon is shutting down.
    public mutating func connectionLost(ahead next: Batch?, stopping: Bool) -> AfterLoss {
        precondition(state == .writing || state == .writingSeparately, "connectionLost while \(state)")
        carryBack(next)
        state = .connecting
        if stopping { return .stop(current: current!.inMemoryOnly ? current!.items : nil, carried: carried) }
        guard hasSpill else { return .retry(delay: backoff.next()) }
        return .spillOut(current: current!.inMemoryOnly ? current!.items : nil, carried: carried)
    }

    /// What `spillOut` achieved: whether `current` went to the spill entirely, and how many of the
    /// carried items (from the first) it took. Only when the batch in hand is on disk does the
    /// writer give it up; otherwise it keeps it in memory and retries.
    public mutating func spilled(current all: Bool, carried count: Int) -> AfterSpill {
        precondition(state == .connecting && current != nil, "spilled while \(state)")
        guard all else { return .retry(delay: backoff.next()) }
        carried.removeFirst(min(count, carried.count))
        current = nil
        return .reconnectSpilling
    }

    /// After `retry`: the store is open again; the batch in hand is written again (prepared anew).
    public mutating func reconnectedForRetry() -> Next {
        precondition(state == .connecting && current != nil, "reconnectedForRetry while \(state)")
        state = .idle
        return write(current!, preparedAhead: false)
    }


    private mutating func carryBack(_ next: Batch?) {
        if let next, next.inMemoryOnly { carried.insert(contentsOf: next.items, at: 0) }
    }
}

extension WriterPipeline.Next {
    fileprivate static func finish(_ state: inout WriterPipeline.State) -> Self {
        state = .finished
        return .finished
    }
}
