import Foundation
import LiandongCore
#if canImport(Glibc)
import Glibc
#endif

/// The bridge's sockets: UDP and TCP listeners on gb28181.sip_bind, the TCP connections devices
/// open (each framed by Content-Length), and the small HTTP listener for /metrics. Non-blocking;
/// the loop waits on all of them with `ZMQPoll.wait`. One thread.
final class SIPSockets {
    struct BindError: Error, CustomStringConvertible {
        let endpoint: String
        let reason: String
        var description: String { "cannot bind \(endpoint): \(reason)" }
    }

    final class Connection {
        let fd: Int32
        let id: Int
        let peer: SIPPeer
        var input: [UInt8] = []
        var output: [UInt8] = []
        /// When it last sent or was sent something (monotonic seconds).
        var lastActivity: Double
        init(fd: Int32, id: Int, peer: SIPPeer, now: Double) {
            self.fd = fd
            self.id = id
            self.peer = peer
            lastActivity = now
        }
    }

    static let maxConnections = 4096
    /// Connections one address may hold at once (a device needs one; an NVR behind NAT with its
    /// cameras a few): beyond, new ones are closed at once, so one host cannot take them all.
    static let maxPerAddress = 16
    /// A connection no registered device uses, silent this long, is closed (nothing is held for a
    /// client that never authenticates).
    static let idleUnregistered = 10.0
    /// Connections refused for the per-address cap, and closed for idleness, since start.
    private(set) var refusedPerAddress = 0
    private(set) var closedIdle = 0
    /// Bytes a connection may hold unanswered (input not yet a message, or output not yet sent).
    static let maxBuffered = 1 << 20

    private(set) var udp: [(fd: Int32, endpoint: SIPEndpoint)] = []
    private(set) var listeners: [(fd: Int32, endpoint: SIPEndpoint)] = []
    private(set) var connections: [Int: Connection] = [:]
    private var nextConnection = 1

    init(binds: [SIPEndpoint]) throws {
        for endpoint in binds {
            switch endpoint.transport {
            case .udp: udp.append((try Self.open(endpoint, type: SOCK_DGRAM), endpoint))
            case .tcp: listeners.append((try Self.open(endpoint, type: SOCK_STREAM), endpoint))
            }
        }
    }

    deinit {
        for (fd, _) in udp + listeners { close(fd) }
        for c in connections.values { close(c.fd) }
    }

