import Foundation

/// Cumulative wall time per named phase, measured between laps.
package struct PhaseClock {
    package init() {}
    private var last: UInt64 = 0
    private var totals: [String: Double] = [:]

    package mutating func start() { last = DispatchTime.now().uptimeNanoseconds }

    /// Moves on without counting the time since the last lap.
    package mutating func skip() { start() }

    package mutating func lap(_ phase: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        totals[phase, default: 0] += Double(now &- last) / 1e9
        last = now
    }

    package mutating func take() -> [String: Double] {
        defer { totals = [:] }
        return totals
    }
}
