import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// A failed libzmq call: the zmq_errno() value, its text, and what we were doing.
public struct ZMQError: Error, CustomStringConvertible, Sendable {
    public let errno: Int32
    public let operation: String

    public init(errno: Int32, operation: String) {
        self.errno = errno
        self.operation = operation
    }

    /// Captures zmq_errno() right after a failed call.
    static func last(_ operation: String) -> ZMQError {
        ZMQError(errno: zmq_errno(), operation: operation)
    }

    public var message: String { String(cString: zmq_strerror(errno)) }
    public var isAddressInUse: Bool { errno == EADDRINUSE }
    public var isTimeout: Bool { errno == EAGAIN }
    public var isInterrupted: Bool { errno == EINTR }
    public var description: String { "\(operation): \(message) (zmq errno \(errno))" }
}

/// Runs a libzmq call that returns -1 on failure, retrying EINTR, throwing ZMQError otherwise.
@discardableResult
func zmqCall(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws -> Int32 {
    while true {
        let rc = body()
        if rc >= 0 { return rc }
        let error = ZMQError.last(operation())
        if error.isInterrupted { continue }
        throw error
    }
}
