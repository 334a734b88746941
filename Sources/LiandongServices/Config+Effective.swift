import LiandongClient
import LibPQ
import LiandongCore
import LiandongStorage

extension Config {
    /// The files the configuration names and the daemon (or the SIP bridge) must read: check-config
    /// checks each is readable, by the unit's user too with --user.
    public var namedFiles: [ConfiguredFile] {
        var out: [ConfiguredFile] = []
        if security.curve {
            out.append(ConfiguredFile(setting: "security.secret_key_file", path: security.secretKeyFile, secret: true))
            out.append(ConfiguredFile(setting: "security.peers_file", path: security.peersFile, secret: false))
        }
        if !gb28181.passwordsFile.isEmpty {
            out.append(ConfiguredFile(setting: "gb28181.passwords_file", path: gb28181.passwordsFile, secret: true))
        }
        if !gb28181.devicesFile.isEmpty {
            out.append(ConfiguredFile(setting: "gb28181.devices_file", path: gb28181.devicesFile, secret: false))
        }
        if !open311.apiKeysFile.isEmpty {
            out.append(ConfiguredFile(setting: "open311.api_keys_file", path: open311.apiKeysFile, secret: true))
        }
        if !console.usersFile.isEmpty {
            out.append(ConfiguredFile(setting: "console.users_file", path: console.usersFile, secret: true))
        }
        return out
    }

