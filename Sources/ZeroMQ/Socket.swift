import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// The socket types Liandong uses.
public enum SocketType: Sendable {
    case pub, sub, xpub, router, dealer, req, rep, push, pull, pair

    var raw: Int32 {
        switch self {
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .xpub: ZMQ_XPUB
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .pair: ZMQ_PAIR
        }
    }
}

/// Owns one zmq socket. A socket belongs to one thread at a time: create it, use it and let it
/// go on the same dedicated thread. It is closed in deinit and keeps its context alive.
public final class ZMQSocket {
    public let context: ZMQContext
    private let handle: UnsafeMutableRawPointer
    public let type: SocketType

    /// For zmq_poll within this module only.
    var rawHandle: UnsafeMutableRawPointer { handle }

    public init(context: ZMQContext, type: SocketType) throws {
        guard let handle = zmq_socket(context.handle, type.raw) else {
            throw ZMQError.last("zmq_socket")
        }
        self.context = context
        self.handle = handle
        self.type = type
    }

    deinit {
        zmq_close(handle)
    }

    // MARK: options

    private func setInt(_ option: Int32, _ value: Int32, _ name: String) throws {
        var v = value
        try zmqCall("zmq_setsockopt(\(name))") {
            zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size)
        }
    }

    /// Milliseconds a close waits to deliver pending messages (-1 forever, 0 drop).
    public func setLinger(milliseconds: Int32) throws { try setInt(ZMQ_LINGER, milliseconds, "ZMQ_LINGER") }
    /// Receive timeout in milliseconds: receive() returns nil when it elapses.
    public func setReceiveTimeout(milliseconds: Int32) throws { try setInt(ZMQ_RCVTIMEO, milliseconds, "ZMQ_RCVTIMEO") }
    /// Send timeout in milliseconds: send() throws a timeout error when it elapses.
    public func setSendTimeout(milliseconds: Int32) throws { try setInt(ZMQ_SNDTIMEO, milliseconds, "ZMQ_SNDTIMEO") }
    public func setReceiveHighWaterMark(_ messages: Int32) throws { try setInt(ZMQ_RCVHWM, messages, "ZMQ_RCVHWM") }
    public func setSendHighWaterMark(_ messages: Int32) throws { try setInt(ZMQ_SNDHWM, messages, "ZMQ_SNDHWM") }
    /// Messages larger than this are refused by libzmq and the peer disconnected (-1 no limit).
    public func setMaxMessageSize(_ bytes: Int64) throws {
        var v = bytes
        try zmqCall("zmq_setsockopt(ZMQ_MAXMSGSIZE)") {
            zmq_setsockopt(handle, ZMQ_MAXMSGSIZE, &v, MemoryLayout<Int64>.size)
        }
    }

    /// XPUB: pass every subscription message up, including repeats (a subscriber that came back
    /// after a crash, while its old connection was not yet noticed gone).
    /// ZMQ_IMMEDIATE: queue outgoing messages only on completed connections. A DEALER connected
    /// to several peers of which some are not up (a standby daemon binds later) then sends to
    /// those that are, instead of parking messages on a connection still being made.
    public func setImmediate(_ on: Bool = true) throws { try setInt(ZMQ_IMMEDIATE, on ? 1 : 0, "ZMQ_IMMEDIATE") }

    public func setXPubVerbose(_ on: Bool = true) throws { try setInt(ZMQ_XPUB_VERBOSE, on ? 1 : 0, "ZMQ_XPUB_VERBOSE") }

    /// XPUB: subscriptions are not applied by libzmq but passed up; the application applies each
    /// one it allows with `subscribe` / `unsubscribe` right after receiving it (they act on the
    /// connection the last subscription message came from).
    public func setXPubManual(_ on: Bool = true) throws { try setInt(ZMQ_XPUB_MANUAL, on ? 1 : 0, "ZMQ_XPUB_MANUAL") }

    /// Subscribes a SUB socket to every topic starting with `prefix` ("" for everything); on a
    /// manual XPUB, applies that subscription to the connection that last asked.
    public func subscribe(_ prefix: String) throws {
        try setBytes(ZMQ_SUBSCRIBE, Array(prefix.utf8), "ZMQ_SUBSCRIBE")
    }

    /// The reverse of `subscribe`.
    public func unsubscribe(_ prefix: String) throws {
        try setBytes(ZMQ_UNSUBSCRIBE, Array(prefix.utf8), "ZMQ_UNSUBSCRIBE")
    }

    private func setBytes(_ option: Int32, _ bytes: [UInt8], _ name: String) throws {
        try zmqCall("zmq_setsockopt(\(name))") {
            bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        }
    }

    // MARK: CURVE

    /// This socket is a CURVE server with `secretKey` (Z85): every connection, whichever side
    /// binds, is encrypted and its client key is checked by the ZAP handler of the context
    /// (`domain` names the ZAP domain). A ZAP handler must be bound before this socket binds or
    /// connects: without one, libzmq lets every client in.
    public func setCurveServer(secretKey: String, domain: String) throws {
        try setInt(ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER")
        try setBytes(ZMQ_CURVE_SECRETKEY, Array(secretKey.utf8), "ZMQ_CURVE_SECRETKEY")
        try setBytes(ZMQ_ZAP_DOMAIN, Array(domain.utf8), "ZMQ_ZAP_DOMAIN")
    }

    /// This socket is a CURVE client of the server whose public key is `serverKey`, with its own
    /// key pair (all Z85).
    public func setCurveClient(serverKey: String, publicKey: String, secretKey: String) throws {
        try setBytes(ZMQ_CURVE_SERVERKEY, Array(serverKey.utf8), "ZMQ_CURVE_SERVERKEY")
        try setBytes(ZMQ_CURVE_PUBLICKEY, Array(publicKey.utf8), "ZMQ_CURVE_PUBLICKEY")
        try setBytes(ZMQ_CURVE_SECRETKEY, Array(secretKey.utf8), "ZMQ_CURVE_SECRETKEY")
    }

    /// Blocks until an XPUB socket has seen subscriptions covering every topic in `topics`
    /// (the cure for the "slow joiner": nothing sent before a subscription arrives is lost).
    /// Returns false when `timeoutMilliseconds` passes first.
    public func waitForSubscribers(covering topics: [String], timeoutMilliseconds: Int32) throws -> Bool {
        precondition(type == .xpub, "only an XPUB socket sees subscriptions")
        var missing = Set(topics)
        var remaining = Int64(timeoutMilliseconds)
        try setReceiveTimeout(milliseconds: 50)
        while !missing.isEmpty && remaining > 0 {
            remaining -= 50
            guard let frames = try receive(), let frame = frames.first, frame.first == 1 else { continue }
            let prefix = String(decoding: frame.dropFirst(), as: UTF8.self)
            missing = missing.filter { !$0.hasPrefix(prefix) }
        }
        return missing.isEmpty
    }

    // MARK: endpoints

    /// Endpoints bound (as resolved: a wildcard port becomes the chosen one) and connected, for
    /// `dropConnections`.
    private var bound: [String] = []
    private var connected: [String] = []

    public func bind(_ endpoint: String) throws {
        try zmqCall("bind \(endpoint)") { zmq_bind(handle, endpoint) }
        bound.append((try? lastEndpoint()) ?? endpoint)
    }

    public func connect(_ endpoint: String) throws {
        try zmqCall("connect \(endpoint)") { zmq_connect(handle, endpoint) }
        connected.append(endpoint)
    }

    /// Closes every connection of this socket and opens its endpoints again: a bound endpoint is
    /// unbound (which ends the connections accepted on it) and bound again, a connected one is
    /// disconnected and connected again. Peers reconnect by themselves and go through the
    /// handshake (and ZAP) anew. Messages already received stay readable.
    public func dropConnections(rebindTimeoutMilliseconds: Int = 5000) throws {
        for endpoint in bound {
            try zmqCall("unbind \(endpoint)") { zmq_unbind(handle, endpoint) }
            // The listener closes on the I/O thread: the address may be busy for a moment.
            var waited = 0
            while zmq_bind(handle, endpoint) != 0 {
                let error = ZMQError.last("bind \(endpoint)")
                guard error.isAddressInUse, waited < rebindTimeoutMilliseconds else { throw error }
                usleep(10_000)
                waited += 10
            }
        }
        for endpoint in connected {
            try zmqCall("disconnect \(endpoint)") { zmq_disconnect(handle, endpoint) }
            try zmqCall("connect \(endpoint)") { zmq_connect(handle, endpoint) }
        }
    }

    /// The endpoint actually bound (resolves "tcp://127.0.0.1:*" to the chosen port).
    public func lastEndpoint() throws -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        try zmqCall("zmq_getsockopt(ZMQ_LAST_ENDPOINT)") {
            zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size)
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: messages

    /// Sends a multipart message. Throws a timeout ZMQError when a send timeout elapses.
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws {
        precondition(!frames.isEmpty, "a message has at least one frame")
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = index < frames.count - 1 ? ZMQ_SNDMORE : 0
            if dontWait { flags |= ZMQ_DONTWAIT }
            try zmqCall("zmq_send") {
                frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            }
        }
    }

    /// Sends UTF-8 string frames.
    public func send(strings: [String]) throws {
        try send(strings.map { Array($0.utf8) })
    }

    /// Receives one whole multipart message, or nil when the receive timeout elapses first.
    public func receive() throws -> [[UInt8]]? {
        try receiveMessage()?.frames
    }

    /// Like `receive`, with the ZAP user id of the connection it came from (nil without one).
    public func receiveMessage() throws -> ZMQMessage? {
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        defer { message.deallocate() }
        var frames: [[UInt8]] = []
        var userID: String? = nil
        while true {
            guard zmq_msg_init(message) == 0 else { throw ZMQError.last("zmq_msg_init") }
            defer { zmq_msg_close(message) }
            var rc: Int32
            repeat {
                rc = zmq_msg_recv(message, handle, 0)
            } while rc < 0 && zmq_errno() == EINTR
            if rc < 0 {
                let error = ZMQError.last("zmq_msg_recv")
                // Only the first frame can time out: the rest of a message arrives atomically.
                if error.isTimeout && frames.isEmpty { return nil }
                throw error
            }
            // Any frame: a ROUTER's routing-id frame, when zmq_poll prefetched the message,
            // carries no metadata (libzmq 4.3); the frames from the connection do.
            if userID == nil, let id = zmq_msg_gets(message, "User-Id") {
                userID = String(cString: id)
            }
            let size = zmq_msg_size(message)
            if size == 0 {
                frames.append([])
            } else {
                let data = zmq_msg_data(message)!.assumingMemoryBound(to: UInt8.self)
                frames.append(Array(UnsafeBufferPointer(start: data, count: size)))
            }
            if zmq_msg_more(message) == 0 { return ZMQMessage(frames: frames, userID: userID) }
        }
    }
}

/// A received multipart message and who sent it.
public struct ZMQMessage: Sendable {
    public var frames: [[UInt8]]
    /// The user id the ZAP handler gave the sending connection (CURVE: the peer's name).
    public var userID: String?
}
