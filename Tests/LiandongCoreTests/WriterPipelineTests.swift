import LiandongCore
import Testing

/// The writer's bookkeeping without a database: every transition, and random failure cascades
/// that must never lose an item.
@Suite("Writer pipeline")
struct WriterPipelineTests {
    typealias Pipeline = WriterPipeline<Int>

    func started(batchSize: Int = 3, spill: Bool = false, held: [Int] = []) -> Pipeline {
        var p = Pipeline(batchSize: batchSize, hasSpill: spill)
        #expect(p.state == .connecting)
        p.reconnected(held: held)
        return p
    }

    /// The batch a `.write` names, or nil.
    func written(_ next: Pipeline.Next) -> (items: [Int], spillEnd: UInt64?, preparedAhead: Bool, lookAhead: Bool)? {
        guard case .write(let b, let preparedAhead, let lookAhead) = next else { return nil }
        return (b.items, b.spillEnd, preparedAhead, lookAhead)
    }

    func batch(_ items: [Int], spillEnd: UInt64? = nil) -> Pipeline.Batch { Pipeline.Batch(items, spillEnd: spillEnd) }

    @Test("the queue first, lingering for a fuller batch; nothing there: idle; closed and drained: finished")
    func queue() throws {
        var p = started()
        guard case .takeFromQueue(linger: true) = p.next(spillPending: false) else { Issue.record("expected the queue"); return }
        guard case .idle = p.taken([], spillPending: false) else { Issue.record("expected idle"); return }
        _ = p.next(spillPending: false)
        let w = try #require(written(p.taken([1, 2], spillPending: false)))
        #expect(w.items == [1, 2] && w.spillEnd == nil && !w.preparedAhead && w.lookAhead)
        #expect(p.state == .writing)
        #expect(p.committed(ahead: nil, aheadPrepared: false) == .init(commitSpill: nil, discardWindow: false))
        _ = p.next(spillPending: false)
        guard case .finished = p.taken(nil, spillPending: false) else { Issue.record("expected finished"); return }
        #expect(p.state == .finished && p.queueClosed)
    }

    @Test("with the spill holding work: the queue without lingering, then the spill; its offset is committed after the batch")
    func spill() throws {
        var p = started(spill: true)
        guard case .takeFromQueue(linger: false) = p.next(spillPending: true) else { Issue.record("expected the queue"); return }
        guard case .readSpill = p.taken([], spillPending: true) else { Issue.record("expected the spill"); return }
        let w = try #require(written(p.readFromSpill([7, 8, 9], end: 300)))
        #expect(w.items == [7, 8, 9] && w.spillEnd == 300)
        #expect(p.committed(ahead: nil, aheadPrepared: false).commitSpill == 300)
        // Closed queue, spill still holding: read it to the end, then finished.
        _ = p.next(spillPending: true)
        guard case .readSpill = p.taken(nil, spillPending: true) else { Issue.record("expected the spill"); return }
        guard case .finished = p.readFromSpill([], end: 300) else { Issue.record("expected finished"); return }
    }

    @Test("a batch prepared ahead is written next, as prepared; one whose preparation failed is prepared again after a window rebuild")
    func ahead() throws {
        var p = started()
        _ = p.next(spillPending: false)
        _ = p.taken([1, 2, 3], spillPending: false)
        #expect(p.committed(ahead: batch([4, 5]), aheadPrepared: true) == .init(commitSpill: nil, discardWindow: false))
        let w = try #require(written(p.next(spillPending: false)))
        #expect(w.items == [4, 5] && w.preparedAhead && w.lookAhead)
        #expect(p.committed(ahead: batch([6], spillEnd: 40), aheadPrepared: false) == .init(commitSpill: nil, discardWindow: true))
        let again = try #require(written(p.next(spillPending: true)))
        #expect(again.items == [6] && again.spillEnd == 40 && !again.preparedAhead)
        #expect(p.committed(ahead: nil, aheadPrepared: false).commitSpill == 40)
    }

