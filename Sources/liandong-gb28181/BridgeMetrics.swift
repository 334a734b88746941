import Foundation
import LiandongCore
import LiandongServices
#if canImport(Glibc)
import Glibc
#endif

/// The bridge's /metrics (Prometheus text format), rendered from the bridge's own counters.
final class BridgeMetrics {
    struct Histogram {
        static let bounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
        var buckets = [Int](repeating: 0, count: bounds.count)
        var count = 0
        var sum = 0.0

        mutating func record(_ values: [Double]) {
            for v in values {
                count += 1
                sum += v
                for (i, bound) in Self.bounds.enumerated() where v <= bound { buckets[i] += 1 }
            }
        }
    }

    /// Seconds from a device's message to liandongd's answer (the 200 goes out then).
    var answerSeconds = Histogram()
    /// Datagrams that were not SIP.
    var malformed = 0

    static func listen(_ endpoint: String) throws -> Int32 {
        let (host, port) = try Config.metricsAddress(endpoint, key: "gb28181.metrics_bind")
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = host.isEmpty || host == "*" ? INADDR_ANY.bigEndian : inet_addr(host)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard fd >= 0, bound == 0, Glibc.listen(fd, 16) == 0 else {
            let reason = errno == EADDRINUSE ? "the address is already in use" : String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw ConfigError("cannot bind gb28181.metrics_bind \(endpoint): \(reason) (choose another, or \"\" for none)")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return fd
    }

    func render(bridge: GB28181Bridge, unanswered: Int, connections: Int, malformedTCP: Int) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) { out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        family("liandong_gb28181_responses_total", "counter", "Final SIP answers sent, by request method and status code.")
        var events: [(String, Int)] = []
        for (key, n) in bridge.counters.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: " ")
            if parts.count == 2, Int(parts[1]) != nil {
                out += "liandong_gb28181_responses_total{method=\"\(parts[0])\",code=\"\(parts[1])\"} \(n)\n"
            } else {
                events.append((key, n))
            }
        }
        family("liandong_gb28181_events_total", "counter",
               "What the bridge saw and did: registered, keepalives, alarms, retransmissions, status_<reason>, busy, ...")
        for (key, n) in events { out += "liandong_gb28181_events_total{event=\"\(key)\"} \(n)\n" }
        let single: [(name: String, type: String, help: String, value: Int)] = [
            ("liandong_gb28181_malformed_total", "counter", "SIP messages that could not be read (UDP datagrams and TCP streams).",
             malformed + malformedTCP),
            ("liandong_gb28181_devices_registered", "gauge", "Devices with a current registration.", bridge.registrations.count),
            ("liandong_gb28181_devices_online", "gauge", "Registered devices heard from within keepalive_timeout_s.", bridge.onlineCount),
            ("liandong_gb28181_waiting", "gauge", "Device messages waiting for liandongd's answer (their 200 is held back).",
             bridge.waitingCount),
            ("liandong_gb28181_daemon_unanswered", "gauge", "Messages sent to liandongd not yet answered (status reports included).",
             unanswered),
            ("liandong_gb28181_tcp_connections", "gauge", "Open TCP connections from devices.", connections),
        ]
        for m in single {
            family(m.name, m.type, m.help)
            out += "\(m.name) \(m.value)\n"
        }
        family("liandong_gb28181_answer_seconds", "histogram", "From a device's alarm or keepalive to liandongd's answer.")
        for (i, bound) in Histogram.bounds.enumerated() {
            out += "liandong_gb28181_answer_seconds_bucket{le=\"\(bound)\"} \(answerSeconds.buckets[i])\n"
        }
        out += "liandong_gb28181_answer_seconds_bucket{le=\"+Inf\"} \(answerSeconds.count)\n"
        out += "liandong_gb28181_answer_seconds_sum \(answerSeconds.sum)\n"
        out += "liandong_gb28181_answer_seconds_count \(answerSeconds.count)\n"
        return out
    }
}
