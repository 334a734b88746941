import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import LiandongCore
import LiandongServices
import LiandongStorage
import LibPQ
import Logging
import Synchronization

/// An answer other than 200, with what the page shows.
struct ConsoleFailure: Error {
    let code: Int
    let message: String
    init(_ code: Int, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// The console's HTTP side: login, the page and its files, the JSON reads, the live stream and the
/// actions. Every page and file is served by the console itself; the Content-Security-Policy
/// allows nothing from another origin.
final class ConsoleAPI: Sendable {
    struct WebSession: Sendable {
        let user: ConsoleUsers.User
        let csrf: String
        let expires: Double
    }

    static let sessionCookie = "liandong_session"
    static let sessionSeconds = 12 * 3600.0
    /// Login attempts a minute, per user name and in all.
    static let loginsPerName = 10, loginsInAll = 120
    static let maxBody = 16_384
    static let heartbeatSeconds = 15.0

    let users: [String: ConsoleUsers.User]
    let reader: ReadSessions
    let feed: LiveFeed
    let updates: UpdateSender
    let logger: Logger
    let metrics: Metrics
    let answerTimeout: Double
    private let sessions = Mutex<[String: WebSession]>([:])
    private let buckets = Mutex(RateBuckets())

    init(users: [ConsoleUsers.User], reader: ReadSessions, feed: LiveFeed, updates: UpdateSender, logger: Logger,
         metrics: Metrics = Metrics(), answerTimeout: Double = 10) {
        self.users = Dictionary(users.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.reader = reader
        self.feed = feed
        self.updates = updates
        self.logger = logger
        self.metrics = metrics
        self.answerTimeout = answerTimeout
        metrics.gauge("liandong_console_live_pages") { [feed] in Double(feed.pageCount) }
        metrics.gauge("liandong_console_feed_seq") { [feed] in Double(feed.lastSeq) }
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/metrics") { [metrics] _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/") { _, _ in Self.redirect("/console") }
        router.get("/login") { _, _ in Self.page(ConsoleAssets.login(error: nil), status: .ok) }
        router.post("/login") { [self] request, _ in await self.login(request) }
        router.post("/logout") { [self] request, _ in self.guarded(request, csrf: true) { _, token in
            _ = self.sessions.withLock { $0.removeValue(forKey: token) }
            var r = Self.json("{\"ok\":true}")
            r.headers[values: .setCookie] = ["\(Self.sessionCookie)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
                                             "csrf=; Path=/; SameSite=Strict; Max-Age=0"]
            return r
        } }
        router.get("/console") { [self] request, _ in
            guard session(request) != nil else { return Self.redirect("/login") }
            return Self.page(ConsoleAssets.console, status: .ok)
        }
        router.get("/console.js") { _, _ in Self.asset(ConsoleAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/console.css") { _, _ in Self.asset(ConsoleAssets.style, type: "text/css; charset=utf-8") }
        router.get("/api/me") { [self] request, _ in guarded(request) { s, _ in
            Self.json(Self.object([("name", s.user.name), ("role", s.user.role.rawValue), ("scope", s.user.scope)]))
        } }
        router.get("/api/snapshot") { [self] request, _ in await guardedRead(request) { s in
            let scope = s.user.scope, tasks = request.uri.queryParameters["only"] != "strip"
            return try await self.read { db in try ConsoleStore.snapshot(db, scope: scope, tasks: tasks) }
        } }
        router.get("/api/map") { [self] request, _ in await guardedRead(request) { s in
            let scope = s.user.scope
            return try await self.read { db in try ConsoleStore.map(db, scope: scope) }
        } }
        router.get("/api/tasks/{id}") { [self] request, context in await guardedRead(request) { s in
            let (scope, id) = (s.user.scope, context.parameters.get("id") ?? "")
            guard let text = try await self.read({ db in try ConsoleStore.task(db, id: id, scope: scope) }) else {
                throw ConsoleFailure(404, "no task \(id.prefix(40)) in your scope \(scope)")
            }
            return text
        } }
        router.get("/api/events") { [self] request, _ in guarded(request) { s, _ in self.events(for: s) } }
        router.post("/api/tasks/{id}/actions") { [self] request, context in
            await self.act(request, taskID: context.parameters.get("id") ?? "")
        }
        return router
    }

    // MARK: login and sessions

    private func login(_ request: Request) async -> Response {
        var request = request
        let form: [String: String]
        do {
            form = try Open311.form(try await request.collectBody(upTo: Self.maxBody).readableBytesView)
        } catch {
            return Self.page(ConsoleAssets.login(error: "The form could not be read."), status: .badRequest)
        }
        let name = form["user"] ?? "", password = form["password"] ?? ""
        let now = Date().timeIntervalSince1970
        let limited = buckets.withLock { b in
            b.take("*", perMinute: Self.loginsInAll, now: now) ?? b.take("user " + name.prefix(64), perMinute: Self.loginsPerName, now: now)
        }
        if let wait = limited {
            metrics.counter("liandong_console_logins_total", [("outcome", "limited")]).increment()
            var r = Self.page(ConsoleAssets.login(error: "Too many attempts: try again in \(Int(wait.rounded(.up))) s."), status: .tooManyRequests)
            r.headers[.retryAfter] = String(max(1, Int(wait.rounded(.up))))
            return r
        }
        let user = users[name]
        let hash = user?.hash ?? Passwords.decoy
        // The slow hash runs off the event loop.
        let matches = await withCheckedContinuation { c in
            DispatchQueue.global().async { c.resume(returning: Passwords.verify(password, against: hash)) }
        }
        guard let user, matches else {
            metrics.counter("liandong_console_logins_total", [("outcome", "refused")]).increment()
            // An unknown name is not logged as typed: it may be a password typed into the wrong box.
            logger.notice("login refused", metadata: ["console.user": "\(user == nil ? "(unknown name)" : name)"])
            return Self.page(ConsoleAssets.login(error: "Unknown user or wrong password."), status: .unauthorized)
        }
        let token = Self.randomHex(32), csrf = Self.randomHex(16)
        sessions.withLock { s in
            s = s.filter { $0.value.expires > now }
            s[token] = WebSession(user: user, csrf: csrf, expires: now + Self.sessionSeconds)
        }
        metrics.counter("liandong_console_logins_total", [("outcome", "ok")]).increment()
        logger.info("login", metadata: ["console.user": "\(user.name)", "console.role": "\(user.role.rawValue)", "console.scope": "\(user.scope)"])
        var r = Self.redirect("/console")
        let age = Int(Self.sessionSeconds)
        r.headers[values: .setCookie] = ["\(Self.sessionCookie)=\(token); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(age)",
                                         "csrf=\(csrf); Path=/; SameSite=Strict; Max-Age=\(age)"]
        return r
    }

    private func session(_ request: Request) -> (WebSession, String)? {
        guard let token = request.cookies[Self.sessionCookie]?.value, !token.isEmpty else { return nil }
        let now = Date().timeIntervalSince1970
        return sessions.withLock { s in
            guard let found = s[token] else { return nil }
            guard found.expires > now else {
                s.removeValue(forKey: token)
                return nil
            }
            return (found, token)
        }
    }

    /// 401 without a session; with `csrf`, 403 unless X-CSRF-Token is the session's.
    private func guarded(_ request: Request, csrf: Bool = false, _ body: (WebSession, String) throws -> Response) -> Response {
        guard let (s, token) = session(request) else { return Self.failure(ConsoleFailure(401, "log in first (POST /login)")) }
        if csrf {
            guard let name = HTTPField.Name("X-CSRF-Token"), let sent = request.headers[name], sent == s.csrf else {
                return Self.failure(ConsoleFailure(403, "the X-CSRF-Token header must carry the csrf cookie's value"))
            }
        }
        do { return try body(s, token) } catch { return Self.failure(error) }
    }

    private func guardedRead(_ request: Request, _ body: (WebSession) async throws -> String) async -> Response {
        guard let (s, _) = session(request) else { return Self.failure(ConsoleFailure(401, "log in first (POST /login)")) }
        do { return Self.json(try await body(s)) } catch { return Self.failure(error) }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        do {
            return try await reader.read(passing: ConsoleFailure.self, body)
        } catch let error as ReadSessions.Unavailable {
            throw ConsoleFailure(503, error.message)
        }
    }

    // MARK: live

    /// Server-Sent Events of the feed's task messages in the user's scope, and a comment every
    /// 15 s (a dead connection is noticed; proxies keep it open).
    private func events(for s: WebSession) -> Response {
        let (id, stream) = feed.subscribe(scope: s.user.scope)
        let feed = self.feed
        var headers: HTTPFields = [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store"]
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        return Response(status: .ok, headers: headers, body: .init { writer in
            defer { feed.unsubscribe(id) }
            try await writer.write(ByteBuffer(string: "retry: 2000\n: connected at seq \(feed.lastSeq)\n\n"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                let (beats, beat) = AsyncStream<String>.makeStream()
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: .seconds(Self.heartbeatSeconds))
                        beat.yield(": alive\n\n")
                    }
                }
                group.addTask {
                    for await event in stream { beat.yield(event) }
                    beat.finish()
                }
                for await text in beats { try await writer.write(ByteBuffer(string: text)) }
                group.cancelAll()
            }
            try await writer.finish(nil)
        })
    }

    // MARK: actions

    private func act(_ request: Request, taskID: String) async -> Response {
        guard let (s, _) = session(request) else { return Self.failure(ConsoleFailure(401, "log in first (POST /login)")) }
        var actionName = "?"
        do {
            guard let name = HTTPField.Name("X-CSRF-Token"), request.headers[name] == s.csrf else {
                throw ConsoleFailure(403, "the X-CSRF-Token header must carry the csrf cookie's value")
            }
            var request = request
            let body = try await request.collectBody(upTo: Self.maxBody)
            guard case .object(let o)? = try? JSONValue.parse(Array(body.readableBytesView)),
                  case .string(let text)? = o["action"] else {
                throw ConsoleFailure(400, "send JSON {\"action\": \"accept|note|escalate|resolve|false_alarm\", \"note\": \"...\"}")
            }
            let allowed: [TaskAction] = [.accept, .note, .escalate, .resolve, .falseAlarm]
            guard let action = TaskAction(rawValue: text), allowed.contains(action) else {
                throw ConsoleFailure(400, "action must be one of accept, note, escalate, resolve, false_alarm")
            }
            actionName = action.rawValue
            var note: String? = nil
            switch o["note"] {
            case nil, .null?: break
            case .string(let t)?: note = t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : t
            default: throw ConsoleFailure(400, "note must be a string")
            }
            if [.note, .escalate].contains(action) && note == nil {
                throw ConsoleFailure(400, action == .note ? "write the note first" : "an escalation (督办) needs its reason in the note")
            }
            guard s.user.role == .dispatcher else {
                throw ConsoleFailure(403, "\(s.user.name) is a viewer: only a dispatcher acts on tasks")
            }
            let id = taskID
            guard let division = try await read({ db in try ConsoleStore.division(db, task: id) }) else {
                throw ConsoleFailure(404, "no task \(taskID.prefix(40))")
            }
            guard division.hasPrefix(s.user.scope) else {
                throw ConsoleFailure(403, "task \(taskID) is at \(division), outside your scope \(s.user.scope)")
            }
            let updateID = UUID().uuidString.lowercased()
            let update = TaskUpdate.encode(updateID: updateID, taskID: taskID, action: action, actor: s.user.name,
                                           at: Date().timeIntervalSince1970, note: note)
            guard let answer = await updates.send(update, id: updateID, timeout: answerTimeout) else {
                throw ConsoleFailure(503, "liandongd did not answer within \(Int(answerTimeout)) s; look at the task before trying again")
            }
            guard answer.ok else { throw ConsoleFailure(409, answer.error ?? "refused by liandongd") }
            metrics.counter("liandong_console_actions_total", [("action", actionName), ("outcome", "ok")]).increment()
            logger.info("task action", metadata: ["console.user": "\(s.user.name)", "task.id": "\(taskID)", "task.action": "\(actionName)"])
            return Self.json(Self.object([("ok", true), ("update_id", updateID)]))
        } catch let failure as ConsoleFailure {
            let outcome = switch failure.code {
            case 403: "forbidden"
            case 409: "refused"
            case 503: "unanswered"
            default: "invalid"
            }
            metrics.counter("liandong_console_actions_total", [("action", actionName), ("outcome", outcome)]).increment()
            return Self.failure(failure)
        } catch {
            return Self.failure(error)
        }
    }

    // MARK: answers

    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func failure(_ error: any Error) -> Response {
        let failure = error as? ConsoleFailure ?? ConsoleFailure(500, "internal error")
        return json(object([("ok", false), ("error", failure.message)]), status: .init(code: failure.code))
    }

    static func object(_ fields: [(String, any Sendable)]) -> String {
        var out = JSONText()
        out.object { o in
            for (k, v) in fields {
                switch v {
                case let b as Bool: o.field(k) { $0.raw(b ? "true" : "false") }
                default: o.field(k, "\(v)")
                }
            }
        }
        return out.text
    }

    /// The page and its files: same origin only, no framing.
    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!: "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
    ]

    static func page(_ html: String, status: HTTPResponse.Status) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func asset(_ text: String, type: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ to: String) -> Response {
        Response(status: .seeOther, headers: [.location: to])
    }

    static func randomHex(_ bytes: Int) -> String {
        var g = SystemRandomNumberGenerator()
        return Hex.lowercase((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &g) })
    }
}
