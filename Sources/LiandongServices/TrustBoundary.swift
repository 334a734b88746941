import CoreMetrics
import Foundation
import LiandongClient
import LiandongCore
import Logging
import ServiceLifecycle
import Synchronization
import Yams
import ZeroMQ

/// security.peers_file: the peers the daemon talks to, each with its CURVE public key, role and
/// scope:
///     peers:
///       - {name: gw-yuanquan-01, public_key: "<Z85>", role: gateway, scope: "620922100"}
public enum PeersFile {
    public static func load(_ path: String) throws -> [Peer] {
        let text: String
        do { text = try ConfiguredFile(setting: "security.peers_file", path: path, secret: false).read() } catch let error as CurveKeyError {
            throw ConfigError(error.message)
        }
        return try parse(text, path: path)
    }

    static func parse(_ text: String, path: String) throws -> [Peer] {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw ConfigError("peers file \(path) is not valid YAML: \(Config.yamlProblem(error))")
        }
        guard let root, case .mapping(let top) = root, let list = top["peers"] else {
            throw ConfigError("peers file \(path) must be a mapping with a list under \"peers\"")
        }
        guard case .sequence(let items) = list else { throw ConfigError("peers file \(path): \"peers\" must be a list") }
        var peers: [Peer] = [], names = Set<String>(), keys: [String: String] = [:]
        for (index, item) in items.enumerated() {
            let at = "peers file \(path), entry \(index + 1)"
            guard case .mapping(let map) = item else { throw ConfigError("\(at): expected {name, public_key, role, scope}") }
            var fields: [String: String] = [:]
            for (k, v) in map {
                guard case .scalar(let key) = k, case .scalar(let value) = v else { throw ConfigError("\(at): every field is a plain value") }
                guard ["name", "public_key", "role", "scope"].contains(key.string) else {
                    throw ConfigError("\(at): unknown field \"\(key.string)\" (fields: name, public_key, role, scope)")
                }
                fields[key.string] = value.string
            }
            guard let name = fields["name"], !name.isEmpty, name.count <= 64,
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
            else { throw ConfigError("\(at): name must be 1-64 letters, digits, '.', '_' or '-'") }
            let here = "\(at) (\(name))"
            guard names.insert(name).inserted else { throw ConfigError("\(here): the name is used twice") }
            guard let key = fields["public_key"], ZMQCurve.isZ85Key(key) else {
                throw ConfigError("\(here): public_key must be a Z85 CURVE public key (40 characters, the NAME.pub of `liandongd keys generate`)")
            }
            if let other = keys[key] { throw ConfigError("\(here): the same public_key as \(other)") }
            keys[key] = name
            guard let roleText = fields["role"], let role = PeerRole(rawValue: roleText) else {
                throw ConfigError("\(here): role must be one of \(PeerRole.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let scope = fields["scope"] ?? ""
            guard scope.count <= 15, scope.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw ConfigError("\(here): scope must be a division-code prefix (digits, e.g. \"620922100\"), or absent for all")
            }
            peers.append(Peer(name: name, publicKey: key, role: role, scope: scope))
        }
        return peers
    }
}

/// The peers in effect, shared by the ZAP handler (by key) and the services (by name). A reload
/// that removes a peer or changes its key, role or scope bumps the revision of the roles
/// involved; the services of those roles then close every connection (the peers reconnect and
/// are authenticated again), so a removed key keeps no connection.
public final class PeerRegistry: Sendable {
    private struct State {
        var byKey: [String: Peer] = [:]
        var byName: [String: Peer] = [:]
        var revisions: [PeerRole: Int] = [:]
    }
    private let state = Mutex(State())
    public let path: String

    public init(path: String) throws {
        self.path = path
        _ = try reload()
    }

    public init(peers: [Peer]) {
        path = ""
        install(peers)
    }

    public func peer(named name: String?) -> Peer? {
        guard let name else { return nil }
        return state.withLock { $0.byName[name] }
    }

