import Foundation
import LibPQ
import Testing

/// TLS to PostgreSQL is libpq's own: database.url carries sslmode and sslrootcert. Tested against a
/// cluster with a certificate from a throwaway CA, with verify-full (the CA and the host name).
@Suite("Database TLS (sslmode=verify-full)")
struct DatabaseTLSTests {
    /// A CA, and a server certificate it signed for the name `localhost` only.
    static func certificates(in dir: String) throws {
        func openssl(_ args: [String]) throws {
            let r = try runCaptured("/usr/bin/openssl", args)
            guard r.status == 0 else { throw TestFailure("openssl \(args.joined(separator: " ")): \(r.stderr)") }
        }
        try "subjectAltName=DNS:localhost\n".write(toFile: dir + "/san.ext", atomically: true, encoding: .utf8)
        for ca in ["ca", "other-ca"] {
            try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Liandong test \(ca)",
                         "-keyout", "\(dir)/\(ca).key", "-out", "\(dir)/\(ca).crt"])
        }
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", dir + "/server.key",
                     "-out", dir + "/server.csr"])
        try openssl(["x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt", "-CAkey", dir + "/ca.key",
                     "-CAcreateserial", "-days", "2", "-extfile", dir + "/san.ext", "-out", dir + "/server.crt"])
        chmod(dir + "/server.key", 0o600)
        if getuid() == 0 {
            try PrivateCluster.run(["/bin/chown", "postgres:", dir + "/server.key", dir + "/server.crt"])
        }
    }

    @Test("the daemon connects with verify-full; a foreign CA or a host name the certificate does not name is refused")
    func verifyFull() throws {
        var certs = ""
        let cluster = try PrivateCluster(serverOptions: "-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key") { dir in
            certs = dir
            try Self.certificates(in: dir)
            for file in ["server.crt", "server.key"] {
                try FileManager.default.copyItem(atPath: "\(dir)/\(file)", toPath: "\(dir)/data/\(file)")
                if getuid() == 0 { try PrivateCluster.run(["/bin/chown", "postgres:", "\(dir)/data/\(file)"]) }
            }
        }
        let tls = "host=localhost port=\(cluster.port) user=postgres dbname=liandong sslmode=verify-full sslrootcert=\(certs)/ca.crt"
        let migrate = try liandongd(["migrate"], database: tls)
        #expect(migrate.status == 0 && migrate.stdout.contains("database is current"), "\(migrate.stderr)")

        let daemon = try DaemonProcess(database: tls)
        let admin = try PGConnection(conninfo: cluster.conninfo)
        try daemon.send("alert", Wire.alert(id: "over-tls", at: Date().timeIntervalSince1970,
                                            position: try Scene.centre(of: Scene.ruralGrid, admin)))
        try daemon.waitUntil(timeout: 10, "the alert stored over TLS") {
            try admin.int("SELECT count(*) FROM liandong.events WHERE source_id = 'over-tls'") == 1
        }
        // Every connection of the daemon is encrypted (the test's own is not: sslmode=disable).
        let sessions = try admin.query("""
            SELECT count(*) FILTER (WHERE s.ssl) AS tls, count(*) AS n FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid
            WHERE a.datname = 'liandong' AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
            """)
        #expect(Int(sessions[0, "tls"]!)! >= 3 && sessions[0, "tls"] == sessions[0, "n"], "\(sessions.rows)")
        #expect(try daemon.stop() == 0)

        let foreign = try liandongd(["migrate"], database: tls.replacingOccurrences(of: "/ca.crt", with: "/other-ca.crt"))
        #expect(foreign.status == 1 && foreign.stderr.contains("certificate verify failed") && foreign.stderr.contains("database.url"),
                "\(foreign.stderr)")
        let wrongName = try liandongd(["migrate"], database: tls.replacingOccurrences(of: "host=localhost", with: "host=127.0.0.1"))
        #expect(wrongName.status == 1 && wrongName.stderr.contains("does not match host name \"127.0.0.1\""), "\(wrongName.stderr)")
    }
}
