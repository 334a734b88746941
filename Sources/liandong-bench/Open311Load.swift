import ArgumentParser
import Foundation
import LibPQ
import LiandongCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// tools/bench --open311: residents' requests POSTed to liandong-open311 over keep-alive HTTP/1.1
/// connections, each answered only after liandongd committed it. Two phases: as fast as the
/// answers come (C connections), then a fixed rate for S seconds with each request's latency
/// measured from when it was due (a late send counts against the server: no coordinated omission).
/// Positions are the dataset's grids (a point inside each, 50 m of jitter); services at random.
extension Bench {
    func open311Phase(db: PGConnection) throws {
        let grids = try db.query("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM liandong.grids) g").rows.map {
            LonLat(lon: Double($0[0]!)!, lat: Double($0[1]!)!)
        }
        guard !grids.isEmpty else { throw ValidationError("the database has no grids") }
        let services = Open311.Service.defaults.map(\.code)
        let before = Int(try db.query("SELECT count(*) FROM liandong.citizen_requests").scalar ?? "0") ?? 0
        let key = open311Key
        let target = open311
        let seed = self.seed
        @Sendable func body(_ n: Int) -> [UInt8] {
            var rng = SplitMix64(seed: seed &+ UInt64(n))
            let grid = grids[Int(rng.next() % UInt64(grids.count))]
            let p = LonLat(lon: grid.lon + (Double(rng.next() % 1000) / 1000 - 0.5) * 0.001, lat: grid.lat + (Double(rng.next() % 1000) / 1000 - 0.5) * 0.0008)
            let form = ["api_key": key, "service_code": services[Int(rng.next() % UInt64(services.count))], "lat": String(p.lat),
                        "long": String(p.lon), "description": "bench request \(n)"]
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            return Array(form.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&").utf8)
        }

        // 1. Throughput: C connections, each sending its next request as soon as the last is answered.
        let total = open311Requests, connections = open311Concurrency
        let next = Atomic<Int>(0), failures = Mutex<[String]>([])
        let latencies = Mutex<[Double]>([])
        let started = Date()
        runThreads(connections) { _ in
            var client = KeepAliveHTTP(target)
            while true {
                let n = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard n < total else { return }
                let t0 = Date()
                let (status, text) = client.post("/open311/v2/requests.json", body(n))
                let ms = Date().timeIntervalSince(t0) * 1000
                if status == 200 { latencies.withLock { $0.append(ms) } } else { failures.withLock { $0.append("\(status) \(text.prefix(200))") } }
            }
        }
        let seconds = Date().timeIntervalSince(started)
        let fast = latencies.withLock { $0 }.sorted()
        let failed = failures.withLock { $0 }
        print(String(format: "open311_posts_per_s: %.0f (%d requests answered 200 after commit in %.2f s over %d keep-alive connections; %d failed)",
                     Double(fast.count) / seconds, fast.count, seconds, connections, failed.count))
        print(String(format: "open311_post_ms_at_full_speed p50/p95/p99: %.1f/%.1f/%.1f", q(fast, 0.5), q(fast, 0.95), q(fast, 0.99)))
        if let first = failed.first { print("open311 first failure: \(first)") }

        // 2. A fixed rate: request k is due at k / R; C connections take them in turn.
        let rate = open311Rate, count = Int(rate * open311Seconds)
        latencies.withLock { $0 = [] }
        failures.withLock { $0 = [] }
        let start = Date().addingTimeInterval(0.2)
        let lateSends = Atomic<Int>(0)
        runThreads(connections) { worker in
            var client = KeepAliveHTTP(target)
            var k = worker
            while k < count {
                let due = start.addingTimeInterval(Double(k) / rate)
                let wait = due.timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) } else if wait < -0.001 { lateSends.wrappingAdd(1, ordering: .relaxed) }
                let (status, text) = client.post("/open311/v2/requests.json", body(total + k))
                let ms = Date().timeIntervalSince(due) * 1000
                if status == 200 { latencies.withLock { $0.append(ms) } } else { failures.withLock { $0.append("\(status) \(text.prefix(200))") } }
                k += connections
            }
        }
        let paced = latencies.withLock { $0 }.sorted()
        let pacedFailed = failures.withLock { $0 }
        print(String(format: "open311_post_ms p50/p95/p99/max: %.1f/%.1f/%.1f/%.1f (%d requests at %.0f/s for %.0f s, latency from when each was due; %d sent late, %d failed)",
                     q(paced, 0.5), q(paced, 0.95), q(paced, 0.99), paced.last ?? 0, paced.count, rate, open311Seconds,
                     lateSends.load(ordering: .relaxed), pacedFailed.count))
        if let first = pacedFailed.first { print("open311 first failure: \(first)") }
        let stored = Int(try db.query("SELECT count(*) FROM liandong.citizen_requests").scalar ?? "0") ?? 0 - before
        let tasks = try db.query("SELECT count(DISTINCT t.id) FROM liandong.citizen_requests r JOIN liandong.tasks t ON t.incident_id = r.incident_id").scalar ?? "?"
        print("open311_stored: \(stored) of \(fast.count + paced.count) answered 200 (every answered request is in liandong.citizen_requests); \(tasks) tasks")
        if stored != fast.count + paced.count { throw ValidationError("answered \(fast.count + paced.count) but stored \(stored)") }
    }

    private func q(_ sorted: [Double], _ p: Double) -> Double {
        sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }

    /// Runs `body(i)` on `n` threads and waits for all.
    private func runThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for i in 0..<n {
            group.enter()
            let thread = Thread {
                body(i)
                group.leave()
            }
            thread.start()
        }
        group.wait()
    }
}

/// One keep-alive HTTP/1.1 connection (reconnects after any failure); answers need Content-Length.
struct KeepAliveHTTP {
    let hostPort: String
    private var fd: Int32 = -1
    private var buffer = [UInt8](repeating: 0, count: 65_536)

    init(_ hostPort: String) { self.hostPort = hostPort }

    mutating func post(_ path: String, _ body: [UInt8]) -> (Int, String) {
        for _ in 0..<2 {
            if fd < 0 { fd = Self.connect(hostPort) }
            guard fd >= 0 else { return (0, "cannot connect to \(hostPort)") }
            let head = "POST \(path) HTTP/1.1\r\nHost: \(hostPort)\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.count)\r\n\r\n"
            let request = Array(head.utf8) + body
            if send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count, let answer = read() { return answer }
            close(fd)
            fd = -1
        }
        return (0, "the connection failed twice")
    }

    private mutating func read() -> (Int, String)? {
        var data: [UInt8] = []
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return nil }
            data += buffer[0..<n]
            guard let end = Self.find(data, [13, 10, 13, 10]) else { continue }
            let head = String(decoding: data[..<end], as: UTF8.self)
            let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            while data.count < end + 4 + length {
                let m = recv(fd, &buffer, buffer.count, 0)
                if m <= 0 { return nil }
                data += buffer[0..<m]
            }
            return (status, String(decoding: data[(end + 4)..<(end + 4 + length)], as: UTF8.self))
        }
    }

    private static func find(_ data: [UInt8], _ needle: [UInt8]) -> Int? {
        guard data.count >= needle.count else { return nil }
        for i in 0...(data.count - needle.count) where data[i] == needle[0] && Array(data[i..<(i + needle.count)]) == needle { return i }
        return nil
    }

    private static func connect(_ hostPort: String) -> Int32 {
        let parts = hostPort.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { return -1 }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, String(parts[0]), &address.sin_addr) == 1 else { return -1 }
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { close(fd); return -1 }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }
}
