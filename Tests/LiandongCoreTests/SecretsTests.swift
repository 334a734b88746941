import LiandongCore
import Testing

@Suite("Secrets in printed text")
struct SecretsTests {
    @Test("passwords in conninfo, URIs, YAML and KEY=VALUE are masked; key paths and other words stay")
    func redact() {
        let cases: [(String, String)] = [
            ("host=db1 password=Sup3r user=ops", "host=db1 password=*** user=ops"),
            ("host=db1 password = 'a b\\'c' user=ops", "host=db1 password = '***' user=ops"),
            ("postgresql://ops:Sup3r@db1:5432/liandong?sslmode=require", "postgresql://ops:***@db1:5432/liandong?sslmode=require"),
            ("postgres://ops:p@ss@db1/x", "postgres://ops:***@db1/x"),
            ("postgresql://db1/x?user=ops&password=Sup3r&sslmode=verify-full", "postgresql://db1/x?user=ops&password=***&sslmode=verify-full"),
            ("gb28181:\n  password: Gb-pw\n  realm: 6209220000", "gb28181:\n  password: ***\n  realm: 6209220000"),
            ("LIANDONG_GB28181_PASSWORD=Gb-pw rest", "LIANDONG_GB28181_PASSWORD=*** rest"),
            ("{\"password\":\"Gb-pw\",\"x\":1}", "{\"password\":\"***\",\"x\":1}"),
            ("open311.api_key: k-123", "open311.api_key: ***"),
            ("gb28181.password: (set)", "gb28181.password: (set)"),
            ("security.secret_key_file: /etc/liandong/keys/liandongd.key", "security.secret_key_file: /etc/liandong/keys/liandongd.key"),
            ("FATAL:  password authentication failed for user \"ops\"", "FATAL:  password authentication failed for user \"ops\""),
            ("tcp://127.0.0.1:7601", "tcp://127.0.0.1:7601"),
            ("密码 password=口令123 其他", "密码 password=*** 其他"),
        ]
        for (input, expected) in cases {
            #expect(Secrets.redact(input) == expected, "\(input)")
        }
    }
}
