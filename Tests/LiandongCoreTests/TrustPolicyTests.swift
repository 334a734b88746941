import LiandongCore
import Testing

/// Who may do what under security.curve: roles name the sockets, scopes the divisions.
@Suite("Trust policy")
struct TrustPolicyTests {
    let key = String(repeating: "a", count: 40)
    var gateway: Peer { Peer(name: "gw-1", publicKey: key, role: .gateway, scope: "620922100") }
    var dispatcher: Peer { Peer(name: "disp-1", publicKey: key, role: .dispatcher, scope: "620922100") }
    var countyDispatcher: Peer { Peer(name: "disp-county", publicKey: key, role: .dispatcher, scope: "") }
    var observer: Peer { Peer(name: "ops", publicKey: key, role: .observer, scope: "") }

    @Test("only gateways send events, and only inside their scope; a name no longer a peer is refused")
    func ingest() {
        #expect(TrustPolicy.ingest(gateway.sender) == .allowed)
        #expect(TrustPolicy.ingest(dispatcher.sender) != .allowed && TrustPolicy.ingest(observer.sender) != .allowed)
        #expect(TrustPolicy.ingest(Sender(name: "gone", role: nil, scope: "")) == .forbidden("\"gone\" is not a known peer"))
        #expect(TrustPolicy.event(from: gateway.sender, inGrid: "620922100001003") == .allowed)
        #expect(TrustPolicy.event(from: gateway.sender, inGrid: "620922101201001")
            == .forbidden("the event lies in grid 620922101201001, outside the scope 620922100 of gw-1"))
        #expect(TrustPolicy.event(from: Sender(name: "gw-all", role: .gateway, scope: ""), inGrid: "620922101201001") == .allowed)
    }

    @Test("dispatchers update tasks of divisions under their scope; nobody else updates")
    func updates() {
        #expect(TrustPolicy.update(dispatcher, taskID: "t", division: "620922100001") == .allowed)
        #expect(TrustPolicy.update(dispatcher, taskID: "t", division: "620922100") == .allowed)
        // Escalated to the county: out of a township dispatcher's hands.
        #expect(!TrustPolicy.update(dispatcher, taskID: "t", division: "620922").isAllowed)
        #expect(TrustPolicy.update(countyDispatcher, taskID: "t", division: "620922").isAllowed)
        #expect(!TrustPolicy.update(observer, taskID: "t", division: "620922100").isAllowed)
        #expect(!TrustPolicy.update(gateway, taskID: "t", division: "620922100").isAllowed)
        #expect(!TrustPolicy.update(nil, taskID: "t", division: "620922100").isAllowed)
        #expect(TrustPolicy.updates(dispatcher).isAllowed && !TrustPolicy.updates(observer).isAllowed)
    }

    @Test("feed subscriptions and replay prefixes (tasks and patrol reminders) must stay under the scope; the heartbeat is for every reader")
    func reading() {
        #expect(TrustPolicy.subscription(dispatcher, prefix: "task.620922100"))
        #expect(TrustPolicy.subscription(dispatcher, prefix: "task.620922100001003"))
        #expect(TrustPolicy.subscription(dispatcher, prefix: "hb"))
        #expect(TrustPolicy.subscription(dispatcher, prefix: "reminder.620922100001"))
        #expect(TrustPolicy.replay(dispatcher, prefix: "reminder.620922100").isAllowed)
        for wider in ["", "task", "task.", "task.62092210", "task.620922101", "reminder.", "reminder.620922101", "remind"] {
            #expect(!TrustPolicy.subscription(dispatcher, prefix: wider), "\(wider)")
            #expect(!TrustPolicy.replay(dispatcher, prefix: wider).isAllowed, "\(wider)")
        }
        #expect(TrustPolicy.subscription(observer, prefix: "") && TrustPolicy.replay(observer, prefix: "").isAllowed)
        #expect(!TrustPolicy.subscription(gateway, prefix: "task.620922100") && !TrustPolicy.subscription(nil, prefix: "hb"))
        #expect(!TrustPolicy.replay(gateway, prefix: "task.620922100").isAllowed)
        #expect(TrustPolicy.replay(dispatcher, prefix: "task.620922100").isAllowed)
    }
}
