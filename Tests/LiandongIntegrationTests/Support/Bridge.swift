import Foundation
import Testing
import LiandongCore
#if canImport(Glibc)
import Glibc
#endif

/// A real `liandong-gb28181` process forwarding to a test daemon's ack endpoint, on free
/// loopback ports (UDP and TCP on the same port number).
final class BridgeProcess {
    static let serverID = "62092200002000000001", realm = "6209220000", password = "Gb28181-test"
    let sipPort: Int
    let metricsPort: Int
    let logURL: URL
    /// Its working directory (where it keeps its registrations across restarts).
    let directory: String
    private let environment: [String: String]
    private(set) var process = Process()

    init(daemonAck: String, environment extra: [String: String] = [:]) throws {
        sipPort = try freeUDPAndTCPPort()
        metricsPort = try freePort()
        let id = UUID().uuidString.prefix(8)
        logURL = URL(fileURLWithPath: "\(Scratch.directory)/ld-gb-\(id).log")
        directory = "\(Scratch.directory)/ld-gb-\(id)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("LIANDONG_") }
        env["LIANDONG_GB28181_SIP_BIND"] = "udp://127.0.0.1:\(sipPort),tcp://127.0.0.1:\(sipPort)"
        env["LIANDONG_GB28181_DAEMON_ACK"] = daemonAck
        env["LIANDONG_GB28181_PASSWORD"] = Self.password
        env["LIANDONG_GB28181_METRICS_BIND"] = "127.0.0.1:\(metricsPort)"
        for (k, v) in extra { env[k] = v }
        environment = env
        try launch()
    }

