import Foundation
import LibPQ
import LiandongCore
import Testing

/// `liandongd operator grant ROLE --scope PREFIX`: a read-only operator who sees, through every
/// view and table it may read, only the rows of divisions under PREFIX (row-level security,
/// security_invoker views). The daemon, owner of the tables, is not affected.
@Suite("Scoped operators (row-level security)")
struct OperatorScopeTests {
    static let townshipA = "620922102", townshipB = "620922101"

    /// Every relation an operator reads, with the column that places its rows (nil: no division;
    /// "task_id": through the task).
    static let relations: [(String, String?)] = [
        ("open_incidents", "grid_code"), ("overdue_tasks", "division_code"), ("division_kpis", "division_code"),
        ("division_names", "code"), ("event_log", "grid_code"), ("feed_log", "substr(topic, 6)"),
        ("task_timeline", "task_id"), ("camera_reliability", "grid_code"), ("grid_worker_load", "grid_code"),
        ("dead_letters", "coalesce(grid_code, '')"), ("divisions", "code"), ("grids", "grid_code"), ("grid_workers", "grid_code"),
        ("cameras", "coalesce(grid_code, '')"), ("incidents", "grid_code"), ("events", "grid_code"), ("tasks", "grid_code"),
        ("task_history", "task_id"), ("task_updates", "task_id"), ("feed", "substr(topic, 6)"), ("rejected_messages", "coalesce(grid_code, '')"),
        ("task_assignments", "task_id"), ("village_areas", "code"), ("township_areas", "code"), ("overdue_task_points", "grid_code"),
        ("noisy_cameras", "grid_code"), ("camera_suppressions", "(SELECT grid_code FROM liandong.cameras c WHERE c.device_id = camera_suppressions.device_id)"),
        ("device_status", "(SELECT grid_code FROM liandong.cameras c WHERE c.device_id = device_status.device_id)"),
        ("device_status_history", "(SELECT grid_code FROM liandong.cameras c WHERE c.device_id = device_status_history.device_id)"),
        ("camera_online_rate", "division_code"), ("ha_lease", nil), ("ha_takeovers", nil),
        ("citizen_requests", "grid_code"), ("citizen_request_status", "grid_code"), ("citizen_kpis", "division_code"),
        ("citizen_feedback", "(SELECT grid_code FROM liandong.citizen_requests r WHERE r.service_request_id = citizen_feedback.service_request_id)"),
    ]