    @Test("a refused batch is written item by item; a batch taken ahead from memory goes first next, one from the spill is read again")
    func refused() throws {
        var p = started()
        _ = p.next(spillPending: false)
        _ = p.taken([1, 2, 3], spillPending: false)
        #expect(p.refused(ahead: batch([4, 5])).items == [1, 2, 3])
        #expect(p.state == .writingSeparately && p.carried == [4, 5])
        _ = p.committed(ahead: nil, aheadPrepared: false)
        let w = try #require(written(p.next(spillPending: false)))
        #expect(w.items == [4, 5] && !w.preparedAhead && w.lookAhead)
        #expect(p.refused(ahead: batch([6], spillEnd: 10)).items == [4, 5])
        #expect(p.carried.isEmpty)
        _ = p.committed(ahead: nil, aheadPrepared: false)
        guard case .takeFromQueue = p.next(spillPending: true) else { Issue.record("expected the queue"); return }
    }

    @Test("carried items go first, batch by batch, with nothing prepared ahead until the last of them")
    func carried() throws {
        var p = started(batchSize: 2, held: [1, 2, 3, 4, 5])
        var batches: [[Int]] = [], lookAheads: [Bool] = []
        while let w = written(p.next(spillPending: false)) {
            batches.append(w.items)
            lookAheads.append(w.lookAhead)
            _ = p.committed(ahead: nil, aheadPrepared: false)
        }
        #expect(batches == [[1, 2], [3, 4], [5]] && lookAheads == [false, false, true])
    }

    @Test("without a spill a lost connection retries the same batch with doubling backoff, reset by a commit")
    func retry() throws {
        var p = started()
        _ = p.next(spillPending: false)
        _ = p.taken([1, 2], spillPending: false)
        var delays: [Double] = []
        for _ in 0..<8 {
            guard case .retry(let d) = p.connectionLost(ahead: nil, stopping: false) else { Issue.record("expected retry"); return }
            delays.append(d)
            #expect(p.state == .connecting)
            let w = try #require(written(p.reconnectedForRetry()))
            #expect(w.items == [1, 2] && !w.preparedAhead)
        }
        #expect(delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5, 5])
        _ = p.committed(ahead: nil, aheadPrepared: false)
        #expect(p.delay == Pipeline.firstDelay)
    }

    @Test("with a spill a lost connection moves the batch in hand and the carried items to disk, then reconnects spilling")
    func spillOut() throws {
        var p = started(spill: true)
        _ = p.next(spillPending: false)
        _ = p.taken([1, 2, 3], spillPending: false)
        guard case .spillOut(let current, let carried) = p.connectionLost(ahead: batch([4, 5]), stopping: false) else {
            Issue.record("expected spillOut"); return
        }
        #expect(current == [1, 2, 3] && carried == [4, 5])
        // The spill took the batch and one carried item: the other stays carried.
        #expect(p.spilled(current: true, carried: 1) == .reconnectSpilling)
        #expect(p.carried == [5] && p.current == nil)
        p.reconnected(held: [6])
        #expect(try #require(written(p.next(spillPending: true))).items == [5, 6])
    }

    @Test("a batch read from the spill is not spilled again; a full spill keeps the batch in memory and retries")
    func spillFull() throws {
        var p = started(spill: true)
        _ = p.next(spillPending: true)
        _ = p.taken([], spillPending: true)
        _ = p.readFromSpill([1, 2], end: 64)
        guard case .spillOut(nil, []) = p.connectionLost(ahead: nil, stopping: false) else { Issue.record("expected spillOut"); return }
        #expect(p.spilled(current: true, carried: 0) == .reconnectSpilling)
        p.reconnected(held: [])
        _ = p.next(spillPending: false)
        _ = p.taken([3], spillPending: false)
        guard case .spillOut([3], []) = p.connectionLost(ahead: nil, stopping: false) else { Issue.record("expected spillOut"); return }
        #expect(p.spilled(current: false, carried: 0) == .retry(delay: 0.1))
        #expect(try #require(written(p.reconnectedForRetry())).items == [3])
    }

