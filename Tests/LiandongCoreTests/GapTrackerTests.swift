import LiandongCore
import Testing

@Suite("Per-gateway seq gaps")
struct GapTrackerTests {
    @Test("missing seqs become gaps after the grace period; reordering and repeats do not")
    func gaps() {
        var t = GapTracker(grace: 5)
        for (seq, at) in [(1, 0.0), (2, 0.1), (3, 0.2), (5, 0.3), (4, 0.4), (7, 0.5), (7, 0.6), (10, 0.7), (9, 1.0)] as [(Int64, Double)] {
            t.observe(gateway: "gw-1", seq: seq, now: at)
        }
        #expect(t.due(now: 2).isEmpty, "still within the grace period")
        #expect(t.due(now: 6) == [SeqGap(gateway: "gw-1", from: 6, to: 6), SeqGap(gateway: "gw-1", from: 8, to: 8)])
        #expect(t.due(now: 100).isEmpty, "declared once")
    }

    @Test("a seed from the database makes loss across a restart visible; gateways are independent")
    func seeded() {
        var t = GapTracker(grace: 0)
        t.seed(gateway: "gw-1", highest: 100)
        t.observe(gateway: "gw-1", seq: 120, now: 0)
        t.observe(gateway: "gw-2", seq: 50, now: 0)
        t.observe(gateway: "gw-2", seq: 51, now: 0)
        #expect(t.due(now: 0) == [SeqGap(gateway: "gw-1", from: 101, to: 119)])
    }
}
