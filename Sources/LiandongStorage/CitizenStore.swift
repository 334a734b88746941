import Foundation
import LiandongCore
import LibPQ

/// Residents' requests (migration 037): the rows a batch's requests add, residents' ratings (a
/// kind of inbound record), the ratings the sweeper reopens tasks for, and what liandong-open311
/// reads back for its GET answers (liandong.citizen_request_status, under the reader's scope).
package enum CitizenStore {
    /// The liandong.record_citizen_requests rows of a batch's planned events (nil: none is a request).
    static func rows(_ events: [PlannedEvent]) throws -> String? {
        struct Row: Encodable {
            let id, owner, app, service_code, category, incident, grid, village, crs: String
            let lon, lat, at_s: Double
            let description, address, media_url: String?
            let contact: CitizenContact?
        }
        let rows = events.compactMap { planned -> Row? in
            let p = planned.placed, e = p.event
            guard let c = e.citizen else { return nil }
            return Row(id: e.sourceID, owner: e.owner, app: c.app, service_code: c.serviceCode, category: e.category,
                       incident: planned.incident.uuidString.lowercased(), grid: p.grid.gridCode, village: p.grid.villageCode,
                       crs: e.crs.rawValue, lon: p.point.lon, lat: p.point.lat, at_s: e.observedAt, description: c.description,
                       address: c.address, media_url: c.mediaURL, contact: c.contact.isEmpty ? nil : c.contact)
        }
        return rows.isEmpty ? nil : try TaskStore.json(rows)
    }

    // MARK: ratings

    /// Ratings of 1-2 the sweeper has not acted on yet, oldest first.
    package static func pendingReopens(_ db: PGConnection, limit: Int = 100) throws -> [String] {
        try db.query("""
            SELECT feedback_id FROM liandong.citizen_feedback WHERE rating <= 2 AND handled_at IS NULL
            ORDER BY received_at, feedback_id LIMIT $1
            """, [String(limit)]).typed.map { try $0.string(0) }
    }

    /// A rating of 1-2 not acted on yet, locked (nil: handled meanwhile, or taken by another session).
    package struct PendingRating {
        package let rating: Int
        package let comment: String?
        package let incidentID: String
    }

    package static func lockPending(_ db: PGConnection, feedbackID: String) throws -> PendingRating? {
        guard let v = try db.query("""
            SELECT f.rating, f.comment, r.incident_id FROM liandong.citizen_feedback f
            JOIN liandong.citizen_requests r USING (service_request_id)
            WHERE f.feedback_id = $1 AND f.rating <= 2 AND f.handled_at IS NULL
            FOR UPDATE OF f SKIP LOCKED
            """, [feedbackID]).typed.first else { return nil }
        return PendingRating(rating: try v.int(0), comment: v.optionalString(1), incidentID: try v.string(2))
    }

    package enum Outcome: String { case reopened, notFinished = "not_finished", noTask = "no_task" }

    package static func handled(_ db: PGConnection, feedbackID: String, _ outcome: Outcome, at: Double) throws {
        try db.query("UPDATE liandong.citizen_feedback SET handled_at = to_timestamp($2), outcome = $3 WHERE feedback_id = $1",
                     [feedbackID, String(at), outcome.rawValue])
    }

    // MARK: what residents read (liandong-open311)

    /// One request as Open311 GET requests answers it.
    package struct RequestStatus: Sendable, Equatable {
        package var id: String
        package var app: String
        package var serviceCode: String
        package var status: String
        package var statusNotes: String?
        package var description: String?
        package var agencyResponsible: String?
        package var divisionCode: String
        package var requestedAt: Double
        package var updatedAt: Double
        package var expectedAt: Double?
        package var address: String?
        package var lat: Double
        package var lon: Double
        package var mediaURL: String?
    }

    /// What GET requests asks for: ids, or a service, a time range and a status.
    package struct Query: Sendable {
        package var ids: [String] = []
        /// Only the requests this app filed.
        package var app: String?
        package var serviceCodes: [String] = []
        package var from: Double?
        package var to: Double?
        package var status: String?
        package var limit = 1000
        package init() {}
    }

    package static func statuses(_ db: PGConnection, _ q: Query) throws -> [RequestStatus] {
        var filters: [String] = [], parameters: [String?] = []
        func parameter(_ value: String) -> String {
            parameters.append(value)
            return "$\(parameters.count)"
        }
        if !q.ids.isEmpty { filters.append("service_request_id = ANY(\(parameter(PGCopyText.arrayLiteral(q.ids)))::text[])") }
        if let app = q.app { filters.append("app = \(parameter(app))") }
        if !q.serviceCodes.isEmpty { filters.append("service_code = ANY(\(parameter(PGCopyText.arrayLiteral(q.serviceCodes)))::text[])") }
        if let from = q.from { filters.append("requested_at >= to_timestamp(\(parameter(String(from))))") }
        if let to = q.to { filters.append("requested_at <= to_timestamp(\(parameter(String(to))))") }
        if let status = q.status { filters.append("status = \(parameter(status))") }
        let limit = parameter(String(q.limit))
        return try db.query("""
            SELECT service_request_id, app, service_code, status, status_notes, description, agency_responsible, division_code,
                   extract(epoch FROM requested_at), extract(epoch FROM updated_at), extract(epoch FROM expected_at),
                   address_string, lat, lon, media_url
            FROM liandong.citizen_request_status
            \(filters.isEmpty ? "" : "WHERE " + filters.joined(separator: " AND "))
            ORDER BY requested_at DESC, service_request_id LIMIT \(limit)
            """, parameters).typed.map { v in
            RequestStatus(id: try v.string(0), app: try v.string(1), serviceCode: try v.string(2), status: try v.string(3),
                          statusNotes: v.optionalString(4), description: v.optionalString(5), agencyResponsible: v.optionalString(6),
                          divisionCode: try v.string(7), requestedAt: try v.double(8), updatedAt: try v.double(9),
                          expectedAt: try v.optionalDouble(10), address: v.optionalString(11), lat: try v.double(12),
                          lon: try v.double(13), mediaURL: v.optionalString(14))
        }
    }
}

extension CitizenFeedback: RecordRows {
    package static func write(_ db: PGConnection, _ records: [CitizenFeedback]) throws {
        struct Row: Encodable {
            let feedback_id, request_id, app: String
            let rating: Int
            let comment: String?
            let at_s: Double
        }
        try db.query("SELECT liandong.record_citizen_feedback($1::jsonb)", [try TaskStore.json(records.map {
            Row(feedback_id: $0.feedbackID, request_id: $0.requestID, app: $0.app, rating: $0.rating, comment: $0.comment, at_s: $0.at)
        })])
    }
}
