/// A maintenance window (静默, like Alertmanager's silences): events it matches are stored and
/// correlated but make no task message. A row of liandong.silences; every matcher given must
/// match (an empty one matches everything), and the event's observed time must lie in
/// [startsAt, endsAt).
public struct Silence: Sendable, Equatable {
    public let id: Int64
    /// GB/T 28181 device-id prefix ("" any): a camera, or every camera of a platform or area.
    public let devicePrefix: String
    /// Division-code prefix of the grid the event was placed in ("" any).
    public let divisionPrefix: String
    /// Category (nil any).
    public let category: String?
    public let startsAt: Double
    public let endsAt: Double

    public init(id: Int64, devicePrefix: String, divisionPrefix: String, category: String?, startsAt: Double, endsAt: Double) {
        self.id = id
        self.devicePrefix = devicePrefix
        self.divisionPrefix = divisionPrefix
        self.category = category
        self.startsAt = startsAt
        self.endsAt = endsAt
    }

    /// Whether this silence covers an event of `category` from `deviceID` (nil for a report),
    /// placed in `gridCode`, observed at `observedAt`.
    public func matches(deviceID: String?, gridCode: String, category: String, observedAt: Double) -> Bool {
        guard observedAt >= startsAt && observedAt < endsAt else { return false }
        if !devicePrefix.isEmpty {
            guard let deviceID, deviceID.hasPrefix(devicePrefix) else { return false }
        }
        if !divisionPrefix.isEmpty && !gridCode.hasPrefix(divisionPrefix) { return false }
        if let wanted = self.category, wanted != category { return false }
        return true
    }
}

extension Array where Element == Silence {
    /// The first silence covering the event, if any.
    public func silencing(deviceID: String?, gridCode: String, category: String, observedAt: Double) -> Silence? {
        first { $0.matches(deviceID: deviceID, gridCode: gridCode, category: category, observedAt: observedAt) }
    }
}