    @Test("stopping while the database is away hands over what is only in memory: the batch in hand and the one taken ahead")
    func stop() throws {
        var p = started(spill: true)
        _ = p.next(spillPending: false)
        _ = p.taken([1, 2, 3], spillPending: false)
        guard case .stop(let current, let carried) = p.connectionLost(ahead: batch([4]), stopping: true) else {
            Issue.record("expected stop"); return
        }
        #expect(current == [1, 2, 3])
        #expect(carried == [4])
    }

    @Test("stopping while a batch read from the spill is written: it is in the spill already")
    func stopWithSpilledBatch() throws {
        var p = started(spill: true)
        _ = p.next(spillPending: true)
        guard case .readSpill = p.taken([], spillPending: true) else { Issue.record("expected readSpill"); return }
        guard case .write = p.readFromSpill([7, 8], end: 40) else { Issue.record("expected write"); return }
        guard case .stop(let current, let carried) = p.connectionLost(ahead: nil, stopping: true) else {
            Issue.record("expected stop"); return
        }
        #expect(current == nil)
        #expect(carried.isEmpty)
    }

    /// A seeded generator (SplitMix64): the same cascade for the same seed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("random cascades of refusals, lost connections, failed look-aheads and full spills lose nothing", arguments: 0..<200)
    func cascades(seed: UInt64) throws {
        var rng = SplitMix(state: seed)
        let all = Array(0..<60)
        var arriving = all[...]  // not yet in the queue
        var queue: [Int] = []
        let hasSpill = seed % 3 != 0
        var spill: [Int] = [], spillCommitted = 0
        let spillCapacity = Int.random(in: 2...12, using: &rng)
        var committed = Set<Int>()
        func arrive() {
            let n = Int.random(in: 0...4, using: &rng)
            queue += arriving.prefix(n)
            arriving = arriving.dropFirst(n)
        }
        func pop(_ max: Int) -> [Int]? {
            if queue.isEmpty && arriving.isEmpty { return nil }
            defer { queue.removeFirst(min(max, queue.count)) }
            return Array(queue.prefix(max))
        }
        func append(_ items: [Int]) -> Int {
            let n = min(items.count, spillCapacity - (spill.count - spillCommitted))
            spill += items.prefix(max(0, n))
            return max(0, n)
        }
        var p = Pipeline(batchSize: 3, hasSpill: hasSpill)
        p.reconnected(held: [])
        var step: Pipeline.Next? = nil
        for _ in 0..<10_000 {
            arrive()
            let pending = spillCommitted < spill.count
            switch step ?? p.next(spillPending: pending) {
            case .takeFromQueue:
                step = p.taken(pop(3), spillPending: pending)
            case .readSpill:
                let items = Array(spill[spillCommitted..<min(spill.count, spillCommitted + 3)])
                step = p.readFromSpill(items, end: UInt64(spillCommitted + items.count))
            case .idle:
                step = nil
            case .finished:
                #expect(committed == Set(all), "seed \(seed): lost \(Set(all).subtracting(committed).sorted())")
                #expect(spillCommitted == spill.count)
                return
            case .write(let b, _, let lookAhead):
                step = nil
                // Taken ahead while it is written: from the queue, else from the spill after it.
                var ahead: Pipeline.Batch? = nil
                if lookAhead && Bool.random(using: &rng) {
                    if let items = pop(3), !items.isEmpty {
                        ahead = Pipeline.Batch(items)
                    } else {
                        let from = b.spillEnd.map(Int.init) ?? spillCommitted
                        let items = Array(spill[min(from, spill.count)..<min(spill.count, from + 3)])
                        if !items.isEmpty { ahead = Pipeline.Batch(items, spillEnd: UInt64(from + items.count)) }
                    }
                }
                var outcome = Int.random(in: 0..<10, using: &rng)
                var items = b.items
                if outcome == 8 {  // refused: written item by item (which may itself lose the connection)
                    items = p.refused(ahead: ahead).items
                    ahead = nil
                    outcome = Int.random(in: 0..<10, using: &rng) == 9 ? 9 : 0
                }
                if outcome < 8 {
                    committed.formUnion(items)
                    let after = p.committed(ahead: ahead, aheadPrepared: Bool.random(using: &rng))
                    if let end = after.commitSpill { spillCommitted = max(spillCommitted, Int(end)) }
                    continue
                }
                switch p.connectionLost(ahead: ahead, stopping: false) {
                case .stop: Issue.record("not stopping")
                case .retry: step = p.reconnectedForRetry()
                case .spillOut(let current, let carried):
                    let all = current.map { append($0) == $0.count } ?? true
                    switch p.spilled(current: all, carried: all ? append(carried) : 0) {
                    case .retry: step = p.reconnectedForRetry()
                    case .reconnectSpilling:
                        // Arrivals while reconnecting go to the spill; what it cannot take is held.
                        let arrivals = pop(Int.random(in: 0...5, using: &rng)) ?? []
                        let spilled = p.carried.isEmpty ? append(arrivals) : 0
                        p.reconnected(held: Array(arrivals[spilled...]))
                    }
                }
            }
        }
        Issue.record("seed \(seed): never finished (committed \(committed.count) of \(all.count))")
    }
}

