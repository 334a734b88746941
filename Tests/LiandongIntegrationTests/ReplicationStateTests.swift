import LiandongStorage
import Testing

/// What database.synchronous judges from synchronous_standby_names, synchronous_commit and the
/// standbys attached (pure: no database).
@Suite("Replication state")
struct ReplicationStateTests {
    @Test("no standby named, or commits that do not wait: not replicated, and why")
    func notReplicated() {
        let none = ReplicationState(standbyNames: "", synchronousCommit: "on", attached: 0)
        #expect(!none.replicated && none.problem?.contains("synchronous_standby_names is empty") == true)
        let local = ReplicationState(standbyNames: "*", synchronousCommit: "local", attached: 1)
        #expect(!local.replicated && local.problem?.contains("synchronous_commit is local") == true)
        let gone = ReplicationState(standbyNames: "ANY 1 (pgautofailover_standby_2)", synchronousCommit: "on", attached: 0)
        #expect(!gone.replicated)
        #expect(gone.problem == "acknowledgements are not replicated: 0 of the 1 synchronous standby named in "
            + "synchronous_standby_names (ANY 1 (pgautofailover_standby_2)) attached; commits wait until one is")
    }

    @Test("enough standbys attached, or who is attached not visible to this role: replicated")
    func replicated() {
        #expect(ReplicationState(standbyNames: "*", synchronousCommit: "on", attached: 1).replicated)
        #expect(ReplicationState(standbyNames: "s1", synchronousCommit: "remote_apply", attached: nil).replicated)
        let two = ReplicationState(standbyNames: "FIRST 2 (s1, s2, s3)", synchronousCommit: "remote_write", attached: 1)
        #expect(two.required == 2 && !two.replicated)
        #expect(ReplicationState(standbyNames: "2 (s1, s2)", synchronousCommit: "on", attached: 2).replicated)
        #expect(ReplicationState(standbyNames: "any 3 (a,b,c)", synchronousCommit: "on", attached: 3).required == 3)
    }

    @Test("wait events in words")
    func waits() {
        #expect(ReplicationState.explain(wait: "IPC/SyncRep").contains("synchronous standby"))
        #expect(ReplicationState.explain(wait: "Lock/transactionid").contains("lock"))
    }
}