    public func peer(key: String) -> Peer? { state.withLock { $0.byKey[key] } }

    public var count: Int { state.withLock { $0.byName.count } }

    /// Changes that closed connections, as a sum over `roles` (compare with an earlier value).
    public func revision(of roles: Set<PeerRole>) -> Int {
        state.withLock { s in roles.reduce(0) { $0 + s.revisions[$1, default: 0] } }
    }

    public struct Change: Sendable, Equatable {
        public var added: [String] = []
        public var removed: [String] = []
        public var changed: [String] = []
    }

    /// Reads the peers file again; on an error the running peers stay.
    public func reload() throws -> Change {
        install(try PeersFile.load(path))
    }

    @discardableResult
    func install(_ peers: [Peer]) -> Change {
        state.withLock { s in
            var change = Change()
            let fresh = Dictionary(uniqueKeysWithValues: peers.map { ($0.name, $0) })
            for (name, old) in s.byName.sorted(by: { $0.key < $1.key }) {
                if let new = fresh[name] {
                    if new != old {
                        change.changed.append(name)
                        for role in Set([old.role, new.role]) { s.revisions[role, default: 0] += 1 }
                    }
                } else {
                    change.removed.append(name)
                    s.revisions[old.role, default: 0] += 1
                }
            }
            change.added = fresh.keys.filter { s.byName[$0] == nil }.sorted()
            s.byName = fresh
            s.byKey = Dictionary(uniqueKeysWithValues: peers.map { ($0.publicKey, $0) })
            return change
        }
    }
}

/// security.curve: the daemon's CURVE key, its peers and the refusals counted and logged.
public final class TrustBoundary: Sendable {
    /// The ZAP domain of every daemon socket.
    public static let domain = "liandong"
    public let registry: PeerRegistry
    let secretKey: String
    public let publicKey: String
    let failures: CounterFamily
    let logger: Logger
    /// What was logged already (a refusal is logged once per peer and kind, not per attempt).
    private let logged = Mutex(Set<String>())

    /// Reasons of liandong_auth_failures_total.
    public enum Failure: String, CaseIterable, Sendable {
        /// The handshake: a key not in the peers file.
        case unknownKey = "unknown_key"
        /// The handshake: a client that does not speak CURVE (or another ZAP request).
        case mechanism
        /// A socket the peer's role may not use, or a name no longer in the peers file.
        case forbidden
        /// A task, replay prefix or feed subscription beyond the peer's scope.
        case outOfScope = "out_of_scope"
        /// The handshake failed before any key was checked: a CURVE exchange that does not
        /// decrypt (the client has the wrong server key) or a client that is not ZMTP at all.
        case handshake
    }

    /// Monitors of the protected sockets, waiting for the ZAP thread to read them.
    let monitors = Mutex<(next: Int, pending: [MonitorHandover])>((0, []))
    /// When each (reason, address) handshake failure was last logged.
    private let handshakeLogged = Mutex<[String: Double]>([:])
    /// A handshake failure is logged once per peer address and reason in this many seconds.
    public static let handshakeLogInterval = 60.0

    /// The daemon's own key pair used as a client: `liandongd task close|reassign` on the daemon's
    /// host (whoever reads security.secret_key_file can speak for the daemon anyway), a county-wide
    /// dispatcher. Its name cannot be a peers-file name (':' is not allowed there).
    public let localOperator: Peer

    public init(secretKey: String, registry: PeerRegistry, metrics: Metrics, logger: Logger) throws {
        self.secretKey = secretKey
        publicKey = try ZMQCurve.publicKey(of: secretKey)
        localOperator = Peer(name: "liandongd:operator", publicKey: publicKey, role: .dispatcher, scope: "")
        self.registry = registry
        failures = metrics.counters("liandong_auth_failures_total", by: "reason", known: Failure.allCases.map(\.rawValue))
        self.logger = logger
    }