/// When the look-ahead takes the next batch: the slack between a commit and a preparation, from
/// moving averages of what was measured.
@Suite("Look-ahead timing")
struct LookAheadTimingTests {
    @Test("nothing measured: the next batch is taken at once")
    func unmeasured() {
        var t = LookAheadTiming()
        #expect(t.hold == 0)
        t.committed(seconds: 0.002)
        #expect(t.hold == 0)  // no preparation measured yet
    }

    @Test("commits of 2 ms and preparations of 0.8 ms: taken 0.9 ms into a commit (the slack less the margin)")
    func slack() {
        var t = LookAheadTiming()
        for _ in 0..<50 {
            t.committed(seconds: 0.002)
            t.prepared(seconds: 0.0008)
        }
        #expect(abs(t.hold - (0.002 - 0.0008 - LookAheadTiming.margin)) < 1e-9)
    }

    @Test("preparations that vary keep twice their mean deviation back instead of the margin")
    func varying() {
        var t = LookAheadTiming()
        for i in 0..<200 {
            t.committed(seconds: 0.004)
            t.prepared(seconds: i % 2 == 0 ? 0.0004 : 0.0012)
        }
        // Alternating 0.4 and 1.2 ms: mean ~0.8, mean deviation ~0.4 (the averages lag a little).
        #expect(abs(t.prepare! - 0.0008) < 0.0001)
        #expect(abs(t.prepareDeviation - 0.0004) < 0.0001)
        #expect(abs(t.hold - (0.004 - t.prepare! - 2 * t.prepareDeviation)) < 1e-12)
        // ~2.3 ms: 0.6 ms earlier than steady preparations of 0.8 ms would leave (4 - 0.8 - 0.3 margin).
        #expect(t.hold > 0.0022 && t.hold < 0.0024)
    }

    @Test("a preparation as long as the commit: no hold; a slow database: at most the longest hold")
    func bounds() {
        var t = LookAheadTiming()
        t.committed(seconds: 0.001)
        t.prepared(seconds: 0.003)
        #expect(t.hold == 0)
        for _ in 0..<100 { t.committed(seconds: 2) }
        #expect(t.hold == LookAheadTiming.longest)
    }

    @Test("the averages follow the measurements by a fifth, and ignore what is not a duration")
    func averages() {
        var t = LookAheadTiming()
        t.committed(seconds: 0.002)
        t.committed(seconds: 0.004)
        #expect(abs(t.commit! - 0.0024) < 1e-12)
        t.committed(seconds: -1)
        t.committed(seconds: .nan)
        #expect(abs(t.commit! - 0.0024) < 1e-12)
        t.prepared(seconds: 0.001)
        #expect(t.prepare == 0.001)
    }
}
