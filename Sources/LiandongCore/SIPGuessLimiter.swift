/// Failed digests per source address and per device id, with backoff: five wrong digests from an
/// address within a minute refuse that address for 30 s, doubling with each repeat up to 15
/// minutes; twenty for one device id within a minute (a distributed guess) refuse that device's
/// REGISTERs for 60 s from every address except the one it is registered from (the real device).
struct GuessLimiter: Sendable {
    struct Record: Sendable {
        var failures: [Double] = []
        var blockedUntil: Double = 0
        var backoff: Double = 15
    }
    var hosts: [String: Record] = [:]
    var devices: [String: Record] = [:]

    func refusedUntil(host: String, device: String, registeredFrom: String?, now: Double) -> Double? {
        if let h = hosts[host], h.blockedUntil > now { return h.blockedUntil }
        if let d = devices[device], d.blockedUntil > now, registeredFrom != host { return d.blockedUntil }
        return nil
    }

    mutating func failed(host: String, device: String, now: Double, limit: Int) {
        var h = hosts[host] ?? Record()
        h.failures = h.failures.filter { now - $0 < 60 } + [now]
        if h.failures.count >= limit {
            h.backoff = min(h.backoff * 2, 900)
            h.blockedUntil = now + h.backoff
            h.failures = []
        }
        hosts[host] = h
        var d = devices[device] ?? Record()
        d.failures = d.failures.filter { now - $0 < 60 } + [now]
        if d.failures.count >= limit * 4 {
            d.blockedUntil = now + 60
            d.failures = []
        }
        devices[device] = d
    }

    mutating func succeeded(host: String) {
        hosts[host] = nil
    }

    mutating func prune(now: Double) {
        guard hosts.count + devices.count > 1_000 else { return }
        hosts = hosts.filter { $0.value.blockedUntil > now || $0.value.failures.contains { now - $0 < 60 } }
        devices = devices.filter { $0.value.blockedUntil > now || $0.value.failures.contains { now - $0 < 60 } }
    }
}
