import Foundation
import LiandongCore
@testable import LiandongServices
@testable import LiandongStorage
import Testing

@Suite("Configuration")
struct ConfigTests {
    @Test("no file and no environment gives the documented defaults")
    func defaults() throws {
        let c = try Config.load(path: nil, environment: [:])
        #expect(c.ingestBind == "tcp://*:7601" && c.feedBind == "tcp://*:7611" && c.databaseURL == "")
        #expect(c.batchSize == 1_000 && c.rules.dispatchSeverity == 2)
        #expect(c.rules == Rules())
    }

    @Test("the example config in deploy/ loads and sets what it shows")
    func example() throws {
        let c = try Config.load(path: TestDatabase.repository.path + "/deploy/liandong.example.yaml", environment: [:])
        #expect(c.rules.category(alarmMethod: 5, alarmType: 100) == "fire")
        #expect(c.rules.category(report: "烟雾") == "fire")
        #expect(c.rules.rule(for: "crowd").radiusMeters == 500)
        #expect(c.ha == Config.HA() && !c.ha.enabled && c.ha.standbyBufferSeconds == 30 && c.ha.takeoverSeconds == 5)
    }

    @Test("ha.*: a pair's keys, from the file or the environment; gb28181.daemon_ack may name every daemon")
    func ha() throws {
        let c = try Config.load(path: try temporaryFile("ha:\n  enabled: true\n  takeover_s: 3\n"), environment: [
            "LIANDONG_HA_STANDBY_BUFFER_S": "60",
            "LIANDONG_GB28181_DAEMON_ACK": "tcp://10.0.0.11:7602, tcp://10.0.0.12:7602",
        ])
        #expect(c.ha.enabled && c.ha.takeoverSeconds == 3 && c.ha.standbyBufferSeconds == 60)
        #expect(c.gb28181.daemonAcks == ["tcp://10.0.0.11:7602", "tcp://10.0.0.12:7602"])
        #expect(c.effectiveSettings.contains { $0.key == "ha.enabled" && $0.value == "true" })
    }

