import Testing
@testable import LiandongCore

/// The writer's recent keys: "certainly not stored" only for an event observed since the horizon
/// whose key is not held; everything else is asked of the database.
@Suite("Recent keys")
struct RecentKeysTests {
    static func key(_ id: String, owner: String = "gw-1") -> EventKey { EventKey(source: "alert", owner: owner, id: id) }

    @Test("before a load nothing is known: every key may be stored")
    func unloaded() {
        var keys = RecentKeys(capacity: 10)
        #expect(keys.mayBeStored(Self.key("a"), observedAt: 1_000))
        keys.insert(Self.key("a"), observedAt: 1_000)
        #expect(keys.count == 0 && keys.mayBeStored(Self.key("b"), observedAt: 1_000))
    }

    @Test("after a complete load: a held key may be stored, another key since the horizon is not, one before it may be")
    func completeLoad() {
        var keys = RecentKeys(capacity: 10)
        keys.load(horizon: 100, keys: [(Self.key("a"), 150), (Self.key("b"), 160)], complete: true)
        #expect(keys.horizon == 100 && keys.count == 2)
        #expect(keys.mayBeStored(Self.key("a"), observedAt: 150))
        #expect(keys.mayBeStored(Self.key("a"), observedAt: 500), "the same id at another time is still asked about")
        #expect(!keys.mayBeStored(Self.key("c"), observedAt: 150))
        #expect(!keys.mayBeStored(Self.key("a", owner: "gw-2"), observedAt: 150), "another sender's id is another key")
        #expect(keys.mayBeStored(Self.key("c"), observedAt: 99), "observed before the horizon: asked")
        keys.insert(Self.key("c"), observedAt: 170)
        #expect(keys.mayBeStored(Self.key("c"), observedAt: 170))
        keys.insert(Self.key("old"), observedAt: 50)
        #expect(keys.count == 3, "a key before the horizon is not held")
    }

    @Test("a load cut at the capacity starts after the oldest time it holds")
    func incompleteLoad() {
        var keys = RecentKeys(capacity: 3)
        keys.load(horizon: 0, keys: [(Self.key("a"), 10), (Self.key("b"), 20), (Self.key("c"), 30)], complete: false)
        #expect(keys.horizon == (10.0).nextUp)
        #expect(keys.mayBeStored(Self.key("x"), observedAt: 10), "another key at the cut's time may be stored")
        #expect(!keys.mayBeStored(Self.key("x"), observedAt: 25))
        #expect(keys.mayBeStored(Self.key("b"), observedAt: 20))
    }

    @Test("beyond the capacity the oldest added goes and the horizon moves past its time")
    func eviction() {
        var keys = RecentKeys(capacity: 3)
        keys.load(horizon: 0, keys: [], complete: true)
        for (k, t) in [("a", 10.0), ("b", 20), ("c", 30), ("d", 40)] { keys.insert(Self.key(k), observedAt: t) }
        #expect(keys.count == 3 && keys.horizon == (10.0).nextUp)
        #expect(keys.mayBeStored(Self.key("a"), observedAt: 10), "gone, so asked again")
        #expect(keys.mayBeStored(Self.key("d"), observedAt: 40))
        #expect(!keys.mayBeStored(Self.key("e"), observedAt: 40))
        // Thousands more: still exactly the newest three held, the horizon behind them.
        for n in 0..<10_000 { keys.insert(Self.key("n\(n)"), observedAt: 100 + Double(n)) }
        #expect(keys.count == 3 && keys.horizon == (100.0 + 9_996).nextUp)
        #expect(keys.mayBeStored(Self.key("n9999"), observedAt: 10_099) && !keys.mayBeStored(Self.key("n5"), observedAt: 10_099))
    }

    @Test("forget: every key is asked again until the next load")
    func forget() {
        var keys = RecentKeys(capacity: 10)
        keys.load(horizon: 100, keys: [(Self.key("a"), 150)], complete: true)
        keys.forget()
        #expect(keys.count == 0 && keys.mayBeStored(Self.key("z"), observedAt: 150))
    }
}
