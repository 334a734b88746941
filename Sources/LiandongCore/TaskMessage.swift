import Foundation

/// Evidence carried by a task message: the most recent ids and the totals.
public struct TaskEvidence: Sendable, Codable, Equatable {
    public var alerts: [String]
    public var reports: [String]
    public var alertCount: Int
    public var reportCount: Int

    enum CodingKeys: String, CodingKey {
        case alerts, reports
        case alertCount = "alert_count"
        case reportCount = "report_count"
    }

    public init(alerts: [String], reports: [String], alertCount: Int, reportCount: Int) {
        self.alerts = alerts
        self.reports = reports
        self.alertCount = alertCount
        self.reportCount = reportCount
    }
}

/// A v1 task message (schema liandong.task.v1). `seq` is assigned by the feed outbox.
public struct TaskMessage: Sendable, Codable, Equatable {
    public var schema = "liandong.task.v1"
    public var seq: Int64?
    public var topic: String
    public var messageID: String
    public var kind: MessageKind
    /// The task's state after the change announced (open, accepted, in_progress, resolved, false_alarm).
    public var state: TaskState
    /// True once the task missed a deadline at the county.
    public var overdue: Bool
    public var taskID: String
    public var incidentID: String
    public var tier: Tier
    public var divisionCode: String
    public var gridCode: String
    /// The grid worker asked to verify (verify tasks) or responsible for the grid.
    public var workerID: String?
    public var category: String
    public var priority: Int
    public var lon: Double
    public var lat: Double
    public var departments: [String]
    public var respondBy: String
    public var resolveBy: String
    public var evidence: TaskEvidence
    public var emittedAt: String
    /// Why (escalation: "respond_by missed", a reject's note ...), when there is a reason.
    public var reason: String?
    /// For an escalation: the division the task came from.
    public var previousDivisionCode: String?
    /// For an update caused by a dispatcher: who acted, and the update's id.
    public var actor: String?
    public var updateID: String?
    /// Neighbouring incidents it could not join without breaking their bounds (a crowd drifting
    /// along a street): where it came from. Left out when none.
    public var relatedIncidentIDs: [String]?
    /// Names a dispatcher reads instead of codes (optional; left out when unknown).
    public var villageName: String?
    public var townshipName: String?
    /// What the most recent report says (else the most recent alert), and the camera of the most
    /// recent alert by its registered name.
    public var description: String?
    public var cameraName: String?
    /// Pictures, clips and attachments the most recent alert and report carry (URLs, at most 10).
    public var media: [String]?
    /// A verify task's or a village-tier task's nearest grid workers on duty (at most 3, nearest
    /// first; empty when none was seen on duty lately). Left out on other messages.
    public var suggestedWorkers: [SuggestedWorker]?

    enum CodingKeys: String, CodingKey {
        case schema, seq, topic, kind, state, overdue, tier, category, priority, lon, lat, departments, evidence, reason, actor
        case description, media
        case villageName = "village_name"
        case townshipName = "township_name"
        case cameraName = "camera_name"
        case previousDivisionCode = "previous_division_code"
        case updateID = "update_id"
        case relatedIncidentIDs = "related_incident_ids"
        case suggestedWorkers = "suggested_workers"
        case messageID = "message_id"
        case taskID = "task_id"
        case incidentID = "incident_id"
        case divisionCode = "division_code"
        case gridCode = "grid_code"
        case workerID = "worker_id"
        case respondBy = "respond_by"
        case resolveBy = "resolve_by"
        case emittedAt = "emitted_at"
    }

    public init(
        topic: String, messageID: String, kind: MessageKind, state: TaskState = .open, overdue: Bool = false, taskID: String, incidentID: String, tier: Tier,
        divisionCode: String, gridCode: String, workerID: String?, category: String, priority: Int,
        lon: Double, lat: Double, departments: [String], respondBy: String, resolveBy: String,
        evidence: TaskEvidence, emittedAt: String
    ) {
        self.topic = topic
        self.messageID = messageID
        self.kind = kind
        self.state = state
        self.overdue = overdue
        self.taskID = taskID
        self.incidentID = incidentID
        self.tier = tier
        self.divisionCode = divisionCode
        self.gridCode = gridCode
        self.workerID = workerID
        self.category = category
        self.priority = priority
        self.lon = lon
        self.lat = lat
        self.departments = departments
        self.respondBy = respondBy
        self.resolveBy = resolveBy
        self.evidence = evidence
        self.emittedAt = emittedAt
    }

