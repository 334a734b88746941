/// The last `seconds` of items, at most `capacity` of them (the oldest go first): what a standby
/// daemon keeps of the messages on its SUB socket, replayed in order when it leads.
public struct RecentBuffer<Element>: Sendable where Element: Sendable {
    public let seconds: Double
    public let capacity: Int
    private var items: [(at: Double, element: Element)] = []
    /// Index of the oldest item kept (items before it are gone; compacted now and then).
    private var head = 0
    /// Items that left because the buffer was full (not because they aged out).
    public private(set) var overflowed = 0

    public init(seconds: Double, capacity: Int) {
        precondition(capacity > 0)
        self.seconds = seconds
        self.capacity = capacity
    }

    public var count: Int { items.count - head }
    public var isEmpty: Bool { count == 0 }

    /// Adds an item received at `at` (seconds, not decreasing); beyond `capacity` the oldest goes.
    /// What is too old goes at `trim` (the caller decides what "now" is).
    public mutating func append(_ element: Element, at: Double) {
        items.append((at, element))
        if count > capacity {
            head += 1
            overflowed += 1
            compact()
        }
    }

    /// Forgets items received more than `seconds` before `now`.
    public mutating func trim(now: Double) {
        while head < items.count && items[head].at < now - seconds { head += 1 }
        compact()
    }

    private mutating func compact() {
        if head > 4096 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }

    /// Everything kept, oldest first; the buffer is empty afterwards.
    public mutating func drain() -> [Element] {
        defer {
            items = []
            head = 0
        }
        return items[head...].map(\.element)
    }
}
