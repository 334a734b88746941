import Foundation
import LiandongCore
import Synchronization
import Testing

/// Task planning without a database: emission, routing, deadlines, dispatchers' actions and escalation.
@Suite("Task planner")
struct TaskPlannerTests {
    /// 2026-12-02 08:00:00 +08:00.
    let now = 1_796_169_600.0
    let village = "620922100001"

    /// Ids "id-1", "id-2", ... in the order the planner asks for them.
    static func counter() -> @Sendable () -> String {
        let next = Mutex(0)
        return { next.withLock { n in n += 1; return "id-\(n)" } }
    }

    func planner(_ rules: Rules = Rules()) -> TaskPlanner { TaskPlanner(rules: rules, newID: Self.counter()) }

    func incident(_ category: String = "intrusion", priority: Int = 3, alerts: Int = 1, reports: Int = 0,
                  task: TaskRecord? = nil) -> IncidentState
    {
        IncidentState(
            id: "inc-1", category: category, gridCode: village + "01", villageCode: village, priority: priority,
            lon: 95.78, lat: 40.52, workerID: "w-7",
            evidence: TaskEvidence(alerts: Array(["a1", "a2", "a3"].prefix(alerts)), reports: Array(["r1"].prefix(reports)),
                                   alertCount: alerts, reportCount: reports),
            task: task)
    }

    func task(_ kind: TaskKind, state: TaskState = .open, tier: Tier = .village, priority: Int = 3, respondBy: Double? = nil,
              resolveBy: Double? = nil, overdue: Bool = false, overdueSince: Double? = nil) -> TaskRecord
    {
        TaskRecord(id: "task-1", incidentID: "inc-1", kind: kind, state: state, tier: tier,
                   divisionCode: tier.divisionCode(village: village), gridCode: village + "01", category: "intrusion",
                   priority: priority, departments: ["police"], respondBy: respondBy ?? now + 600,
                   resolveBy: resolveBy ?? now + 3600, overdue: overdue, overdueSince: overdueSince)
    }

    // MARK: evidence

    @Test("a camera alert alone: a verify task for the grid's village, on the grid's topic, with the village's deadlines")
    func verify() throws {
        let step = try #require(planner().evidence(on: incident(priority: 3), now: now)?.announced)
        #expect(step.event == .created)
        #expect(step.task.kind == .verify && step.task.tier == .village && step.task.divisionCode == village)
        #expect(step.task.id == "id-1" && step.message.messageID == "id-2")
        #expect(step.task.respondBy == now + 120 * 60 && step.task.resolveBy == now + 1440 * 60)
        #expect(step.message.topic == "task.\(village)01")
        #expect(step.message.kind == .verify && step.message.workerID == "w-7" && step.message.actor == nil)
        #expect(step.message.respondBy == "2026-12-02T10:00:00+08:00")
        #expect(step.message.evidence.alerts == ["a1"])
    }

    @Test("a report alone: dispatch by the category's route when serious, nothing when minor")
    func dispatch() throws {
        let serious = try #require(planner().evidence(on: incident("theft", priority: 2, alerts: 0, reports: 1), now: now)?.announced)
        #expect(serious.task.kind == .dispatch && serious.task.tier == .township)
        #expect(serious.task.divisionCode == "620922100" && serious.message.topic == "task.620922100")
        #expect(serious.task.respondBy == now + 20 * 60)
        let fire = try #require(planner().evidence(on: incident("fire", priority: 2, alerts: 0, reports: 1), now: now)?.announced)
        #expect(fire.task.tier == .county && fire.task.divisionCode == "620922")
        #expect(fire.task.departments == ["fire", "police", "health"])
        #expect(planner().evidence(on: incident("theft", priority: 3, alerts: 0, reports: 1), now: now) == nil)
    }

    @Test("configured routes: departments and start tiers per priority")
    func configuredRoute() throws {
        var rules = Rules()
        rules.routes["theft"] = Route(departments: ["police", "market"], startTiers: [.county, .county, .county, .township])
        let step = try #require(planner(rules).evidence(on: incident("theft", priority: 4, alerts: 2, reports: 1), now: now)?.announced)
        #expect(step.task.kind == .jointDispatch && step.task.tier == .township && step.task.departments == ["police", "market"])
    }

    @Test("camera and report agree: a verify task is upgraded in place to joint_dispatch, open again with new deadlines")
    func upgrade() throws {
        let verify = task(.verify, state: .accepted, overdue: false)
        let step = try #require(planner().evidence(on: incident(priority: 2, alerts: 2, reports: 1, task: verify), now: now + 60)?.announced)
        #expect(step.event == .upgraded)
        #expect(step.task.id == "task-1" && step.task.kind == .jointDispatch && step.task.state == .open)
        #expect(step.task.tier == .township && step.task.respondBy == now + 60 + 20 * 60)
        #expect(step.message.kind == .jointDispatch && step.message.evidence.reportCount == 1)
    }

