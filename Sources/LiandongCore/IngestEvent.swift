/// Where an event came from.
public enum EventSource: String, Sendable, Codable {
    case alert, report
}

/// A validated alert or report, ready for the store: category mapped, priority on the 1...4
/// scale, time in Unix seconds, position (when sent) converted to WGS-84.
public struct IngestEvent: Sendable, Equatable {
    public var source: EventSource
    /// alert_id or report_id.
    public var sourceID: String
    public var gatewayID: String?
    public var gatewaySeq: Int64?
    public var deviceID: String?
    public var workerID: String?
    public var gridCode: String?
    public var category: String
    /// Alert priority or report severity: 1 most urgent ... 4 least.
    public var priority: Int
    public var observedAt: Double
    /// WGS-84 position, nil when the message had none (camera or grid position is used).
    public var position: LonLat?
    public var crs: CRS
    /// The JSON body as received.
    public var body: String
    /// For an alert: what kind of alarm it is, as far as inhibition cares.
    public var alarmClass: AlarmClass? = nil
    /// Whose id it is: the authenticated peer that sent it (security.curve), else the gateway_id
    /// it declares, else "". An id is a duplicate only of the same owner's id: one gateway cannot
    /// take another's ids (liandong.event_keys is keyed by source, owner and id).
    public var owner: String = ""
    /// A GB/T 28181 alarm forwarded by liandong-gb28181 for a channel: the registered device that
    /// sent it (topic `gb28181.via.<device>`), its channel's device when no catalog says otherwise.
    public var via: String? = nil
    /// A resident's request (topic `citizen`): what liandong.citizen_requests and
    /// citizen_contacts keep of it besides the event.
    public var citizen: CitizenRequest? = nil

    public init(
        source: EventSource, sourceID: String, gatewayID: String? = nil, gatewaySeq: Int64? = nil,
        deviceID: String? = nil, workerID: String? = nil, gridCode: String? = nil, category: String,
        priority: Int, observedAt: Double, position: LonLat?, crs: CRS, body: String
    ) {
        self.source = source
        self.sourceID = sourceID
        self.gatewayID = gatewayID
        self.gatewaySeq = gatewaySeq
        self.deviceID = deviceID
        self.workerID = workerID
        self.gridCode = gridCode
        self.category = category
        self.priority = priority
        self.observedAt = observedAt
        self.position = position
        self.crs = crs
        self.body = body
    }
}

/// Camera alarms by what they say about the camera's picture (GB/T 28181 AlarmMethod/AlarmType).
public enum AlarmClass: Sendable, Equatable {
    /// Video analytics (method 5): only as good as the picture.
    case analytics
    /// The picture is gone or cannot be trusted (method 2, type 1 video lost or 2 tamper): it
    /// inhibits the camera's analytics alarms for `correlation.inhibit_s`.
    case pictureLost
    case other

    public init(alarmMethod: Int, alarmType: Int?) {
        switch (Rules.effectiveAlarmMethod(alarmMethod), alarmType) {
        case (5, _): self = .analytics
        case (2, 1?), (2, 2?): self = .pictureLost
        default: self = .other
        }
    }
}