    @Test("open311.*: the example's section, services replacing the defaults, and refusals naming the key")
    func open311() throws {
        let example = try Config.load(path: TestDatabase.repository.path + "/deploy/liandong.example.yaml", environment: [:])
        #expect(example.open311.bind == "127.0.0.1:8311" && example.open311.basePath == "/open311/v2"
                && example.open311.apiKeysFile == "" && example.open311.services == Open311.Service.defaults)
        let c = try Config.load(path: try temporaryFile("""
            open311:
              jurisdiction_id: "620922"
              services:
                well: {category: environment, name: "水井 Well", keywords: [水, well], severity: 2}
                lamp: {category: other}
            """), environment: ["LIANDONG_OPEN311_DAEMON_ACK": "tcp://a:7602, tcp://b:7602", "LIANDONG_OPEN311_ANSWER_TIMEOUT_S": "3"])
        #expect(c.open311.services.map(\.code) == ["lamp", "well"] && c.open311.services[1].keywords == ["水", "well"] && c.open311.services[1].severity == 2)
        #expect(c.open311.services[0].severity == 3 && c.open311.services[0].name == "lamp")
        #expect(c.open311.daemonAcks == ["tcp://a:7602", "tcp://b:7602"] && c.open311.answerTimeoutSeconds == 3)
        #expect(c.effectiveSettings.contains { $0.key == "open311.services" && $0.value.contains("well -> environment (severity 2)") })
        for (yaml, words) in [("open311:\n  base_path: open311/\n", "open311.base_path"), ("open311:\n  services:\n    x: {name: X}\n", "open311.services.x.category"),
                              ("open311:\n  services:\n    x: {category: c, colour: red}\n", "colour"), ("open311:\n  bind: nowhere\n", "open311.bind"),
                              ("open311:\n  api_key: k-123\n", "unknown config key open311.api_key"),
                              ("open311:\n  daemon_ack: 127.0.0.1:7602\n", "open311.daemon_ack")] {
            #expect { try Config.load(path: try temporaryFile(yaml), environment: [:]) } throws: {
                ($0 as? ConfigError)?.message.contains(words) == true
            }
        }
    }

    @Test("console.*: defaults, a pair's endpoint lists, and refusals naming the key")
    func console() throws {
        let defaults = try Config.load(path: nil, environment: [:])
        #expect(defaults.console.bind == "127.0.0.1:8088" && defaults.console.updates == ["tcp://127.0.0.1:7621"] && defaults.console.usersFile == "")
        let c = try Config.load(path: try temporaryFile("console:\n  feed: [tcp://10.0.0.11:7611, tcp://10.0.0.12:7611]\n  users_file: /etc/liandong/console-users\n"),
                                environment: ["LIANDONG_CONSOLE_UPDATES": "tcp://10.0.0.11:7621, tcp://10.0.0.12:7621"])
        #expect(c.console.feed == ["tcp://10.0.0.11:7611", "tcp://10.0.0.12:7611"] && c.console.updates.count == 2)
        #expect(c.effectiveSettings.contains { $0.key == "console.users_file" && $0.value == "/etc/liandong/console-users" })
        #expect(c.namedFiles.contains { $0.setting == "console.users_file" })
        for (yaml, words) in [("console:\n  feed: nowhere\n", "console.feed"), ("console:\n  bind: 8088\n", "console.bind"),
                              ("console:\n  theme: dark\n", "unknown config key console.theme")] {
            #expect { try Config.load(path: try temporaryFile(yaml), environment: [:]) } throws: {
                ($0 as? ConfigError)?.message.contains(words) == true
            }
        }
    }

    @Test("LIANDONG_<SECTION>_<KEY> overrides the file, lists are comma-separated")
    func environment() throws {
        let file = try temporaryFile("database:\n  url: host=file\ningest:\n  batch_size: 10\n")
        let c = try Config.load(path: file, environment: [
            "LIANDONG_DATABASE_URL": "postgresql://ops@db1/liandong",
            "LIANDONG_INGEST_BATCH_SIZE": "2000",
            "LIANDONG_INGEST_CONNECT": "tcp://gw-1:7600, tcp://gw-2:7600",
            "LIANDONG_SLA_TOWNSHIP_RESPOND_MINUTES": "1,2,3,4",
            "LIANDONG_CORRELATION_DISPATCH_SEVERITY": "1",
            "HOME": "/root",
        ])
        #expect(c.databaseURL == "postgresql://ops@db1/liandong")
        #expect(c.batchSize == 2000)
        #expect(c.ingestConnect == ["tcp://gw-1:7600", "tcp://gw-2:7600"])
        #expect(c.rules.sla(for: .township).respondMinutes == [1, 2, 3, 4])
        #expect(c.rules.dispatchSeverity == 1)
    }

    @Test("a bad value from the environment names the variable that set it, not only the key")
    func environmentValueNamed() throws {
        #expect {
            try Config.load(path: nil, environment: ["LIANDONG_INGEST_BATCH_SIZE": "many"])
        } throws: { ($0 as? ConfigError)?.message.contains("(set by the environment variable LIANDONG_INGEST_BATCH_SIZE)") == true }
        #expect {
            try Config.load(path: nil, environment: ["LIANDONG_SLA_TOWNSHIP_RESPOND_MINUTES": "1,2"])
        } throws: { ($0 as? ConfigError)?.message.contains("LIANDONG_SLA_TOWNSHIP_RESPOND_MINUTES") == true }
        // A value from the file names no variable.
        #expect {
            try Config.load(path: try temporaryFile("ingest:\n  batch_size: many\n"), environment: [:])
        } throws: { ($0 as? ConfigError).map { !$0.message.contains("environment variable") } == true }
    }

    @Test("nothing in the repository points outside it (the design and reference data it needs are in it)")
    func selfContained() throws {
        let listed = try runCaptured("/usr/bin/git", ["-C", TestDatabase.repository.path, "ls-files"])
        let files = listed.stdout.split(separator: "\n").map(String.init)
        #expect(files.count > 100, "git ls-files: \(listed.stderr)")
        var pointing: [String] = []
        for file in files where !file.hasSuffix(".png") && !file.hasPrefix("Tests/FuzzCorpus") {
            guard let text = try? String(contentsOfFile: TestDatabase.repository.path + "/" + file, encoding: .utf8) else { continue }
            if text.contains("../shared") || text.contains("shared/DESIGN") || text.contains("shared/reference") { pointing.append(file) }
        }
        #expect(pointing == ["Tests/LiandongIntegrationTests/ConfigTests.swift"], "\(pointing)")
    }

    @Test("incident bounds: 2 x radius and 4 x window unless given; a bound follows a radius or window given with it; 0 is off")
    func bounds() throws {
        let c = try Config.load(path: try temporaryFile("""
            correlation:
              update_interval_s: 10
              categories:
                crowd: {radius_m: 200}
                fire: {max_span_m: 0, max_duration_s: 7200}
            """), environment: [:])
        #expect(c.rules.updateIntervalSeconds == 10)
        #expect(c.rules.rule(for: "crowd").maxSpan == 400 && c.rules.rule(for: "crowd").maxDuration == 7200)
        #expect(c.rules.rule(for: "fire").maxSpan == 0 && c.rules.rule(for: "fire").maxDuration == 7200)
        #expect(c.rules.rule(for: "intrusion").maxSpan == 600 && c.rules.rule(for: "intrusion").maxDuration == 3600)
    }

    @Test("mistakes name the key", arguments: [
        ("feed:\n  bindd: x\n", [:], "unknown config key feed.bindd"),
        ("ingest:\n  batch_size: 0\n", [:], "ingest.batch_size = 0 is outside"),
        ("sla:\n  village: {respond_minutes: [1, 2]}\n", [:], "sla.village.respond_minutes must be 4"),
        ("correlation:\n  alarm_categories: {\"five/six\": x}\n", [:], "correlation.alarm_categories.five/six"),
        ("ingest:\n  bind: \"\"\n  ack_bind: \"\"\n", [:], "would receive nothing"),
        ("", ["LIANDONG_INGEST_BACH_SIZE": "3"], "LIANDONG_INGEST_BACH_SIZE names no config key"),
        ("log:\n  level: loud\n", [:], "log.level"),
        ("database:\n  synchronous: maybe\n", [:], "database.synchronous: \"maybe\" is not off, warn or require"),
        ("database:\n  stuck_s: 0\n", [:], "database.stuck_s = 0.0 is outside"),
        ("correlation:\n  categories:\n    crowd: {max_span_m: 300}\n", [:],
         "correlation.categories.crowd.max_span_m = 300.0 is below radius_m = 500.0"),
        ("correlation:\n  default: {window_s: 600, max_duration_s: 60}\n", [:], "correlation.default.max_duration_s = 60.0 is below"),
        ("correlation:\n  update_interval_s: -1\n", [:], "correlation.update_interval_s"),
        ("ha:\n  takeover_s: 0.5\n", [:], "ha.takeover_s = 0.5 is outside"),
        ("ha:\n  enable: true\n", [:], "unknown config key ha.enable"),
        ("gb28181:\n  daemon_ack: \"tcp://127.0.0.1:7602, htp://x\"\n", [:], "gb28181.daemon_ack"),
    ] as [(String, [String: String], String)])
    func mistakes(yaml: String, env: [String: String], message: String) throws {
        let file = try temporaryFile(yaml)
        #expect { try Config.load(path: file, environment: env) } throws: { "\($0)".contains(message) }
    }
}

