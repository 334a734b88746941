/// The one retry policy: delays that double from `first` up to `limit`, back to `first` after a
/// success. The writer, every service's database session and the feed client's catch-up use it.
public struct Backoff: Sendable, Equatable {
    public let first: Double
    public let limit: Double
    /// The delay the next attempt waits.
    public private(set) var current: Double

    public init(first: Double = 0.1, limit: Double = 5) {
        precondition(first > 0 && limit >= first)
        self.first = first
        self.limit = limit
        current = first
    }

    /// The delay before the next attempt; the one after doubles, up to `limit`.
    public mutating func next() -> Double {
        defer { current = min(current * 2, limit) }
        return current
    }

    /// After a success: the next failure waits `first` again.
    public mutating func reset() { current = first }
}
