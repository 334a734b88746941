import LiandongCore

/// The largest message each daemon socket takes. Two limits each: what the daemon reads and
/// refuses with a reason (a dead letter, an error answer: counted and logged), and libzmq's
/// ZMQ_MAXMSGSIZE well above it, beyond which libzmq closes the sender's connection before the
/// daemon sees anything (bounding the memory a single frame can take: a 100 MB frame on the
/// updates socket used to be read whole).
public struct SocketLimits: Sendable, Equatable {
    /// Ingest (SUB and ack): bodies above ingest.max_body_bytes are dead letters `oversized`;
    /// libzmq's cap is 16 MiB (or 4 x the body limit when that is more), so a frame of several
    /// hundred kilobytes leaves a dead letter instead of vanishing.
    public let ingestFrame: Int64
    /// Task updates: a body above this is answered with an error and kept as a dead letter.
    public let updateBody: Int
    public let updatesFrame: Int64
    /// Replay requests are a few dozen bytes.
    public let replayBody = 4096
    public let replayFrame: Int64 = 64 << 10
    /// The feed only receives subscriptions (topic prefixes).
    public let feedFrame: Int64 = 4096

    public init(maxBodyBytes: Int) {
        ingestFrame = max(16 << 20, Int64(maxBodyBytes) * 4 + 4096)
        updateBody = max(16 << 10, maxBodyBytes)
        updatesFrame = max(1 << 20, Int64(updateBody) * 4)
    }
}

extension Config {
    public var socketLimits: SocketLimits { SocketLimits(maxBodyBytes: limits.maxBodyBytes) }
}