    /// Every key with the value in effect (defaults, file and environment applied), as
    /// `check-config` prints it: one "key: value" line each, in the order of the example config.
    /// The database password is never shown.
    /// A conninfo as check-config prints it: its settings, the password as "(set)".
    static func shown(conninfo: String) -> String {
        guard let settings = try? PGConnection.parseConninfo(conninfo) else { return "(unreadable)" }
        return settings.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    public var effectiveSettings: [(key: String, value: String)] {
        var out: [(String, String)] = []
        func add(_ key: String, _ value: Any) { out.append((key, "\(value)")) }
        func list(_ items: [String]) -> String { items.isEmpty ? "[]" : "[" + items.joined(separator: ", ") + "]" }
        func minutes(_ m: Double) -> String { m == m.rounded() ? String(Int(m)) : String(m) }

        add("database.url", databaseURL.isEmpty ? "(from the PG* environment, .pgpass and pg_service.conf)" : Self.shown(conninfo: databaseURL))
        add("database.synchronous", databaseGuard.synchronous.rawValue + " (" + databaseGuard.synchronous.meaning + ")")
        add("database.stuck_s", minutes(databaseGuard.stuckSeconds))
        add("ingest.bind", ingestBind.isEmpty ? "(none)" : ingestBind)
        add("ingest.ack_bind", ingestAckBind.isEmpty ? "(none)" : ingestAckBind)
        add("ingest.connect", list(ingestConnect))
        add("ingest.batch_size", batchSize)
        add("ingest.batch_ms", batchMilliseconds)
        add("ingest.queue_capacity", queueCapacity)
        add("ingest.max_body_bytes", limits.maxBodyBytes)
        add("ingest.max_future_s", Int(limits.maxFutureSeconds))
        add("ingest.max_age_s", Int(limits.maxAgeSeconds))
        add("ingest.max_dead_letter_bytes", maxDeadLetterBytes)
        add("ingest.gap_grace_ms", gapGraceMilliseconds)
        add("ingest.spill_path", spillPath.isEmpty ? "(none: no spill, an outage is ridden out in memory only)" : spillPath)
        add("ingest.spill_max_bytes", spillMaxBytes)
        add("feed.bind", feedBind)
        add("feed.replay_bind", replayBind)
        add("updates.bind", updatesBind)
        add("escalation.sweep_ms", sweepMilliseconds)
        add("escalation.reannounce_minutes", minutes(reannounceMinutes))
        add("metrics.bind", metricsBind.isEmpty ? "(none)" : metricsBind)
        add("security.curve", security.curve)
        add("security.secret_key_file", security.secretKeyFile.isEmpty ? "(none)" : security.secretKeyFile)
        add("security.peers_file", security.peersFile.isEmpty ? "(none)" : security.peersFile)
        add("log.level", logLevel)
        add("log.format", logFormat)
        if let c = rules.calendar {
            let hm = { (m: Int) in String(format: "%02d:%02d", m / 60, m % 60) }
            add("calendar.enabled", true)
            add("calendar.days", list(c.days.sorted().map(String.init)))
            add("calendar.hours", list(c.periods.map { hm($0.lowerBound) + "-" + hm($0.upperBound) }))
            add("calendar.tiers", list(Tier.allCases.filter(c.tiers.contains).map(\.rawValue)))
            add("calendar.always_priority", c.alwaysPriority)
        } else {
            add("calendar.enabled", "false (deadlines count around the clock)")
        }
        add("cameras.demote", rules.cameraDemotion.isEmpty ? "(none)"
            : rules.cameraDemotion.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        let suppression = cameraSuppression
        add("cameras.suppress_false_alarm_pct", suppression.falseAlarmPercent == 0 ? "0 (no camera is suppressed)" : "\(suppression.falseAlarmPercent)")
        add("cameras.suppress_min_judged", suppression.minJudged)
        add("cameras.suppress_days", suppression.days)
        add("cameras.suppress_check_s", Int(suppression.checkSeconds))
        add("routing.start_tier", list(rules.defaultRoute.startTiers.map(\.rawValue))
            + " (every category without its own start_tier)")
        add("routing.default_departments", list(rules.defaultRoute.departments)
            + " (categories without departments of their own; every built-in category has its own)")
        add("correlation.dispatch_severity", rules.dispatchSeverity)
        add("correlation.inhibit_s", Int(rules.inhibitSeconds))
        add("correlation.update_interval_s", Int(rules.updateIntervalSeconds))
        add("correlation.unmapped_alarm_category", rules.unmappedAlarmCategory)
        func shape(_ r: CategoryRule) -> String {
            "radius_m=\(r.radiusMeters) window_s=\(r.windowSeconds) max_span_m=\(r.maxSpan) max_duration_s=\(r.maxDuration)"
        }
        add("correlation.default", shape(rules.defaultCategory))
        let categories = Set(rules.categories.keys).union(rules.routes.keys).union(["other"]).sorted()
        for name in categories {
            let rule = rules.rule(for: name), route = rules.route(for: name)
            add("category \(name)", shape(rule) + " "
                + "departments=\(list(route.departments)) start_tier=\(list(route.startTiers.map(\.rawValue)))")
        }
        add("correlation.alarm_categories", rules.alarmCategories.sorted { Self.alarmKeyOrder($0.key, $1.key) }
            .map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        add("correlation.report_categories", rules.reportCategories.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + " (others: their own name)")
        let days = { (d: Int) in d == 0 ? "0 (kept for ever)" : String(d) }
        add("retention.events_days", days(retention.eventsDays))
        add("retention.feed_days", days(retention.feedDays))
        add("retention.task_history_days", days(retention.taskHistoryDays))
        add("retention.dead_letter_days", days(retention.deadLetterDays))
        add("retention.dead_letter_bytes_per_hour", retention.deadLetterBytesPerHour)
        add("retention.positions_days", days(retention.positionsDays))
        add("workers.presence_s", Int(rules.workerPresenceSeconds))
        add("workers.patrol_due", workers.patrolDueMinutes.map { String(format: "%02d:%02d (CST)", $0 / 60, $0 % 60) } ?? "\"\" (no reminder)")
        add("ha.enabled", ha.enabled)
        add("ha.standby_buffer_s", ha.standbyBufferSeconds)
        add("ha.takeover_s", ha.takeoverSeconds)
        add("gb28181.sip_bind", gb28181.sipBind.joined(separator: ", "))
        add("gb28181.server_id", gb28181.serverID)
        add("gb28181.realm", gb28181.realm)
        add("gb28181.password", gb28181.password.isEmpty ? "(none)" : "(set)")
        add("gb28181.passwords_file", gb28181.passwordsFile.isEmpty ? "(none)" : gb28181.passwordsFile)
        add("gb28181.state_path", gb28181.statePath)
        add("gb28181.devices_file", gb28181.devicesFile.isEmpty ? "(none: any device id may register with the shared password)"
            : gb28181.devicesFile)
        add("gb28181.daemon_ack", gb28181.daemonAck)
        add("gb28181.keepalive_timeout_s", gb28181.keepaliveTimeoutSeconds)
        add("gb28181.catalog_interval_s", gb28181.catalogIntervalSeconds == 0 ? "0 (only when a device registers)"
            : "\(gb28181.catalogIntervalSeconds)")
        add("gb28181.arm_on_register", gb28181.armOnRegister ? "true (SetGuard after every registration)" : "false")
        add("gb28181.alarm_subscribe_s", gb28181.alarmSubscribeSeconds == 0 ? "0 (no subscriptions)" : "\(gb28181.alarmSubscribeSeconds)")
        add("gb28181.metrics_bind", gb28181.metricsBind.isEmpty ? "(none)" : gb28181.metricsBind)
        for (key, value) in open311.effective { add(key, value) }
        for (key, value) in console.effective { add(key, value) }
        for tier in Tier.allCases {
            let sla = rules.sla(for: tier)
            add("sla.\(tier.rawValue).respond_minutes", list(sla.respondMinutes.map(minutes)))
            add("sla.\(tier.rawValue).resolve_minutes", list(sla.resolveMinutes.map(minutes)))
        }
        return out
    }

    /// What is wrong but allowed: sockets other machines can reach while nothing authenticates
    /// them (anyone who reaches ingest can inject alerts, the feed shows every task, updates close
    /// any task). Said by check-config and logged at every start.
    public var warnings: [String] {
        let sockets = [("ingest.bind", ingestBind), ("ingest.ack_bind", ingestAckBind), ("feed.bind", feedBind),
                       ("feed.replay_bind", replayBind), ("updates.bind", updatesBind)]
        let exposed = sockets.filter { Endpoint.isExposed($0.1) }.map { "\($0.0) \($0.1)" }
        var out: [String] = []
        if !exposed.isEmpty && !security.curve {
            out.append("UNAUTHENTICATED SOCKETS REACHABLE FROM OTHER MACHINES: \(exposed.joined(separator: ", ")). "
                + "Anyone who can reach them can inject alerts, read every task and close any task. Bind them to 127.0.0.1 "
                + "or turn on security.curve (authenticated, encrypted peers; see deploy/OPERATIONS.md).")
        }
        if metricsBind.hasPrefix("*") || metricsBind.hasPrefix("0.0.0.0") || metricsBind.hasPrefix(":") {
            out.append("metrics.bind \(metricsBind) serves /metrics to every interface")
        }
        return out
    }

    /// "5/10" after "5/9": method, then type, numerically.
    static func alarmKeyOrder(_ a: String, _ b: String) -> Bool {
        let x = a.split(separator: "/").compactMap { Int($0) }, y = b.split(separator: "/").compactMap { Int($0) }
        return x.lexicographicallyPrecedes(y)
    }
}
