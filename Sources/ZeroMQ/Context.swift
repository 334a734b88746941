import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// Owns one zmq context. Sockets keep their context alive, so it is terminated only after the
/// last socket made from it has been closed.
public final class ZMQContext: @unchecked Sendable {
    // @unchecked: a zmq context is documented thread-safe; the pointer is immutable.
    let handle: UnsafeMutableRawPointer

    public init(ioThreads: Int32 = 1) throws {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads)
        self.handle = handle
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// libzmq's version as "major.minor.patch".
    public static var version: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}
