import Foundation

/// A resident's request (市民诉求: liandong.citizen_request.v1, topic `citizen[.x]`), filed through
/// liandong-open311 (Open311 GeoReport v2) from a mini-program or a city app. It is a report from
/// a resident: stored as an event of source `report` (its id is the service_request_id, owned by
/// its sender), it correlates like any report - near a camera alert it makes the joint dispatch -
/// and climbs the same ladder. A resident's request always gets a task, however minor
/// (`IncidentState.residentRequest`): a dispatch at the tier its category and severity route to.
/// Who filed it (`CitizenContact`) is stored apart
/// (liandong.citizen_contacts) and never in the event's payload, a task message or an answer.
public struct CitizenRequest: Sendable, Equatable {
    public static let schema = "liandong.citizen_request.v1"
    public static let topic = "citizen"

    /// The app that filed it (the api_keys_file name): only it may rate the request.
    public var app: String
    /// Open311 service_code (the incident category comes from the service).
    public var serviceCode: String
    public var description: String?
    public var address: String?
    public var mediaURL: String?
    public var contact: CitizenContact

    public init(app: String, serviceCode: String, description: String? = nil, address: String? = nil, mediaURL: String? = nil,
                contact: CitizenContact = CitizenContact())
    {
        self.app = app
        self.serviceCode = serviceCode
        self.description = description
        self.address = address
        self.mediaURL = mediaURL
        self.contact = contact
    }
}

/// Who filed a request (Open311 first_name, last_name, email, phone, device_id, account_id).
public struct CitizenContact: Sendable, Equatable, Codable {
    public var firstName: String?
    public var lastName: String?
    public var email: String?
    public var phone: String?
    public var deviceID: String?
    public var accountID: String?

    public init(firstName: String? = nil, lastName: String? = nil, email: String? = nil, phone: String? = nil,
                deviceID: String? = nil, accountID: String? = nil)
    {
        self.firstName = firstName
        self.lastName = lastName
        self.email = email
        self.phone = phone
        self.deviceID = deviceID
        self.accountID = accountID
    }

    public var isEmpty: Bool { [firstName, lastName, email, phone, deviceID, accountID].allSatisfy { $0 == nil } }

    enum CodingKeys: String, CodingKey {
        case firstName = "first_name", lastName = "last_name", email, phone, deviceID = "device_id", accountID = "account_id"
    }

    static let keys = ["first_name", "last_name", "email", "phone", "device_id", "account_id"]
}

extension MessageDecoder {
    /// A citizen request as an event: a report with no worker, placed by its position (required:
    /// Liandong does not geocode addresses), its contact kept out of the stored payload.
    func decodeCitizenRequest(_ f: inout Fields, now: Double) throws -> IngestEvent {
        let schema = try f.string("schema")
        guard schema == CitizenRequest.schema else {
            throw Rejection(.unknownSchema, "schema \"\(schema.prefix(64))\" is not supported on topic citizen (expected \(CitizenRequest.schema))")
        }
        let id = try f.identifier("request_id")
        let app = try f.identifier("app")
        let service = try f.identifier("service_code")
        let category = try f.string("category")
        guard !category.isEmpty, category.count <= 64 else { throw Rejection(.invalidField, "category must be 1-64 characters") }
        let severity = try f.integer("severity", in: 1...4)
        let observedText = try f.string("observed_at")
        guard let observedAt = Timestamp.parse(observedText) else {
            throw Rejection(.invalidTime, "observed_at \"\(observedText.prefix(40))\" is not an RFC 3339 time")
        }
        try checkTime(observedAt, observedText, field: "observed_at", now: now)
        let (position, crs) = try location(&f, required: true, what: "a citizen request")
        func text(_ key: String, max: Int) throws -> String? {
            guard let s = try f.optionalString(key) else { return nil }
            guard s.utf8.count <= max else { throw Rejection(.invalidField, "\(key) is longer than \(max) bytes") }
            return s.isEmpty ? nil : s
        }
        var request = CitizenRequest(app: app, serviceCode: service, description: try text("description", max: 4000),
                                     address: try text("address_string", max: 400), mediaURL: try text("media_url", max: 2000))
        if let contact = f.value("contact") {
            guard case .object(let o) = contact else { throw Rejection(.invalidField, "contact must be an object") }
            let c = Fields(o)
            func field(_ key: String) throws -> String? {
                guard let s = try c.optionalString(key) else { return nil }
                guard s.utf8.count <= 256 else { throw Rejection(.invalidField, "contact.\(key) is longer than 256 bytes") }
                return s.isEmpty ? nil : s
            }
            request.contact = CitizenContact(firstName: try field("first_name"), lastName: try field("last_name"), email: try field("email"),
                                             phone: try field("phone"), deviceID: try field("device_id"), accountID: try field("account_id"))
        }
        // The payload stored with the event: everything but who filed it.
        var kept = f.object
        kept["contact"] = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let encoded = try? encoder.encode(kept) else { throw Rejection(.malformedJSON, "the request's fields could not be encoded again") }
        let body = String(decoding: encoded, as: UTF8.self)
        var event = IngestEvent(
            source: .report, sourceID: id, gatewayID: try f.optionalString("gateway_id").map { _ in try f.identifier("gateway_id") },
            category: rules.category(report: category), priority: severity, observedAt: observedAt,
            position: position, crs: crs, body: body)
        event.citizen = request
        return event
    }
}

