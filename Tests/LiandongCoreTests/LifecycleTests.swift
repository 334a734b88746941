import Foundation
import LiandongCore
import Testing

@Suite("Task lifecycle")
struct LifecycleTests {
    func apply(_ state: TaskState, _ action: TaskAction, tier: Tier = .village) -> Result<TaskTransition, TaskRefusal> {
        var machine = TaskLifecycle(state: state, tier: tier)
        return machine.apply(action)
    }

    @Test("allowed transitions", arguments: [
        (TaskState.open, TaskAction.accept, TaskState.accepted),
        (.accepted, .start, .inProgress),
        (.open, .resolve, .resolved), (.accepted, .resolve, .resolved), (.inProgress, .resolve, .resolved),
        (.open, .falseAlarm, .falseAlarm), (.accepted, .falseAlarm, .falseAlarm), (.inProgress, .falseAlarm, .falseAlarm),
    ])
    func allowed(from: TaskState, action: TaskAction, to: TaskState) throws {
        #expect(try apply(from, action).get() == .moved(to: to))
    }

    @Test("refused transitions say why", arguments: [
        (TaskState.accepted, TaskAction.accept, "already accepted"),
        (.inProgress, .accept, "already in_progress"),
        (.open, .start, "must be accepted before"),
        (.inProgress, .start, "already in_progress"),
        (.resolved, .accept, "already resolved"),
        (.resolved, .resolve, "already resolved"),
        (.falseAlarm, .start, "already false_alarm"),
        (.accepted, .reject, "only an open task can be rejected"),
    ])
    func refused(from: TaskState, action: TaskAction, message: String) {
        guard case .failure(let refusal) = apply(from, action) else {
            Issue.record("\(action) from \(from) should be refused")
            return
        }
        #expect(refusal.message.contains(message), "\(refusal.message)")
    }

    @Test("reject climbs one tier; the county cannot reject")
    func reject() throws {
        #expect(try apply(.open, .reject, tier: .village).get() == .escalate(to: .township))
        #expect(try apply(.open, .reject, tier: .township).get() == .escalate(to: .county))
        guard case .failure(let r) = apply(.open, .reject, tier: .county) else {
            Issue.record("county rejected")
            return
        }
        #expect(r.message.contains("county"))
    }

    @Test("a missed deadline climbs village -> township -> county, then stops (overdue)")
    func deadlineLadder() {
        var machine = TaskLifecycle(state: .accepted, tier: .village)
        #expect(machine.escalateForDeadline() == .township)
        #expect(machine.state == .open)
        #expect(machine.escalateForDeadline() == .county)
        #expect(machine.escalateForDeadline() == nil)
        var done = TaskLifecycle(state: .resolved, tier: .village)
        #expect(done.escalateForDeadline() == nil)
    }

    @Test("division codes per tier nest in the village code")
    func divisions() {
        #expect(Tier.township.divisionCode(village: "620922102201") == "620922102")
        #expect(Tier.county.divisionCode(village: "620922102201") == "620922")
        #expect(Tier.village.divisionCode(village: "620922102201") == "620922102201")
    }
}

@Suite("Routing and deadlines")
struct RoutingTests {
    @Test("minor -> village, serious -> township, critical -> county; fire starts higher")
    func startTiers() {
        let rules = Rules()
        #expect(rules.route(for: "intrusion").startTier(priority: 4) == .village)
        #expect(rules.route(for: "intrusion").startTier(priority: 3) == .village)
        #expect(rules.route(for: "intrusion").startTier(priority: 2) == .township)
        #expect(rules.route(for: "intrusion").startTier(priority: 1) == .county)
        #expect(rules.route(for: "fire").startTier(priority: 2) == .county)
        #expect(rules.route(for: "unheard_of").departments == ["police"])
    }

    @Test("a camera with many false alarms is demoted at ingest, never beyond 4")
    func demotion() {
        let rules = Rules(cameraDemotion: ["62092200001320000001": 2])
        #expect(rules.alertPriority(1, device: "62092200001320000001") == 3)
        #expect(rules.alertPriority(3, device: "62092200001320000001") == 4)
        #expect(rules.alertPriority(1, device: "62092200001320000002") == 1)
    }

    // Monday 2026-11-30 09:00 +08:00
    let monday9 = Timestamp.parse("2026-11-30T09:00:00+08:00")!

