/// A run of per-gateway sequence numbers that never arrived.
public struct SeqGap: Sendable, Equatable {
    public var gateway: String
    public var from: Int64
    public var to: Int64
    public var count: Int64 { to - from + 1 }

    public init(gateway: String, from: Int64, to: Int64) {
        self.gateway = gateway
        self.from = from
        self.to = to
    }
}

/// Detects loss on the SUB path from the per-gateway `seq` of alerts. A missing seq becomes a gap
/// only after `grace` seconds, so reordering is not loss; repeats are ignored. Pure: the clock is
/// passed in.
public struct GapTracker: Sendable {
    struct Pending: Sendable {
        var from: Int64
        var to: Int64
        let noticed: Double
    }

    public let grace: Double
    private var highest: [String: Int64] = [:]
    private var pending: [String: [Pending]] = [:]

    public init(grace: Double) { self.grace = grace }

    /// The highest seq already stored for a gateway (from the database at start).
    public mutating func seed(gateway: String, highest seq: Int64) {
        highest[gateway] = max(highest[gateway] ?? seq, seq)
    }

    public mutating func observe(gateway: String, seq: Int64, now: Double) {
        guard let top = highest[gateway] else {
            highest[gateway] = seq
            return
        }
        if seq > top {
            if seq > top + 1 { pending[gateway, default: []].append(Pending(from: top + 1, to: seq - 1, noticed: now)) }
            highest[gateway] = seq
            return
        }
        // Late or repeated: if it fills part of a pending run, that part was only reordering.
        guard var runs = pending[gateway], let i = runs.firstIndex(where: { $0.from <= seq && seq <= $0.to }) else { return }
        let run = runs.remove(at: i)
        if run.from < seq { runs.append(Pending(from: run.from, to: seq - 1, noticed: run.noticed)) }
        if seq < run.to { runs.append(Pending(from: seq + 1, to: run.to, noticed: run.noticed)) }
        pending[gateway] = runs
    }

    /// Runs missing for longer than the grace period, now declared gaps.
    public mutating func due(now: Double) -> [SeqGap] {
        var out: [SeqGap] = []
        for (gateway, runs) in pending {
            let (old, young) = (runs.filter { now - $0.noticed >= grace }, runs.filter { now - $0.noticed < grace })
            out += old.map { SeqGap(gateway: gateway, from: $0.from, to: $0.to) }
            pending[gateway] = young.isEmpty ? nil : young
        }
        return out.sorted { ($0.gateway, $0.from) < ($1.gateway, $1.from) }
    }
}