/// check-config refuses what `run` would fail on, naming the key.
@Suite("Configuration checks")
struct ConfigCheckTests {
    func refused(_ yaml: String? = nil, environment: [String: String] = [:]) throws -> String {
        let file = try yaml.map { try temporaryFile($0) }
        do {
            _ = try Config.load(path: file, environment: environment)
            return "(accepted)"
        } catch let error as ConfigError {
            return error.message
        }
    }

    @Test("invalid endpoints are refused with their key")
    func endpoints() throws {
        #expect(try refused("ingest:\n  bind: htp://nowhere\n").contains("ingest.bind: \"htp://nowhere\": unknown transport"))
        #expect(try refused(environment: ["LIANDONG_FEED_BIND": "tcp://*:99999"]).contains("feed.bind"))
        #expect(try refused("ingest:\n  connect: [\"tcp://*:7600\"]\n").contains("ingest.connect"))
        #expect(try refused("updates:\n  bind: \"\"\n").contains("updates.bind"))
        #expect(try refused("feed:\n  replay_bind: tcp://*:7611\n").contains("feed.bind and feed.replay_bind both bind"))
        #expect(try refused("metrics:\n  bind: localhost:9464\n").contains("metrics.bind"))
        #expect(try refused("metrics:\n  bind: 127.0.0.1\n").contains("metrics.bind"))
        #expect(try refused("ingest:\n  bind: \"\"\nmetrics:\n  bind: \"\"\n") == "(accepted)")
    }