    @Test("without a calendar deadlines run around the clock")
    func aroundTheClock() {
        let d = Rules().deadlines(tier: .village, priority: 2, from: monday9)
        #expect(d.respondBy == monday9 + 30 * 60 && d.resolveBy == monday9 + 240 * 60)
    }

    @Test("with a calendar, SLA minutes count only in working hours")
    func workingHours() {
        let calendar = WorkingCalendar()  // Mon-Fri 08:30-12:00, 14:30-18:00
        // 4 working hours from Monday 09:00: 3 h until 12:00, then 1 h from 14:30.
        #expect(calendar.add(seconds: 4 * 3600, to: monday9) == Timestamp.parse("2026-11-30T15:30:00+08:00")!)
        // From Friday 17:00, 2 hours: 1 h on Friday, the rest on Monday from 08:30.
        let friday17 = Timestamp.parse("2026-12-04T17:00:00+08:00")!
        #expect(calendar.add(seconds: 2 * 3600, to: friday17) == Timestamp.parse("2026-12-07T09:30:00+08:00")!)
        // Saturday night: starts counting Monday 08:30.
        let saturday = Timestamp.parse("2026-12-05T23:00:00+08:00")!
        #expect(calendar.add(seconds: 600, to: saturday) == Timestamp.parse("2026-12-07T08:40:00+08:00")!)
        let rules = Rules(calendar: calendar)
        #expect(rules.deadlines(tier: .village, priority: 2, from: friday17).respondBy
                == Timestamp.parse("2026-12-04T17:30:00+08:00")!)
        // Priority 1 and the county tier ignore the calendar.
        #expect(rules.deadlines(tier: .village, priority: 1, from: saturday).respondBy == saturday + 600)
        #expect(rules.deadlines(tier: .county, priority: 3, from: saturday).respondBy == saturday + 1800)
        #expect(WorkingCalendar.period("08:30-12:00") == 510...720 && WorkingCalendar.period("12-8") == nil)
    }
}

@Suite("Task updates")
struct TaskUpdateDecodingTests {
    func decode(_ o: [String: Any]) -> Result<TaskUpdate, TaskUpdateError> {
        TaskUpdate.decode(Array(try! JSONSerialization.data(withJSONObject: o)), now: now, maxFutureSeconds: 600)
    }
    let now = Timestamp.parse("2026-11-29T10:25:00+08:00")!
    let valid: [String: Any] = ["schema": "liandong.task_update.v1", "update_id": "u-1", "task_id": "t",
                                "action": "accept", "actor": "township-7", "at": "2026-11-29T10:20:00+08:00"]

    @Test("a valid update decodes")
    func ok() throws {
        let u = try decode(valid).get()
        #expect(u.updateID == "u-1" && u.action == .accept && u.actor == "township-7")
    }

    @Test("each problem is named, with the update_id when readable", arguments: [
        ("schema", "\"liandong.task_update.v2\"", "schema"), ("action", "\"approve\"", "action must be one of"),
        ("actor", "7", "actor"), ("at", "\"later\"", "RFC 3339"), ("note", "5", "note"), ("task_id", "\"\"", "task_id"),
    ])
    func problems(key: String, json: String, message: String) throws {
        var o = valid
        o[key] = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
        guard case .failure(let e) = decode(o) else {
            Issue.record("accepted \(key)=\(json)")
            return
        }
        #expect(e.message.contains(message) && e.updateID == "u-1")
    }

    @Test("a reject needs a reason; garbage is refused without an id")
    func rejectAndGarbage() {
        var o = valid
        o["action"] = "reject"
        if case .failure(let e) = decode(o) { #expect(e.message.contains("reason")) } else { Issue.record("no reason") }
        if case .failure(let e) = TaskUpdate.decode(Array("{nope".utf8), now: now, maxFutureSeconds: 600) { #expect(e.updateID == nil) }
    }

    @Test("an update dated more than the allowed clock skew ahead is refused; within it, accepted")
    func future() throws {
        var o = valid
        o["at"] = "2026-11-29T10:34:59+08:00"
        #expect((try? decode(o).get()) != nil)
        o["at"] = "2026-11-29T10:35:01+08:00"
        guard case .failure(let e) = decode(o) else {
            Issue.record("accepted an update 601 s ahead")
            return
        }
        #expect(e.message.contains("in the future") && e.message.contains("clock") && e.updateID == "u-1")
        o["at"] = "2027-11-29T10:20:00+08:00"
        #expect((try? decode(o).get()) == nil)
    }
}
