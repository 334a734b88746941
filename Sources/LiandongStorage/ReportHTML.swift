import Foundation
import LiandongCore

/// The assessment report as one self-contained HTML page (inline CSS and SVG: no script, no
/// font, no map tile from the network) for A4, in Chinese with English labels, and its tables as
/// CSV for spreadsheets.
public enum ReportHTML {
    /// File name -> contents: report.html and one CSV per table.
    public static func files(_ r: AssessmentReport) -> [(name: String, contents: String)] {
        [("report.html", html(r)), ("ranking.csv", rankingCSV(r)), ("daily.csv", dailyCSV(r)), ("overdue.csv", overdueCSV(r)),
         ("grids.csv", gridsCSV(r)), ("residents.csv", residentsCSV(r))]
    }

    /// Townships ranked: resolved on time, then accepted on time (more is better), then fewer escalations.
    public static func ranking(_ r: AssessmentReport) -> [AssessmentReport.Assessment] {
        func pct(_ s: String) -> Double { Double(s) ?? -1 }
        return r.assessment.filter { $0.level == "township" }.sorted {
            (pct($0.resolvedOnTimePct), pct($0.acceptedOnTimePct), -$0.escalations, $1.code)
                > (pct($1.resolvedOnTimePct), pct($1.acceptedOnTimePct), -$1.escalations, $0.code)
        }
    }

    // MARK: HTML

    public static func html(_ r: AssessmentReport) -> String {
        var h = """
            <!DOCTYPE html>
            <html lang="zh-CN"><head><meta charset="utf-8">
            <title>\(esc(r.divisionName)) 综治联动考核报告 \(r.from) – \(r.to)</title>
            <style>\(css)</style></head><body>
            <header><h1>\(esc(r.divisionName)) 综治联动工作考核报告</h1>
            <p class="en">Liandong assessment report · \(esc(r.divisionName)) (\(r.divisionCode)) · \(r.from) – \(r.to) (China Standard Time)</p>
            <p class="meta">生成时间 Generated \(esc(r.generatedAt)) (UTC+8) · 数据来源 liandong.assessment(), overdue_tasks, task_timeline, incidents</p></header>
            <section class="cards">
            """
        let ownRate = r.onlineRates.first { $0.code == r.divisionCode }?.shown ?? "无数据 no data"
        // No position in the period at all: unknown (no workers' app sends positions), not 0 %.
        let ownPatrol = r.patrol.first { $0.code == r.divisionCode && $0.gridDaysPatrolled > 0 }.map { $0.coveragePct + "%" } ?? "无数据 no data"
        for (zh, en, value) in [("事件", "incidents", "\(r.incidentCount)"), ("新建任务", "tasks created", "\(r.taskCount)"),
                                ("上报/督办", "escalations", "\(r.escalationCount)"), ("误报", "false alarms", "\(r.falseAlarmCount)"),
                                ("当前超期", "overdue now", "\(r.overdueCount)"), ("视频在线率", "cameras online", ownRate),
                                ("巡查覆盖率", "patrol coverage", ownPatrol)] {
            h += "<div class=\"card\"><b>\(value)</b><span>\(zh)<br><i>\(en)</i></span></div>"
        }
        h += "</section>\n<h2>事件分布 <i>Where incidents and overdue tasks were</i></h2>\n" + map(r)
        h += "\n<h2>乡镇排名 <i>Townships ranked</i></h2>\n" + rankingTable(r)
        h += "\n<h2>视频在线率 <i>Camera online rate (share of the cameras' time online, mean of the days)</i></h2>\n" + onlineTable(r)
        h += "\n<h2>巡查覆盖率 <i>Patrol coverage (share of the grids' area within 50 m of a patrol track, mean of the days)</i></h2>\n" + patrolTable(r)
        h += "\n<h2>市民诉求 <i>Residents' requests (Open311): answered on time, satisfaction (1-5)</i></h2>\n" + residentsTable(r)
        h += "\n<h2>每日趋势 <i>Day by day</i></h2>\n" + trend(r)
        h += "\n<h2>超期最久的任务 <i>The ten most overdue tasks, with their escalation path</i></h2>\n" + overdueTable(r)
        h += "\n<h2>村（社区） <i>Villages and communities</i></h2>\n" + villageTable(r)
        h += "\n<footer>按时签收/办结：在该级期限内签收、办结的任务占其受理任务的百分比（同一任务每转交一次计一次）。"
            + "<i>On time: share of the tasks a division received that it accepted / resolved before that hand-over's deadline.</i></footer>\n"
        return h + "</body></html>\n"
    }