/// A resident's rating of a request's outcome (结果反馈、满意度: liandong.citizen_feedback.v1,
/// topic `feedback[.x]`), from the app that filed it. A rating of 1 or 2 reopens the finished task
/// at the tier that closed it (the sweeper: `TaskPlanner.reopen`). Recorded in
/// liandong.citizen_feedback (its rows: `CitizenStore`, storage).
public struct CitizenFeedback: Sendable, Equatable {
    public static let schema = "liandong.citizen_feedback.v1"

    public var feedbackID: String
    public var requestID: String
    public var app: String
    /// 1 (very dissatisfied) ... 5 (very satisfied).
    public var rating: Int
    public var comment: String?
    public var at: Double

    public init(feedbackID: String, requestID: String, app: String, rating: Int, comment: String?, at: Double) {
        self.feedbackID = feedbackID
        self.requestID = requestID
        self.app = app
        self.rating = rating
        self.comment = comment
        self.at = at
    }

    /// A rating that reopens the task.
    public var reopens: Bool { rating <= 2 }
}

extension CitizenFeedback: InboundRecord {
    package static let topic = "feedback"

    package static func decode(_ f: inout Fields, by decoder: MessageDecoder, now: Double) throws -> CitizenFeedback {
        let schema = try f.string("schema")
        guard schema == Self.schema else {
            throw Rejection(.unknownSchema, "schema \"\(schema.prefix(64))\" is not supported on topic feedback (expected \(Self.schema))")
        }
        let atText = try f.string("at")
        guard let at = Timestamp.parse(atText) else { throw Rejection(.invalidTime, "at \"\(atText.prefix(40))\" is not an RFC 3339 time") }
        try decoder.checkTime(at, atText, field: "at", now: now)
        let comment = try f.optionalString("comment")
        if let comment, comment.utf8.count > 4000 { throw Rejection(.invalidField, "comment is longer than 4000 bytes") }
        return CitizenFeedback(feedbackID: try f.identifier("feedback_id"), requestID: try f.identifier("request_id"),
                               app: try f.identifier("app"), rating: try f.integer("rating", in: 1...5),
                               comment: comment?.isEmpty == true ? nil : comment, at: at)
    }

    package var id: String { feedbackID }

    package func refusal(from sender: Sender?, reference: ReferenceData) -> Rejection? { nil }

    package static let counter = (name: "liandong_citizen_feedback_total", label: "rating", values: ["1", "2", "3", "4", "5"])

    package var counterValue: String { String(rating) }
}
