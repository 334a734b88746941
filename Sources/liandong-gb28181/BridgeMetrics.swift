import CoreMetrics
import LiandongCore
import LiandongServices

/// The bridge's /metrics, through the daemon's `Metrics` (swift-metrics, exported by
/// swift-prometheus): the core's cumulative counters are added as they grow, the gauges set, at
/// each tick of the loop.
final class BridgeMetrics {
    let metrics = Metrics()
    /// From a device's alarm or keepalive to liandongd's answer.
    let answerSeconds: CoreMetrics.Recorder
    /// SIP messages that could not be read (UDP datagrams and TCP streams).
    let malformed: CoreMetrics.Counter
    private let registered, online, waiting, unanswered, connections: CoreMetrics.Gauge
    /// The core's counters as last added.
    private var reported: [String: Int] = [:]

    init() {
        answerSeconds = metrics.histogram("liandong_gb28181_answer_seconds")
        malformed = metrics.counter("liandong_gb28181_malformed_total")
        registered = metrics.gauge("liandong_gb28181_devices_registered")
        online = metrics.gauge("liandong_gb28181_devices_online")
        waiting = metrics.gauge("liandong_gb28181_waiting")
        unanswered = metrics.gauge("liandong_gb28181_daemon_unanswered")
        connections = metrics.gauge("liandong_gb28181_tcp_connections")
    }

    /// TCP connections closed by the bridge since start: refused for the per-address cap, or idle.
    func tcpClosed(perAddress: Int, idle: Int) {
        for (reason, n) in [("per_address", perAddress), ("idle", idle)] where n != reported["tcp \(reason)"] {
            metrics.counter("liandong_gb28181_tcp_closed_total", [("reason", reason)]).increment(by: n - reported["tcp \(reason)", default: 0])
            reported["tcp \(reason)"] = n
        }
    }

    func update(_ bridge: GB28181Bridge, unanswered pending: Int, connections open: Int) {
        for (key, n) in bridge.counters where n != reported[key] {
            let parts = key.split(separator: " ")
            // "METHOD CODE": a final answer sent; anything else: what the bridge saw and did.
            let counter = parts.count == 2 && Int(parts[1]) != nil
                ? metrics.counter("liandong_gb28181_responses_total", [("method", String(parts[0])), ("code", String(parts[1]))])
                : metrics.counter("liandong_gb28181_events_total", [("event", key)])
            counter.increment(by: n - reported[key, default: 0])
            reported[key] = n
        }
        registered.record(Double(bridge.registrations.count))
        online.record(Double(bridge.onlineCount))
        waiting.record(Double(bridge.waitingCount))
        unanswered.record(Double(pending))
        connections.record(Double(open))
    }
}
