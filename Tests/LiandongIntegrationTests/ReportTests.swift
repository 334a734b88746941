import Foundation
import LibPQ
import LiandongCore
import Testing

/// `liandongd report` as the office preparing the assessment meeting sees it: rendered by a real
/// browser (headless Chromium, which tools/test installs) at A4 width.
@Suite("Assessment report")
struct ReportTests {
    /// Headless Chromium's binary (the Debian wrapper script prints noise on every start).
    static var chromium: String? {
        ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs Chromium headless on `file` at A4 width (794 CSS px at 96 dpi) with `arguments`.
    static func chromium(_ arguments: [String], file: String, height: Int = 1123) throws -> CLIResult {
        guard let binary = chromium else { throw TestFailure("no chromium: tools/test installs it (apt-get install chromium)") }
        return try runCaptured(binary, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                                        "--user-data-dir=\(Scratch.directory)/chromium-\(getpid())",
                                        "--window-size=794,\(height)"] + arguments + ["file://" + file])
    }

    @Test("a day of tasks: the HTML has one shape per grid, the ranking equals liandong.assessment(), nothing overflows A4; CSV for every table")
    func rendered() throws {
        // Deadlines of seconds: tasks nobody answers climb to the county and are overdue there.
        let s = try Scene(environment: [
            "LIANDONG_SLA_VILLAGE_RESPOND_MINUTES": "0.02,0.02,0.02,0.02", "LIANDONG_SLA_TOWNSHIP_RESPOND_MINUTES": "0.02,0.02,0.02,0.02",
            "LIANDONG_SLA_COUNTY_RESPOND_MINUTES": "0.02,0.02,0.02,0.02", "LIANDONG_ESCALATION_SWEEP_MS": "100",
            "LIANDONG_CORRELATION_UPDATE_INTERVAL_S": "0",
        ])
        let spots = try s.db.query("""
            SELECT grid_code FROM liandong.grids WHERE grid_code LIKE '620922102%' ORDER BY grid_code LIMIT 5
            """).rows.map { try Scene.centre(of: $0[0]!, s.db) }
        let now = Date().timeIntervalSince1970
        for (i, spot) in spots.enumerated() {
            try s.send("alert", Wire.alert(id: "rep-a\(i)", method: 5, type: i % 2 == 0 ? 6 : 10, priority: 3, at: now, position: spot))
        }
        try s.send("report", Wire.report(id: "rep-r0", category: "闯入", severity: 2, at: now, position: spots[0]))
        try s.daemon.waitUntil(timeout: 10, "five tasks") { try s.count("SELECT count(*) FROM liandong.tasks") == 5 }
        let d = try Dispatcher(s.daemon)
        let tasks = try s.db.query("SELECT t.id FROM liandong.tasks t ORDER BY t.grid_code").rows.map { $0[0]! }
        #expect(try d.send(tasks[1], "accept")["ok"] as? Bool == true)
        #expect(try d.send(tasks[1], "resolve")["ok"] as? Bool == true)
        #expect(try d.send(tasks[2], "false_alarm")["ok"] as? Bool == true)
        // All three unanswered tasks marked overdue at the county: from then on the overdue list is stable.
        try s.daemon.waitUntil(timeout: 30, "tasks overdue at the county") {
            try s.count("SELECT count(*) FROM liandong.tasks WHERE overdue") == 3
        }

        let today = String(Timestamp.formatCST(now).prefix(10))
        let out = Scratch.directory + "/report-\(UUID().uuidString.prefix(8))"
        let made = try liandongd(["report", "--from", today, "--to", today, "--out", out], database: s.daemon.database)
        #expect(made.status == 0, "\(made.stdout) \(made.stderr)")
        #expect(made.stdout.contains("report.html") && made.stdout.contains("767 grids"))
        for name in ["report.html", "ranking.csv", "daily.csv", "overdue.csv", "grids.csv"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + name), "\(name)")
        }
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"), "self-contained, no script")

        // What a browser shows: a script added to a copy collects what a person would see.
        let probe = """
            <script>
            const rows = [...document.querySelectorAll('table.ranking tr[data-division]')]
                .map(tr => [tr.dataset.division, ...[...tr.cells].map(c => c.textContent.trim())]);
            const width = document.documentElement.clientWidth;
            const overflowing = [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > width + 0.5).map(e => e.tagName + '.' + e.className);
            const out = document.createElement('script');
            out.type = 'application/json'; out.id = 'probe';
            out.textContent = JSON.stringify({grids: document.querySelectorAll('svg.map path.grid').length,
              points: document.querySelectorAll('svg.map circle.incident').length,
              mapWidth: document.querySelector('svg.map').getBoundingClientRect().width,
              scrollWidth: document.documentElement.scrollWidth, width, overflowing, rows,
              overdueRows: document.querySelectorAll('table.overdue tr[data-task]').length});
            document.body.append(out);
            </script>
            """
        let check = out + "/check.html"
        try html.replacingOccurrences(of: "</body>", with: probe + "</body>").write(toFile: check, atomically: true, encoding: .utf8)
        let dom = try Self.chromium(["--virtual-time-budget=3000", "--dump-dom"], file: check)
        #expect(dom.status == 0, "\(dom.stderr.suffix(500))")
        guard let start = dom.stdout.range(of: "<script type=\"application/json\" id=\"probe\">"),
              let end = dom.stdout.range(of: "</script>", range: start.upperBound..<dom.stdout.endIndex)
        else { throw TestFailure("no probe in the rendered DOM: \(dom.stdout.suffix(300)) \(dom.stderr.suffix(300))") }
        let seen = try JSONSerialization.jsonObject(with: Data(dom.stdout[start.upperBound..<end.lowerBound].utf8)) as! [String: Any]

        #expect(seen["grids"] as? Int == 767, "one shape per grid")
        let incidents = try s.count("SELECT count(*) FROM liandong.incidents")
        let overdue = try s.count("SELECT count(*) FROM liandong.overdue_tasks")
        #expect(seen["points"] as? Int == incidents)
        #expect((seen["mapWidth"] as? Double ?? 0) > 600, "the map fills the page's width")
        #expect(seen["scrollWidth"] as? Int == seen["width"] as? Int, "nothing wider than A4")
        #expect((seen["overflowing"] as? [String])?.isEmpty == true, "\(seen["overflowing"] ?? "")")
        #expect(seen["overdueRows"] as? Int == overdue && overdue == 3)
        // The ranking's numbers are the SQL function's, township by township.
        let sql = try s.db.query("""
            SELECT division_code, tasks_received, accepted_on_time_pct, resolved_on_time_pct, median_minutes_to_accept, resolved,
                   escalations, false_alarms
            FROM liandong.assessment($1::date, $1::date) WHERE level IN ('township', 'county')
            """, [today])
        let rows = (seen["rows"] as? [[String]]) ?? []
        // Every township is ranked, those without a task too (zeros).
        let townships = try s.count("SELECT count(*) FROM liandong.divisions WHERE level = 'township'")
        #expect(rows.count == townships + 1 && sql.count >= 2 && sql.count < townships + 1, "\(rows)")
        for i in 0..<sql.count {
            let code = sql[i, "division_code"]!
            let row = try #require(rows.first { $0[0] == code })
            #expect(Array(row[3...]) == ["tasks_received", "accepted_on_time_pct", "resolved_on_time_pct", "median_minutes_to_accept",
                                         "resolved", "escalations", "false_alarms"].map { sql[i, $0] ?? "" }, "\(code)")
        }
        let divisions = try s.count("""
            SELECT count(*) FROM liandong.divisions d
            WHERE d.level = 'township' OR d.code IN (SELECT division_code FROM liandong.assessment('\(today)', '\(today)'))
            """)
        let ranking = try String(contentsOfFile: out + "/ranking.csv", encoding: .utf8)
        #expect(ranking.split(separator: "\n").count == 1 + divisions)
        // Excel on a Chinese desktop needs the byte order mark to read UTF-8; names beside codes.
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/ranking.csv")).prefix(3)) == [0xEF, 0xBB, 0xBF])
        #expect(ranking.trimmingPrefix("\u{FEFF}").hasPrefix("division_code,division_name"))
        let grids = try String(contentsOfFile: out + "/grids.csv", encoding: .utf8)
        #expect(grids.split(separator: "\n").count == 768 && grids.trimmingPrefix("\u{FEFF}").hasPrefix("grid_code,grid_name,village_code,village_name"))
        #expect(grids.contains("\(Scene.ruralGrid),\(try #require(try s.db.query("SELECT name FROM liandong.grids WHERE grid_code = $1", [Scene.ruralGrid]).scalar))"))
        // No camera ever registered: the online rate is unknown, not 0 %.
        #expect(html.contains("<b>无数据 no data</b>") && !html.contains(">0.0%<"), "the camera online card")
        #expect(html.contains("闯入 intrusion") || html.contains("火情 fire"), "categories by name")

        // An operator login runs it too, and its report holds its scope only.
        let role = "ld_rep_\(UUID().uuidString.lowercased().prefix(8))"
        #expect(try liandongd(["operator", "grant", role, "--scope", "620922102"], database: s.daemon.database).status == 0)
        // Without --division: its own scope (it sees no county to default to).
        let scoped = try liandongd(["report", "--from", today, "--to", today, "--out", out + "/township"],
                                   database: s.daemon.database.replacingOccurrences(of: "user=postgres", with: "user=\(role)"))
        #expect(scoped.status == 0, "\(scoped.stdout) \(scoped.stderr)")
        let township = try String(contentsOfFile: out + "/township/grids.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(!township.isEmpty && township.allSatisfy { $0.hasPrefix("620922102") })

        // A week: the last day's axis label ends at its point instead of running off the picture.
        let weekAgo = String(Timestamp.formatCST(now - 6 * 86_400).prefix(10))
        #expect(try liandongd(["report", "--from", weekAgo, "--to", today, "--out", out + "/week"], database: s.daemon.database).status == 0)
        let week = try String(contentsOfFile: out + "/week/report.html", encoding: .utf8)
        #expect(week.contains("text-anchor=\"end\">\(today.suffix(5))</text>") && week.contains("text-anchor=\"start\">\(weekAgo.suffix(5))</text>"))

        // And as a picture: Chromium draws it (the README's picture is made this way, by tools/demo).
        let png = out + "/report.png"
        let shot = try Self.chromium(["--screenshot=\(png)"], file: out + "/report.html", height: 2400)
        let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
        #expect(shot.status == 0 && size > 50_000, "screenshot \(size) bytes: \(shot.stderr.suffix(300))")
    }

    @Test("bad periods and divisions are refused with the option named")
    func refusals() throws {
        let url = try TestDatabase.create()
        let backwards = try liandongd(["report", "--from", "2026-12-02", "--to", "2026-12-01", "--out", "/tmp/x"], database: url)
        #expect(backwards.status != 0 && backwards.stderr.contains("--from 2026-12-02 is after --to 2026-12-01"))
        let notADate = try liandongd(["report", "--from", "yesterday", "--to", "2026-12-01", "--out", "/tmp/x"], database: url)
        #expect(notADate.status != 0 && notADate.stderr.contains("--from yesterday: a date, YYYY-MM-DD"))
        let nowhere = try liandongd(["report", "--from", "2026-12-01", "--to", "2026-12-01", "--division", "999999", "--out", "/tmp/x"],
                                    database: url)
        #expect(nowhere.status != 0 && nowhere.stderr.contains("--division 999999: no such division"))
    }
}
