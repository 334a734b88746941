import Foundation
import LibPQ
import LiandongCore
import LiandongServices
import LiandongStorage

/// A PostgreSQL cluster of the test's own, so it can be stopped and started without disturbing
/// the other tests: initdb as the `postgres` user when running as root (PostgreSQL refuses root).
final class PrivateCluster {
    static let bin = ProcessInfo.processInfo.environment["PG_BIN"] ?? "/usr/lib/postgresql/15/bin"
    let directory: String
    let port: Int
    var conninfo: String { "host=127.0.0.1 port=\(port) user=postgres dbname=liandong sslmode=disable" }
    /// More server options (`-c ssl=on ...`), for every start.
    let serverOptions: String

    /// `prepare` runs with the cluster's directory after initdb, before the first start. `data`:
    /// the reference data imported (a county's); `county: false` makes a bare database with PostGIS
    /// (a city's).
    init(serverOptions: String = "", data: String = TestDatabase.data, county: Bool = true,
         prepare: ((String) throws -> Void)? = nil) throws {
        self.serverOptions = serverOptions
        directory = "\(Scratch.directory)/ld-pg-\(UUID().uuidString.prefix(8))"
        port = try freePort()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 { try Self.run(["/bin/chown", "postgres:", directory]) }
        try Self.run([Self.bin + "/initdb", "-D", directory + "/data", "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--locale=C.UTF-8"], asPostgres: true)
        try prepare?(directory)
        try start()
        let admin = try PGConnection(conninfo: "host=127.0.0.1 port=\(port) user=postgres dbname=postgres sslmode=disable")
        try admin.execute("CREATE DATABASE liandong")
        let db = try PGConnection(conninfo: conninfo)
        guard county else {
            try db.execute("CREATE EXTENSION postgis")
            return
        }
        try Migrator(directory: TestDatabase.migrations).migrate(db)
        let importer = Importer(db: db)
        _ = try importer.importDivisions(path: data + "/divisions.csv")
        _ = try importer.importGrids(path: data + "/grids.geojson")
        _ = try importer.importCameras(path: data + "/cameras.csv")
    }

    /// A streaming replica of `primary` (pg_basebackup -R: its configuration is the primary's,
    /// synchronous_standby_names included), started and attached. Its walreceiver's
    /// application_name is `name`.
    init(standbyOf primary: PrivateCluster, name: String = "standby1") throws {
        serverOptions = primary.serverOptions
        directory = "\(Scratch.directory)/ld-pg-\(UUID().uuidString.prefix(8))"
        port = try freePort()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 { try Self.run(["/bin/chown", "postgres:", directory]) }
        try Self.run([Self.bin + "/pg_basebackup", "-h", "127.0.0.1", "-p", String(primary.port), "-U", "postgres",
                      "-D", directory + "/data", "-R", "-X", "stream", "-c", "fast",
                      "-d", "host=127.0.0.1 port=\(primary.port) user=postgres application_name=\(name)"], asPostgres: true)
        try start()
    }

    /// kill -9 of the postmaster (its backends end when they notice).
    func killPostmaster() throws {
        let pidFile = try String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8)
        guard let pid = pid_t(pidFile.split(separator: "\n").first ?? "") else { throw TestFailure("no postmaster pid") }
        kill(pid, SIGKILL)
    }

    /// Promotes a replica to primary (pg_ctl promote, waiting for it).
    func promote() throws {
        try Self.run([Self.bin + "/pg_ctl", "-D", directory + "/data", "-w", "-t", "60", "promote"], asPostgres: true)
    }

    /// A statement as the superuser on `database` (ALTER SYSTEM, pg_reload_conf).
    func admin(_ sql: String, database: String = "postgres") throws {
        let db = try PGConnection(conninfo: "host=127.0.0.1 port=\(port) user=postgres dbname=\(database) sslmode=disable")
        try db.execute(sql)
    }

    func start() throws {
        try Self.run([Self.bin + "/pg_ctl", "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60",
                      "-o", "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off \(serverOptions)", "start"], asPostgres: true)
    }

    func stop() throws {
        try Self.run([Self.bin + "/pg_ctl", "-D", directory + "/data", "-m", "fast", "-w", "stop"], asPostgres: true)
    }

    deinit {
        try? Self.run([Self.bin + "/pg_ctl", "-D", directory + "/data", "-m", "immediate", "stop"], asPostgres: true)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a command to completion with posix_spawn and waitpid (stdio to /dev/null).
    static func run(_ command: [String], asPostgres: Bool = false) throws {
        let argv = asPostgres && getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + command : command
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [0, 1, 2] {
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, environ)
        guard rc == 0 else { throw TestFailure("cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw TestFailure("\(command.joined(separator: " ")) failed (status \(status))") }
    }
}

/// A daemon on a PostgreSQL cluster of its own, which the outage tests stop and start: the
/// cluster, the daemon, the rural grid's centre and the time the scene began.
struct OutageScene {
    let cluster: PrivateCluster
    let daemon: DaemonProcess
    let centre: LonLat
    let now = Date().timeIntervalSince1970

    init(environment: [String: String] = [:]) throws {
        cluster = try PrivateCluster()
        daemon = try DaemonProcess(database: cluster.conninfo, environment: environment)
        centre = try Scene.centre(of: Scene.ruralGrid, try PGConnection(conninfo: cluster.conninfo))
    }
}
