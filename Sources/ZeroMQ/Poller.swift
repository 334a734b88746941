import CZeroMQ

extension ZMQSocket {
    /// Waits until any of `sockets` has a message to read, or `timeoutMilliseconds` passes (-1 for
    /// ever). Returns, per socket, whether it is readable. All sockets must belong to the calling
    /// thread.
    public static func poll(_ sockets: [ZMQSocket], timeoutMilliseconds: Int) throws -> [Bool] {
        var items = sockets.map { zmq_pollitem_t(socket: $0.rawHandle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        try zmqCall("zmq_poll") {
            items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, Int32($0.count), timeoutMilliseconds) }
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }

    /// Receives a whole message if one is waiting, without blocking.
    public func receiveNow() throws -> [[UInt8]]? {
        let readable = try ZMQSocket.poll([self], timeoutMilliseconds: 0)
        return readable[0] ? try receive() : nil
    }

    /// Like `receiveNow`, with the sender's ZAP user id.
    public func receiveMessageNow() throws -> ZMQMessage? {
        let readable = try ZMQSocket.poll([self], timeoutMilliseconds: 0)
        return readable[0] ? try receiveMessage() : nil
    }
}

/// One thing `ZMQPoll.wait` watches: a ZeroMQ socket, or a plain file descriptor (a UDP or TCP
/// socket of the caller's own), for reading and optionally for writing.
public enum ZMQPollItem {
    case socket(ZMQSocket)
    case fd(Int32, writable: Bool = false)
}

public enum ZMQPoll {
    /// What `wait` saw on each item.
    public struct Events: Sendable {
        public let readable: Bool
        public let writable: Bool
        /// An error or hang-up on a file descriptor.
        public let failed: Bool
    }

    /// Waits until any item is ready or `timeoutMilliseconds` passes (-1 for ever): ZeroMQ sockets
    /// and file descriptors in one zmq_poll, so one thread can serve both.
    public static func wait(_ items: [ZMQPollItem], timeoutMilliseconds: Int) throws -> [Events] {
        var raw = items.map { item -> zmq_pollitem_t in
            switch item {
            case .socket(let s): zmq_pollitem_t(socket: s.rawHandle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
            case .fd(let fd, let writable):
                zmq_pollitem_t(socket: nil, fd: fd, events: Int16(ZMQ_POLLIN) | (writable ? Int16(ZMQ_POLLOUT) : 0), revents: 0)
            }
        }
        try zmqCall("zmq_poll") {
            raw.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, Int32($0.count), timeoutMilliseconds) }
        }
        return raw.map {
            Events(readable: $0.revents & Int16(ZMQ_POLLIN) != 0, writable: $0.revents & Int16(ZMQ_POLLOUT) != 0,
                   failed: $0.revents & Int16(ZMQ_POLLERR) != 0)
        }
    }
}
