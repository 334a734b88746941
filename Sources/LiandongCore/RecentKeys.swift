/// The dedup keys of the events stored with an observed time at or after `horizon` - all of them,
/// so an event observed then whose key is not here is certainly not stored, and the database need
/// not be asked (issue 31: the probe on event_keys was a fifth of the writer's time under a dense
/// storm). Only a key that may be here, or an event observed before the horizon, is asked about.
///
/// Keys are held as 64-bit hashes (16 bytes a key with its time, whatever the id's length): a hash
/// found here may be another key's, which only costs that event the database's answer. At most
/// `capacity` keys; beyond it the oldest added goes and the horizon moves past its time.
package struct RecentKeys: Sendable {
    package let capacity: Int
    /// Every key stored with an observed time at or after this is held (+infinity: none is known).
    package private(set) var horizon = Double.infinity
    /// Added order, oldest first from `head` (compacted now and then).
    private var order: [(hash: UInt64, t: Double)] = []
    private var head = 0
    /// Per hash, how many held keys have it (two keys may share one).
    private var counts: [UInt64: UInt32] = [:]

    package init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    package var count: Int { order.count - head }

    /// Starts over from what is stored: `keys` are every key stored with an observed time at or
    /// after `horizon` (oldest first), unless there were more than `capacity` of them, in which
    /// case they are the newest and the horizon moves past the oldest time among them.
    package mutating func load(horizon: Double, keys: [(key: EventKey, t: Double)], complete: Bool) {
        forget()
        counts.reserveCapacity(min(capacity, max(keys.count, 1024)))
        self.horizon = complete ? horizon : (keys.first?.t.nextUp ?? horizon)
        for (key, t) in keys where t >= self.horizon { insert(key, observedAt: t) }
    }

    /// Forgets everything: every event is asked about until the next `load`.
    package mutating func forget() {
        order = []
        head = 0
        counts = [:]
        horizon = .infinity
    }

    /// Whether an event with `key`, observed at `t`, may be stored already (false: certainly not).
    package func mayBeStored(_ key: EventKey, observedAt t: Double) -> Bool {
        t < horizon || counts[Self.hash(key)] != nil
    }

    /// Notes a key stored (or about to be, in the batch being written) with an observed time `t`.
    /// A key observed before the horizon is not held: such events are asked about anyway.
    package mutating func insert(_ key: EventKey, observedAt t: Double) {
        guard t >= horizon else { return }
        let hash = Self.hash(key)
        order.append((hash, t))
        counts[hash, default: 0] += 1
        while count > capacity {
            let (old, oldT) = order[head]
            head += 1
            if let n = counts[old], n > 1 { counts[old] = n - 1 } else { counts[old] = nil }
            // Every key observed at or before the one that left may be missing now.
            horizon = max(horizon, oldT.nextUp)
        }
        if head > 4096 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }

    private static func hash(_ key: EventKey) -> UInt64 {
        var h = Hasher()
        h.combine(key)
        return UInt64(truncatingIfNeeded: h.finalize())
    }
}
