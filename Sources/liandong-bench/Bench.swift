import ArgumentParser
import Foundation
import LiandongClient
import LiandongCore
import LibPQ
import ZeroMQ

/// Drives a running liandongd with a load whose ground truth is known and reports throughput,
/// publish-to-task latency, correlation precision/recall and the daemon's memory. tools/bench
/// starts the cluster and the daemon and runs this; it also times raw COPY of the same rows.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "liandong-bench",
                                                    abstract: "Benchmark liandongd against generated ground truth.")

    @Option(help: "libpq conninfo of the daemon's database.") var database: String
    @Option(help: "The daemon's ingest.bind endpoint.") var ingest = "tcp://127.0.0.1:7601"
    @Option(help: "The daemon's feed.bind endpoint.") var feed = "tcp://127.0.0.1:7611"
    @Option(help: "The daemon's pid (for memory).") var pid: Int32 = 0
    @Option(help: "Events in the throughput phase.") var events = 60_000
    @Option(help: "Offered rate (events/s) in the latency phase.") var rate = 2000.0
    @Option(help: "Seconds of the latency phase.") var latencySeconds = 15.0
    @Option(help: "Write the throughput phase's rows as CSV here (for the COPY ceiling).") var copyFile: String?
    @Option(help: "Random seed.") var seed: UInt64 = 5
    @Option(help: "The daemon's metrics.bind (host:port), for the writer's profile per phase.") var metrics: String?
    @Option(help: "With security.curve: the daemon's public key (NAME.pub or the 40 Z85 characters).") var curveServerKey: String?
    @Option(help: "With security.curve: the gateway's secret key file (it publishes the load).") var curveKey: String?
    @Option(help: "With security.curve: an observer's secret key file (it reads the whole feed).") var curveObserverKey: String?
    @Option(help: "Seconds of the storm phase (0: none): one camera at 4 alerts/s, one at 500/s, and a background load.") var stormSeconds = 0.0
    @Option(help: "Background load during the storm (events/s).") var stormBackground = 220.0
    @Option(help: "Grid workers reporting positions (0: none): a positions phase (20 minutes of their reports at once) before the latency phase, and each one's position every --position-interval s during it.")
    var workers = 0
    @Option(help: "Seconds between a worker's positions.") var positionInterval = 30.0
    @Flag(help: "The throughput phase is the dense load (DenseLoad.swift): alerts of nine categories over 4 x 4 km observed within 5 minutes, published at once; --copy-file then writes the lean rows (uuid, kind, time, point, priority).")
    var dense = false
    @Flag(help: "Only the close layouts (CloseLayouts.swift): precision and recall of incidents close together.") var closeOnly = false
    @Option(help: "Only residents' requests (Open311Load.swift): liandong-open311's HOST:PORT.") var open311 = ""
    @Option(help: "An api_key of liandong-open311's keys file.") var open311Key = ""
    @Option(help: "Requests in the as-fast-as-answered phase.") var open311Requests = 5000
    @Option(help: "Keep-alive connections (requests in flight at most).") var open311Concurrency = 64
    @Option(help: "Requests a second in the fixed-rate phase.") var open311Rate = 500.0
    @Option(help: "Seconds of the fixed-rate phase.") var open311Seconds = 20.0

    struct Camera { let id: String; let grid: String; let p: LonLat }
    struct Event { let topic: String; let id: String; let group: Int; let body: String; let p: LonLat; let at: Double }

    func run() throws {
        let db = try PGConnection(conninfo: database)
        if !open311.isEmpty { return try open311Phase(db: db) }
        // Cameras at least 1.5 km apart, so concurrent true incidents never touch.
        var cameras: [Camera] = []
        for r in try db.query("SELECT device_id, grid_code, ST_X(geom), ST_Y(geom) FROM liandong.cameras WHERE grid_code IS NOT NULL ORDER BY device_id").rows {
            let c = Camera(id: r[0]!, grid: r[1]!, p: LonLat(lon: Double(r[2]!)!, lat: Double(r[3]!)!))
            if cameras.allSatisfy({ $0.p.distance(to: c.p) > 1500 }) { cameras.append(c) }
        }
        var rng = SplitMix64(seed: seed)
        let context = try ZMQContext()
        let curve = try CurveClientKeys.options(serverKey: curveServerKey, secretKeyFile: curveKey)
        let pub = try ZMQSocket(context: context, type: .xpub)
        try curve?.apply(to: pub)
        try pub.setSendHighWaterMark(0)
        try pub.setXPubVerbose()
        try pub.setLinger(milliseconds: 10_000)
        try pub.connect(ingest)
        guard try pub.waitForSubscribers(covering: ["alert", "report"], timeoutMilliseconds: 15_000) else {
            throw ValidationError("liandongd did not subscribe at \(ingest)")
        }
        let run = String(Int(Date().timeIntervalSince1970), radix: 36)
        if closeOnly {
            return try closePhase(db: db, cameras: cameras, send: { e in try pub.send([Array(e.topic.utf8), Array(e.body.utf8)]) },
                                  run: run, rng: &rng)
        }
        let now = Date().timeIntervalSince1970
        // Ground truth: groups on (camera, 2.5-hour slot: longer than any correlation window): 60 % true incidents (two alerts and a
        // grid report near the spot the camera watches, up to 180 m from the camera, and within
        // 3 minutes give or take a phone clock's 3), 25 % false alarms (one alert), 15 % unrelated
        // minor reports (another category).
        func makeGroups(count: Int, firstGroup: Int, sites: [Camera] = cameras, start: (Int) -> Double) -> [[Event]] {
            var out: [[Event]] = []
            for g in 0..<count {
                let camera = sites[g % sites.count]
                let t0 = start(g)
                let group = firstGroup + g
                let kind = rng.next() % 100
                func alert(_ k: Int, at: Double) -> Event {
                    Bench.alert(id: "b\(run)-\(group)-a\(k)", group: group, camera: camera, type: 6, gateway: "bench", at: at)
                }
                func near(_ q: LonLat, within metres: Double) -> LonLat { Bench.near(q, within: metres, &rng) }
                // Position noise: the camera watches a spot up to 150 m away (its alerts carry
                // the camera's own position); a worker's phone reports from within 30 m of the
                // spot, in any of the three coordinate systems; its clock is off by up to 3 minutes.
                let spot = near(camera.p, within: 150)
                func report(category: String, severity: Int, at: Double, metres: Double) -> Event {
                    let p = near(spot, within: metres)
                    let crs = CRS.allCases[Int(rng.next() % 3)]
                    let sent = CoordinateConverter.fromWGS84(p, to: crs)
                    let id = "b\(run)-\(group)-r"
                    var body = JSONText()
                    body.object {
                        $0.field("category", category)
                        $0.field("crs", crs.rawValue)
                        $0.field("grid_code", camera.grid)
                        $0.field("lat", number: sent.lat)
                        $0.field("lon", number: sent.lon)
                        $0.field("observed_at", Timestamp.formatCST(at))
                        $0.field("report_id", id)
                        $0.field("schema", "liandong.report.v1")
                        $0.field("severity", integer: severity)
                        $0.field("worker_id", "w-bench")
                    }
                    return Event(topic: "report", id: id, group: group, body: body.text, p: p, at: at)
                }
                if kind < 60 {
                    let skew = Double(rng.next() % 361) - 180
                    out.append([alert(0, at: t0), alert(1, at: t0 + 40),
                                report(category: "闯入", severity: 3, at: t0 + 60 + Double(rng.next() % 120) + skew, metres: 30)])
                } else if kind < 85 {
                    out.append([alert(0, at: t0)])
                } else {
                    out.append([report(category: "矛盾纠纷", severity: 4, at: t0, metres: 0)])
                }
            }
            return out
        }
        func send(_ e: Event) throws { try pub.send([Array(e.topic.utf8), Array(e.body.utf8)]) }
        // Count only rows added since the start (a primary-key range), so polling costs nothing
        // even over millions of rows of history.
        let baseEvent = try db.query("SELECT coalesce(max(id), 0) FROM liandong.events").scalar!
        let baseRejected = try db.query("SELECT coalesce(max(id), 0) FROM liandong.rejected_messages").scalar!
        /// Messages the daemon has committed (stored, duplicate or dead-lettered), from its
        /// counters: polling count(*) over the growing tables cost PostgreSQL 12 µs per event.
        func committed() -> Int? {
            guard let series = scrape() else { return nil }
            let counters = ["liandong_events_accepted_total", "liandong_events_rejected_total", "liandong_events_duplicate_total"]
            return Int(series.filter { key, _ in counters.contains { key.hasPrefix($0) } }.values.reduce(0, +))
        }
        func stored() throws -> Int {
            try Int(db.query("""
                SELECT (SELECT count(*) FROM liandong.events WHERE id > $1) + (SELECT count(*) FROM liandong.rejected_messages WHERE id > $2)
                """, [baseEvent, baseRejected]).scalar!)!
        }

        // ---- throughput
        // Observed times move forward as in real traffic: slots of 2.5 hours (longer than any
        // correlation window) per camera, the last one an hour ago. 2 % of the groups arrive late,
        // after everything else (a gateway's backlog): they are matched against stored history.
        let groups = Int(Double(events) / 2.2)
        let slots = (groups + cameras.count - 1) / cameras.count
        let generated = makeGroups(count: groups, firstGroup: 0) { g in
            now - 3600 - Double(slots - 1 - g / cameras.count) * 9000
        }
        var onTime: [Event] = [], late: [Event] = []
        for group in generated {
            if rng.next() % 100 < 2 { late += group } else { onTime += group }
        }
        var load = onTime + late
        var denseSquare: (sw: LonLat, ne: LonLat)?
        if dense {
            let d = try denseLoad(db: db, count: events, run: run, rules: Rules(), rng: &rng)
            load = d.events
            denseSquare = (d.southWest, d.northEast)
            print("dense load: \(load.count) alerts of \(Self.denseKinds.count) categories over 4 x 4 km of 渊泉镇's grids, observed within 5 minutes, "
                + "published at once in observed order; by the join rule \(d.incidents) incidents (\(String(format: "%.1f", Double(load.count) / Double(d.incidents))) alerts each)")
            if let copyFile { try writeLeanCopyFile(load, copyFile) }
        } else if let copyFile {
            try writeCopyFile(load, copyFile)
        }
        let feedBefore = feedMessages()
        let before = try stored()
        let committedBefore = committed()
        let phasesBefore = writerPhases()
        resetStatements(db)
        let sampler = MemorySampler(pid: pid)
        let started = Date()
        for e in load { try send(e) }
        let sentIn = Date().timeIntervalSince(started)
        if let committedBefore {
            while (committed() ?? 0) < committedBefore + load.count { Thread.sleep(forTimeInterval: 0.02) }
        }
        while try stored() < before + load.count { Thread.sleep(forTimeInterval: 0.1) }
        let elapsed = Date().timeIntervalSince(started)
        let throughput = Double(load.count) / elapsed
        let rssAfterLoad = memory()
        let feedDuring = feedMessages().map { $0 - (feedBefore ?? 0) }
        let phasesAfter = writerPhases()
        let throughputStatements = statements(db)
        // Every event of this load is valid; only a worker's report placed beside a camera at
        // the county's edge can fall outside every grid. Any other refusal means the figures
        // measured something else (a load older than ingest.max_age_s was once 27 % dead
        // letters, and faster for it).
        let refused = try db.query("""
            SELECT reason, count(*) FROM liandong.rejected_messages WHERE id > $1 GROUP BY 1 ORDER BY 2 DESC
            """, [baseRejected]).rows.map { (reason: $0[0]!, count: Int($0[1]!)!) }
        let unexpected = refused.filter { $0.reason != "outside_area" }
        guard unexpected.isEmpty else {
            throw ValidationError("the throughput phase's events were refused by the daemon ("
                + unexpected.map { "\($0.reason) \($0.count)" }.joined(separator: ", ") + "): the figures would not measure the hot path")
        }
        let outside = refused.first { $0.reason == "outside_area" }?.count ?? 0

        // ---- precision / recall (pairwise, against the generated groups)
        var incidentOf: [String: String] = [:]
        for r in try db.query("SELECT source_id, incident_id FROM liandong.events WHERE source_id LIKE $1", [(dense ? "d" : "b") + "\(run)-%"]).rows {
            incidentOf[r[0]!] = r[1]!
        }
        var cell: [String: Int] = [:], byIncident: [String: Int] = [:], byGroup: [Int: Int] = [:]
        for e in load {
            guard let inc = incidentOf[e.id] else { continue }
            cell["\(inc)/\(e.group)", default: 0] += 1
            byIncident[inc, default: 0] += 1
            byGroup[e.group, default: 0] += 1
        }
        func pairs(_ n: Int) -> Double { Double(n * (n - 1) / 2) }
        let tp = cell.values.map(pairs).reduce(0, +)
        let precision = tp / max(1, byIncident.values.map(pairs).reduce(0, +))
        let recall = tp / max(1, byGroup.values.map(pairs).reduce(0, +))
        let expectedJoint = Set(load.filter { $0.topic == "report" && $0.id.hasSuffix("-r") }.map(\.group)).count

        // ---- positions (issue 30): 20 minutes of the workers' reports at once, then live ones
        let walkers = try workerSites(db, count: workers)
        func position(_ w: (id: String, p: LonLat), at t: Double) throws {
            let p = Bench.near(w.p, within: 20, &rng)
            var body = JSONText()
            body.object {
                $0.field("at", Timestamp.formatCST(t))
                $0.field("lat", number: p.lat)
                $0.field("lon", number: p.lon)
                $0.field("schema", "liandong.worker_position.v1")
                $0.field("state", "on_patrol")
                $0.field("worker_id", w.id)
            }
            try pub.send([Array("position".utf8), Array(body.text.utf8)])
        }
        func positionsCommitted() -> Int {
            Int((scrape() ?? [:]).filter { $0.key.hasPrefix("liandong_worker_positions_total") }.values.reduce(0, +))
        }
        if !walkers.isEmpty {
            let rounds = Int(1200 / positionInterval)
            let phasesBefore = writerPhases(), countedBefore = positionsCommitted()
            let positionsStart = Date()
            let t = Date().timeIntervalSince1970
            for k in stride(from: rounds, to: 0, by: -1) {
                for w in walkers { try position(w, at: t - Double(k) * positionInterval - 1) }
            }
            let count = rounds * walkers.count
            while positionsCommitted() < countedBefore + count { Thread.sleep(forTimeInterval: 0.02) }
            let seconds = Date().timeIntervalSince(positionsStart)
            print("positions phase: \(walkers.count) workers x \(rounds) reports = \(count) positions committed in "
                + String(format: "%.2f s (%.0f positions/s)", seconds, Double(count) / seconds))
            printPhases(phasesBefore, writerPhases(), events: count, "writer thread during the positions phase (per position)")
        }

        // ---- latency at a fixed offered rate
        let sub = try ZMQSocket(context: context, type: .sub)
        try CurveClientKeys.options(serverKey: curveServerKey, secretKeyFile: curveObserverKey ?? curveKey)?.apply(to: sub)
        try sub.subscribe("task.")
        try sub.subscribe("hb")
        try sub.setLinger(milliseconds: 0)
        try sub.connect(feed)
        while true {
            if try ZMQSocket.poll([sub], timeoutMilliseconds: 3000)[0], let f = try sub.receiveNow(), f.first == Array("hb".utf8) { break }
        }
        // Observed as sent: group g starts when it is due, at its own site of a 500 m lattice over
        // the grids (alerts carry lon/lat). When the sites run out they are used again, observed
        // 2,000 s earlier each round (further apart than any window), so groups never merge and
        // each makes its own task.
        // Not within 1 km of a camera of the throughput phase: a live group observed a few minutes
        // from one of its groups (a later round goes back 2,000 s per round) would join that
        // incident, and its first alert arrive only in a coalesced update (issue 31: the 15-18 s
        // "maximum latency of a creating message" was exactly that, 10 events of 20,000).
        let sites = try latticeSites(db, metres: 500, camera: cameras[0].id).filter { site in
            if let square = denseSquare {
                // Nor within 1 km of the dense load's square (observed in the last 5 minutes).
                let sw = Self.moved(square.sw, east: -1000, north: -1000), ne = Self.moved(square.ne, east: 1000, north: 1000)
                return !(sw.lon...ne.lon).contains(site.p.lon) || !(sw.lat...ne.lat).contains(site.p.lat)
            }
            return cameras.allSatisfy { $0.p.ellipsoidDistance(to: site.p) > 1000 }
        }
        let liveGroups = Int(rate * latencySeconds / 2.2)
        let liveStart = Date().timeIntervalSince1970
        let live = makeGroups(count: liveGroups, firstGroup: 10_000_000, sites: sites) { g in
            liveStart + Double(g) * 2.2 / rate - Double(g / sites.count) * 2000
        }.flatMap { $0 }
        var sentAt: [String: Double] = [:]
        // Latency of the events that make a message at once (the first alert of a group: its
        // verify; the report: the joint dispatch), and of every event (later evidence is
        // coalesced: it reaches the feed within correlation.update_interval_s).
        var latencies: [Double] = [], everyEvent: [Double] = []
        var timeline: [(sent: Double, latency: Double)] = []
        // The slowest creating messages: which event, in which message (kind, state, seq), after how long.
        var slowest: [(latency: Double, id: String, message: String)] = []
        let latencyPhasesBefore = writerPhases()
        resetStatements(db)
        let batchesBefore = metricValues("liandong_batch_commit_seconds_")
        let t0 = Date()
        var i = 0
        // The workers' live positions, spread evenly: worker j at t0 + j x interval / N + k x interval.
        var livePositions = 0
        func sendDuePositions() throws {
            guard !walkers.isEmpty else { return }
            let due = Int(Date().timeIntervalSince(t0) * Double(walkers.count) / positionInterval) + 1
            while livePositions < due {
                try position(walkers[livePositions % walkers.count], at: Date().timeIntervalSince1970)
                livePositions += 1
            }
        }
        func drain() throws {
            while let f = try sub.receiveNow(), f.count == 2, f[0] != Array("hb".utf8) {
                let received = Date().timeIntervalSince1970
                guard case .object(let o)? = try? JSONValue.parse(f[1]), case .object(let ev)? = o["evidence"] else { continue }
                var ids: [String] = []
                for key in ["alerts", "reports"] {
                    if case .array(let list)? = ev[key] { ids += list.compactMap(\.stringValue) }
                }
                for id in ids {
                    if let s = sentAt.removeValue(forKey: id) {
                        everyEvent.append(received - s)
                        guard id.hasSuffix("-a0") || id.hasSuffix("-r") else { continue }
                        latencies.append(received - s)
                        timeline.append((sent: s, latency: received - s))
                        if received - s > 0.05 {
                            let field = { (k: String) in o[k]?.stringValue ?? "" }
                            let seq: String = if case .number(let n)? = o["seq"] { String(Int(n)) } else { "?" }
                            slowest.append((received - s, id, "\(field("kind"))/\(field("state")) seq \(seq) task \(field("task_id").prefix(8))"))
                        }
                    }
                }
            }
        }
        while i < live.count {
            try sendDuePositions()
            let due = t0.addingTimeInterval(Double(i) / rate)
            if due > Date() {
                // At least 1 ms: a zero timeout would spin a core that the daemon and PostgreSQL
                // need (due times are absolute, so events due meanwhile go out together next).
                _ = try ZMQSocket.poll([sub], timeoutMilliseconds: max(1, Int((due.timeIntervalSinceNow * 1000).rounded(.up))))
                try drain()
                continue
            }
            // Minor reports alone get no task: nothing to wait for.
            if !(live[i].topic == "report" && live[i].body.contains("矛盾纠纷")) { sentAt[live[i].id] = Date().timeIntervalSince1970 }
            try send(live[i])
            i += 1
        }
        // Long enough for the coalesced updates (correlation.update_interval_s, 30 s).
        let end = Date().addingTimeInterval(35)
        while Date() < end && !sentAt.isEmpty {
            _ = try ZMQSocket.poll([sub], timeoutMilliseconds: 100)
            try drain()
        }
        let latencyPhasesAfter = writerPhases()
        let latencyStatements = statements(db)
        let batchesAfter = metricValues("liandong_batch_commit_seconds_")
        latencies.sort()
        everyEvent.sort()
        // The p99 of each 2 s of the phase: a tail from one stall shows as one window.
        let phaseStart = timeline.map(\.sent).min() ?? 0
        var windows: [String] = []
        for from in stride(from: 0.0, to: latencySeconds, by: 2.0) {
            let xs = timeline.filter { $0.sent - phaseStart >= from && $0.sent - phaseStart < from + 2 }.map(\.latency).sorted()
            if !xs.isEmpty { windows.append(String(format: "%.0f", xs[min(xs.count - 1, Int(Double(xs.count) * 0.99))] * 1000)) }
        }
        func pct(_ p: Double, _ xs: [Double]? = nil) -> String {
            let xs = xs ?? latencies
            return xs.isEmpty ? "n/a" : String(format: "%.1f", xs[min(xs.count - 1, Int(Double(xs.count) * p))] * 1000)
        }
        let mem = memory()
        print("""
            cameras used (>=1.5 km apart): \(cameras.count)
            throughput phase: \(load.count) events (\(groups) ground-truth groups, \(late.count) events sent late, \(outside) reports outside every grid), sent in \(String(format: "%.2f", sentIn)) s, all stored after \(String(format: "%.2f", elapsed)) s
            sustained_events_per_s: \(Int(throughput))\(feedDuring.map { "\ntask messages during the throughput phase: \(Int($0))" } ?? "")
            latency phase: offered \(Int(rate)) events/s for \(Int(latencySeconds)) s at \(min(sites.count, liveGroups)) sites (\(sites.count) lattice sites for \(liveGroups) groups), \(everyEvent.count) of \(live.count) events matched to a task message (minor reports get none), \(latencies.count) of them first alerts and reports
            latency_ms: p50 \(pct(0.50)) p95 \(pct(0.95)) p99 \(pct(0.99)) max \(pct(0.999999)) (first alert of a group and reports: the messages that create or upgrade a task)
            latency_ms_every_event: p50 \(pct(0.50, everyEvent)) p95 \(pct(0.95, everyEvent)) p99 \(pct(0.99, everyEvent)) max \(pct(0.999999, everyEvent)) (later evidence is coalesced, correlation.update_interval_s)
            latency p99 per 2 s of the phase (ms): \(windows.joined(separator: " "))\(walkers.isEmpty ? "" : "\nlatency phase positions: \(livePositions) from \(walkers.count) workers (one each every \(Int(positionInterval)) s)")
            precision: \(String(format: "%.4f", precision)) recall: \(String(format: "%.4f", recall)) (pairwise, \(expectedJoint) true incidents with a report)
            daemon_rss_mib: after throughput \(rssAfterLoad.rss) (peak \(rssAfterLoad.hwm)), at end \(mem.rss) (peak \(mem.hwm))\(sampler.stop().map { String(format: "; largest anonymous %.1f, file-backed %.1f (every 0.1 s)", Double($0.anon) / 1024, Double($0.file) / 1024) } ?? "")
            """)
        if !slowest.isEmpty {
            print("creating messages slower than 50 ms: \(slowest.count); the slowest:")
            for s in slowest.sorted(by: { $0.latency > $1.latency }).prefix(8) {
                // Which other groups' events its incident holds, and how far the nearest of them is.
                let group = s.id.split(separator: "-").dropLast().joined(separator: "-")
                let others = try db.query("""
                    SELECT o.source_id, round(ST_Distance(o.geog, e.geog)) FROM liandong.event_keys k
                    JOIN liandong.events e USING (source, source_id, observed_at)
                    JOIN liandong.events o ON o.incident_id = e.incident_id AND o.source_id NOT LIKE $2 || '-%'
                    WHERE k.source_id = $1 ORDER BY ST_Distance(o.geog, e.geog) LIMIT 3
                    """, [s.id, group]).rows.map { "\($0[0]!) at \($0[1]!) m" }
                print(String(format: "  %8.1f ms  %@  in  %@", s.latency * 1000, s.id, s.message)
                    + (others.isEmpty ? "" : "; its incident holds another group's events: " + others.joined(separator: ", ")))
            }
        }
        printPhases(phasesBefore, phasesAfter, events: load.count,
                    "writer thread during the throughput phase (liandong_writer_seconds_total; 'wait': waiting for messages)")
        printPhases(latencyPhasesBefore, latencyPhasesAfter, events: live.count, "writer thread during the latency phase")
        let batches = (batchesAfter["liandong_batch_commit_seconds_count"] ?? 0) - (batchesBefore["liandong_batch_commit_seconds_count"] ?? 0)
        let batchSeconds = (batchesAfter["liandong_batch_commit_seconds_sum"] ?? 0) - (batchesBefore["liandong_batch_commit_seconds_sum"] ?? 0)
        if batches > 0 {
            print(String(format: "latency phase batches: %.0f, %.1f events/batch, %.2f ms/batch in the store", batches,
                         Double(live.count) / batches, batchSeconds * 1000 / batches))
        }
        printStatements(throughputStatements, events: load.count, "PostgreSQL during the throughput phase (pg_stat_statements)")
        printStatements(latencyStatements, events: live.count, "PostgreSQL during the latency phase (pg_stat_statements)")
        guard stormSeconds > 0 else { return }
        try stormPhase(db: db, sub: sub, send: send, cameras: cameras, sites: sites, run: run, committed: committed) { count, first, start in
            makeGroups(count: count, firstGroup: first, sites: Array(sites.reversed()), start: start)
        }
    }

    /// The storm (issue 13): one camera firing 4 alerts a second and one firing 500 a second, each
    /// at one spot for `stormSeconds`, over a background of ordinary groups at `stormBackground`
    /// events/s. Reports the messages per incident, when each storm incident's final counts
    /// reached the feed after its last alert, the background's latency and the throughput.
    func stormPhase(db: PGConnection, sub: ZMQSocket, send: (Event) throws -> Void, cameras: [Camera], sites: [Camera], run: String,
                    committed: () -> Int?, groups: (Int, Int, (Int) -> Double) -> [[Event]]) throws
    {
        let seconds = stormSeconds
        let coalescedBefore = scrape()?["liandong_updates_coalesced_total"] ?? 0
        let committedBefore = committed()
        func stormAlert(_ c: Camera, _ name: String, _ k: Int, type: Int, at: Double) -> Event {
            Bench.alert(id: "s\(run)-\(name)-\(k)", group: -1, camera: c, type: type, gateway: "bench-storm", at: at)
        }
        // A crowd-density rule flapping at 4/s, and a wrong-way-driving rule gone mad at 500/s
        // (categories the background does not use: the storms make incidents of their own).
        let storms = [(name: "slow", camera: cameras[1], rate: 4.0, type: 10), (name: "fast", camera: cameras[2], rate: 500.0, type: 7)]
        let start = Date().timeIntervalSince1970 + 0.2
        var schedule: [(due: Double, event: Event)] = []
        for s in storms {
            for k in 0..<Int(s.rate * seconds) {
                let due = Double(k) / s.rate
                schedule.append((due, stormAlert(s.camera, s.name, k, type: s.type, at: start + due)))
            }
        }
        // The lattice again, observed rounds of 2,000 s earlier than the latency phase's (no merging).
        let background = groups(Int(stormBackground * seconds / 2.2), 20_000_000) { g in
            start + Double(g) * 2.2 / stormBackground - Double(4 + g / max(1, sites.count)) * 2000
        }.flatMap { $0 }
        for (i, e) in background.enumerated() { schedule.append((Double(i) / stormBackground, e)) }
        schedule.sort { $0.due < $1.due }

        struct Seen { var messages = 0; var kinds: [String: Int] = [:]; var alertCount = 0; var lastAt = 0.0 }
        var seen: [String: Seen] = [:]
        var sentAt: [String: Double] = [:], latencies: [Double] = [], firstLatencies: [Double] = []
        var lastStormAlert: [String: Double] = [:]
        func drain() throws {
            while let f = try sub.receiveNow(), f.count == 2, f[0] != Array("hb".utf8) {
                let received = Date().timeIntervalSince1970
                guard case .object(let o)? = try? JSONValue.parse(f[1]), let incident = o["incident_id"]?.stringValue,
                      let kind = o["kind"]?.stringValue, case .object(let ev)? = o["evidence"] else { continue }
                var s = seen[incident] ?? Seen()
                s.messages += 1
                s.kinds[kind, default: 0] += 1
                if case .number(let n)? = ev["alert_count"] { s.alertCount = Int(n) }
                s.lastAt = received
                seen[incident] = s
                for key in ["alerts", "reports"] {
                    guard case .array(let list)? = ev[key] else { continue }
                    for id in list.compactMap(\.stringValue) {
                        guard let t = sentAt.removeValue(forKey: id) else { continue }
                        latencies.append(received - t)
                        if id.hasSuffix("-a0") || id.hasSuffix("-r") { firstLatencies.append(received - t) }
                    }
                }
            }
        }
        let t0 = Date()
        var i = 0
        while i < schedule.count {
            let due = t0.addingTimeInterval(schedule[i].due)
            if due > Date() {
                _ = try ZMQSocket.poll([sub], timeoutMilliseconds: max(1, Int((due.timeIntervalSinceNow * 1000).rounded(.up))))
                try drain()
                continue
            }
            let e = schedule[i].event
            let now = Date().timeIntervalSince1970
            if e.group >= 0 { if !(e.topic == "report" && e.body.contains("矛盾纠纷")) { sentAt[e.id] = now } } else { lastStormAlert[String(e.id.split(separator: "-")[1])] = now }
            try send(e)
            i += 1
        }
        let sendingEnded = Date()
        if let committedBefore {
            while (committed() ?? 0) < committedBefore + schedule.count && Date().timeIntervalSince(sendingEnded) < 120 {
                _ = try ZMQSocket.poll([sub], timeoutMilliseconds: 20)
                try drain()
            }
        }
        let storedAfter = Date().timeIntervalSince(sendingEnded)
        // The storm incidents and how many alerts each holds: their final counts must reach the feed.
        var stormIncidents: [(name: String, incident: String, alerts: Int)] = []
        for s in storms {
            for r in try db.query("""
                SELECT incident_id, count(*) FROM liandong.events WHERE source_id LIKE $1 GROUP BY incident_id ORDER BY min(observed_at)
                """, ["s\(run)-\(s.name)-%"]).rows {
                stormIncidents.append((s.name, r[0]!, Int(r[1]!)!))
            }
        }
        let deadline = Date().addingTimeInterval(90)
        func final(_ x: (name: String, incident: String, alerts: Int)) -> Bool {
            // The incident's own count: other alerts cannot join these cameras' spots.
            (seen[x.incident]?.alertCount ?? 0) >= x.alerts
        }
        while Date() < deadline && !stormIncidents.allSatisfy(final) {
            _ = try ZMQSocket.poll([sub], timeoutMilliseconds: 100)
            try drain()
        }
        // Late updates of the background too (they come within update_interval_s).
        let settle = Date().addingTimeInterval(35)
        while Date() < settle {
            _ = try ZMQSocket.poll([sub], timeoutMilliseconds: 100)
            try drain()
        }
        latencies.sort()
        firstLatencies.sort()
        func pct(_ p: Double, _ xs: [Double]) -> String {
            xs.isEmpty ? "n/a" : String(format: "%.1f", xs[min(xs.count - 1, Int(Double(xs.count) * p))] * 1000)
        }
        let backgroundIncidents = Set(try db.query("""
            SELECT DISTINCT incident_id FROM liandong.events WHERE source_id ~ $1
            """, ["^b\(run)-2[0-9]{7}-"]).rows.map { $0[0]! })
        let perBackground = backgroundIncidents.map { seen[$0]?.messages ?? 0 }
        let coalesced = (scrape()?["liandong_updates_coalesced_total"] ?? 0) - coalescedBefore
        print("""
            storm phase: \(Int(seconds)) s: camera \(storms[0].camera.id) at 4 alerts/s, camera \(storms[1].camera.id) at 500 alerts/s, \
            background \(Int(stormBackground)) events/s (\(background.count) events); offered \(schedule.count) events, \
            \(String(format: "%.0f", Double(schedule.count) / seconds)) events/s
            """)
        for x in stormIncidents {
            let s = seen[x.incident] ?? Seen()
            let finalAfter = final(x) ? String(format: "%.1f s", s.lastAt - (lastStormAlert[x.name] ?? s.lastAt)) : "not seen"
            print("storm_incident \(x.name): \(x.alerts) alerts, \(s.messages) messages ("
                + s.kinds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                + "), final counts on the feed \(finalAfter) after its last alert")
        }
        print("storm background: \(perBackground.count) incidents, "
            + String(format: "%.2f", Double(perBackground.reduce(0, +)) / Double(max(1, perBackground.count)))
            + " messages per incident (max \(perBackground.max() ?? 0)); latency_ms of first alerts and reports p50 \(pct(0.50, firstLatencies)) "
            + "p95 \(pct(0.95, firstLatencies)) p99 \(pct(0.99, firstLatencies)), of every event p50 \(pct(0.50, latencies)) "
            + "p95 \(pct(0.95, latencies)) p99 \(pct(0.99, latencies)) (\(latencies.count) events matched)")
        print(String(format: "storm throughput: all %d events stored %.2f s after the last was sent; updates coalesced: %.0f",
                     schedule.count, storedAfter, coalesced))
    }

    /// A video-analytics alert (AlarmMethod 5) of `camera` at its position.
    static func alert(id: String, group: Int, camera: Camera, type: Int, gateway: String, at: Double) -> Event {
        var body = JSONText()
        body.object {
            $0.field("alarm_method", integer: 5)
            $0.field("alarm_type", integer: type)
            $0.field("alert_id", id)
            $0.field("device_id", camera.id)
            $0.field("gateway_id", gateway)
            $0.field("lat", number: camera.p.lat)
            $0.field("lon", number: camera.p.lon)
            $0.field("observed_at", Timestamp.formatCST(at))
            $0.field("priority", integer: 3)
            $0.field("schema", "liandong.alert.v1")
        }
        return Event(topic: "alert", id: id, group: group, body: body.text, p: camera.p, at: at)
    }

    /// Up to `count` grid workers with their grid's centre (where their positions are drawn around).
    func workerSites(_ db: PGConnection, count: Int) throws -> [(id: String, p: LonLat)] {
        guard count > 0 else { return [] }
        return try db.query("""
            SELECT w.worker_id, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom))
            FROM liandong.grid_workers w JOIN liandong.grids g USING (grid_code) WHERE g.valid_to IS NULL ORDER BY w.worker_id LIMIT $1
            """, [String(count)]).rows.map { (id: $0[0]!, p: LonLat(lon: Double($0[1]!)!, lat: Double($0[2]!)!)) }
    }

    func latticeSites(_ db: PGConnection, metres: Double, camera: String) throws -> [Camera] {
        let rows = try db.query("""
            WITH b AS (SELECT ST_Extent(geom) AS e FROM liandong.grids),
                 s AS (SELECT $1::float8 / (111320 * cos(radians((ST_YMin(e) + ST_YMax(e)) / 2))) AS dx, $1::float8 / 110574 AS dy, e FROM b),
                 p AS (SELECT ST_SetSRID(ST_MakePoint(x, y), 4326) AS p
                       FROM s, generate_series(ST_XMin(e)::numeric, ST_XMax(e)::numeric, dx::numeric) x,
                               generate_series(ST_YMin(e)::numeric, ST_YMax(e)::numeric, dy::numeric) y)
            SELECT DISTINCT ON (p.p) ST_X(p.p), ST_Y(p.p), g.grid_code
            FROM p JOIN liandong.grids g ON ST_Covers(g.geom, p.p)
            ORDER BY p.p, g.grid_code
            """, [String(metres)])
        var rng = SplitMix64(seed: seed &+ 1)
        var sites = rows.rows.map { Camera(id: camera, grid: $0[2]!, p: LonLat(lon: Double($0[0]!)!, lat: Double($0[1]!)!)) }
        for i in stride(from: sites.count - 1, to: 0, by: -1) { sites.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return sites
    }

    /// The same rows as the events table would hold, for COPY (the ceiling).
    func writeCopyFile(_ load: [Event], _ path: String) throws {
        var out = ""
        out.reserveCapacity(load.count * 400)
        for e in load {
            let body = "\"" + e.body.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            out += "\(e.topic),\(e.id),intrusion,3,\(Timestamp.formatUTC(e.at)),SRID=4326;POINT(\(e.p.lon) \(e.p.lat)),wgs84,"
                + "620922102201001,620922102201,\(UUID().uuidString.lowercased()),\(body)\n"
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
