import Foundation
import LiandongCore
import Logging
import ServiceLifecycle
import ZeroMQ

/// Thrown when a socket cannot be set up: names the config key to change.
public struct SocketSetupError: Error, CustomStringConvertible, Sendable {
    public let key: String
    public let endpoint: String
    public let underlying: ZMQError

    public var description: String {
        if underlying.isAddressInUse {
            return "cannot bind \(key) \(endpoint): the address is already in use "
                + "(another liandongd running? choose another port with \(key))"
        }
        return "cannot use \(key) \(endpoint): \(underlying.message) (check \(key))"
    }
}

/// Receives alert and report messages on a SUB socket, validates them and queues them for the
/// writer. Stops reading at graceful shutdown, then closes the queue so the writer drains it.
public final class IngestService: Service, @unchecked Sendable {
    // @unchecked: immutable after init; the socket lives only inside the dedicated thread.
    let context: ZMQContext
    let config: Config
    let queue: BoundedQueue<Inbound>
    let logger: Logger
    let stop = StopFlag()

    public init(context: ZMQContext, config: Config, queue: BoundedQueue<Inbound>, logger: Logger) {
        self.context = context
        self.config = config
        self.queue = queue
        self.logger = logger
    }

    public func run() async throws {
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await runOnDedicatedThread(name: "liandong-ingest") { [self] in
                    defer { queue.close() }
                    try loop()
                }
            } onGracefulShutdown: { [stop] in
                stop.set()
            }
        } onCancel: { [stop] in
            stop.set()
        }
    }

    /// Opens the socket; throws SocketSetupError naming the config key at fault.
    func openSocket() throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: .sub)
        try socket.setReceiveTimeout(milliseconds: 100)
        try socket.setLinger(milliseconds: 0)
        try socket.setReceiveHighWaterMark(100_000)
        // libzmq drops frames above the limit before we see them; keep headroom so our own
        // check can dead-letter moderately oversized bodies with a reason.
        try socket.setMaxMessageSize(Int64(config.limits.maxBodyBytes) * 4 + 4096)
        try socket.subscribe("alert")
        try socket.subscribe("report")
        if !config.ingestBind.isEmpty {
            do { try socket.bind(config.ingestBind) } catch let e as ZMQError {
                throw SocketSetupError(key: "ingest.bind", endpoint: config.ingestBind, underlying: e)
            }
        }
        for endpoint in config.ingestConnect {
            do { try socket.connect(endpoint) } catch let e as ZMQError {
                throw SocketSetupError(key: "ingest.connect", endpoint: endpoint, underlying: e)
            }
        }
        return socket
    }

    private func loop() throws {
        let socket = try openSocket()
        logger.info("ingest listening", metadata: [
            "zmq.bind": "\(config.ingestBind)", "zmq.connect": "\(config.ingestConnect.joined(separator: ","))",
        ])
        let decoder = MessageDecoder(rules: config.rules, limits: config.limits)
        while !stop.isSet {
            guard let frames = try socket.receive() else { continue }
            let now = Date().timeIntervalSince1970
            let raw = RawMessage(endpoint: "ingest.sub", frames: frames, receivedAt: now)
            let inbound: Inbound
            switch decoder.decode(frames: frames, now: now) {
            case .success(let event): inbound = .event(event, raw)
            case .failure(let rejection): inbound = .rejected(rejection, raw)
            }
            // Blocks while the writer is behind; wakes up to honour a stop request.
            while !queue.push(inbound, timeout: 0.2) {
                if stop.isSet {
                    // Keep the message: the writer still drains the queue after we return.
                    queue.forcePush(inbound)
                    break
                }
            }
        }
        logger.info("ingest stopped reading")
    }
}

extension BoundedQueue {
    /// Appends even when full (used once, for the last message read before a shutdown).
    func forcePush(_ element: Element) {
        _ = push(element, timeout: 5)
    }
}