    /// From the config: the secret key file (refused when its group or others may read it) and the peers file.
    public static func load(_ config: Config, metrics: Metrics, logger: Logger) throws -> TrustBoundary? {
        guard config.security.curve else { return nil }
        guard ZMQCurve.isAvailable else { throw ConfigError("security.curve is true but this libzmq was built without CURVE (libsodium)") }
        let secret: String
        do { secret = try CurveKeyFiles.readSecret(config.security.secretKeyFile, setting: "security.secret_key_file") } catch let e as CurveKeyError {
            throw ConfigError(e.message)
        }
        return try TrustBoundary(secretKey: secret, registry: try PeerRegistry(path: config.security.peersFile),
                                 metrics: metrics, logger: logger)
    }

    /// For check-config: the key files load and the peers file is right; one line saying so.
    public static func summary(_ config: Config) throws -> String? {
        guard config.security.curve else { return nil }
        let secret: String
        do { secret = try CurveKeyFiles.readSecret(config.security.secretKeyFile, setting: "security.secret_key_file") } catch let e as CurveKeyError {
            throw ConfigError(e.message)
        }
        let peers = try PeersFile.load(config.security.peersFile)
        let roles = PeerRole.allCases.map { role in "\(role.rawValue): \(peers.filter { $0.role == role }.count)" }
        return "security: CURVE, \(peers.count) peers (\(roles.joined(separator: ", "))); the daemon's public key is "
            + (try ZMQCurve.publicKey(of: secret))
    }

    /// Makes `socket` a CURVE server of this daemon (before it binds or connects).
    public func protect(_ socket: ZMQSocket) throws {
        try socket.setCurveServer(secretKey: secretKey, domain: Self.domain)
        // Handshakes that fail before ZAP is asked (a client without keys, the wrong server key)
        // are seen only on the socket's monitor, which the ZAP thread reads.
        let endpoint = monitors.withLock { state -> String in
            state.next += 1
            return "inproc://liandong-monitor-\(state.next)"
        }
        try socket.monitor(endpoint, events: [.accepted, .disconnected, .handshakeFailedProtocol, .handshakeFailedNoDetail])
        // The reading end is connected here, before the socket binds (an event with no reader
        // connected is lost), then handed to the ZAP thread (the lock is the fence libzmq asks
        // for when a socket changes threads).
        let pair = try ZMQSocket(context: socket.context, type: .pair)
        try pair.setLinger(milliseconds: 0)
        try pair.connect(endpoint)
        monitors.withLock { $0.pending.append(MonitorHandover(socket: pair)) }
    }

    /// A handshake that failed on `endpoint` for `reason`, from `address` when known: counted
    /// (mechanism, or handshake) and logged once per address and reason per minute.
    func countHandshakeFailure(_ reason: ZMQMonitorEvent.HandshakeFailure) {
        failures.increment(reason == .mechanism ? Failure.mechanism.rawValue : Failure.handshake.rawValue)
    }

    /// Logs a failed handshake (counted already), once per host and reason a minute.
    func handshakeFailed(_ reason: ZMQMonitorEvent.HandshakeFailure, endpoint: String, address: String?) {
        // Per host: a client's every retry comes from another port.
        let host = address.map { String($0[..<($0.lastIndex(of: ":") ?? $0.endIndex)]) }
        let key = "\(reason.rawValue) \(host ?? endpoint)", now = Date().timeIntervalSince1970
        let due = handshakeLogged.withLock { last -> Bool in
            if last.count > 10_000 { last = last.filter { now - $0.value < Self.handshakeLogInterval } }
            guard now - (last[key] ?? 0) >= Self.handshakeLogInterval else { return false }
            last[key] = now
            return true
        }
        guard due else { return }
        let why = switch reason {
        case .mechanism: "the client does not speak CURVE (no --curve-key, or a plain ZeroMQ socket)"
        case .cryptographic: "the CURVE exchange failed: the client has another server key (the daemon's NAME.pub), or a broken key"
        case .protocolError: "not a ZeroMQ handshake, or the client hung up during it (as one without CURVE keys may)"
        }
        logger.warning("handshake refused (logged once per address and reason per minute)", metadata: [
            "auth.reason": "\(reason == .mechanism ? Failure.mechanism.rawValue : Failure.handshake.rawValue)",
            "auth.peer": "\(address ?? "unknown address")", "zmq.endpoint": "\(endpoint)", "auth.detail": "\(why)",
        ])
    }

