import Foundation
import LibPQ

/// What the bench reads off the daemon and PostgreSQL while it measures: pg_stat_statements,
/// the daemon's /metrics (writer phases, counters), its memory, and the plain HTTP GET they use.
extension Bench {
    /// Clears pg_stat_statements (when the cluster has it: tools/bench loads it).
    func resetStatements(_ db: PGConnection) { _ = try? db.query("SELECT pg_stat_statements_reset()") }

    /// The statements that took the server's time since the last reset: (total ms, calls, text).
    func statements(_ db: PGConnection) -> [(ms: Double, calls: Int, text: String)] {
        guard let rows = try? db.query("""
            SELECT total_exec_time, calls, regexp_replace(query, '\\s+', ' ', 'g')
            FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'
            ORDER BY total_exec_time DESC LIMIT 12
            """) else { return [] }
        return rows.rows.map { (Double($0[0]!) ?? 0, Int($0[1]!) ?? 0, $0[2]!) }
    }

    func printStatements(_ top: [(ms: Double, calls: Int, text: String)], events: Int, _ title: String) {
        guard !top.isEmpty else { return }
        print("\(title), top statements by server time:")
        for s in top {
            print(String(format: "  %8.1f ms %6d calls %6.1f µs/event  ", s.ms, s.calls, s.ms * 1000 / Double(events))
                  + String(s.text.prefix(110)))
        }
    }

    func printPhases(_ before: [String: Double], _ after: [String: Double], events: Int, _ title: String) {
        let spent = after.merging(before.mapValues { -$0 }, uniquingKeysWith: +).filter { $0.value > 0.0005 }
        let total = spent.values.reduce(0, +)
        guard total > 0 else { return }
        print("\(title), \(String(format: "%.2f", total)) s:")
        for (phase, seconds) in spent.sorted(by: { $0.value > $1.value }) {
            let name = phase.padding(toLength: 14, withPad: " ", startingAt: 0)
            print("  " + name + String(format: " %7.2f s %5.1f %%  %6.1f µs/event", seconds, 100 * seconds / total,
                                             seconds * 1e6 / Double(events)))
        }
    }

    /// Points of a lattice with `metres` spacing that lie inside a grid, in random order.
    /// Task messages the daemon has put on the feed (liandong_feed_messages_total, every kind).
    func feedMessages() -> Double? {
        scrape().map { $0.filter { $0.key.hasPrefix("liandong_feed_messages_total") }.values.reduce(0, +) }
    }

    /// Unlabelled samples whose name starts with `prefix`, read from /metrics (empty without --metrics).
    func metricValues(_ prefix: String) -> [String: Double] {
        (scrape() ?? [:]).filter { $0.key.hasPrefix(prefix) && !$0.key.contains("{") }
    }

    /// liandong_writer_seconds_total by phase, read from /metrics (empty without --metrics).
    func writerPhases() -> [String: Double] {
        let prefix = "liandong_writer_seconds_total{phase=\""
        var out: [String: Double] = [:]
        for (key, value) in scrape() ?? [:] where key.hasPrefix(prefix) {
            out[String(key.dropFirst(prefix.count).prefix { $0 != "\"" })] = value
        }
        return out
    }

    /// Every sample on the daemon's /metrics by series (name and labels); nil without --metrics.
    func scrape() -> [String: Double]? {
        guard let metrics, let text = httpGet(metrics, "/metrics") else { return nil }
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            out[String(line[..<space])] = value
        }
        return out
    }

    func memory() -> (rss: String, hwm: String) {
        guard pid > 0, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return ("?", "?") }
        func field(_ name: String) -> String {
            MemorySampler.kib(status, name).map { String(format: "%.1f", Double($0) / 1024) } ?? "?"
        }
        return (field("VmRSS:"), field("VmHWM:"))
    }
}

/// A plain HTTP/1.1 GET over a TCP socket (the daemon's metrics endpoint); nil on any failure.
func httpGet(_ hostPort: String, _ path: String) -> String? {
    let parts = hostPort.split(separator: ":")
    guard parts.count == 2, let port = UInt16(parts[1]) else { return nil }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    guard inet_pton(AF_INET, String(parts[0]), &address.sin_addr) == 1 else { return nil }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: \(hostPort)\r\nConnection: close\r\n\r\n".utf8)
    guard send(fd, request, request.count, 0) == request.count else { return nil }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        response += buffer[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { return nil }
    return String(text[split.upperBound...])
}
