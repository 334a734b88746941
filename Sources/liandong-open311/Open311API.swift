import Foundation
import HTTPTypes
import Hummingbird
import LiandongCore
import LiandongServices
import LiandongStorage
import LibPQ
import Logging
import Synchronization
import CoreMetrics

/// The endpoints, under open311.base_path: GET services.{fmt}, GET services/{code}.{fmt},
/// POST and GET requests.{fmt}, GET requests/{id}.{fmt}, POST requests/{id}/feedback.{fmt}.
/// Every error is the spec's error list in the format asked for (JSON when none can be read).
final class Open311API: Sendable {
    let settings: Config.Open311
    let apps: [String: Open311.App]
    let forwarder: AckForwarder
    let reader: ReadSessions
    let logger: Logger
    let buckets = Mutex(RateBuckets())
    let metrics: Metrics
    private let commitSeconds: CoreMetrics.Recorder

    init(settings: Config.Open311, apps: [String: Open311.App], forwarder: AckForwarder, reader: ReadSessions, logger: Logger,
         metrics: Metrics = Metrics()) {
        self.metrics = metrics
        commitSeconds = metrics.histogram("liandong_open311_commit_seconds")
        metrics.gauge("liandong_open311_daemon_unanswered") { [forwarder] in Double(forwarder.unanswered) }
        self.settings = settings
        self.apps = apps
        self.forwarder = forwarder
        self.reader = reader
        self.logger = logger
    }

    /// Largest POST body (413 beyond).
    static let maxBody = 65_536
    /// GET requests: at most this many days between start_date and end_date (and the default span).
    static let maxSpanDays = 90.0
    /// Who liandongd is told sent the requests (their gateway_id: without security.curve, the owner of their ids).
    static let gatewayID = "liandong-open311"

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        // For the host's monitoring, outside base_path (the reverse proxy forwards base_path only).
        router.get("/metrics") { [metrics] _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.get("/healthz") { _, _ in "ok\n" }
        let base = router.group(RouterPath(settings.basePath))
        base.get("{file}") { [self] request, context in await self.answer(request, context, file: context.parameters.get("file") ?? "") }
        base.post("{file}") { [self] request, context in await self.answer(request, context, file: context.parameters.get("file") ?? "") }
        base.get("services/{file}") { [self] request, context in
            await self.answer(request, context, file: context.parameters.get("file") ?? "", under: "services")
        }
        base.get("requests/{id}") { [self] request, context in
            await self.answer(request, context, file: context.parameters.get("id") ?? "", under: "requests")
        }
        base.post("requests/{id}/{file}") { [self] request, context in
            await self.answer(request, context, file: context.parameters.get("file") ?? "", under: "feedback", id: context.parameters.get("id"))
        }
        return router
    }

    /// `name.fmt` -> (name, format).
    static func split(_ file: String) -> (String, Open311.Format)? {
        guard let dot = file.lastIndex(of: "."), let format = Open311.Format(rawValue: String(file[file.index(after: dot)...]).lowercased())
        else { return nil }
        return (String(file[..<dot]), format)
    }

    private func answer(_ request: Request, _ context: BasicRequestContext, file: String, under: String? = nil, id: String? = nil) async -> Response {
        let response = await respond(request, file: file, under: under, id: id)
        metrics.counter("liandong_open311_requests_total", [("endpoint", Self.endpoint(request.method, under, file)),
                                                            ("code", String(response.status.code))]).increment()
        return response
    }

    /// The endpoint a request named, for the counter.
    static func endpoint(_ method: HTTPRequest.Method, _ under: String?, _ file: String) -> String {
        let name = split(file)?.0
        switch (method, under, name) {
        case (.get, nil, "services"?): return "services"
        case (.get, "services", _): return "service"
        case (.post, nil, "requests"?): return "file"
        case (.get, nil, "requests"?): return "list"
        case (.get, "requests", _): return "status"
        case (.post, "feedback", "feedback"?): return "feedback"
        default: return "other"
        }
    }

    private func respond(_ request: Request, file: String, under: String?, id: String?) async -> Response {
        guard let (name, format) = Self.split(file) else {
            return fail(Open311.Failure(404, "no such endpoint: name it with .json or .xml"), .json)
        }
        do {
            switch (request.method, under, name) {
            case (.get, nil, "services"):
                return ok(Open311.services(settings.services, as: format), format)
            case (.get, "services", let code):
                guard let service = settings.services.first(where: { $0.code == code }) else {
                    throw Open311.Failure(404, "no service \(code.prefix(64)) (GET services for the list)")
                }
                return ok(Open311.definition(service, as: format), format)
            case (.post, nil, "requests"):
                return try await fileRequest(request, format)
            case (.get, nil, "requests"):
                return try await list(request, format)
            case (.get, "requests", let id):
                return try await one(request, id: id, format)
            case (.post, "feedback", "feedback"):
                return try await feedback(request, id: id ?? "", format)
            default:
                throw Open311.Failure(404, "no such endpoint: \(request.method) \(request.uri.path.prefix(200))")
            }
        } catch let failure as Open311.Failure {
            return fail(failure, format)
        } catch {
            logger.error("request failed", metadata: ["error": "\(error)", "http.path": "\(request.uri.path)"])
            return fail(Open311.Failure(500, "internal error"), format)
        }
    }

