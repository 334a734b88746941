import Foundation
import LibPQ
@testable import LiandongServices
@testable import LiandongStorage
import Testing

/// Operator mistakes get one clear, actionable line on stderr and exit status 1, never a trace.
@Suite("Operator errors")
struct OperatorErrorTests {
    func expectClean(_ r: CLIResult, mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "stdout: \(r.stdout) stderr: \(r.stderr)", sourceLocation: sourceLocation)
        for text in mentions {
            #expect(r.stderr.contains(text), "stderr lacks \"\(text)\": \(r.stderr)", sourceLocation: sourceLocation)
        }
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Stack dump"), sourceLocation: sourceLocation)
        #expect(r.stderr.split(separator: "\n").count <= 3, "short: \(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test("a config with an unknown key names the key")
    func unknownKey() throws {
        let file = try temporaryFile("ingest:\n  bnd: tcp://*:7601\n")
        expectClean(try liandongd(["run", "--config", file]), mentions: ["unknown config key ingest.bnd", "bind"])
    }

    @Test("a config value of the wrong type names the key and the expectation")
    func wrongType() throws {
        let file = try temporaryFile("ingest:\n  batch_size: lots\n")
        expectClean(try liandongd(["run", "--config", file]), mentions: ["ingest.batch_size", "integer"])
        expectClean(try liandongd(["check-config"], environment: ["LIANDONG_INGEST_BATCH_MS": "-3"]),
                    mentions: ["ingest.batch_ms"])
    }

    @Test("a config file that is not YAML or does not exist says so")
    func unreadableConfig() throws {
        let file = try temporaryFile("ingest: [unclosed\n")
        expectClean(try liandongd(["run", "--config", file]), mentions: ["not valid YAML"])
        let missing = try liandongd(["run", "--config", "/nonexistent/liandong.yaml"])
        #expect(missing.status != 0 && missing.stderr.contains("does not exist"))
    }

    @Test("an unreachable database names database.url")
    func unreachableDatabase() throws {
        expectClean(try liandongd(["run"], database: "host=127.0.0.1 port=1 dbname=x connect_timeout=2"),
                    mentions: ["cannot connect to the database", "database.url"])
    }

    @Test("an unmigrated database tells the operator to run migrate")
    func unmigrated() throws {
        let url = try TestDatabase.create(seeded: false)
        expectClean(try liandongd(["run", "--migrations", TestDatabase.migrations], database: url),
                    mentions: ["liandongd migrate"])
    }

    @Test("a port in use names the config key to change")
    func portInUse() throws {
        let url = try TestDatabase.create()
        let r = try liandongd(["run", "--migrations", TestDatabase.migrations], database: url,
                              environment: ["LIANDONG_INGEST_BIND": "ipc://\(Scratch.directory)/ld-unused-\(UUID().uuidString.prefix(6))",
                                            "LIANDONG_FEED_BIND": "tcp://127.0.0.1:\(try heldPort())"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("feed.bind") && r.stderr.contains("already in use"), "\(r.stderr)")
    }

    @Test("a server without PostGIS is explained, with the package to install")
    func missingPostGIS() {
        let error = PQError(kind: .query, message: "could not open extension control file \"/usr/share/postgresql/15/extension/postgis.control\": No such file or directory", sqlState: "58P01")
        let explained = "\(Migrator.explain(error, migration: Migration(version: 1, name: "001_base", sql: "")))"
        #expect(explained.contains("PostGIS extension is not installed") && explained.contains("postgresql-15-postgis-3"))
    }
}

/// A TCP port on 127.0.0.1 held open by a listening socket for the rest of the process.
func heldPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    listen(fd, 1)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}
