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