    // MARK: the endpoints

    /// POST requests: answered with the service_request_id once liandongd committed it.
    private func fileRequest(_ request: Request, _ format: Open311.Format) async throws -> Response {
        let form = try await postForm(request)
        let app = try authenticate(form)
        try limit(app)
        let key = idempotencyKey(request)
        let id = Open311.newID(jurisdiction: settings.jurisdictionID, app: app.name, idempotencyKey: key)
        let filing = try Open311.filing(form, services: settings.services, app: app.name, requestID: id,
                                        now: Date().timeIntervalSince1970, gatewayID: Self.gatewayID)
        try await deliver(topic: CitizenRequest.topic, body: filing.body, id: id)
        logger.info("request filed", metadata: ["open311.app": "\(app.name)", "open311.request": "\(id)",
                                                "open311.service": "\(filing.service.code)"])
        return ok(Open311.render([[("service_request_id", .text(id)),
                                   ("service_notice", .text("已受理 Received: the village or community answers first; if it does not in time, the township and then the county take it up.")),
                                   ("account_id", .text(filing.accountID))]],
                                 root: "service_requests", item: "request", as: format), format)
    }

    /// GET requests: the app's own requests, newest first (service_request_id, service_code,
    /// start_date/end_date at most 90 days apart - by default the last 90 days -, status).
    private func list(_ request: Request, _ format: Open311.Format) async throws -> Response {
        let q = try Open311.form(Array((request.uri.query ?? "").utf8))
        let app = try authenticate(q)
        try limit(app)
        var query = CitizenStore.Query()
        query.app = app.name
        func list(_ key: String) -> [String] {
            (q[key] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        // service_request_id overrides every other argument (GeoReport v2).
        query.ids = list("service_request_id")
        if query.ids.isEmpty {
            query.serviceCodes = list("service_code")
            func date(_ key: String) throws(Open311.Failure) -> Double? {
                guard let text = q[key], !text.isEmpty else { return nil }
                guard let t = Timestamp.parse(text) else { throw Open311.Failure(400, "\(key) \"\(text.prefix(40))\" is not a W3C (RFC 3339) date-time") }
                return t
            }
            let span = Self.maxSpanDays * 86_400
            let end = try date("end_date"), start = try date("start_date")
            let to = end ?? (start.map { $0 + span } ?? Date().timeIntervalSince1970)
            let from = start ?? to - span
            guard from <= to else { throw Open311.Failure(400, "start_date is after end_date") }
            guard to - from <= span else { throw Open311.Failure(400, "start_date and end_date are more than \(Int(Self.maxSpanDays)) days apart") }
            query.from = from
            query.to = to
            let statuses = list("status")
            guard statuses.allSatisfy({ $0 == "open" || $0 == "closed" }) else { throw Open311.Failure(400, "status must be open or closed") }
            if statuses.count == 1 { query.status = statuses[0] }
        }
        let rows = try await read { [query] db in try CitizenStore.statuses(db, query) }
        return ok(render(rows, format), format)
    }

    /// GET requests/{id}.
    private func one(_ request: Request, id: String, _ format: Open311.Format) async throws -> Response {
        let q = try Open311.form(Array((request.uri.query ?? "").utf8))
        let app = try authenticate(q)
        try limit(app)
        let row = try await status(of: id, app: app)
        return ok(render([row], format), format)
    }

    /// POST requests/{id}/feedback (rating 1-5, comment): from the app that filed it, once it is closed.
    private func feedback(_ request: Request, id: String, _ format: Open311.Format) async throws -> Response {
        let form = try await postForm(request)
        let app = try authenticate(form)
        try limit(app)
        let row = try await status(of: id, app: app)
        guard row.status == "closed" else {
            throw Open311.Failure(400, "request \(id) is still open: feedback is for a request that has been answered (closed)")
        }
        let feedbackID = Open311.newID(jurisdiction: settings.jurisdictionID, app: app.name, idempotencyKey: idempotencyKey(request),
                                       salt: "feedback \(id)\n")
        let body = try Open311.feedback(form, requestID: id, app: app.name, feedbackID: feedbackID, now: Date().timeIntervalSince1970)
        try await deliver(topic: CitizenFeedback.topic, body: body, id: feedbackID)
        let rating = Int(form["rating"] ?? "") ?? 0
        logger.info("feedback given", metadata: ["open311.app": "\(app.name)", "open311.request": "\(id)", "open311.rating": "\(rating)"])
        return ok(Open311.render([[("service_request_id", .text(id)), ("feedback_id", .text(feedbackID)), ("rating", .number(Double(rating))),
                                   ("reopened", .bool(rating <= 2))]], root: "feedback", item: "request", as: format), format)
    }

    // MARK: helpers

    private func status(of id: String, app: Open311.App) async throws -> CitizenStore.RequestStatus {
        var query = CitizenStore.Query()
        query.ids = [id]
        query.app = app.name
        query.limit = 1
        // Another app's request is as unknown as one that does not exist.
        guard let row = try await read({ [query] db in try CitizenStore.statuses(db, query) }).first else {
            throw Open311.Failure(404, "no request \(id.prefix(64))")
        }
        return row
    }

    /// A database read; too slow or failed is a 503.
    private func read<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        do {
            return try await reader.read(passing: Open311.Failure.self, body)
        } catch let error as ReadSessions.Unavailable {
            throw Open311.Failure(503, error.message)
        }
    }

    private func render(_ rows: [CitizenStore.RequestStatus], _ format: Open311.Format) -> String {
        let names = Dictionary(settings.services.map { ($0.code, $0.name) }, uniquingKeysWith: { a, _ in a })
        return Open311.render(rows.map { r in
            [("service_request_id", .text(r.id)), ("status", .text(r.status)), ("status_notes", .text(r.statusNotes)),
             ("service_name", .text(names[r.serviceCode] ?? r.serviceCode)), ("service_code", .text(r.serviceCode)),
             ("description", .text(r.description)), ("agency_responsible", .text(r.agencyResponsible.map { "\($0) (\(r.divisionCode))" })),
             ("service_notice", .text(nil)), ("requested_datetime", .text(Timestamp.formatCST(r.requestedAt))),
             ("updated_datetime", .text(Timestamp.formatCST(r.updatedAt))),
             ("expected_datetime", .text(r.expectedAt.map(Timestamp.formatCST))), ("address", .text(r.address)),
             ("address_id", .text(nil)), ("zipcode", .text(nil)), ("lat", .number(r.lat)), ("long", .number(r.lon)),
             ("media_url", .text(r.mediaURL))]
        }, root: "service_requests", item: "request", as: format)
    }

    /// Sends a message to liandongd and waits for its commit.
    private func deliver(topic: String, body: [UInt8], id: String) async throws {
        let started = ContinuousClock.now
        let answer = await forwarder.send(topic: topic, body: body, id: id, timeout: settings.answerTimeoutSeconds)
        let waited = ContinuousClock.now - started
        commitSeconds.record(Double(waited.components.seconds) + Double(waited.components.attoseconds) / 1e18)
        guard let answer else {
            logger.warning("liandongd did not answer in time", metadata: ["open311.id": "\(id)", "open311.unanswered": "\(forwarder.unanswered)"])
            throw Open311.Failure(503, "liandongd did not confirm it within \(Int(settings.answerTimeoutSeconds)) s; send it again with the same Idempotency-Key")
        }
        guard answer.ok || answer.duplicate else {
            throw Open311.Failure(400, answer.error ?? "refused by liandongd")
        }
    }

    private func postForm(_ request: Request) async throws -> [String: String] {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: Self.maxBody)
        } catch {
            throw Open311.Failure(413, "the body is larger than \(Self.maxBody / 1024) KiB")
        }
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/x-www-form-urlencoded") {
            throw Open311.Failure(400, "send the fields form-encoded (Content-Type: application/x-www-form-urlencoded); media goes by media_url")
        }
        var form = try Open311.form(body.readableBytesView)
        // api_key may come in the query string too.
        if form["api_key"] == nil, let key = try Open311.form(Array((request.uri.query ?? "").utf8))["api_key"] { form["api_key"] = key }
        return form
    }

    private func authenticate(_ form: [String: String]) throws(Open311.Failure) -> Open311.App {
        guard let key = form["api_key"], !key.isEmpty else { throw Open311.Failure(403, "api_key is required") }
        guard key.utf8.count <= 256, let app = apps[SHA256.hex(key)] else { throw Open311.Failure(403, "api_key is not valid") }
        return app
    }

    private func limit(_ app: Open311.App) throws(Open311.Failure) {
        let now = Date().timeIntervalSince1970
        if let wait = buckets.withLock({ $0.take(app.name, perMinute: app.perMinute, now: now) }) {
            let seconds = max(1, Int(wait.rounded(.up)))
            throw Open311.Failure(429, "more than \(app.perMinute) requests a minute from \(app.name); retry in \(seconds) s", retryAfter: seconds)
        }
    }

    private func idempotencyKey(_ request: Request) -> String? {
        guard let name = HTTPField.Name("Idempotency-Key"), let key = request.headers[name], !key.isEmpty else { return nil }
        return String(key.prefix(256))
    }

    private func ok(_ text: String, _ format: Open311.Format) -> Response {
        Response(status: .ok, headers: [.contentType: format.contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private func fail(_ failure: Open311.Failure, _ format: Open311.Format) -> Response {
        var headers: HTTPFields = [.contentType: format.contentType]
        if let wait = failure.retryAfter { headers[.retryAfter] = String(wait) }
        return Response(status: .init(code: failure.code), headers: headers,
                        body: .init(byteBuffer: ByteBuffer(string: Open311.errors(failure, as: format))))
    }
}
