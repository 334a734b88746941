// swift-tools-version:6.0
import Foundation
import PackageDescription

let package = Package(
    name: "liandong",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "liandongd", targets: ["liandongd"]),
        .executable(name: "liandong-sim", targets: ["liandong-sim"]),
        .executable(name: "liandong-tail", targets: ["liandong-tail"]),
        .executable(name: "liandong-dispatcher", targets: ["liandong-dispatcher"]),
        .executable(name: "liandong-bench", targets: ["liandong-bench"]),
        .executable(name: "liandong-gb28181", targets: ["liandong-gb28181"]),
        .executable(name: "liandong-open311", targets: ["liandong-open311"]),
        .executable(name: "liandong-console", targets: ["liandong-console"]),
        // For integrators: the acknowledged gateway (IngestClient) and the gap-free dispatcher feed (FeedClient).
        .library(name: "LiandongClient", targets: ["LiandongClient", "LiandongCore", "ZeroMQ"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        // HTTP on SwiftNIO: /metrics, /healthz, /readyz (concurrent connections, idle timeout, a connection cap).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
    ],
    targets: [
        // C shims: modulemap + header only, imported by the wrappers and nothing else.
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(name: "CCrypt", providers: [.apt(["libcrypt-dev"])]),
        // Small safe wrappers: one owner per C handle.
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
        .target(name: "LibPQ", dependencies: ["CLibPQ"]),
        // Client side of the wire contract for gateways and dispatchers (acknowledged ingest, replay).
        .target(name: "LiandongClient", dependencies: ["ZeroMQ", "LiandongCore"]),
        // Pure core: wire models, validation, coordinates, policies. No I/O.
        .target(name: "LiandongCore"),
        // Storage: the event and task stores, correlation over PostgreSQL, migrations, importers, the spill file.
        .target(name: "LiandongStorage", dependencies: ["LiandongCore", "LibPQ"]),
        // Services: config, the daemon's services (ingest, writer, publisher, updates, sweeper, replay, health), metrics.
        .target(
            name: "LiandongServices",
            dependencies: [
                "LiandongCore", "LiandongStorage", "ZeroMQ", "LibPQ", "LiandongClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .executableTarget(
            name: "liandongd",
            dependencies: [
                "LiandongServices", "LiandongStorage", "LiandongCore", "LiandongClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "liandong-sim",
            dependencies: [
                "LiandongCore", "LiandongClient", "ZeroMQ", "LibPQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "liandong-tail",
            dependencies: [
                "ZeroMQ", "LiandongClient", "LiandongCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "liandong-dispatcher",
            dependencies: [
                "LiandongCore", "ZeroMQ", "LiandongClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "liandong-bench",
            dependencies: [
                "LiandongCore", "ZeroMQ", "LibPQ", "LiandongClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The GB/T 28181 SIP bridge: cameras and NVRs register here; alarms go to liandongd's ack path.
        .executableTarget(
            name: "liandong-gb28181",
            dependencies: [
                "LiandongCore", "LiandongClient", "LiandongServices", "ZeroMQ", "LibPQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Open311 GeoReport v2 for residents' apps: requests go to liandongd's ack path, status is read from PostgreSQL.
        .executableTarget(
            name: "liandong-open311",
            dependencies: [
                "LiandongCore", "LiandongClient", "LiandongServices", "LiandongStorage", "ZeroMQ", "LibPQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The duty officer's console: a web page over the feed, replay and updates sockets and PostgreSQL.
        .executableTarget(
            name: "liandong-console",
            dependencies: [
                "CCrypt", "LiandongCore", "LiandongClient", "LiandongServices", "LiandongStorage", "ZeroMQ", "LibPQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "LibPQTests", dependencies: ["LibPQ"]),
        .testTarget(name: "LiandongCoreTests", dependencies: ["LiandongCore"]),
        .testTarget(
            name: "LiandongIntegrationTests",
            dependencies: ["LiandongServices", "LiandongStorage", "LiandongCore", "LiandongClient", "ZeroMQ", "LibPQ"]
        ),
    ]
)

// libFuzzer targets (tools/fuzz): only with LIANDONG_FUZZ=1, built with -sanitize=fuzzer (libFuzzer
// supplies main), so a normal build neither needs nor sees them.
if ProcessInfo.processInfo.environment["LIANDONG_FUZZ"] == "1" {
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/support"))
    for (name, dependency) in [("fuzz-json", "LiandongCore"), ("fuzz-message", "LiandongCore"), ("fuzz-manscdp", "LiandongCore"), ("fuzz-sip", "LiandongCore"), ("fuzz-open311", "LiandongCore"),
                               ("fuzz-csv", "LiandongStorage"), ("fuzz-geojson", "LiandongStorage")] {
        package.targets.append(.executableTarget(
            name: name, dependencies: [.target(name: dependency), "FuzzSupport"], path: "Fuzz/\(name)",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
        package.products.append(.executable(name: name, targets: [name]))
    }
}