    @Test("a database.url libpq cannot parse is refused with libpq's reason; the password is never printed")
    func databaseURL() throws {
        #expect(try refused(environment: ["LIANDONG_DATABASE_URL": "host=db1 colour=blue"]).contains("invalid connection option \"colour\""))
        #expect(try refused(environment: ["LIANDONG_DATABASE_URL": "postgresql://[db1/liandong"]).contains("database.url"))
        let c = try Config.load(path: nil, environment: ["LIANDONG_DATABASE_URL": "postgresql://ops:s3cret@db1:5433/liandong"])
        let line = c.effectiveSettings.first { $0.key == "database.url" }!.value
        #expect(line.contains("host=db1") && line.contains("port=5433") && line.contains("dbname=liandong"))
        #expect(!line.contains("s3cret") && line.contains("password=(set)"))
    }

    @Test("categories named in routing and the category maps must exist")
    func unknownCategories() throws {
        #expect(try refused("routing:\n  categories:\n    fier:\n      departments: [fire]\n")
            .contains("routing.categories.fier: no category \"fier\""))
        #expect(try refused("correlation:\n  alarm_categories:\n    \"5/6\": intruson\n").contains("correlation.alarm_categories.5/6"))
        #expect(try refused("correlation:\n  report_categories:\n    flood: flooding\n").contains("correlation.report_categories.flood"))
        #expect(try refused("correlation:\n  unmapped_alarm_category: misc\n").contains("unmapped_alarm_category"))
        // A new category with a rule of its own may be routed and mapped to.
        let c = try Config.load(path: try temporaryFile("""
            correlation:
              categories:
                flooding: {radius_m: 2000}
              report_categories:
                flood: flooding
            routing:
              categories:
                flooding: {departments: [water_resources]}
            """), environment: [:])
        #expect(c.rules.route(for: "flooding").departments == ["water_resources"])
    }

    @Test("a LIANDONG_ variable naming no section is refused; the tools' own variables are not config")
    func unknownSection() throws {
        #expect(try refused(environment: ["LIANDONG_DATABSE_URL": "host=elsewhere"]).contains("LIANDONG_DATABSE_URL names no config section"))
        #expect(try refused(environment: ["LIANDONG_TEST_PG": "x", "LIANDONG_PG_PORT": "1", "LIANDONG_BENCH_EVENTS": "2"]) == "(accepted)")
    }

    @Test("routing.start_tier applies to built-in categories without a start tier of their own, not to fire or device_fault")
    func startTier() throws {
        let c = try Config.load(path: try temporaryFile("routing:\n  start_tier: [county, county, township, township]\n"), environment: [:])
        let tiers: [Tier] = [.county, .county, .township, .township]
        #expect(c.rules.route(for: "crowd").startTiers == tiers)
        #expect(c.rules.route(for: "some_new_report_category").startTiers == tiers)
        #expect(c.rules.route(for: "fire").startTiers == Rules.defaultRoutes["fire"]!.startTiers)
        #expect(c.rules.route(for: "device_fault").startTiers == Rules.defaultRoutes["device_fault"]!.startTiers)
        #expect(c.rules.route(for: "crowd").departments == ["police", "urban_management"])
    }

    @Test("YAML as operators write it: quoted empty is empty, ~ is the default, bare numbers as keys, on/off")
    func yamlForms() throws {
        let c = try Config.load(path: try temporaryFile("""
            ingest:
              bind: ""
              ack_bind: ~
            calendar:
              enabled: on
            correlation:
              alarm_categories:
                6: tamper
            """), environment: [:])
        #expect(c.ingestBind == "" && c.ingestAckBind == "tcp://*:7602")
        #expect(c.rules.calendar != nil)
        #expect(c.rules.category(alarmMethod: 6, alarmType: nil) == "tamper")
        #expect(try refused("ingest:\n  batch_size: [1, 2]\n").contains("ingest.batch_size must be an integer, got \"a list\""))
        #expect(try refused("a: &x 1\nb: *x\n").contains("aliases") || refused("a: &x 1\nb: *x\n").contains("unknown config key"))
    }

    @Test("sockets reachable from other machines are a warning; loopback, ipc and inproc are not")
    func exposureWarnings() throws {
        let exposed = try Config.load(path: nil, environment: ["LIANDONG_UPDATES_BIND": "tcp://10.0.0.5:7621"]).warnings
        #expect(exposed.count == 1 && exposed[0].contains("updates.bind tcp://10.0.0.5:7621") && exposed[0].contains("feed.bind tcp://*:7611"))
        let local = try Config.load(path: nil, environment: [
            "LIANDONG_INGEST_BIND": "tcp://127.0.0.1:7601", "LIANDONG_INGEST_ACK_BIND": "ipc:///run/liandong/ack",
            "LIANDONG_FEED_BIND": "tcp://127.0.0.1:7611", "LIANDONG_FEED_REPLAY_BIND": "inproc://replay",
            "LIANDONG_UPDATES_BIND": "tcp://[::1]:7621",
        ]).warnings
        #expect(local.isEmpty, "\(local)")
    }

    @Test("check-config prints every key in effect, and --version the release")
    func printsEverything() throws {
        let r = try liandongd(["check-config"], environment: ["LIANDONG_INGEST_BATCH_SIZE": "123"])
        #expect(r.status == 0, "\(r.stderr)")
        let keys = Set(r.stdout.split(separator: "\n").compactMap { $0.split(separator: ":", maxSplits: 1).first.map(String.init) })
        let maps: Set<String> = ["categories", "default", "demote", "enabled", "days", "hours", "tiers", "always_priority", "sla"]
        for (section, names) in Config.sections where section != "sla" {
            for name in names where !maps.contains(name) || section == "cameras" {
                let key = section == "cameras" ? "cameras.demote" : "\(section).\(name)"
                #expect(keys.contains(key), "check-config does not print \(key)")
            }
        }
        for tier in Tier.allCases { #expect(keys.contains("sla.\(tier.rawValue).resolve_minutes")) }
        #expect(keys.contains("calendar.enabled") && keys.contains("correlation.default") && keys.contains("category fire"))
        #expect(r.stdout.contains("ingest.batch_size: 123\n"))
        // The defaults bind every interface without authentication: said loudly.
        #expect(r.stdout.contains("WARNING: UNAUTHENTICATED SOCKETS REACHABLE FROM OTHER MACHINES: ingest.bind tcp://*:7601"))
        #expect(r.stdout.hasSuffix("config OK, with 1 warning(s) above\n"))
        let version = try liandongd(["--version"])
        #expect(version.status == 0 && version.stdout == LiandongVersion.current + "\n")
    }
}
