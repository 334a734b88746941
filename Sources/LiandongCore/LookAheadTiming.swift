/// When the writer's look-ahead takes the next batch off the queue (issue 31).
///
/// While batch N is written, the prepare thread takes batch N+1 and prepares it, so the writer
/// goes on without waiting. Taken the moment N's commit starts, N+1 holds only what had arrived
/// by then: a message arriving during N's commit waits for N, then for N+1, then for its own batch
/// (about two and a half commits). Taken as late as still lets its preparation end with N's
/// commit, N+1 also holds what arrived meanwhile: one commit less for most messages.
///
/// `hold` is how long after N's commit starts the look-ahead keeps collecting: the expected commit
/// time less the expected preparation, less a margin of twice the preparations' mean deviation (at
/// least `margin`), from moving averages of what was measured.
/// The queue hands over a full batch at once (a backlog never waits), and a preparation that ends
/// after the commit costs the writer only that overrun, which raises the preparation's average.
public struct LookAheadTiming: Sendable {
    /// Moving averages in seconds (nil: nothing measured yet - no hold).
    public private(set) var commit: Double?
    public private(set) var prepare: Double?
    /// Moving average of how far a preparation was from `prepare`.
    public private(set) var prepareDeviation = 0.0
    /// Weight of the newest measurement.
    public static let weight = 0.2
    /// Kept back from the expected slack: preparations vary with the machine's load.
    public static let margin = 0.000_3
    /// Never longer than this, whatever a slow database's commits take (a message waits at most
    /// this long for the batch it joins to be taken).
    public static let longest = 0.025

    public init() {}

    public mutating func committed(seconds: Double) {
        guard Self.isDuration(seconds) else { return }
        commit = Self.average(commit ?? seconds, seconds)
    }

    public mutating func prepared(seconds: Double) {
        guard Self.isDuration(seconds) else { return }
        if let prepare { prepareDeviation = Self.average(prepareDeviation, abs(seconds - prepare)) }
        prepare = Self.average(prepare ?? seconds, seconds)
    }

    /// Seconds after a commit starts at which the next batch is taken (0: at once).
    public var hold: Double {
        guard let commit, let prepare else { return 0 }
        return min(max(0, commit - prepare - max(Self.margin, 2 * prepareDeviation)), Self.longest)
    }

    private static func isDuration(_ seconds: Double) -> Bool { seconds.isFinite && seconds >= 0 }

    private static func average(_ old: Double, _ new: Double) -> Double { old + weight * (new - old) }
}
