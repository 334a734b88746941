import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP programs beside the daemon (liandong-open311, liandong-console): their routes on
/// `bind`, after the socket threads they own, in one service group that SIGTERM and SIGINT stop
/// gracefully (the HTTP server first, the threads - started first - last).
public enum HTTPFront {
    public static func run(router: Router<BasicRequestContext>, bind: String, key: String, serverName: String, idleTimeoutSeconds: Int,
                           threads: [ThreadService], shutdownSeconds: Int, logger: Logger,
                           onRunning: @escaping @Sendable () -> Void) async throws {
        let (host, port) = try Config.metricsAddress(bind, key: key)
        // A clear error now for an address in use or not ours, rather than from inside NIO.
        close(try HealthService.openListener(bind, key: key))
        var mask = sigset_t()
        sigemptyset(&mask)
        for sig in [SIGTERM, SIGINT] { sigaddset(&mask, sig) }
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        let app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(idleTimeoutSeconds)))),
            configuration: .init(address: .hostname(host.isEmpty || host == "*" ? "0.0.0.0" : host, port: Int(port)),
                                 serverName: serverName, availableConnectionsDelegate: .maximum(1024, logger: logger)),
            onServerRunning: { _ in onRunning() },
            logger: logger)
        var configuration = ServiceGroupConfiguration(services: threads.map { .init(service: $0) } + [.init(service: app)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(Int64(shutdownSeconds))
        try await ServiceGroup(configuration: configuration).run()
    }
}

/// A pipe that wakes a socket thread polling it (with ZeroMQ sockets) when a handler hands it work.
public final class WakePipe: Sendable {
    public let readFD: Int32
    private let writeFD: Int32

    public init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ConfigError("cannot make a pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        readFD = fds[0]
        writeFD = fds[1]
    }

    public func wake() {
        var b: UInt8 = 1
        _ = write(writeFD, &b, 1)
    }

    /// Empties the pipe (after the poll said it is readable).
    public func drain() {
        var scratch = [UInt8](repeating: 0, count: 256)
        while read(readFD, &scratch, scratch.count) > 0 {}
    }
}
