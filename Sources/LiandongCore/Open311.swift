import Foundation

/// Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) as liandong-open311 speaks it:
/// the services residents may file, a POST's form read into a `CitizenRequest` message, and
/// every answer in JSON or XML. Pure: the server (liandong-open311) does the HTTP, the keys and
/// the waiting for liandongd.
public enum Open311 {
    /// The two formats of every endpoint (`services.json`, `services.xml`).
    public enum Format: String, Sendable, CaseIterable {
        case json, xml

        public var contentType: String { self == .json ? "application/json; charset=utf-8" : "text/xml; charset=utf-8" }
    }

    /// An error answer: its HTTP status and the spec's `[{"code":...,"description":...}]` body.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var code: Int
        public var message: String
        /// Seconds before retrying (429).
        public var retryAfter: Int?

        public init(_ code: Int, _ message: String, retryAfter: Int? = nil) {
            self.code = code
            self.message = message
            self.retryAfter = retryAfter
        }

        public var description: String { "\(code) \(message)" }
    }

    /// One service (open311.services): what a resident may file and which incident category it is.
    public struct Service: Sendable, Equatable {
        public var code: String
        public var name: String
        public var description: String
        /// Liandong's incident category (correlation.categories, routes).
        public var category: String
        public var group: String
        public var keywords: [String]
        /// 1 most urgent ... 4 (with the category's route it decides the tier the task starts at).
        public var severity: Int

        public init(code: String, name: String, description: String, category: String, group: String, keywords: [String], severity: Int = 3) {
            self.code = code
            self.name = name
            self.description = description
            self.category = category
            self.group = group
            self.keywords = keywords
            self.severity = severity
        }

        /// The defaults, from the grid-governance report categories (综治 areas and hazards).
        public static let defaults: [Service] = [
            Service(code: "public_order", name: "治安隐患 Public-order hazard", description: "A public-order hazard: suspicious people, damaged security facilities, unlicensed venues.",
                    category: "public_order", group: "平安建设 Safety", keywords: ["治安", "security", "hazard"]),
            Service(code: "fire_hazard", name: "消防隐患 Fire hazard", description: "Blocked fire exits, smoke, stored fuel, dangerous wiring.",
                    category: "fire", group: "平安建设 Safety", keywords: ["消防", "fire", "smoke"], severity: 2),
            Service(code: "dispute", name: "矛盾纠纷 Dispute", description: "A dispute between neighbours, in a family, over land, housing, wages or property management.",
                    category: "dispute", group: "矛盾纠纷 Disputes", keywords: ["纠纷", "neighbour", "family", "land", "labour"]),
            Service(code: "gathering", name: "人员聚集 Gathering", description: "A crowd gathering that may get out of hand.",
                    category: "crowd", group: "平安建设 Safety", keywords: ["聚集", "crowd"], severity: 2),
            Service(code: "traffic", name: "交通事故 Traffic accident", description: "A traffic accident or a road hazard.",
                    category: "traffic", group: "交通 Roads", keywords: ["交通", "accident", "road"], severity: 2),
            Service(code: "theft", name: "盗窃 Theft", description: "A theft or a break-in.",
                    category: "theft", group: "平安建设 Safety", keywords: ["盗窃", "theft"]),
            Service(code: "environment", name: "环境污染 Pollution", description: "Pollution, dumped waste, burning straw.",
                    category: "environment", group: "环境 Environment", keywords: ["污染", "waste", "pollution"]),
            Service(code: "other", name: "其他诉求 Other request", description: "Anything else the village or community should deal with.",
                    category: "other", group: "其他 Other", keywords: ["诉求", "request"]),
        ]
    }

    // MARK: reading

    /// application/x-www-form-urlencoded (a POST body or a query string): `+` is a space, %XX a
    /// byte; names and values must be UTF-8. A name given twice keeps its first value.
    public static func form(_ bytes: some Collection<UInt8>) throws(Failure) -> [String: String] {
        var out: [String: String] = [:]
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = try unescape(parts[0])
            let value = parts.count > 1 ? try unescape(parts[1]) : ""
            if out[name] == nil { out[name] = value }
        }
        return out
    }

    private static func unescape(_ bytes: some Collection<UInt8>) throws(Failure) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case 0x30...0x39: b - 0x30
            case 0x41...0x46: b - 0x37
            case 0x61...0x66: b - 0x57
            default: nil
            }
        }
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "+") {
                out.append(0x20)
            } else if b == UInt8(ascii: "%") {
                let j = bytes.index(after: i)
                guard j < bytes.endIndex, bytes.index(after: j) < bytes.endIndex, let hi = hex(bytes[j]), let lo = hex(bytes[bytes.index(after: j)]) else {
                    throw Failure(400, "the form has a % not followed by two hex digits")
                }
                out.append(hi << 4 | lo)
                i = bytes.index(after: j)
            } else {
                out.append(b)
            }
            i = bytes.index(after: i)
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw Failure(400, "the form is not UTF-8 once decoded") }
        return s
    }

    /// A POST requests form read and checked: the citizen_request.v1 body liandongd is sent.
    public struct Filing: Sendable, Equatable {
        public var requestID: String
        public var service: Service
        /// The JSON body (topic `citizen`).
        public var body: [UInt8]
        public var accountID: String?
    }

    /// Reads a POST requests form (api_key already checked) into the message for liandongd.
    /// `requestID` is the service_request_id the server chose; `app` the key's name.
    public static func filing(_ form: [String: String], services: [Service], app: String, requestID: String, now: Double,
                              gatewayID: String) throws(Failure) -> Filing
    {
        guard let code = form["service_code"], !code.isEmpty else { throw Failure(400, "service_code is required (GET services for the list)") }
        guard let service = services.first(where: { $0.code == code }) else {
            throw Failure(400, "service_code \"\(code.prefix(64))\" is not a service of this jurisdiction (GET services for the list)")
        }
        let crsText = (form["crs"] ?? "wgs84").lowercased()
        guard let crs = CRS(rawValue: crsText) else { throw Failure(400, "crs \"\(crsText.prefix(20))\" is not one of wgs84, gcj02, bd09") }
        guard let latText = form["lat"], let lonText = form["long"], !latText.isEmpty, !lonText.isEmpty else {
            if form["address_string"]?.isEmpty == false || form["address_id"]?.isEmpty == false {
                throw Failure(400, "lat and long are required: this jurisdiction places a request by its position and cannot locate address_string or address_id alone")
            }
            throw Failure(400, "lat and long are required")
        }
        guard let lat = Double(latText), let lon = Double(lonText), lat.isFinite, lon.isFinite, LonLat(lon: lon, lat: lat).isValid else {
            throw Failure(400, "lat \"\(latText.prefix(20))\" and long \"\(lonText.prefix(20))\" are not a position on Earth")
        }
        func text(_ key: String, max: Int) throws(Failure) -> String? {
            guard let v = form[key].map(printable)?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else { return nil }
            guard v.utf8.count <= max else { throw Failure(400, "\(key) is longer than \(max) bytes") }
            return v
        }
        let description = try text("description", max: 4000)
        let address = try text("address_string", max: 400)
        let media = try text("media_url", max: 2000)
        if let media, !(media.hasPrefix("https://") || media.hasPrefix("http://")) {
            throw Failure(400, "media_url must be an http or https URL")
        }
        var contact: [(String, String)] = []
        for key in CitizenContact.keys {
            if let v = try text(key, max: 256) { contact.append((key, v)) }
        }
        if let email = form["email"], !email.isEmpty, !email.contains("@") { throw Failure(400, "email \"\(email.prefix(64))\" is not an e-mail address") }
        var body = JSONText()
        body.object {
            if let address { $0.field("address_string", address) }
            $0.field("app", app)
            $0.field("category", service.category)
            if !contact.isEmpty {
                $0.field("contact") { c in c.object { o in for (k, v) in contact { o.field(k, v) } } }
            }
            $0.field("crs", crs.rawValue)
            if let description { $0.field("description", description) }
            $0.field("gateway_id", gatewayID)
            $0.field("lat", number: lat)
            $0.field("lon", number: lon)
            if let media { $0.field("media_url", media) }
            $0.field("observed_at", Timestamp.formatCST(now))
            $0.field("request_id", requestID)
            $0.field("schema", CitizenRequest.schema)
            $0.field("service_code", service.code)
            $0.field("severity", integer: service.severity)
        }
        return Filing(requestID: requestID, service: service, body: Array(body.text.utf8), accountID: try text("account_id", max: 256))
    }

    /// Free text as stored: control characters other than tab and line breaks are dropped (a NUL
    /// cannot be stored, and none belongs in a resident's words).
    static func printable(_ s: String) -> String {
        let control = { (u: Unicode.Scalar) in (u.value < 0x20 && !["\t", "\n", "\r"].contains(u)) || u.value == 0x7F }
        guard s.unicodeScalars.contains(where: control) else { return s }
        return String(String.UnicodeScalarView(s.unicodeScalars.filter { !control($0) }))
    }

    /// A feedback form (rating 1-5, comment) into liandong.citizen_feedback.v1.
    public static func feedback(_ form: [String: String], requestID: String, app: String, feedbackID: String, now: Double) throws(Failure) -> [UInt8] {
        guard let ratingText = form["rating"], let rating = Int(ratingText), (1...5).contains(rating) else {
            throw Failure(400, "rating is required: a whole number from 1 (very dissatisfied) to 5 (very satisfied)")
        }
        let comment = form["comment"].map(printable)?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let comment, comment.utf8.count > 4000 { throw Failure(400, "comment is longer than 4000 bytes") }
        var body = JSONText()
        body.object {
            $0.field("app", app)
            $0.field("at", Timestamp.formatCST(now))
            if let comment, !comment.isEmpty { $0.field("comment", comment) }
            $0.field("feedback_id", feedbackID)
            $0.field("rating", integer: rating)
            $0.field("request_id", requestID)
            $0.field("schema", CitizenFeedback.schema)
        }
        return Array(body.text.utf8)
    }

    /// A service_request_id (or feedback id): `<jurisdiction>-` and 16 hex digits - from the app and
    /// its Idempotency-Key when the POST has one (a retry gets the same id), else random.
    public static func newID(jurisdiction: String, app: String, idempotencyKey: String?, salt: String = "") -> String {
        let hex: String
        if let key = idempotencyKey {
            hex = String(SHA256.hex(salt + app + "\n" + key).prefix(16))
        } else {
            var g = SystemRandomNumberGenerator()
            let v = g.next() as UInt64
            hex = String(repeating: "0", count: 16 - String(v, radix: 16).count) + String(v, radix: 16)
        }
        return "\(jurisdiction)-\(hex)"
    }

    // MARK: answers

    /// One field of an answer object: a string, a number or nothing (null in JSON, an empty element in XML).
    public enum Value: Sendable, Equatable {
        case text(String?)
        case number(Double)
        case bool(Bool)
    }

    /// A list of objects (`[{...}]` in JSON, `<root><item>...</item></root>` in XML), fields in order.
    public static func render(_ items: [[(String, Value)]], root: String, item: String, as format: Format) -> String {
        switch format {
        case .json:
            var j = JSONText()
            j.array(items) { j, fields in
                j.object { o in
                    for (k, v) in fields {
                        switch v {
                        case .text(let s?): o.field(k, s)
                        case .text(nil): o.field(k) { $0.raw("null") }
                        case .number(let d): o.field(k, number: d)
                        case .bool(let b): o.field(k, bool: b)
                        }
                    }
                }
            }
            return j.text
        case .xml:
            var x = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<\(root)>"
            for fields in items {
                x += "<\(item)>"
                for (k, v) in fields {
                    switch v {
                    case .text(let s?): x += "<\(k)>\(escape(s))</\(k)>"
                    case .text(nil): x += "<\(k)/>"
                    case .number(let d): x += "<\(k)>\(d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)")</\(k)>"
                    case .bool(let b): x += "<\(k)>\(b)</\(k)>"
                    }
                }
                x += "</\(item)>"
            }
            return x + "</\(root)>\n"
        }
    }

    public static func errors(_ failure: Failure, as format: Format) -> String {
        render([[("code", .number(Double(failure.code))), ("description", .text(failure.message))]], root: "errors", item: "error", as: format)
    }

    public static func services(_ services: [Service], as format: Format) -> String {
        render(services.map { s in
            [("service_code", .text(s.code)), ("service_name", .text(s.name)), ("description", .text(s.description)),
             ("metadata", .bool(false)), ("type", .text("realtime")), ("keywords", .text(s.keywords.joined(separator: ", "))),
             ("group", .text(s.group))]
        }, root: "services", item: "service", as: format)
    }

    /// A service definition: Liandong's services have no extra attributes.
    public static func definition(_ service: Service, as format: Format) -> String {
        switch format {
        case .json:
            var j = JSONText()
            j.object {
                $0.field("service_code", service.code)
                $0.field("attributes") { $0.raw("[]") }
            }
            return j.text
        case .xml:
            return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<service_definition><service_code>\(escape(service.code))</service_code><attributes/></service_definition>\n"
        }
    }

    /// XML text and attribute escaping; characters XML 1.0 cannot carry are dropped.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(u)
            default:
                if u.value >= 0x20 && !(0xFFFE...0xFFFF).contains(u.value) { out.unicodeScalars.append(u) }
            }
        }
        return out
    }

    // MARK: apps

    /// open311.api_keys_file: `NAME SHA256-HEX-OF-KEY PER_MINUTE` a line, `#` comments.
    public struct App: Sendable, Equatable {
        public var name: String
        public var keyHash: String
        public var perMinute: Int

        public init(name: String, keyHash: String, perMinute: Int) {
            self.name = name
            self.keyHash = keyHash
            self.perMinute = perMinute
        }
    }

    public static func apps(_ text: String, file: String) throws(Failure) -> [String: App] {
        var byHash: [String: App] = [:], names = Set<String>()
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first?.trimmingCharacters(in: .whitespaces) ?? ""
            guard !line.isEmpty else { continue }
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard parts.count == 3, !parts[0].isEmpty, parts[0].utf8.count <= 64,
                  parts[1].count == 64, parts[1].lowercased().allSatisfy({ $0.isHexDigit }),
                  let perMinute = Int(parts[2]), (1...1_000_000).contains(perMinute)
            else {
                throw Failure(500, "\(file) line \(n + 1): expected \"NAME SHA256-HEX-OF-KEY PER_MINUTE\" (the key's SHA-256 as 64 hex digits, a rate of 1-1000000 a minute)")
            }
            guard names.insert(parts[0]).inserted else { throw Failure(500, "\(file) line \(n + 1): app \(parts[0]) is listed twice") }
            byHash[parts[1].lowercased()] = App(name: parts[0], keyHash: parts[1].lowercased(), perMinute: perMinute)
        }
        return byHash
    }
}

/// Each app's rate (open311 api_keys_file PER_MINUTE) as a token bucket: a burst of up to a
/// minute's worth, refilled evenly. Pure: the clock is passed in.
public struct RateBuckets: Sendable {
    private var buckets: [String: (tokens: Double, at: Double)] = [:]

    public init() {}

    /// Takes one token of `app`'s bucket: nil when there was one, else the seconds until there is.
    public mutating func take(_ app: String, perMinute: Int, now: Double) -> Double? {
        let rate = Double(perMinute) / 60, capacity = Double(perMinute)
        var b = buckets[app] ?? (capacity, now)
        b.tokens = min(capacity, b.tokens + max(0, now - b.at) * rate)
        b.at = now
        defer { buckets[app] = b }
        guard b.tokens >= 1 else { return (1 - b.tokens) / rate }
        b.tokens -= 1
        return nil
    }
}