    static func open(_ endpoint: SIPEndpoint, type: __socket_type) throws -> Int32 {
        let fd = socket(AF_INET, Int32(type.rawValue), 0)
        guard fd >= 0 else { throw BindError(endpoint: endpoint.description, reason: String(cString: strerror(errno))) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if type == SOCK_DGRAM {
            // Alarm storms arrive in bursts: a larger receive buffer rides them out.
            var size: Int32 = 4 << 20
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = endpoint.port.bigEndian
        addr.sin_addr.s_addr = inet_addr(endpoint.host)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, type == SOCK_DGRAM || listen(fd, 128) == 0 else {
            let code = errno
            close(fd)
            let reason = code == EADDRINUSE ? "the address is already in use (another SIP server on it? choose another with gb28181.sip_bind)"
                : String(cString: strerror(code))
            throw BindError(endpoint: endpoint.description, reason: reason)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return fd
    }

    /// Every descriptor to wait on, and for each what it is.
    enum Source { case udp(Int), listener(Int), connection(Int) }

    func pollSet() -> [(fd: Int32, writable: Bool, source: Source)] {
        var out: [(Int32, Bool, Source)] = []
        for (i, u) in udp.enumerated() { out.append((u.fd, false, .udp(i))) }
        for (i, l) in listeners.enumerated() { out.append((l.fd, false, .listener(i))) }
        for c in connections.values { out.append((c.fd, !c.output.isEmpty, .connection(c.id))) }
        return out
    }

    /// Reads every datagram waiting on a UDP socket.
    func readDatagrams(_ index: Int, _ handle: ([UInt8], SIPPeer) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            var from = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(udp[index].fd, bytes.baseAddress, bytes.count, 0, $0, &length) }
                }
            }
            guard n >= 0 else { return }
            if n == 0 { continue }
            handle(Array(buffer[..<n]), SIPPeer(transport: .udp, host: Self.host(from), port: Int(UInt16(bigEndian: from.sin_port)),
                                                connection: index))
        }
    }

    /// Accepts waiting TCP connections.
    func accept(_ index: Int) {
        while true {
            var from = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let fd = withUnsafeMutablePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(listeners[index].fd, $0, &length) }
            }
            guard fd >= 0 else { return }
            guard connections.count < Self.maxConnections else {
                close(fd)  // beyond maxConnections: the device retries, over UDP if it can
                continue
            }
            let host = Self.host(from)
            guard connections.values.lazy.filter({ $0.peer.host == host }).count < Self.maxPerAddress else {
                close(fd)
                refusedPerAddress += 1
                continue
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            let id = nextConnection
            nextConnection += 1
            connections[id] = Connection(fd: fd, id: id, peer: SIPPeer(transport: .tcp, host: host,
                                                                       port: Int(UInt16(bigEndian: from.sin_port)), connection: id),
                                         now: Self.monotonic())
        }
    }

    /// Reads what a connection has and hands over every whole message; closes it at EOF, on an
    /// error, or when it sends what cannot be framed.
    func read(_ id: Int, _ handle: (SIPMessage, SIPPeer) -> Void, malformed onMalformed: (SIPError, SIPPeer) -> Void) {
        guard let c = connections[id] else { return }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, 0) }
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return drop(id) }
            if n < 0 { break }
            c.lastActivity = Self.monotonic()
            c.input += buffer[..<n]
            if c.input.count > Self.maxBuffered { return drop(id) }
        }
        while !c.input.isEmpty {
            do {
                guard let (message, used) = try SIPParser.parse(stream: c.input) else { return }
                c.input.removeFirst(used)
                handle(message, c.peer)
            } catch {
                onMalformed(error, c.peer)
                return drop(id)  // framing is lost: nothing after it can be read
            }
        }
    }

    /// Sends over UDP, or queues on a TCP connection (a connection gone: dropped, the device retransmits).
    func send(_ bytes: [UInt8], to peer: SIPPeer) {
        switch peer.transport {
        case .udp:
            guard !udp.isEmpty else { return }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(peer.port).bigEndian
            addr.sin_addr.s_addr = inet_addr(peer.host)
            _ = bytes.withUnsafeBytes { b in
                withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(udp[min(max(peer.connection, 0), udp.count - 1)].fd, b.baseAddress, b.count, Int32(MSG_NOSIGNAL), $0,
                               socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        case .tcp:
            guard let c = connections[peer.connection] else { return }
            c.output += bytes
            flush(c.id)
        }
    }

    /// Writes what a connection has queued, as far as it takes it.
    func flush(_ id: Int) {
        guard let c = connections[id] else { return }
        while !c.output.isEmpty {
            let n = c.output.withUnsafeBytes { Glibc.send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { break }
                return drop(id)
            }
            c.output.removeFirst(n)
        }
        if c.output.count > Self.maxBuffered { drop(id) }
    }

    /// Closes connections silent for too long: `idleUnregistered` when no registered device uses
    /// it (`registered`: the connections registrations point at), `idleRegistered` otherwise (a
    /// registered device sends a keepalive every minute or so).
    func expireIdle(registered: Set<Int>, idleRegistered: Double) {
        let now = Self.monotonic()
        for (id, c) in connections where now - c.lastActivity > (registered.contains(id) ? idleRegistered : Self.idleUnregistered) {
            drop(id)
            closedIdle += 1
        }
    }

    static func monotonic() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    func drop(_ id: Int) {
        guard let c = connections.removeValue(forKey: id) else { return }
        close(c.fd)
    }

    static func host(_ addr: sockaddr_in) -> String {
        var a = addr.sin_addr
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &a, &text, socklen_t(INET_ADDRSTRLEN))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