    static let css = """
        @page { size: A4; margin: 12mm; }
        * { box-sizing: border-box; }
        body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif; font-size: 10pt;
               color: #222; margin: 0 auto; padding: 4mm; max-width: 210mm; }
        h1 { font-size: 17pt; margin: 0 0 2mm; } h2 { font-size: 12.5pt; margin: 6mm 0 2mm; border-bottom: 1px solid #bbb; }
        h2 i, .en, .meta, footer i { font-weight: normal; color: #666; font-style: normal; font-size: 9pt; }
        .meta { margin-top: 0; }
        .cards { display: flex; gap: 2mm; }
        .card { flex: 1; border: 1px solid #ccc; border-radius: 2mm; padding: 1.5mm 2mm; display: flex; flex-direction: column; gap: 0.8mm; }
        .card b { font-size: 15pt; line-height: 1.1; } .card span { font-size: 8pt; line-height: 1.2; } .card i { color: #666; font-style: normal; }
        svg { display: block; width: 100%; height: auto; }
        .legend { display: flex; flex-wrap: wrap; gap: 1mm 4mm; font-size: 8.5pt; margin: 1mm 0; }
        .legend span::before { content: ""; display: inline-block; width: 3mm; height: 3mm; margin-right: 1mm;
                               vertical-align: -0.4mm; background: var(--c); border: 1px solid var(--b, #999); border-radius: var(--r, 0); }
        table { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 8.5pt; page-break-inside: auto; }
        th, td { border: 1px solid #ccc; padding: 0.8mm 1.2mm; text-align: right; overflow-wrap: anywhere; }
        th { background: #f2f2f2; font-weight: normal; } th i { color: #666; font-style: normal; display: block; font-size: 7.5pt; }
        td.t, th.t { text-align: left; }
        tr { page-break-inside: avoid; }
        footer { margin-top: 6mm; font-size: 8pt; color: #444; }
        """

    static let incidentSteps: [(upTo: Int, color: String, label: String)] = [
        (0, "#f4f4f4", "0"), (2, "#fde0c5", "1–2"), (5, "#facba6", "3–5"), (10, "#f59e72", "6–10"), (Int.max, "#e4572e", "> 10"),
    ]

    static let categoryColors: [String: String] = [
        "intrusion": "#1f77b4", "crowd": "#9467bd", "fire": "#d62728", "fight": "#8c564b", "traffic": "#ff7f0e",
        "loitering": "#17becf", "left_object": "#bcbd22", "theft": "#7f7f7f", "dispute": "#e377c2", "public_order": "#2ca02c",
        "environment": "#006d2c", "medical": "#08519c", "device_fault": "#636363", "tamper": "#000000",
    ]