    /// The feed topic of a task: its grid code for a verify task still with the grid's village (the
    /// grid worker's), otherwise the responsible division's code; always under "task.".
    public static func topic(kind: MessageKind, tier: Tier = .village, divisionCode: String, gridCode: String) -> String {
        "task." + (kind == .verify && tier == .village ? gridCode : divisionCode)
    }
}

extension TaskMessage {
    /// The message as JSON text, keys sorted, optional fields left out when nil: the same document
    /// `JSONEncoder` (with `.sortedKeys`) produces, written directly (the writer encodes one per
    /// touched incident per batch, and Foundation's encoder was a visible share of its time).
    public func jsonText() -> String {
        var out = JSONText()
        out.object {
            $0.field("actor", actor)
            $0.field("camera_name", cameraName)
            $0.field("category", category)
            $0.field("departments") { o in o.array(departments) }
            $0.field("description", description)
            $0.field("division_code", divisionCode)
            $0.field("emitted_at", emittedAt)
            $0.field("evidence") { o in
                o.object {
                    $0.field("alert_count", integer: evidence.alertCount)
                    $0.field("alerts") { o in o.array(evidence.alerts) }
                    $0.field("report_count", integer: evidence.reportCount)
                    $0.field("reports") { o in o.array(evidence.reports) }
                }
            }
            $0.field("grid_code", gridCode)
            $0.field("incident_id", incidentID)
            $0.field("kind", kind.rawValue)
            $0.field("lat") { o in o.number(lat) }
            $0.field("lon") { o in o.number(lon) }
            if let media { $0.field("media") { o in o.array(media) } }
            $0.field("message_id", messageID)
            $0.field("overdue") { o in o.raw(overdue ? "true" : "false") }
            $0.field("previous_division_code", previousDivisionCode)
            $0.field("priority") { o in o.raw(String(priority)) }
            $0.field("reason", reason)
            if let relatedIncidentIDs { $0.field("related_incident_ids") { o in o.array(relatedIncidentIDs) } }
            $0.field("resolve_by", resolveBy)
            $0.field("respond_by", respondBy)
            $0.field("schema", schema)
            if let seq { $0.field("seq") { o in o.raw(String(seq)) } }
            $0.field("state", state.rawValue)
            if let suggestedWorkers {
                $0.field("suggested_workers") { o in
                    o.array(suggestedWorkers) { o, w in
                        o.object {
                            $0.field("distance_m", integer: w.distanceMeters)
                            $0.field("grid_code", w.gridCode)
                            $0.field("seen_at", Timestamp.formatCST(w.seenAt))
                            $0.field("worker_id", w.workerID)
                        }
                    }
                }
            }
            $0.field("task_id", taskID)
            $0.field("tier", tier.rawValue)
            $0.field("topic", topic)
            $0.field("township_name", townshipName)
            $0.field("update_id", updateID)
            $0.field("village_name", villageName)
            $0.field("worker_id", workerID)
        }
        return out.text
    }
}

/// A minimal JSON writer: objects with keys in the order given, strings escaped per RFC 8259.
public struct JSONText {
    /// UTF-8 as it is written (appending bytes is much cheaper than appending to a String).
    private var bytes: [UInt8] = []
    private var first = true

    public init() { bytes.reserveCapacity(1024) }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    private mutating func raw(_ byte: UInt8) { bytes.append(byte) }

    public mutating func number(_ d: Double) {
        precondition(d.isFinite, "JSON has no NaN or infinity")
        raw(d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)")
    }

