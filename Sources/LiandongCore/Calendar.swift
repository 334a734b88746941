/// Working hours for deadlines (optional): SLA minutes count only inside these hours, in China
/// Standard Time. Critical work (priorities up to `alwaysPriority`) counts around the clock.
public struct WorkingCalendar: Sendable, Equatable {
    /// ISO weekdays that are working days, 1 = Monday ... 7 = Sunday.
    public var days: Set<Int>
    /// Working periods of a day, as minutes since midnight [start, end).
    public var periods: [ClosedRange<Int>]
    /// Tiers the calendar applies to; others count around the clock.
    public var tiers: Set<Tier>
    /// Priorities at or above this urgency ignore the calendar (1 = only the most urgent).
    public var alwaysPriority: Int

    public init(days: Set<Int> = [1, 2, 3, 4, 5], periods: [ClosedRange<Int>] = [510...720, 870...1080],
                tiers: Set<Tier> = [.village, .township], alwaysPriority: Int = 1) {
        self.days = days
        self.periods = periods.sorted { $0.lowerBound < $1.lowerBound }
        self.tiers = tiers
        self.alwaysPriority = alwaysPriority
    }

    /// Parses "08:30-12:00".
    public static func period(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-")
        guard parts.count == 2, let a = minutes(parts[0]), let b = minutes(parts[1]), a < b else { return nil }
        return a...b
    }

    static func minutes(_ text: Substring) -> Int? {
        let hm = text.trimmingCharacters(in: " ").split(separator: ":")
        guard hm.count == 2, let h = Int(hm[0]), let m = Int(hm[1]), (0...24).contains(h), (0..<60).contains(m),
            h * 60 + m <= 1440
        else { return nil }
        return h * 60 + m
    }

    /// The instant `seconds` of working time after `start` (Unix seconds).
    public func add(seconds: Double, to start: Double) -> Double {
        guard !days.isEmpty, !periods.isEmpty else { return start + seconds }
        var remaining = seconds
        var t = start
        let offset = Double(Timestamp.chinaOffsetSeconds)
        // Walk day by day; bounded (a year) so a malformed calendar cannot loop forever.
        for _ in 0..<366 {
            let local = t + offset
            let dayStart = (local / 86_400).rounded(.down) * 86_400
            let weekday = ((Int(dayStart / 86_400) + 3) % 7 + 7) % 7 + 1  // 1970-01-01 was a Thursday
            if days.contains(weekday) {
                for p in periods {
                    let ps = dayStart + Double(p.lowerBound * 60), pe = dayStart + Double(p.upperBound * 60)
                    let from = max(local, ps)
                    guard from < pe else { continue }
                    if from + remaining <= pe { return from + remaining - offset }
                    remaining -= pe - from
                    t = pe - offset
                }
            }
            t = dayStart + 86_400 - offset
        }
        return start + seconds
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String { String(self).trimmingCharacters(in: set) }
}