    @Test("an upgrade never moves a task below the tier it already climbed to")
    func upgradeKeepsTier() throws {
        let escalated = task(.verify, tier: .county, priority: 4)
        let step = try #require(planner().evidence(on: incident(priority: 4, alerts: 1, reports: 1, task: escalated), now: now)?.announced)
        #expect(step.task.tier == .county && step.task.divisionCode == "620922")
        #expect(step.task.respondBy == now + 120 * 60)
    }

    @Test("later evidence is an update of the task, unchanged and unrecorded; a finished task emits nothing")
    func update() throws {
        let joint = task(.jointDispatch, state: .inProgress, tier: .township)
        let step = try #require(planner().evidence(on: incident(alerts: 3, reports: 1, task: joint), now: now)?.announced)
        var sent = joint
        sent.countsSentAt = now
        #expect(step.event == nil && step.task == sent)
        #expect(step.message.kind == .update && step.message.state == .inProgress && step.message.evidence.alertCount == 3)
        for state in [TaskState.resolved, .falseAlarm] {
            #expect(planner().evidence(on: incident(alerts: 3, reports: 1, task: task(.jointDispatch, state: state)), now: now) == nil)
        }
    }

    @Test("coalescing: within update_interval_s of the last message, new evidence is held back until the interval ends")
    func coalescedWithinInterval() throws {
        var joint = task(.jointDispatch, state: .accepted, tier: .township)
        joint.countsSentAt = now
        // 10 s after the last message: held back, due 30 s after it.
        let held = planner().evidence(on: incident(alerts: 3, reports: 1, task: joint), now: now + 10)
        #expect(owed(held) == "task-1 owes at \(now + 30)")
        // Already pending: the due time stays.
        joint.updateDueAt = now + 30
        #expect(owed(planner().evidence(on: incident(alerts: 4, reports: 1, task: joint), now: now + 29.9))
                == "task-1 owes at \(now + 30)")
        // The interval passed: at once, nothing pending after it.
        let late = try #require(planner().evidence(on: incident(alerts: 5, reports: 1, task: joint), now: now + 30)?.announced)
        #expect(late.message.kind == .update && late.message.evidence.alertCount == 5 && late.event == nil)
        #expect(late.task.countsSentAt == now + 30 && late.task.updateDueAt == nil)
        // Another interval, and 0 turns coalescing off.
        var rules = Rules()
        rules.updateIntervalSeconds = 120
        #expect(owed(planner(rules).evidence(on: incident(alerts: 3, reports: 1, task: joint), now: now + 60))
                == "task-1 owes at \(now + 30)")
        joint.updateDueAt = nil
        #expect(owed(planner(rules).evidence(on: incident(alerts: 3, reports: 1, task: joint), now: now + 60))
                == "task-1 owes at \(now + 120)")
        rules.updateIntervalSeconds = 0
        #expect(planner(rules).evidence(on: incident(alerts: 3, reports: 1, task: joint), now: now + 1)?.announced != nil)
    }

    @Test("material changes go out at once inside the interval: a more urgent priority (the task's rises), the other kind of evidence")
    func materialAtOnce() throws {
        var joint = task(.jointDispatch, tier: .township, priority: 3)
        joint.countsSentAt = now
        let urgent = try #require(planner().evidence(on: incident(priority: 2, alerts: 3, reports: 1, task: joint), now: now + 1)?.announced)
        #expect(urgent.message.kind == .update && urgent.message.priority == 2 && urgent.task.priority == 2)
        #expect(urgent.task.tier == .township && urgent.task.respondBy == joint.respondBy, "tier and deadlines stay")
        // Less urgent evidence never lowers it, and is held back.
        joint.priority = 2
        #expect(owed(planner().evidence(on: incident(priority: 4, alerts: 4, reports: 1, task: joint), now: now + 2))
                == "task-1 owes at \(now + 30)")
        // The first report on a verify task: the upgrade, at once.
        var verify = task(.verify)
        verify.countsSentAt = now
        let upgraded = try #require(planner().evidence(on: incident(alerts: 2, reports: 1, task: verify), now: now + 1)?.announced)
        #expect(upgraded.event == .upgraded && upgraded.message.kind == .jointDispatch)
    }

    @Test("the update a coalesced task owes carries the counts of when it is sent; a finished task owes nothing")
    func dueUpdate() throws {
        var joint = task(.jointDispatch, state: .inProgress, tier: .township)
        joint.countsSentAt = now
        joint.updateDueAt = now + 30
        let step = try #require(planner().dueUpdate(incident(alerts: 3, reports: 1, task: joint), now: now + 30.5))
        #expect(step.message.kind == .update && step.message.evidence.alertCount == 3 && step.message.state == .inProgress)
        #expect(step.event == nil && step.task.updateDueAt == nil && step.task.countsSentAt == now + 30.5)
        joint.state = .resolved
        #expect(planner().dueUpdate(incident(alerts: 3, reports: 1, task: joint), now: now + 31) == nil)
        #expect(planner().dueUpdate(incident(alerts: 3, reports: 1), now: now + 31) == nil)
    }

    // MARK: dispatchers

    @Test("a dispatcher's action moves the task and names the dispatcher")
    func accept() throws {
        let step = try planner().apply(.accept, to: incident(task: task(.verify)), actor: "zhang", note: "on my way",
                                       updateID: "u-1", now: now).get()
        #expect(step.event == .accepted && step.task.state == .accepted && step.actor == "zhang" && !step.escalated)
        #expect(step.message.kind == .update && step.message.actor == "zhang" && step.message.updateID == "u-1")
        #expect(step.message.reason == "on my way" && step.note == "on my way")
        let resolved = try planner().apply(.resolve, to: incident(task: task(.verify, state: .inProgress)), actor: "zhang",
                                           note: nil, updateID: "u-2", now: now).get()
        #expect(resolved.event == .resolved && resolved.task.state == .resolved && resolved.task.state.isTerminal)
    }

    @Test("a reject hands the task one tier up with that tier's deadlines; the county cannot reject")
    func reject() throws {
        let step = try planner().apply(.reject, to: incident(priority: 2, task: task(.dispatch, priority: 2)), actor: "li",
                                       note: "not ours", updateID: "u-3", now: now).get()
        #expect(step.event == .rejected && step.escalated && step.fromDivision == village)
        #expect(step.task.tier == .township && step.task.divisionCode == "620922100" && step.task.state == .open)
        #expect(step.task.respondBy == now + 20 * 60 && step.task.resolveBy == now + 180 * 60)
        #expect(step.message.kind == .escalation && step.message.previousDivisionCode == village)
        #expect(step.message.reason == "rejected by li at \(village): not ours")
        let county = planner().apply(.reject, to: incident(task: task(.dispatch, tier: .county)), actor: "li", note: nil,
                                     updateID: "u-4", now: now)
        #expect(throws: TaskRefusal.self) { try county.get() }
        let none = planner().apply(.accept, to: incident(), actor: "li", note: nil, updateID: "u-5", now: now)
        #expect((try? none.get()) == nil)
    }

    @Test("an operator's reassign moves an unfinished task to any division of its county, open there with that tier's deadlines")
    func reassign() throws {
        let accepted = task(.dispatch, state: .accepted, priority: 2)
        let step = try planner().apply(.reassign, to: incident(priority: 2, task: accepted), actor: "duty-2", note: "nobody on duty",
                                       updateID: "u-6", reassignTo: "620922100", now: now).get()
        #expect(step.event == .reassigned && step.escalated && step.fromDivision == village && step.actor == "duty-2")
        #expect(step.task.tier == .township && step.task.divisionCode == "620922100" && step.task.state == .open)
        #expect(step.task.respondBy == now + 20 * 60 && step.task.resolveBy == now + 180 * 60)
        #expect(step.message.kind == .escalation && step.message.topic == "task.620922100" && step.message.previousDivisionCode == village)
        #expect(step.message.reason == "reassigned by duty-2 from \(village) to 620922100: nobody on duty" && step.message.actor == "duty-2")
        // Down to another village of the county, too.
        let down = try planner().apply(.reassign, to: incident(task: task(.dispatch, tier: .county)), actor: "duty-2", note: "x",
                                       updateID: "u-7", reassignTo: "620922101202", now: now).get()
        #expect(down.task.tier == .village && down.task.divisionCode == "620922101202")
        for (target, state, why) in [("620923100", TaskState.open, "not in the task's county"), (village, .open, "at \(village) already"),
                                     ("6209221", .open, "6, 9 or 12 digits"), ("620922100", .resolved, "already resolved")] {
            let refused = planner().apply(.reassign, to: incident(task: task(.dispatch, state: state)), actor: "duty-2", note: "x",
                                          updateID: "u-8", reassignTo: target, now: now)
            #expect(throws: TaskRefusal.self) { try refused.get() }
            if case .failure(let refusal) = refused { #expect(refusal.message.contains(why), "\(refusal.message)") }
        }
        // On the wire: division_code and a note are required.
        let update = { (extra: String) in
            TaskUpdate.decode(Array(("{\"schema\":\"liandong.task_update.v1\",\"update_id\":\"u\",\"task_id\":\"t\",\"action\":\"reassign\","
                + "\"actor\":\"a\",\"at\":\"\(Timestamp.formatCST(now))\"" + extra + "}").utf8), now: now, maxFutureSeconds: 300)
        }
        #expect((try? update(",\"note\":\"why\",\"division_code\":\"620922100\"").get())?.divisionCode == "620922100")
        #expect((try? update(",\"note\":\"why\"").get()) == nil)
        #expect((try? update(",\"division_code\":\"620922100\"").get()) == nil)
    }

    @Test("a duty officer's note leaves the task as it was; an escalate by hand (督办) climbs one tier with the reason, not from the county")
    func noteAndEscalate() throws {
        let accepted = task(.dispatch, state: .accepted, priority: 2)
        let noted = try planner().apply(.note, to: incident(priority: 2, task: accepted), actor: "王值班", note: "called the grid worker",
                                        updateID: "u-n", now: now).get()
        #expect(noted.event == .noted && !noted.escalated && noted.actor == "王值班" && noted.note == "called the grid worker")
        #expect(noted.task.state == .accepted && noted.task.tier == accepted.tier && noted.task.respondBy == accepted.respondBy)
        #expect(noted.message.kind == .update && noted.message.reason == "called the grid worker" && noted.message.actor == "王值班")
        let up = try planner().apply(.escalate, to: incident(priority: 2, task: accepted), actor: "王值班", note: "no answer in 10 min",
                                     updateID: "u-e", now: now).get()
        #expect(up.event == .escalated && up.escalated && up.fromDivision == village && up.actor == "王值班")
        #expect(up.task.tier == .township && up.task.divisionCode == "620922100" && up.task.state == .open)
        #expect(up.task.respondBy == now + 20 * 60 && up.task.resolveBy == now + 180 * 60)
        #expect(up.message.kind == .escalation && up.message.topic == "task.620922100" && up.message.previousDivisionCode == village)
        #expect(up.message.reason == "escalated by 王值班 from \(village): no answer in 10 min")
        for (action, state, tier, why) in [(TaskAction.escalate, TaskState.open, Tier.county, "top tier"),
                                           (.note, .resolved, .village, "already resolved"),
                                           (.escalate, .falseAlarm, .village, "already false_alarm")] {
            let refused = planner().apply(action, to: incident(task: task(.dispatch, state: state, tier: tier)), actor: "a", note: "x",
                                          updateID: "u-r", now: now)
            if case .failure(let refusal) = refused { #expect(refusal.message.contains(why), "\(refusal.message)") } else {
                Issue.record("\(action) on a \(state) task at \(tier) was not refused")
            }
        }
        // On the wire both need a note.
        for action in ["note", "escalate"] {
            let body = { (extra: String) in
                TaskUpdate.decode(Array(("{\"schema\":\"liandong.task_update.v1\",\"update_id\":\"u\",\"task_id\":\"t\",\"action\":\"\(action)\","
                    + "\"actor\":\"a\",\"at\":\"\(Timestamp.formatCST(now))\"" + extra + "}").utf8), now: now, maxFutureSeconds: 300)
            }
            #expect((try? body(",\"note\":\"why\"").get())?.action == TaskAction(rawValue: action))
            #expect((try? body("").get()) == nil && (try? body(",\"note\":\"\"").get()) == nil)
        }
    }

    // MARK: deadlines

    @Test("a missed deadline climbs village -> township -> county, then marks the task overdue, then re-announces it")
    func escalation() throws {
        let p = planner()
        var state = incident(priority: 2, task: task(.dispatch, priority: 2, respondBy: now - 5))
        let first = try #require(p.deadline(state, now: now))
        #expect(first.event == .escalated && first.escalated && first.fromDivision == village)
        #expect(first.task.tier == .township && first.task.respondBy == now + 20 * 60)
        #expect(first.message.kind == .escalation && first.message.previousDivisionCode == village)
        #expect(first.message.reason == "respond_by 2026-12-02T07:59:55+08:00 missed at \(village)")
        #expect(first.actor == TaskStep.system && first.message.actor == nil)

        state.task = first.task
        state.task!.state = .accepted
        let later = now + 180 * 60
        let second = try #require(p.deadline(state, now: later))
        #expect(second.event == .escalated && second.task.tier == .county && second.task.state == .open)
        #expect(second.message.reason?.hasPrefix("resolve_by ") == true && second.message.topic == "task.620922")

        state.task = second.task
        let third = try #require(p.deadline(state, now: later + 15 * 60))
        #expect(third.event == .overdue && third.task.overdue && third.task.overdueSince == later + 15 * 60)
        #expect(third.task.tier == .county && !third.escalated && third.message.previousDivisionCode == nil)
        #expect(third.message.overdue && third.message.reason?.hasSuffix("missed at the county: overdue") == true)

        state.task = third.task
        let fourth = try #require(p.deadline(state, now: later + 75 * 60))
        var unchanged = third.task
        unchanged.countsSentAt = later + 75 * 60
        unchanged.lastAnnouncedAt = later + 75 * 60
        #expect(fourth.event == .reannounced && fourth.task == unchanged, "announced again, nothing else changes")
        #expect(first.task.escalations == 1 && second.task.escalations == 2 && third.task.escalations == 2)
        #expect(third.task.lastAnnouncedAt == later + 15 * 60 && fourth.at == later + 75 * 60)
        #expect(fourth.message.reason == "overdue at the county since \(Timestamp.formatCST(later + 15 * 60))")

        state.task!.state = .resolved
        #expect(p.deadline(state, now: later + 200 * 60) == nil)
    }

    @Test("when a task is due: past respond_by while open, past resolve_by, or overdue and announced reannounce ago; never finished")
    func due() {
        let open = task(.dispatch, respondBy: now + 10)
        #expect(!open.isDue(at: now, reannounce: 3600) && open.isDue(at: now + 10, reannounce: 3600))
        var accepted = open
        accepted.state = .accepted
        #expect(!accepted.isDue(at: now + 10, reannounce: 3600), "respond_by binds only while open")
        #expect(accepted.isDue(at: accepted.resolveBy, reannounce: 3600))
        var overdue = accepted
        overdue.overdue = true
        overdue.lastAnnouncedAt = now
        #expect(!overdue.isDue(at: accepted.resolveBy + 10, reannounce: 7200), "overdue: only the re-announcement interval counts")
        #expect(overdue.isDue(at: now + 7200, reannounce: 7200))
        for state in [TaskState.resolved, .falseAlarm] {
            var done = overdue
            done.state = state
            #expect(!done.isDue(at: now + 1e6, reannounce: 3600))
        }
        var owing = open
        owing.updateDueAt = now + 5
        #expect(!owing.owesUpdate(at: now + 4) && owing.owesUpdate(at: now + 5) && !open.owesUpdate(at: now + 1e6))
    }

    @Test("a step records its time in the task: every announced step the announcement, a finishing step the close, an escalation the climb")
    func stepTimes() throws {
        let p = planner()
        let created = try #require(p.evidence(on: incident(alerts: 1), now: now)?.announced)
        #expect(created.at == now && created.task.lastAnnouncedAt == now && created.task.countsSentAt == now)
        var state = incident(alerts: 1, task: created.task)
        let resolved = try p.apply(.resolve, to: state, actor: "d", note: nil, updateID: "u1", now: now + 60).get()
        #expect(resolved.task.closedAt == now + 60 && resolved.task.lastAnnouncedAt == now + 60 && resolved.at == now + 60)
        state.task!.state = .resolved
        state.task!.updateDueAt = now + 30
        #expect(p.forgetOwed(state)?.updateDueAt == nil && p.forgetOwed(state)?.id == created.task.id)
        #expect(p.dueUpdate(state, now: now + 90) == nil, "a finished task owes nothing")
    }

    @Test("working-hours calendars move deadlines of the tiers they cover, not critical tasks")
    func calendar() throws {
        var rules = Rules()
        rules.calendar = WorkingCalendar(tiers: [.village], alwaysPriority: 1)
        let p = planner(rules)
        // Wednesday 08:00: 480 working minutes = 08:30-12:00, 14:30-18:00, then Thursday 08:30-09:30.
        let minor = try #require(p.evidence(on: incident(priority: 4), now: now)?.announced)
        #expect(minor.task.respondBy == Timestamp.parse("2026-12-03T09:30:00+08:00"))
        let critical = try #require(p.evidence(on: incident("intrusion", priority: 1, alerts: 0, reports: 1), now: now)?.announced)
        #expect(critical.task.tier == .county && critical.task.respondBy == now + 5 * 60)
    }
}

/// A held-back update as "TASK owes at DUE" (nil: not held back).
func owed(_ outcome: EvidenceOutcome?) -> String? {
    guard case .coalesced(let task)? = outcome, let due = task.updateDueAt else { return nil }
    return "\(task.id) owes at \(due)"
}