    public mutating func string(_ s: String) {
        raw(0x22)
        var s = s
        s.withUTF8 { utf8 in
            // Most strings need no escaping: one bulk append.
            guard utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else {
                bytes.append(contentsOf: utf8)
                return
            }
            for byte in utf8 {
                switch byte {
                case 0x22: bytes.append(contentsOf: [0x5C, 0x22])  // \"
                case 0x5C: bytes.append(contentsOf: [0x5C, 0x5C])  // \\
                case 0x0A: bytes.append(contentsOf: [0x5C, 0x6E])  // \n
                case 0x0D: bytes.append(contentsOf: [0x5C, 0x72])  // \r
                case 0x09: bytes.append(contentsOf: [0x5C, 0x74])  // \t
                case ..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])  // \u00XX
                default: bytes.append(byte)
                }
            }
        }
        raw(0x22)
    }

    public mutating func array(_ values: [String]) {
        raw(0x5B)
        for (i, v) in values.enumerated() {
            if i > 0 { raw(0x2C) }
            string(v)
        }
        raw(0x5D)
    }

    /// An array whose elements `element` writes.
    public mutating func array<T>(_ values: [T], _ element: (inout JSONText, T) -> Void) {
        raw(0x5B)
        for (i, v) in values.enumerated() {
            if i > 0 { raw(0x2C) }
            element(&self, v)
        }
        raw(0x5D)
    }

    public mutating func object(_ body: (inout JSONText) -> Void) {
        raw(0x7B)
        let outer = first
        first = true
        body(&self)
        first = outer
        raw(0x7D)
    }

    /// A key and a value written by `value`.
    public mutating func field(_ key: String, _ value: (inout JSONText) -> Void) {
        if !first { raw(0x2C) }
        first = false
        string(key)
        raw(0x3A)
        value(&self)
    }

    /// A string field, left out when nil.
    public mutating func field(_ key: String, _ value: String?) {
        guard let value else { return }
        field(key) { $0.string(value) }
    }

    public mutating func field(_ key: String, integer value: Int) {
        field(key) { $0.raw(String(value)) }
    }

    public mutating func field(_ key: String, number value: Double) {
        field(key) { $0.number(value) }
    }

    public mutating func field(_ key: String, bool value: Bool) {
        field(key) { $0.raw(value ? "true" : "false") }
    }
}

/// What a dispatcher needs beside the codes: the names of the incident's village and township, what
/// the latest report (or alert) says, the latest alert's camera by name, and the media they carry.
public struct IncidentContext: Sendable, Equatable {
    public var villageName: String?
    public var townshipName: String?
    public var description: String?
    public var cameraName: String?
    public var media: [String] = []

    public init(villageName: String? = nil, townshipName: String? = nil, description: String? = nil, cameraName: String? = nil,
                media: [String] = []) {
        self.villageName = villageName
        self.townshipName = townshipName
        self.description = description
        self.cameraName = cameraName
        self.media = media
    }

    /// At most this many media URLs, and this many characters of description, go in a message.
    public static let maxMedia = 10, maxDescription = 500

    /// From the bodies of the most recent alert and report (their JSON as received): the report's
    /// description first (a person wrote it), the alert's otherwise; the alert's snapshot_url and
    /// clip_url, the report's attachments. Only http(s) and rtsp URLs; anything unreadable is left out.
    public static func details(alert: [UInt8]?, report: [UInt8]?) -> (description: String?, media: [String]) {
        // Only the four fields are built (the writer does this for every incident a batch opens).
        func read(_ bytes: [UInt8]?) -> JSONValue? { bytes.flatMap { (try? JSONValue.fields($0, fields)).map(JSONValue.object) } }
        return details(alert: read(alert), report: read(report))
    }

    /// The fields of an alert or report that `details` reads.
    public static let fields: Set<String> = ["description", "snapshot_url", "clip_url", "attachments"]

    /// The same, from bodies already parsed.
    public static func details(alert: JSONValue?, report: JSONValue?) -> (description: String?, media: [String]) {
        func object(_ value: JSONValue?) -> [String: JSONValue]? {
            guard case .object(let o)? = value else { return nil }
            return o
        }
        let a = object(alert), r = object(report)
        func text(_ o: [String: JSONValue]?, _ key: String) -> String? {
            guard case .string(let s)? = o?[key] else { return nil }
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
            return t.isEmpty ? nil : String(t.prefix(maxDescription))
        }
        var media: [String] = []
        func add(_ url: String?) {
            guard let url, media.count < maxMedia, !media.contains(url),
                  ["http://", "https://", "rtsp://"].contains(where: { url.lowercased().hasPrefix($0) }) else { return }
            media.append(url)
        }
        add(text(a, "snapshot_url"))
        add(text(a, "clip_url"))
        if case .array(let items)? = r?["attachments"] {
            for case .string(let url) in items { add(url.trimmingCharacters(in: .whitespaces)) }
        }
        return (text(r, "description") ?? text(a, "description"), media)
    }
}