    @Test("a township's operator sees its own rows in every view and table, and nothing of the next township")
    func scoped() throws {
        let s = try Scene()
        let gridB = try #require(try s.db.query("SELECT min(grid_code) FROM liandong.grids WHERE grid_code LIKE $1",
                                                [Self.townshipB + "%"]).scalar)
        let centreB = try Scene.centre(of: gridB, s.db)
        try s.send("alert", Wire.alert(id: "op-a", priority: 3, at: s.now, position: s.centre))
        try s.send("alert", Wire.alert(id: "op-b", priority: 3, at: s.now, position: centreB))
        try s.send("alert", "{not json")
        // Dead letters whose body names a camera of each township: seen by that township's operators.
        for (n, township) in [Self.townshipA, Self.townshipB].enumerated() {
            let device = try #require(try s.db.query("SELECT min(device_id) FROM liandong.cameras WHERE grid_code LIKE $1 || '%'", [township]).scalar)
            try s.send("alert", Wire.alert(id: "op-bad-\(n)", device: device, priority: 9, at: s.now))
        }
        try s.daemon.waitUntil(timeout: 10, "two tasks and three dead letters") {
            try s.db.int("SELECT count(*) FROM liandong.tasks") == 2 && s.db.int("SELECT count(*) FROM liandong.rejected_messages") == 3
        }
        #expect(try s.db.int("SELECT count(*) FROM liandong.rejected_messages WHERE grid_code IS NOT NULL") == 2)
        let tasksA = try s.db.query("SELECT id FROM liandong.tasks WHERE grid_code LIKE $1", [Self.townshipA + "%"]).rows.map { $0[0]! }
        #expect(tasksA.count == 1)
        let task = try Dispatcher(s.daemon).send(tasksA[0], "accept")
        #expect(task["ok"] as? Bool == true)
        // A noisy camera in each township (the sweeper's figures), so their rows are scoped too.
        try s.db.query("""
            INSERT INTO liandong.camera_suppressions (device_id, judged, false_alarms, suppressed_since)
            SELECT min(device_id), 20, 19, now() FROM liandong.cameras WHERE grid_code LIKE $1 || '%'
            UNION ALL SELECT min(device_id), 20, 2, NULL FROM liandong.cameras WHERE grid_code LIKE $2 || '%'
            """, [Self.townshipA, Self.townshipB])
        // A registered camera in each township, and an NVR (no camera of the registry: unscoped operators only).
        try s.db.query("""
            SELECT liandong.record_device_status(jsonb_agg(jsonb_build_object('device_id', d, 'status', 'online', 'reason', 'register',
                                                                              'at', extract(epoch FROM now()) - 60)))
            FROM (SELECT min(device_id) AS d FROM liandong.cameras WHERE grid_code LIKE $1 || '%'
                  UNION ALL SELECT min(device_id) FROM liandong.cameras WHERE grid_code LIKE $2 || '%'
                  UNION ALL SELECT '62092200001180000001') x
            """, [Self.townshipA, Self.townshipB])
        let url = s.daemon.database
        let role = "ld_op_\(UUID().uuidString.lowercased().prefix(8))"
        let granted = try liandongd(["operator", "grant", role, "--scope", Self.townshipA], database: url)
        #expect(granted.status == 0 && granted.stdout.contains("created login role \(role)")
                && granted.stdout.contains("is a read-only operator of the divisions under \(Self.townshipA)"), "\(granted.stderr)")
        let op = try PGConnection(conninfo: url.replacingOccurrences(of: "user=postgres", with: "user=\(role)"))
        var seenSomething = 0
        for (relation, column) in Self.relations {
            let inA: String
            switch column {
            case nil: inA = "false"
            case "task_id"?: inA = "task_id::text IN (SELECT id::text FROM liandong.tasks WHERE grid_code LIKE '\(Self.townshipA)%')"
            case let c?: inA = "\(c) LIKE '\(Self.townshipA)%'"
            }
            let asOperator = try op.query("SELECT count(*) AS n, count(*) FILTER (WHERE \(inA)) AS a FROM liandong.\(relation)")
            let all = try s.db.int("SELECT count(*) FROM liandong.\(relation)")
            let expected = try s.db.int("SELECT count(*) FROM liandong.\(relation) WHERE \(inA)")
            #expect(asOperator[0, "n"] == asOperator[0, "a"], "\(relation): every row the operator sees is in township A")
            #expect(Int(asOperator[0, "n"]!) == expected, "\(relation): the operator sees all of township A's \(expected) rows")
            if column != nil && expected > 0 && expected < all { seenSomething += 1 }
        }
        #expect(seenSomething >= 10, "most relations hold rows of both townships, so the filter was tested")
        // The feed position is global, not a division's: readable.
        #expect(try op.query("SELECT committed_head FROM liandong.feed_status").count == 1)
        #expect(throws: PQError.self) { try op.query("INSERT INTO liandong.operator_scopes (role, scope) VALUES ('x', '')") }

        // An unscoped operator sees everything, dead letters included; the list shows both.
        let all = "ld_op_all_\(UUID().uuidString.lowercased().prefix(8))"
        #expect(try liandongd(["operator", "grant", all, "--scope", ""], database: url).status == 0)
        let everything = try PGConnection(conninfo: url.replacingOccurrences(of: "user=postgres", with: "user=\(all)"))
        #expect(try everything.int("SELECT count(*) FROM liandong.dead_letters") == 3)
        #expect(try everything.int("SELECT count(*) FROM liandong.device_status") == 3, "the NVR too")
        #expect(try everything.int("SELECT count(*) FROM liandong.open_incidents") == s.db.int("SELECT count(*) FROM liandong.open_incidents"))
        let list = try liandongd(["operator", "list"], database: url)
        #expect(list.stdout.contains("\(role)\t\(Self.townshipA)") && list.stdout.contains("\(all)\t(everything)"))

        // Revoked: nothing any more.
        #expect(try liandongd(["operator", "revoke", role], database: url).stdout.contains("no longer an operator"))
        let after = try PGConnection(conninfo: url.replacingOccurrences(of: "user=postgres", with: "user=\(role)"))
        #expect(throws: PQError.self) { try after.query("SELECT count(*) FROM liandong.open_incidents") }
        // Refusals name the problem.
        let superuser = try liandongd(["operator", "grant", "postgres", "--scope", Self.townshipA], database: url)
        #expect(superuser.status == 1 && superuser.stderr.contains("superuser or bypasses row-level security"))
        let nowhere = try liandongd(["operator", "grant", role, "--scope", "9999"], database: url)
        #expect(nowhere.status == 1 && nowhere.stderr.contains("matches no division"))
        // The daemon (the owner) is not affected: it went on writing all along.
        #expect(try s.db.int("SELECT count(*) FROM liandong.task_history WHERE event = 'accepted'") == 1)
    }
}