    /// The current peer that sent `message` (nil: not, or no longer, a peer).
    public func peer(of message: ZMQMessage) -> Peer? {
        registry.peer(named: message.userID) ?? (message.userID == localOperator.name ? localOperator : nil)
    }

    /// As recorded with the message: who the connection said it was, and its rights now.
    public func sender(of message: ZMQMessage) -> Sender {
        if let peer = peer(of: message) { return peer.sender }
        return Sender(name: message.userID ?? "", role: nil, scope: "")
    }

    /// Counts a refusal and logs it the first time for this peer, kind and detail key.
    public func refused(_ failure: Failure, who: String, key: String = "", _ detail: String) {
        failures.increment(failure.rawValue)
        let first = logged.withLock { seen -> Bool in
            if seen.count > 10_000 { seen.removeAll() }
            return seen.insert("\(failure.rawValue)\u{1F}\(who)\u{1F}\(key)").inserted
        }
        if first {
            logger.warning("refused (logged once per peer)", metadata: [
                "auth.reason": "\(failure.rawValue)", "auth.peer": "\(who)", "auth.detail": "\(detail)",
            ])
        }
    }

    /// One ZAP request (RFC 27) and its reply: 200 with the peer's name as user id for a known
    /// CURVE key, 400 otherwise.
    func answer(_ frames: [[UInt8]]) -> [[UInt8]] {
        func reply(_ id: [UInt8], _ code: String, _ text: String, user: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), id, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard frames.count >= 6, frames[0] == Array("1.0".utf8) else {
            return reply(frames.count > 1 ? frames[1] : [], "500", "malformed ZAP request")
        }
        let id = frames[1], address = String(decoding: frames[3], as: UTF8.self)
        let mechanism = String(decoding: frames[5], as: UTF8.self)
        guard mechanism == "CURVE", frames.count == 7, let key = ZMQCurve.z85(binary: frames[6]) else {
            refused(.mechanism, who: address, "mechanism \(mechanism), not CURVE")
            return reply(id, "400", "CURVE only")
        }
        guard let peer = registry.peer(key: key) ?? (key == publicKey ? localOperator : nil) else {
            refused(.unknownKey, who: address, "public key \(key) is not in the peers file \(registry.path)")
            return reply(id, "400", "unknown key")
        }
        return reply(id, "200", "OK", user: peer.name)
    }
}

/// The ZAP handler (inproc://zeromq.zap.01) of the daemon's context, on its own thread. It is
/// bound before any CURVE socket exists (libzmq lets every client in when no handler is bound)
/// and stops last, after every socket it guards.
public final class ZapService: Service, Sendable {
    let boundary: TrustBoundary
    private let thread = ThreadState()

    private final class ThreadState: Sendable {
        let stop = StopFlag()
        let bound = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let error = Mutex<(any Error)?>(nil)
    }

    /// Binds the handler and returns once it is bound; throws when it cannot be.
    public init(context: ZMQContext, boundary: TrustBoundary, logger: Logger) throws {
        self.boundary = boundary
        let state = thread
        let worker = Thread {
            defer { state.done.signal() }
            do {
                let socket = try ZMQSocket(context: context, type: .rep)
                try socket.setLinger(milliseconds: 0)
                try socket.bind("inproc://zeromq.zap.01")
                state.bound.signal()
                var watch = HandshakeWatch(boundary: boundary)
                while !state.stop.isSet {
                    try watch.connectNewMonitors(context: context)
                    let readable = try ZMQSocket.poll([socket] + watch.sockets, timeoutMilliseconds: 100)
                    if readable[0], let request = try socket.receiveNow() { try socket.send(boundary.answer(request)) }
                    try watch.read(readable.dropFirst())
                }
            } catch {
                state.error.withLock { $0 = error }
                state.bound.signal()
            }
        }
        worker.name = "liandong-zap"
        worker.start()
        state.bound.wait()
        if let error = state.error.withLock({ $0 }) {
            throw ConfigError("cannot start the ZAP handler (security.curve): \(error)")
        }
        logger.info("CURVE on every socket", metadata: ["curve.public_key": "\(boundary.publicKey)",
                                                         "curve.peers": "\(boundary.registry.count)"])
    }

