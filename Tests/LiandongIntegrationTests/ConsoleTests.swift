import Foundation
import LibPQ
import LiandongCore
import Testing

/// liandong-console in a real browser (headless Chromium over WebDriver) and over plain HTTP, in
/// front of a real liandongd: the live queue, its countdowns and colours, the note that survives
/// live updates, the four actions recorded with the user's name, scopes, and the login's rules.
@Suite("The duty officer's console", .serialized)
struct ConsoleTests {
    /// A grid of another township than the scene's (三道沟镇 620922102).
    static func otherTownshipGrid(_ s: Scene) throws -> (String, LonLat) {
        let grid = try #require(try s.db.query("SELECT grid_code FROM liandong.grids WHERE grid_code NOT LIKE '620922102%' ORDER BY grid_code LIMIT 1").scalar)
        return (grid, try Scene.centre(of: grid, s.db))
    }

    /// Grids of the scene's township, away from its centre grid (each alert there opens its own incident).
    static func townshipGrids(_ s: Scene, count: Int) throws -> [LonLat] {
        try s.db.query("""
            SELECT grid_code FROM liandong.grids WHERE grid_code LIKE '620922102%' AND grid_code <> $1
            ORDER BY ST_Distance(ST_Centroid(geom)::geography, (SELECT ST_Centroid(geom)::geography FROM liandong.grids WHERE grid_code = $1)) DESC
            LIMIT \(count)
            """, [Scene.ruralGrid]).rows.map { try Scene.centre(of: $0[0]!, s.db) }
    }

    static func login(_ b: Browser, _ console: ConsoleProcess, _ user: String) throws {
        try b.open(console.base + "/console")
        try b.waitFor("the login form (redirected from /console)", "return location.pathname === '/login' && !!document.getElementById('user')")
        try b.type("#user", user)
        try b.type("#password", ConsoleProcess.password)
        try b.click("#login")
        try b.waitFor(timeout: 15, "the console live", "return location.pathname === '/console' && document.getElementById('live').classList.contains('on')")
    }

    static let rowIDs = "return Array.from(document.querySelectorAll('tr[data-task-id]')).map(r => r.dataset.taskId)"

