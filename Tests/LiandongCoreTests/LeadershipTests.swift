import LiandongCore
import Testing

@Suite("Leadership of an active/standby pair")
struct LeadershipTests {
    let timing = Leadership.Timing(takeover: 5)

    @Test("the timing fits a takeover inside ha.takeover_s, and a leader gives up before a standby may take over")
    func timingFits() {
        #expect(timing.tick == 0.5)
        #expect(timing.leaseExpiry + timing.tick < timing.takeover)
        #expect(timing.renewDeadline < timing.leaseExpiry)
    }

    @Test("the first daemon leads at epoch 1; a lock taken over a dead leader's lease is lock_free at the next epoch")
    func lockDecides() {
        var a = Leadership(me: "a", timing: timing)
        #expect(a.standby(gotLock: true, lease: nil, now: 0) == .lead(.init(epoch: 1, previous: nil, reason: .first)))
        #expect(a.isLeader && a.epoch == 1)
        var b = Leadership(me: "b", timing: timing)
        let fresh = Leadership.Lease(holder: "a", epoch: 1, age: 0.2)
        #expect(b.standby(gotLock: false, lease: fresh, now: 0) == .wait)
        #expect(b.standby(gotLock: false, lease: nil, now: 0) == .wait, "a leader between its lock and its lease")
        // a was killed: its session ended, the lock is free though the lease is fresh.
        #expect(b.standby(gotLock: true, lease: fresh, now: 1) == .lead(.init(epoch: 2, previous: fresh, reason: .lockFree)))
        #expect(b.epoch == 2)
    }

    @Test("a lease older than the expiry is taken from its holder, and the lock that follows is lease_expired")
    func paused() {
        var b = Leadership(me: "b", timing: timing)
        let stale = Leadership.Lease(holder: "a", epoch: 4, age: 3.1)
        #expect(b.standby(gotLock: false, lease: .init(holder: "a", epoch: 4, age: 2.9), now: 0) == .wait)
        #expect(b.standby(gotLock: false, lease: stale, now: 0) == .evict(stale))
        b.evicted(stale, took: true)
        // The lease names b now; a's sessions are being ended, the lock is not free yet.
        let mine = Leadership.Lease(holder: "b", epoch: 4, age: 0.1)
        #expect(b.standby(gotLock: false, lease: mine, now: 0.5) == .wait)
        #expect(b.standby(gotLock: true, lease: mine, now: 1) == .lead(.init(epoch: 5, previous: stale, reason: .leaseExpired)))
    }

    @Test("a standby that lost the race for the lease does not claim it")
    func lostRace() {
        var c = Leadership(me: "c", timing: timing)
        let stale = Leadership.Lease(holder: "a", epoch: 4, age: 9)
        #expect(c.standby(gotLock: false, lease: stale, now: 0) == .evict(stale))
        c.evicted(stale, took: false)
        let bs = Leadership.Lease(holder: "b", epoch: 4, age: 0.1)
        #expect(c.standby(gotLock: false, lease: bs, now: 0.5) == .wait)
        // b took the lock at epoch 5 and then died: c takes over from b, not from a.
        let b5 = Leadership.Lease(holder: "b", epoch: 5, age: 0.3)
        #expect(c.standby(gotLock: true, lease: b5, now: 1) == .lead(.init(epoch: 6, previous: b5, reason: .lockFree)))
    }

    @Test("a leader steps down when its lease is taken, its session is lost, or its renewals are overdue")
    func stepDown() {
        func leader() -> Leadership {
            var l = Leadership(me: "a", timing: timing)
            _ = l.standby(gotLock: true, lease: nil, now: 100)
            return l
        }
        var l = leader()
        #expect(l.leader(.renewed, now: 100.5) == .stay)
        #expect(l.leaderDue(now: 102.9) == .stay)
        if case .stepDown = l.leaderDue(now: 103.1) {} else { Issue.record("2.6 s without renewal must step down") }
        l = leader()
        if case .stepDown = l.leader(.taken, now: 100.5) {} else { Issue.record("a taken lease must step down") }
        l = leader()
        if case .stepDown = l.leader(.sessionLost("terminated"), now: 100.5) {} else { Issue.record("a lost session must step down") }
        l = leader()
        #expect(l.leader(.failed("timeout"), now: 101) == .stay, "one failed renewal within the deadline is retried")
        if case .stepDown = l.leader(.failed("timeout"), now: 102.6) {} else { Issue.record("failures past the deadline must step down") }
        // A paused process finds out as soon as it wakes, before asking anything.
        l = leader()
        if case .stepDown = l.leaderDue(now: 160) {} else { Issue.record("a leader woken after a minute must step down") }
    }

    @Test("the standby buffer keeps the last seconds, at most capacity, in order")
    func recentBuffer() {
        var b = RecentBuffer<Int>(seconds: 30, capacity: 5)
        for i in 0..<4 { b.append(i, at: Double(i) * 10) }  // 0, 10, 20, 30
        #expect(b.count == 4)
        b.append(4, at: 41)
        #expect(b.count == 5, "only trim ages items out (while nobody leads the caller keeps its horizon back)")
        b.trim(now: 41)  // 0 and 10 are older than 30 s
        #expect(b.count == 3)
        for i in 5..<10 { b.append(i, at: 42) }
        #expect(b.count == 5 && b.overflowed == 3)
        #expect(b.drain() == [5, 6, 7, 8, 9])
        #expect(b.isEmpty)
        b.append(1, at: 100)
        b.trim(now: 131)
        #expect(b.isEmpty)
    }
}