    public func run() async throws {
        // Serves until shutdown reaches this service (the last one); a handler that fails ends
        // the daemon rather than leave CURVE sockets without one.
        let state = thread
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    DispatchQueue.global().async {
                        state.done.wait()
                        state.done.signal()
                        c.resume()
                    }
                }
            } onGracefulShutdown: {
                state.stop.set()
            }
        } onCancel: {
            state.stop.set()
        }
        if let error = state.error.withLock({ $0 }) { throw error }
    }
}

/// The monitors of the protected sockets, read on the ZAP thread: a failed handshake is counted at
/// once and logged when its connection closes (libzmq closes it right away), with the address it came
/// from (libzmq's events name only the socket's endpoint; the accepted descriptor gives the address).
struct HandshakeWatch {
    let boundary: TrustBoundary
    private(set) var sockets: [ZMQSocket] = []
    /// Accepted connections by descriptor: their peer address, read when the event arrived.
    private var accepted: [UInt32: String] = [:]
    /// Failures seen per endpoint (counted at once) and not yet logged with the address of their
    /// closed connection; logged without one after two seconds.
    private var unattributed: [String: [(reason: ZMQMonitorEvent.HandshakeFailure, at: Double)]] = [:]

    init(boundary: TrustBoundary) { self.boundary = boundary }

    mutating func connectNewMonitors(context: ZMQContext) throws {
        let handed = boundary.monitors.withLock { state -> [MonitorHandover] in
            defer { state.pending.removeAll() }
            return state.pending
        }
        sockets += handed.map(\.socket)
    }

    mutating func read(_ readable: ArraySlice<Bool>) throws {
        for (socket, ready) in zip(sockets, readable) where ready {
            while let frames = try socket.receiveNow() {
                guard let event = ZMQMonitorEvent(frames: frames) else { continue }
                handle(event)
            }
        }
        let now = Date().timeIntervalSince1970
        for (endpoint, waiting) in unattributed where waiting.contains(where: { now - $0.at > 2 }) {
            for failure in waiting where now - failure.at > 2 {
                boundary.handshakeFailed(failure.reason, endpoint: endpoint, address: nil)
            }
            unattributed[endpoint] = waiting.filter { now - $0.at <= 2 }
        }
    }

    mutating func handle(_ event: ZMQMonitorEvent) {
        if event.event == .accepted {
            if accepted.count > 100_000 { accepted.removeAll() }
            accepted[event.value] = ZMQSocket.peerAddress(ofDescriptor: Int32(bitPattern: event.value))
        } else if let failure = event.handshakeFailure {
            boundary.countHandshakeFailure(failure)
            if (unattributed[event.endpoint]?.count ?? 0) < 1_000 {
                unattributed[event.endpoint, default: []].append((failure, Date().timeIntervalSince1970))
            }
        } else if event.event == .disconnected {
            let address = accepted.removeValue(forKey: event.value)
            if var waiting = unattributed[event.endpoint], !waiting.isEmpty {
                boundary.handshakeFailed(waiting.removeFirst().reason, endpoint: event.endpoint, address: address)
                unattributed[event.endpoint] = waiting
            }
        }
    }
}

/// A monitor's reading socket on its way from the thread that made it to the ZAP thread.
struct MonitorHandover: @unchecked Sendable {
    // Safe: made and connected by one thread, then used only by the ZAP thread, with the monitors
    // lock between the two (the full fence libzmq requires for moving a socket).
    let socket: ZMQSocket
}