    @Test("in a browser: an alert's task appears live, its countdown runs, a note typed while new tasks arrive is kept and nothing re-sorts under it, and the four actions land in task_history with the user's name; no request leaves the origin")
    func livePage() throws {
        let s = try Scene()
        let console = try ConsoleProcess(daemon: s.daemon, users: [("王值班", "dispatcher", "620922")])
        let b = try Browser()
        try Self.login(b, console, "王值班")
        try b.run("window.__sameDocument = 42")
        let sent = Date()
        try s.send("alert", Wire.alert(id: "con-1", at: s.now, position: s.centre))
        try b.waitFor(timeout: 10, "the alert's task on the page", "return document.querySelectorAll('tr[data-task-id]').length === 1")
        let shown = Date().timeIntervalSince(sent)
        let taskID = try #require(try s.db.query("SELECT id FROM liandong.tasks").scalar)
        #expect(try b.run(Self.rowIDs) as? [String] == [taskID])
        #expect(try b.run("return window.__sameDocument") as? Int == 42, "the page was reloaded")
        print("console: alert -> row on the page in \(Int(shown * 1000)) ms")
        // The countdown runs in the browser.
        let first = try b.string("return document.querySelector('tr[data-task-id] td.cd').textContent")
        try b.waitFor(timeout: 5, "the countdown to move", "return document.querySelector('tr[data-task-id] td.cd').textContent !== arguments[0]", [first])
        #expect(first.contains(":"))
        // Select it and start typing a note; new tasks arrive meanwhile.
        try b.click("tr[data-task-id]")
        try b.waitFor("the task's detail", "return document.getElementById('detail-task-id').textContent === arguments[0] && document.getElementById('detail-history').children.length > 0", [taskID])
        let note = "已电话联系网格员 called the grid worker, on his way"
        try b.type("#note", note)
        for (i, p) in try Self.townshipGrids(s, count: 3).enumerated() {
            try s.send("alert", Wire.alert(id: "con-more-\(i)", at: s.now, position: p))
        }
        // Every task that arrived live since the queue was sorted is announced: the first and these three.
        try b.waitFor(timeout: 10, "four new tasks announced", "return document.getElementById('new-banner').textContent.startsWith('4 new')")
        let rows = try #require(try b.run(Self.rowIDs) as? [String])
        #expect(rows.count == 4 && rows.first == taskID, "the first row moved: \(rows)")
        #expect(try b.string("return document.getElementById('note').value") == note)
        #expect(try b.run("return document.querySelectorAll('tr.fresh').length") as? Int == 4)
        // The note, then the other actions, from the page.
        try b.click("button[data-action=note]")
        try b.waitFor("the note acknowledged", "return document.getElementById('action-result').className === 'ok'")
        let noted = try s.db.query("SELECT actor, note FROM liandong.task_history WHERE task_id = $1 AND event = 'noted'", [taskID])
        #expect(noted.count == 1 && noted[0, "actor"] == "王值班" && noted[0, "note"] == note)
        #expect(try b.string("return document.getElementById('note').value") == "")
        func act(_ action: String, note: String?, event: String) throws {
            try b.run("document.getElementById('action-result').className = ''")
            if let note { try b.type("#note", note) }
            try b.click("button[data-action=\(action)]")
            try b.waitFor("\(action) acknowledged", "return document.getElementById('action-result').className === 'ok'")
            #expect(try s.count("SELECT count(*) FROM liandong.task_history WHERE task_id = '\(taskID)' AND event = '\(event)' AND actor = '王值班'") == 1,
                    "no \(event) by 王值班")
        }
        try act("escalate", note: "村里无人签收 nobody at the village answers", event: "escalated")
        #expect(try s.db.query("SELECT tier FROM liandong.tasks WHERE id = $1", [taskID]).scalar == "township")
        try b.waitFor("the row's tier updated in place", "return document.querySelector('tr[data-task-id=\"' + arguments[0] + '\"]').children[1].textContent.includes('township')", [taskID])
        // An escalate without its reason is refused by the console, and nothing is sent.
        try b.click("button[data-action=escalate]")
        try b.waitFor("the refusal shown", "return document.getElementById('action-result').className === 'bad'")
        #expect(try b.string("return document.getElementById('action-result').textContent").contains("reason"))
        try act("accept", note: nil, event: "accepted")
        try act("resolve", note: "已处置 handled", event: "resolved")
        try b.waitFor("the resolved row struck through in place", "return document.querySelector('tr[data-task-id=\"' + arguments[0] + '\"]').classList.contains('closed')", [taskID])
        #expect(try b.run(Self.rowIDs) as? [String] == rows)
        // The history on the page names the officer.
        try b.waitFor("the history with the officer", "return document.getElementById('detail-history').textContent.includes('resolved') && document.getElementById('detail-history').textContent.includes('王值班')")
        // Every request the page made went to the console's own origin.
        let urls = try #require(try b.run("return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).map(e => e.name)") as? [String])
        #expect(urls.count >= 4 && urls.allSatisfy { $0.hasPrefix(console.base + "/") }, "\(urls)")
        // (An open EventSource is listed only once it ends; the page's files and reads are.)
        #expect(urls.contains { $0.hasSuffix("/console.js") } && urls.contains { $0.hasSuffix("/api/map") } && urls.contains { $0.hasSuffix("/api/snapshot") })
        // The map draws the county's grids offline and the open tasks on them.
        let paths = try b.run("return document.querySelectorAll('#map path').length") as? Int
        #expect(paths == (try s.count("SELECT count(*) FROM liandong.grids WHERE grid_code LIKE '620922%'")))
        try b.waitFor("the three open tasks on the map", "return document.querySelectorAll('#map circle').length === 3")
    }

    @Test("in a browser: an overdue task is red in the queue, on the map and in the strip; a task within a quarter of its time is yellow")
    func colours() throws {
        let sla = "0.05,0.05,0.05,0.05"
        let s = try Scene(environment: ["LIANDONG_SLA_VILLAGE_RESPOND_MINUTES": sla, "LIANDONG_SLA_TOWNSHIP_RESPOND_MINUTES": sla,
                                        "LIANDONG_SLA_COUNTY_RESPOND_MINUTES": sla, "LIANDONG_ESCALATION_SWEEP_MS": "200"])
        let console = try ConsoleProcess(daemon: s.daemon, users: [("duty", "viewer", "620922")])
        let b = try Browser()
        try Self.login(b, console, "duty")
        #expect(try b.run("return document.getElementById('actions').hidden && !document.getElementById('read-only').hidden") as? Bool == true)
        try s.send("alert", Wire.alert(id: "late-1", at: s.now, position: s.centre))
        try s.daemon.waitUntil(timeout: 30, "the task overdue at the county") { try s.count("SELECT count(*) FROM liandong.tasks WHERE overdue") == 1 }
        try b.waitFor(timeout: 10, "the overdue row red", "const r = document.querySelector('tr[data-task-id]'); return !!r && r.classList.contains('late') && r.children[1].textContent.includes('county')")
        try b.waitFor(timeout: 5, "the overdue point red", "return document.querySelectorAll('#map circle.late').length === 1")
        try b.waitFor(timeout: 20, "the strip counting it", "return document.getElementById('s-overdue').textContent === '1'")
        #expect(try b.string("return getComputedStyle(document.querySelector('tr.late td.cd')).color") == "rgb(255, 123, 114)")
        // The page's rule: yellow within the last quarter of the time it was given, red past it.
        #expect(try b.string("return urgency({state: 'open', respond_by: now() + 10, resolve_by: now() + 999, handed_at: now() - 90, overdue: false})") == "soon")
        #expect(try b.string("return urgency({state: 'open', respond_by: now() + 60, resolve_by: now() + 999, handed_at: now() - 90, overdue: false})") == "")
        #expect(try b.string("return urgency({state: 'accepted', respond_by: now() - 60, resolve_by: now() - 1, handed_at: now() - 90, overdue: false})") == "late")
    }

    @Test("a township's dispatcher sees and receives only its township, in the browser and over the API; viewers and other scopes cannot act")
    func scope() throws {
        let s = try Scene()
        let console = try ConsoleProcess(daemon: s.daemon, users: [("li", "dispatcher", "620922102"), ("look", "viewer", "620922"),
                                                                   ("zhao", "dispatcher", "620922103")])
        let b = try Browser()
        try Self.login(b, console, "li")
        let (otherGrid, otherCentre) = try Self.otherTownshipGrid(s)
        try s.send("alert", Wire.alert(id: "out-1", at: s.now, position: otherCentre))
        try s.daemon.waitUntil(timeout: 10, "the other township's task") { try s.count("SELECT count(*) FROM liandong.tasks") == 1 }
        try s.send("alert", Wire.alert(id: "in-1", at: s.now, position: s.centre))
        try s.daemon.waitUntil(timeout: 10, "both tasks") { try s.count("SELECT count(*) FROM liandong.tasks") == 2 }
        let inside = try #require(try s.db.query("SELECT id FROM liandong.tasks WHERE grid_code = $1", [Scene.ruralGrid]).scalar)
        let outside = try #require(try s.db.query("SELECT id FROM liandong.tasks WHERE grid_code = $1", [otherGrid]).scalar)
        try b.waitFor(timeout: 10, "the township's task", "return document.querySelectorAll('tr[data-task-id]').length >= 1")
        #expect(try b.run(Self.rowIDs) as? [String] == [inside])
        #expect(try b.run("return document.querySelectorAll('#map path').length") as? Int
                == (try s.count("SELECT count(*) FROM liandong.grids WHERE grid_code LIKE '620922102%'")))
        // The snapshot after a reload is scoped the same way.
        try b.open(console.base + "/console")
        try b.waitFor("the reloaded queue", "return document.querySelectorAll('tr[data-task-id]').length === 1")
        #expect(try b.run(Self.rowIDs) as? [String] == [inside])
        // Over the API.
        let li = try console.login("li"), look = try console.login("look"), zhao = try console.login("zhao")
        let snapshot = try console.get("/api/snapshot", as: li).object
        #expect((snapshot["tasks"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [inside])
        #expect(try (console.get("/api/snapshot", as: look).object["tasks"] as? [Any])?.count == 2)
        #expect(try console.get("/api/tasks/\(outside)", as: li).status == 404)
        let foreign = try console.act(outside, "accept", as: li)
        #expect(foreign.status == 403 && foreign.body.contains("outside your scope"))
        let viewer = try console.act(inside, "accept", as: look)
        #expect(viewer.status == 403 && viewer.body.contains("viewer"))
        #expect(try console.act(inside, "accept", as: zhao).status == 403)
        #expect(try s.count("SELECT count(*) FROM liandong.task_history WHERE event = 'accepted'") == 0)
        let ok = try console.act(inside, "accept", as: li)
        #expect(ok.status == 200, "\(ok.body)")
        #expect(try s.db.query("SELECT actor FROM liandong.task_history WHERE event = 'accepted' AND task_id = $1", [inside]).scalar == "li")
        // The daemon's own refusal comes back as it is.
        let twice = try console.act(inside, "accept", as: li)
        #expect(twice.status == 409 && twice.body.contains("already accepted"), "\(twice.body)")
        // 督办 from the page: to the township (still its scope: the row follows), then to the county
        // (out of the township's scope: the row says it left).
        try b.click("tr[data-task-id]")
        try b.waitFor("the task's detail", "return document.getElementById('detail-history').children.length > 0")
        for (reason, division) in [("村里无人签收 nobody at the village", "620922102"), ("需县级协调 needs the county", "620922")] {
            try b.run("document.getElementById('action-result').className = ''")
            try b.type("#note", reason)
            try b.click("button[data-action=escalate]")
            try b.waitFor("the escalation answered", "return document.getElementById('action-result').className !== ''")
            #expect(try b.string("return document.getElementById('action-result').textContent").contains("done"))
            #expect(try s.db.query("SELECT division_code FROM liandong.tasks WHERE id = $1", [inside]).scalar == division)
            if division == "620922102" {
                try b.waitFor("the row at the township", "return document.querySelector('tr[data-task-id]').children[1].textContent.includes('township')")
            }
        }
        try b.waitFor("the row marked as gone up", "const r = document.querySelector('tr[data-task-id]'); return r.classList.contains('closed') && r.querySelector('td.state').textContent.startsWith('left your scope')")
        #expect(try s.count("SELECT count(*) FROM liandong.task_history WHERE event = 'escalated' AND actor = 'li' AND task_id = '\(inside)'") == 2)
    }

    @Test("login and API rules: 401 without a session, cookies HttpOnly and SameSite=Strict, CSRF header required, logins rate-limited, same-origin policy; user add checks its input and writes a 0600 file")
    func rules() throws {
        let s = try Scene()
        let console = try ConsoleProcess(daemon: s.daemon, users: [("duty", "dispatcher", "620922")])
        for path in ["/api/snapshot", "/api/map", "/api/events", "/api/me"] {
            #expect(try http(port: console.port, "GET", path).status == 401, "\(path)")
        }
        let page = try http(port: console.port, "GET", "/console")
        #expect(page.status == 303 && page.headers["location"] == "/login")
        let login = try http(port: console.port, "GET", "/login")
        #expect(login.headers["content-security-policy"]?.contains("default-src 'self'") == true && login.headers["content-security-policy"]?.contains("frame-ancestors 'none'") == true)
        let form = ["Content-Type": "application/x-www-form-urlencoded"]
        let wrong = try http(port: console.port, "POST", "/login", headers: form, body: Array("user=duty&password=nope".utf8))
        #expect(wrong.status == 401 && wrong.rawSetCookies.isEmpty && wrong.body.contains("wrong password"))
        let good = try http(port: console.port, "POST", "/login", headers: form,
                            body: Array(Open311Process.form(["user": "duty", "password": ConsoleProcess.password]).utf8))
        #expect(good.status == 303 && good.headers["location"] == "/console")
        let sessionCookie = try #require(good.rawSetCookies.first { $0.hasPrefix("liandong_session=") })
        #expect(sessionCookie.contains("HttpOnly") && sessionCookie.contains("SameSite=Strict"))
        #expect(good.rawSetCookies.contains { $0.hasPrefix("csrf=") && $0.contains("SameSite=Strict") && !$0.contains("HttpOnly") })
        let me = try console.login("duty")
        #expect(try console.get("/api/me", as: me).object["role"] as? String == "dispatcher")
        // The strip's figures, on a known scene.
        try s.send("alert", Wire.alert(id: "r-1", at: s.now, position: s.centre))
        try s.daemon.waitUntil(timeout: 10, "the task") { try s.count("SELECT count(*) FROM liandong.tasks") == 1 }
        let task = try #require(try s.db.query("SELECT id FROM liandong.tasks").scalar)
        #expect(try (console.get("/api/snapshot?only=strip", as: me).object["tasks"] as? [Any])?.isEmpty == true)
        let strip = try #require(try console.get("/api/snapshot", as: me).object["strip"] as? [String: Any])
        #expect(strip["open"] as? Int == 1 && strip["new"] as? Int == 1 && strip["closed"] as? Int == 0 && strip["overdue"] as? Int == 0)
        let ranked = try #require(strip["ranked"] as? [[String: Any]])
        #expect(ranked.count == (try s.count("SELECT count(*) FROM liandong.divisions WHERE parent_code = '620922'")))
        #expect(ranked.first { $0["code"] as? String == "620922102" }?["open"] as? Int == 1)
        // CSRF: without the header, or with another value, nothing is done.
        #expect(try console.act(task, "accept", as: me, csrf: "").status == 403)
        #expect(try console.act(task, "accept", as: me, csrf: "forged").status == 403)
        #expect(try console.act(task, "reject", note: "x", as: me).status == 400)
        #expect(try console.act(task, "note", as: me).status == 400)
        #expect(try console.act("not-a-task", "accept", as: me).status == 404)
        #expect(try s.count("SELECT count(*) FROM liandong.task_history WHERE event <> 'created'") == 0)
        #expect(try console.act(task, "false_alarm", note: "树影 a shadow", as: me).status == 200)
        #expect(try s.db.query("SELECT state FROM liandong.tasks").scalar == "false_alarm")
        // Logins are limited per name: the 11th attempt in a minute is 429, even with the right password.
        var codes: [Int] = []
        for _ in 0..<11 {
            codes.append(try http(port: console.port, "POST", "/login", headers: form, body: Array("user=ghost&password=nope".utf8)).status)
        }
        #expect(codes.prefix(10).allSatisfy { $0 == 401 } && codes.last == 429, "\(codes)")
        // A name nobody has (perhaps a password typed into the wrong box) is not logged as typed.
        try waitUntil(timeout: 5, "the refusals logged") { console.log.contains("(unknown name)") }
        #expect(!console.log.contains("ghost"))
        let metrics = try http(port: console.port, "GET", "/metrics").body
        #expect(metrics.contains("liandong_console_logins_total{outcome=\"limited\"} 1"))
        #expect(metrics.contains("liandong_console_actions_total{action=\"false_alarm\",outcome=\"ok\"} 1"))
        #expect(metrics.contains("liandong_console_live_pages 0"))
        // user add: bad input refused, the file stays 0600; the password is not in it.
        for (args, why) in [(["user", "add", "x y", "--role", "viewer", "--scope", "620922"], "no spaces"),
                            (["user", "add", "zhang", "--role", "boss", "--scope", "620922"], "--role"),
                            (["user", "add", "zhang", "--role", "viewer", "--scope", "6209"], "division code")] {
            let r = try ConsoleProcess.run(console.environment, args, input: ConsoleProcess.password + "\n")
            #expect(r.status != 0 && r.output.contains(why), "\(args): \(r.output)")
        }
        let short = try ConsoleProcess.run(console.environment, ["user", "add", "zhang", "--role", "viewer", "--scope", "620922"], input: "short\n")
        #expect(short.status != 0 && short.output.contains("at least 8"))
        let attributes = try FileManager.default.attributesOfItem(atPath: console.usersFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let file = try String(contentsOfFile: console.usersFile, encoding: .utf8)
        #expect(file.contains("duty dispatcher 620922 $y$") && !file.contains(ConsoleProcess.password))
        let list = try ConsoleProcess.run(console.environment, ["user", "list"])
        #expect(list.status == 0 && list.output == "duty\tdispatcher\t620922\n")
        #expect(console.stop() == 0)
    }
}