    /// Starts the process (again, after `stop`: same ports, same working directory).
    func launch() throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: DaemonProcess.binaries + "/liandong-gb28181")
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try waitUntil(timeout: 15, "liandong-gb28181 to answer /healthz") {
            guard process.isRunning else { throw TestFailure("liandong-gb28181 exited: \(self.log)") }
            return (try? httpGet(port: metricsPort, "/healthz").status) == 200
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        expectNoPlantedSecret(log, from: "liandong-gb28181")
        try? FileManager.default.removeItem(atPath: directory)
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    func metric(_ series: String) throws -> Double {
        DaemonProcess.metric(series, in: try httpGet(port: metricsPort, "/metrics").body)
    }

    func stop() -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// SIPp (Debian's sip-tester), a real SIP client, running a scenario of tools/sipp.
struct SIPp {
    static let scenarios = TestDatabase.repository.appendingPathComponent("tools/sipp").path

    /// Runs `scenario` against the bridge as `device`; returns SIPp's result (exit status 0: every call succeeded).
    static func run(_ scenario: String, bridge: BridgeProcess, device: String, password: String = BridgeProcess.password,
                    transport: String = "u1", calls: Int = 1, rate: Int = 10, alarmTime: Double = Date().timeIntervalSince1970 - 2,
                    timeout: TimeInterval = 60)
        throws -> CLIResult
    {
        let localPort = try freeUDPAndTCPPort()
        let arguments = ["127.0.0.1:\(bridge.sipPort)", "-sf", "\(scenarios)/\(scenario).xml", "-t", transport,
                         "-i", "127.0.0.1", "-p", String(localPort), "-m", String(calls), "-r", String(rate), "-l", "200",
                         "-timeout", "\(Int(timeout - 5))s", "-timeout_error", "-nostdin", "-max_recv_loops", "5000",
                         "-au", device, "-ap", password,
                         "-key", "device", device, "-key", "realm", BridgeProcess.realm, "-key", "server", BridgeProcess.serverID,
                         "-key", "expires", "3600", "-key", "channel", device,
                         "-key", "alarm_time", String(Timestamp.formatCST(alarmTime).prefix(19)),
                         "-key", "method", "5", "-key", "type", "2"]
        let sipp = FileManager.default.isExecutableFile(atPath: "/usr/bin/sipp") ? "/usr/bin/sipp" : "/usr/local/bin/sipp"
        return try runCaptured(sipp, arguments, timeout: timeout)
    }
}

extension SIPp {
    /// SIPp running `scenario` (tools/sipp/nvr.xml) in the background as `device`, with `platform`
    /// (an -oocsf scenario) answering what the bridge asks of it; `pause` ms between registering
    /// and its last alarm. `wait()` gives its result.
    final class Background {
        let process = Process()
        let outURL: URL

        init(_ scenario: String, platform: String, bridge: BridgeProcess, device: String, channel: String, pause: Int,
             keys: [String: String] = [:]) throws
        {
            let localPort = try freeUDPAndTCPPort()
            outURL = URL(fileURLWithPath: "\(Scratch.directory)/ld-sipp-\(UUID().uuidString.prefix(8)).out")
            FileManager.default.createFile(atPath: outURL.path, contents: nil)
            var arguments = ["127.0.0.1:\(bridge.sipPort)", "-sf", "\(SIPp.scenarios)/\(scenario).xml",
                             "-oocsf", "\(SIPp.scenarios)/\(platform).xml", "-t", "u1", "-i", "127.0.0.1", "-p", String(localPort),
                             "-m", "1", "-d", String(pause), "-timeout", "90s", "-timeout_error", "-nostdin", "-trace_err",
                             "-error_file", outURL.path + ".err",
                             "-au", device, "-ap", BridgeProcess.password,
                             "-key", "device", device, "-key", "channel", channel, "-key", "realm", BridgeProcess.realm,
                             "-key", "server", BridgeProcess.serverID, "-key", "expires", "3600",
                             "-key", "alarm_time", String(Timestamp.formatCST(Date().timeIntervalSince1970 - 2).prefix(19))]
            for (k, v) in keys { arguments += ["-key", k, v] }
            process.executableURL = URL(fileURLWithPath: FileManager.default.isExecutableFile(atPath: "/usr/bin/sipp") ? "/usr/bin/sipp" : "/usr/local/bin/sipp")
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: "/tmp")
            let out = try FileHandle(forWritingTo: outURL)
            process.standardOutput = out
            process.standardError = out
            try process.run()
        }

        /// Its exit status and what it printed (its error file included), once it ended (killed after `timeout`).
        func wait(timeout: TimeInterval = 100) throws -> (status: Int32, output: String) {
            do {
                try waitUntil(timeout: timeout, "SIPp to finish") { !process.isRunning }
            } catch {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            let output = ((try? String(contentsOf: outURL, encoding: .utf8)) ?? "")
                + ((try? String(contentsOfFile: outURL.path + ".err", encoding: .utf8)) ?? "")
            return (process.terminationStatus, output)
        }

        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(atPath: outURL.path + ".err")
        }
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 a moment ago.
func freeUDPAndTCPPort() throws -> Int {
    for _ in 0..<50 {
        let port = try freePort()
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = loopbackAddress(port: port)
        let ok = withSockaddr(&addr) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        close(fd)
        if ok == 0 { return port }
    }
    throw TestFailure("no port free for both UDP and TCP")
}

/// A GB/T 28181 device speaking SIP over UDP from the test itself, for what SIPp cannot show:
/// GB2312 bodies, a retransmission's answer, the platform's Response MESSAGE.
final class SIPDevice {
    let id: String
    let fd: Int32
    let port: Int
    let bridgePort: Int
    /// The loopback address it sends from (127.0.0.2 stands for another host).
    let host: String
    var cseq = 1
    /// The Authorization of its last authenticated REGISTER (what an eavesdropper captures).
    var lastAuthorization: String?

    init(id: String, bridgePort: Int, host: String = "127.0.0.1") throws {
        self.id = id
        self.bridgePort = bridgePort
        self.host = host
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        var addr = loopbackAddress(host: host)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withSockaddr(&addr) { bind(fd, $0, len) }
        _ = withSockaddr(&addr) { getsockname(fd, $0, &len) }
        port = Int(UInt16(bigEndian: addr.sin_port))
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ m: SIPMessage) {
        let bytes = m.serialized()
        var addr = loopbackAddress(port: bridgePort)
        _ = bytes.withUnsafeBytes { b in withSockaddr(&addr) { sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    }

    /// The next message within `timeout` seconds (nil: none).
    func receive(timeout: TimeInterval) throws -> SIPMessage? {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while Date() < deadline {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { return try SIPParser.parse(datagram: Array(buffer[..<n])) }
        }
        return nil
    }

    /// Receives until a message satisfying `match` (others skipped), or nil at the deadline.
    func receive(timeout: TimeInterval, where match: (SIPMessage) -> Bool) throws -> SIPMessage? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let m = try receive(timeout: deadline.timeIntervalSinceNow), match(m) { return m }
        }
        return nil
    }

    func request(_ method: String, branch: String, headers: [(String, String)] = [], body: [UInt8] = []) -> SIPMessage {
        cseq += 1
        return SIPMessage(start: .request(method: method, uri: "sip:\(BridgeProcess.serverID)@127.0.0.1:\(bridgePort)"), headers: [
            ("Via", "SIP/2.0/UDP \(host):\(port);rport;branch=z9hG4bK\(branch)"),
            ("From", "<sip:\(id)@\(BridgeProcess.realm)>;tag=\(branch)"),
            ("To", "<sip:\(method == "REGISTER" ? id : BridgeProcess.serverID)@\(BridgeProcess.realm)>"),
            ("Call-ID", "\(branch)@\(host)"),
            ("CSeq", "\(cseq) \(method)"),
            ("Max-Forwards", "70"),
        ] + headers + (body.isEmpty ? [] : [("Content-Type", "Application/MANSCDP+xml")]), body: body)
    }

    /// REGISTER, the challenge, REGISTER with the digest (no qop, as many cameras do): the final status.
    func register(password: String = BridgeProcess.password, expires: Int = 3600) throws -> Int? {
        let tag = UUID().uuidString.prefix(8)
        send(request("REGISTER", branch: "r1\(tag)", headers: [("Expires", "\(expires)"), ("Contact", "<sip:\(id)@\(host):\(port)>")]))
        guard let challenge = try receive(timeout: 5, where: { $0.statusCode == 401 }),
              let header = challenge.header("WWW-Authenticate"),
              let nonce = header.split(separator: "\"").dropFirst(3).first else { return nil }
        let uri = "sip:\(BridgeProcess.serverID)@127.0.0.1:\(bridgePort)"
        let response = MD5.hex("\(MD5.hex("\(id):\(BridgeProcess.realm):\(password)")):\(nonce):\(MD5.hex("REGISTER:\(uri)"))")
        let auth = "Digest username=\"\(id)\", realm=\"\(BridgeProcess.realm)\", nonce=\"\(nonce)\", uri=\"\(uri)\", response=\"\(response)\", algorithm=MD5"
        lastAuthorization = auth
        send(request("REGISTER", branch: "r2\(tag)", headers: [("Authorization", auth), ("Expires", "\(expires)"),
                                                               ("Contact", "<sip:\(id)@\(host):\(port)>")]))
        return try receive(timeout: 5, where: { $0.statusCode != nil && $0.statusCode! >= 200 && $0.cseq?.method == "REGISTER" })?.statusCode
    }
}