    static func map(_ r: AssessmentReport) -> String {
        let (w, s, e, n) = r.bounds
        guard e > w, n > s else { return "<p>没有网格 <i>no grids</i></p>" }
        // Degrees east shrink with latitude: x is scaled by cos(latitude) so the map is not stretched.
        let k = cos((s + n) / 2 * .pi / 180)
        let pad = (n - s) * 0.01
        let box = [(w - pad) * k, -(n + pad), (e - w + 2 * pad) * k, n - s + 2 * pad].map { String(format: "%.6f", $0) }
        var svg = "<svg class=\"map\" viewBox=\"\(box.joined(separator: " "))\" role=\"img\" aria-label=\"grids coloured by incidents\">"
        svg += "<g transform=\"scale(\(String(format: "%.6f", k)),1)\">"
        for g in r.grids {
            let fill = incidentSteps.first { g.incidents <= $0.upTo }!.color
            svg += "<path class=\"grid\" data-grid=\"\(g.code)\" data-incidents=\"\(g.incidents)\" data-overdue=\"\(g.overdue)\" "
                + "d=\"\(g.path)\" fill=\"\(fill)\" stroke=\"#999\" stroke-width=\"0.3\" vector-effect=\"non-scaling-stroke\"><title>\(esc(g.villageName)) \(esc(g.name)): "
                + "\(g.incidents) incidents, \(g.overdue) overdue</title></path>"
        }
        // Overdue outlines on top, so neighbours do not hide them.
        for g in r.grids where g.overdue > 0 {
            svg += "<path d=\"\(g.path)\" fill=\"none\" stroke=\"#c00000\" stroke-width=\"1.6\" vector-effect=\"non-scaling-stroke\"/>"
        }
        for t in r.tracks {
            svg += "<path class=\"track\" d=\"\(t)\" fill=\"none\" stroke=\"#2b8cbe\" stroke-width=\"0.7\" stroke-opacity=\"0.8\" vector-effect=\"non-scaling-stroke\"/>"
        }
        let radius = String(format: "%.6f", (n - s) / 300)
        for p in r.points {
            svg += "<circle class=\"incident\" cx=\"\(String(format: "%.6f", p.lon))\" cy=\"\(String(format: "%.6f", -p.lat))\" "
                + "r=\"\(radius)\" fill=\"\(categoryColors[p.category] ?? "#444")\" fill-opacity=\"0.8\"/>"
        }
        svg += "</g></svg>\n<div class=\"legend\">"
        for step in incidentSteps { svg += "<span style=\"--c: \(step.color)\">\(step.label) 起事件 incidents</span>" }
        svg += "<span style=\"--c: #fff; --b: #c00000\">有超期任务 overdue task</span>"
        if !r.tracks.isEmpty { svg += "<span style=\"--c: #2b8cbe; --b: #2b8cbe\">巡查轨迹 patrol tracks</span>" }
        svg += "</div><div class=\"legend\">"
        var counts: [String: Int] = [:]
        for p in r.points { counts[p.category, default: 0] += 1 }
        for (category, count) in counts.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
            svg += "<span style=\"--c: \(categoryColors[category] ?? "#444"); --r: 50%\">\(esc(Rules.categoryLabel(category))) \(count)</span>"
        }
        return svg + "</div>"
    }

    static let assessmentHeader = """
        <th><i>tasks received</i>受理</th><th><i>accepted on time</i>按时签收%</th><th><i>resolved on time</i>按时办结%</th>\
        <th><i>median min to accept</i>签收中位(分)</th><th><i>resolved</i>办结</th><th><i>escalations</i>上报/督办</th><th><i>false alarms</i>误报</th>
        """

    static func assessmentCells(_ a: AssessmentReport.Assessment) -> String {
        "<td>\(a.received)</td><td>\(a.acceptedOnTimePct)</td><td>\(a.resolvedOnTimePct)</td><td>\(a.medianMinutesToAccept)</td>"
            + "<td>\(a.resolved)</td><td>\(a.escalations)</td><td>\(a.falseAlarms)</td>"
    }

    /// The townships' camera online rates, lowest first (the ones to look at), then the division's own.
    static func onlineTable(_ r: AssessmentReport) -> String {
        var t = "<table class=\"online\"><tr><th class=\"t\"><i>township</i>乡镇</th><th><i>cameras</i>摄像机</th><th><i>online</i>在线率</th></tr>"
        let townships = r.onlineRates.filter { $0.level == "township" }.sorted { (Double($0.onlinePct) ?? -1, $0.code) < (Double($1.onlinePct) ?? -1, $1.code) }
        for o in townships + r.onlineRates.filter({ $0.level == "county" }) {
            let name = o.level == "county" ? "\(esc(o.name))（县级 county）" : esc(o.name)
            t += "<tr data-division=\"\(o.code)\"><td class=\"t\">\(name)</td><td>\(o.cameras)</td><td>\(o.shown)</td></tr>"
        }
        if r.onlineRates.isEmpty {
            t += "<tr><td colspan=\"3\" class=\"t\">无摄像机在线数据 <i>no camera status yet (liandong-gb28181 reports it)</i></td></tr>"
        }
        return t + "</table>"
    }

    /// The townships' patrol coverage, lowest first, then the division's own.
    static func patrolTable(_ r: AssessmentReport) -> String {
        var t = "<table class=\"patrol\"><tr><th class=\"t\"><i>township</i>乡镇</th><th><i>grids</i>网格</th>"
            + "<th><i>grid-days patrolled</i>巡查网格·日</th><th><i>km walked</i>巡查里程(km)</th><th><i>hours on patrol</i>巡查时长(h)</th>"
            + "<th><i>coverage</i>覆盖率</th></tr>"
        guard r.patrol.contains(where: { $0.gridDaysPatrolled > 0 }) else {
            return t + "<tr><td colspan=\"6\" class=\"t\">本期无巡查轨迹 <i>no patrol positions in the period (liandong.worker_position.v1)</i></td></tr></table>"
        }
        let townships = r.patrol.filter { $0.level == "township" }.sorted { (Double($0.coveragePct) ?? -1, $0.code) < (Double($1.coveragePct) ?? -1, $1.code) }
        for p in townships + r.patrol.filter({ $0.code == r.divisionCode && $0.level != "township" }) {
            let name = p.code == r.divisionCode && p.level != "township" ? "\(esc(p.name))（\(p.level == "county" ? "县级 county" : "合计 total")）" : esc(p.name)
            t += "<tr data-division=\"\(p.code)\"><td class=\"t\">\(name)</td><td>\(p.grids)</td><td>\(p.gridDaysPatrolled) / \(p.gridDays)</td>"
                + "<td>\(p.km)</td><td>\(p.hours)</td><td>\(p.coveragePct)%</td></tr>"
        }
        return t + "</table>"
    }

    /// Residents' requests by division: requests handed to it, answered on time, ratings and satisfaction.
    static func residentsTable(_ r: AssessmentReport) -> String {
        var t = "<table class=\"residents\"><tr><th class=\"t\"><i>division</i>单位</th><th><i>requests</i>诉求</th>"
            + "<th><i>answered on time</i>按时响应</th><th><i>ratings</i>评价</th><th><i>satisfaction</i>满意度</th>"
            + "<th><i>rated 1-2</i>不满意</th><th><i>reopened</i>重办</th></tr>"
        guard !r.residents.isEmpty else {
            return t + "<tr><td colspan=\"7\" class=\"t\">本期无市民诉求 <i>no residents' requests in the period (liandong-open311)</i></td></tr></table>"
        }
        for x in r.residents {
            t += "<tr data-division=\"\(x.code)\"><td class=\"t\">\(esc(x.name))</td><td>\(x.requests)</td>"
                + "<td>\(x.answeredOnTimePct.isEmpty ? "–" : x.answeredOnTimePct + "%")</td><td>\(x.ratings)</td>"
                + "<td>\(x.satisfaction.isEmpty ? "–" : x.satisfaction)</td><td>\(x.lowRatings)</td><td>\(x.reopened)</td></tr>"
        }
        return t + "</table>"
    }

    static func residentsCSV(_ r: AssessmentReport) -> String {
        csv([["division_code", "division_name", "level", "citizen_requests", "answered_on_time_pct", "ratings", "satisfaction", "low_ratings", "reopened"]]
            + r.residents.map { [$0.code, $0.name, $0.level, String($0.requests), $0.answeredOnTimePct, String($0.ratings), $0.satisfaction,
                                 String($0.lowRatings), String($0.reopened)] })
    }

    static func rankingTable(_ r: AssessmentReport) -> String {
        let ranked = ranking(r)
        var t = "<table class=\"ranking\"><colgroup><col style=\"width:7%\"><col style=\"width:23%\"></colgroup>"
            + "<tr><th><i>rank</i>排名</th><th class=\"t\"><i>township</i>乡镇</th>\(assessmentHeader)</tr>"
        for (i, a) in ranked.enumerated() {
            t += "<tr data-division=\"\(a.code)\"><td>\(i + 1)</td><td class=\"t\">\(esc(a.name))</td>\(assessmentCells(a))</tr>"
        }
        for a in r.assessment where a.level == "county" {
            t += "<tr data-division=\"\(a.code)\"><td></td><td class=\"t\">\(esc(a.name))（县级 county）</td>\(assessmentCells(a))</tr>"
        }
        if ranked.isEmpty { t += "<tr><td colspan=\"9\" class=\"t\">本期无乡镇受理任务 <i>no township received a task</i></td></tr>" }
        return t + "</table>"
    }

    static func villageTable(_ r: AssessmentReport) -> String {
        let names = Dictionary(r.assessment.map { ($0.code, $0.name) }, uniquingKeysWith: { a, _ in a })
        var t = "<table class=\"villages\"><colgroup><col style=\"width:18%\"><col style=\"width:22%\"></colgroup>"
            + "<tr><th class=\"t\"><i>township</i>乡镇</th><th class=\"t\"><i>village</i>村（社区）</th>\(assessmentHeader)</tr>"
        let villages = r.assessment.filter { $0.level == "village" }
        for a in villages {
            let township = names[String(a.code.prefix(9))] ?? String(a.code.prefix(9))
            t += "<tr data-division=\"\(a.code)\"><td class=\"t\">\(esc(township))</td><td class=\"t\">\(esc(a.name))</td>\(assessmentCells(a))</tr>"
        }
        if villages.isEmpty { t += "<tr><td colspan=\"9\" class=\"t\">本期无村级受理任务 <i>no village received a task</i></td></tr>" }
        return t + "</table>"
    }

    static func trend(_ r: AssessmentReport) -> String {
        guard !r.days.isEmpty else { return "" }
        let series: [(label: String, color: String, values: [Int])] = [
            ("事件 incidents", "#e4572e", r.days.map(\.incidents)), ("新建任务 tasks", "#1f77b4", r.days.map(\.tasks)),
            ("办结 resolved", "#2ca02c", r.days.map(\.resolved)), ("上报/督办 escalations", "#9467bd", r.days.map(\.escalations)),
        ]
        let width = 700.0, height = 220.0, left = 44.0, bottom = 24.0, top = 10.0, right = 10.0
        let top1 = max(1, series.flatMap(\.values).max() ?? 1)
        let step = niceStep(Double(top1) / 4)
        let yMax = step * (Double(top1) / step).rounded(.up)
        let n = r.days.count
        func x(_ i: Int) -> Double { left + (n == 1 ? (width - left - right) / 2 : Double(i) * (width - left - right) / Double(n - 1)) }
        func y(_ v: Int) -> Double { height - bottom - Double(v) / yMax * (height - bottom - top) }
        var svg = "<svg class=\"trend\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"daily trend\">"
        var v = 0.0
        while v <= yMax + 0.001 {
            let yy = String(format: "%.1f", height - bottom - v / yMax * (height - bottom - top))
            svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(yy)\" y2=\"\(yy)\" stroke=\"#e5e5e5\"/>"
            svg += "<text x=\"\(left - 4)\" y=\"\(yy)\" font-size=\"10\" text-anchor=\"end\" dominant-baseline=\"middle\">\(Int(v))</text>"
            v += step
        }
        let every = max(1, n / 10)
        for (i, d) in r.days.enumerated() where i % every == 0 || i == n - 1 {
            // The labels at the ends stay inside the picture: the last ends at its point, the first starts there.
            let anchor = n > 1 && i == n - 1 ? "end" : (n > 1 && i == 0 ? "start" : "middle")
            svg += "<text x=\"\(String(format: "%.1f", x(i)))\" y=\"\(height - 6)\" font-size=\"10\" text-anchor=\"\(anchor)\">\(d.day.suffix(5))</text>"
        }
        for s in series {
            let points = s.values.enumerated().map { String(format: "%.1f,%.1f", x($0.offset), y($0.element)) }
            svg += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>"
            for (i, value) in s.values.enumerated() {
                svg += "<circle cx=\"\(String(format: "%.1f", x(i)))\" cy=\"\(String(format: "%.1f", y(value)))\" r=\"2.5\" fill=\"\(s.color)\"/>"
            }
        }
        svg += "</svg><div class=\"legend\">"
        for s in series { svg += "<span style=\"--c: \(s.color)\">\(s.label)</span>" }
        return svg + "</div>"
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        let power = pow(10, (log10(max(raw, 1))).rounded(.down))
        for m in [1.0, 2, 5, 10] where m * power >= raw { return m * power }
        return 10 * power
    }

    static func overdueTable(_ r: AssessmentReport) -> String {
        var t = "<table class=\"overdue\"><colgroup><col style=\"width:14%\"><col style=\"width:9%\"><col style=\"width:6%\">"
            + "<col style=\"width:8%\"><col style=\"width:9%\"><col style=\"width:54%\"></colgroup>"
            + "<tr><th class=\"t\"><i>now at</i>当前责任单位</th><th class=\"t\"><i>category</i>类别</th><th><i>priority</i>等级</th>"
            + "<th><i>missed</i>超期环节</th><th><i>minutes late</i>超期(分)</th><th class=\"t\"><i>path (escalations)</i>流转经过</th></tr>"
        for o in r.overdue {
            t += "<tr data-task=\"\(o.taskID)\"><td class=\"t\">\(esc(o.divisionName))</td><td class=\"t\">\(esc(Rules.categoryLabel(o.category)))</td>"
                + "<td>\(o.priority)</td><td>\(o.missed == "respond" ? "签收" : "办结")</td><td>\(o.minutesLate)</td>"
                + "<td class=\"t\">\(esc(o.path))</td></tr>"
        }
        if r.overdue.isEmpty { t += "<tr><td colspan=\"6\" class=\"t\">当前无超期任务 <i>nothing overdue</i></td></tr>" }
        return t + "</table>"
    }

    static func esc(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    // MARK: CSV

    /// RFC 4180 with a UTF-8 byte order mark: Excel on a Chinese Windows desktop reads a CSV without
    /// one as GBK and garbles every name.
    static func csv(_ rows: [[String]]) -> String {
        "\u{FEFF}" + rows.map { row in
            row.map { f in f.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + f.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : f }
                .joined(separator: ",")
        }.joined(separator: "\n") + "\n"
    }

    static func rankingCSV(_ r: AssessmentReport) -> String {
        let rank = Dictionary(ranking(r).enumerated().map { ($0.element.code, String($0.offset + 1)) }, uniquingKeysWith: { a, _ in a })
        return csv([["division_code", "division_name", "level", "township_rank", "tasks_received", "accepted", "accepted_on_time_pct",
                     "resolved", "resolved_on_time_pct", "median_minutes_to_accept", "median_minutes_to_resolve", "escalations",
                     "false_alarms"]]
            + r.assessment.map {
                [$0.code, $0.name, $0.level, rank[$0.code] ?? "", String($0.received), String($0.accepted), $0.acceptedOnTimePct,
                 String($0.resolved), $0.resolvedOnTimePct, $0.medianMinutesToAccept, $0.medianMinutesToResolve,
                 String($0.escalations), String($0.falseAlarms)]
            })
    }

    static func dailyCSV(_ r: AssessmentReport) -> String {
        csv([["day", "incidents", "tasks_created", "escalations", "resolved", "false_alarms"]]
            + r.days.map { [$0.day, String($0.incidents), String($0.tasks), String($0.escalations), String($0.resolved), String($0.falseAlarms)] })
    }

    static func overdueCSV(_ r: AssessmentReport) -> String {
        csv([["task_id", "division_name", "tier", "category", "category_name", "priority", "missed", "minutes_late", "path"]]
            + r.overdue.map { [$0.taskID, $0.divisionName, $0.tier, $0.category, Rules.categoryNames[$0.category] ?? "", String($0.priority),
                               $0.missed, String($0.minutesLate), $0.path] })
    }

    static func gridsCSV(_ r: AssessmentReport) -> String {
        csv([["grid_code", "grid_name", "village_code", "village_name", "incidents", "overdue_tasks"]]
            + r.grids.map { [$0.code, $0.name, $0.villageCode, $0.villageName, String($0.incidents), String($0.overdue)] })
    }
}
