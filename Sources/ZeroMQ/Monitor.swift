import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// Socket events libzmq reports on a monitor (zmq_socket_monitor).
public struct ZMQMonitorEvents: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let accepted = ZMQMonitorEvents(rawValue: ZMQ_EVENT_ACCEPTED)
    public static let disconnected = ZMQMonitorEvents(rawValue: ZMQ_EVENT_DISCONNECTED)
    public static let handshakeFailedNoDetail = ZMQMonitorEvents(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    public static let handshakeFailedProtocol = ZMQMonitorEvents(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
    public static let handshakeFailedAuth = ZMQMonitorEvents(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
    public static let handshakeSucceeded = ZMQMonitorEvents(rawValue: ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
}

/// One event read from a monitor's PAIR socket: what happened, its value (a file descriptor for
/// accepted/disconnected, a protocol error code for a failed handshake) and the socket's endpoint.
public struct ZMQMonitorEvent: Sendable, Equatable {
    public let event: ZMQMonitorEvents
    public let value: UInt32
    public let endpoint: String

    /// From the two frames libzmq sends (16-bit event and 32-bit value, little-endian; the endpoint).
    public init?(frames: [[UInt8]]) {
        guard frames.count >= 2, frames[0].count >= 6 else { return nil }
        let f = frames[0]
        event = ZMQMonitorEvents(rawValue: Int32(UInt16(f[0]) | UInt16(f[1]) << 8))
        value = UInt32(f[2]) | UInt32(f[3]) << 8 | UInt32(f[4]) << 16 | UInt32(f[5]) << 24
        endpoint = String(decoding: frames[1], as: UTF8.self)
    }

    /// A failed handshake's cause, as libzmq names it.
    public enum HandshakeFailure: String, Sendable {
        /// The client speaks another security mechanism (a client without CURVE keys).
        case mechanism
        /// The CURVE exchange failed: the client has the wrong server key, or a broken key.
        case cryptographic
        /// Anything else the ZMTP handshake refused (garbage, a wrong protocol), or a peer that
        /// hung up in the middle of it.
        case protocolError = "protocol"
    }

    /// For a failed handshake: why (nil for other events).
    public var handshakeFailure: HandshakeFailure? {
        // The peer hung up during the handshake: what a client with the wrong mechanism often
        // looks like from this side (it saw the mismatch first), or not ZeroMQ at all.
        if event == .handshakeFailedNoDetail { return .protocolError }
        guard event == .handshakeFailedProtocol else { return nil }
        switch Int32(bitPattern: value) {
        case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: return .mechanism
        case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC, ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE: return .cryptographic
        default: return .protocolError
        }
    }
}

extension ZMQSocket {
    /// Reports `events` of this socket on a PAIR socket bound at `endpoint` (inproc://...): connect
    /// a `.pair` socket there and read `ZMQMonitorEvent`s.
    public func monitor(_ endpoint: String, events: ZMQMonitorEvents) throws {
        try zmqCall("zmq_socket_monitor(\(endpoint))") { zmq_socket_monitor(rawHandle, endpoint, events.rawValue) }
    }

    /// The address of the other end of a connected TCP file descriptor ("127.0.0.2:51234"), or nil
    /// (not TCP, or gone).
    public static func peerAddress(ofDescriptor fd: Int32) -> String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST)), port = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let ok = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &port, socklen_t(port.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard ok == 0 else { return nil }
        return String(cString: host) + ":" + String(cString: port)
    }
}
