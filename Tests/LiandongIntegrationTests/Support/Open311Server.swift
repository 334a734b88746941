import Foundation
import LiandongCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// liandong-open311 as a child process on a free loopback port, with an api_keys_file of two apps
/// (`wechat`: 600 a minute, `slow`: 2 a minute) and the test database for its status reads.
final class Open311Process {
    static let wechatKey = "k-wechat-3f9a1c", slowKey = "k-slow-77d2e0"
    let port: Int
    let logURL: URL
    let keysFile: String
    private var process = Process()

    init(daemonAck: String, database: String, environment extra: [String: String] = [:]) throws {
        port = try freePort()
        let id = UUID().uuidString.prefix(8)
        logURL = URL(fileURLWithPath: "\(Scratch.directory)/ld-open311-\(id).log")
        keysFile = "\(Scratch.directory)/ld-open311-keys-\(id)"
        let keys = """
            # name  sha256(key)  per minute
            wechat \(SHA256.hex(Self.wechatKey)) 600
            slow   \(SHA256.hex(Self.slowKey)) 2   # a rate the tests exceed

            """
        FileManager.default.createFile(atPath: keysFile, contents: Data(keys.utf8), attributes: [.posixPermissions: 0o600])
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("LIANDONG_") }
        env["LIANDONG_OPEN311_BIND"] = "127.0.0.1:\(port)"
        env["LIANDONG_OPEN311_DAEMON_ACK"] = daemonAck
        env["LIANDONG_OPEN311_API_KEYS_FILE"] = keysFile
        env["LIANDONG_DATABASE_URL"] = database
        for (k, v) in extra { env[k] = v }
        process.executableURL = URL(fileURLWithPath: DaemonProcess.binaries + "/liandong-open311")
        process.environment = env
        let log = try FileHandle(forWritingTo: logURL)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try waitUntil(timeout: 15, "liandong-open311 to answer GET services.json") {
            guard process.isRunning else { throw TestFailure("liandong-open311 exited: \(self.log)") }
            return (try? self.get("services.json").status) == 200
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        expectNoPlantedSecret(log, from: "liandong-open311")
        try? FileManager.default.removeItem(atPath: keysFile)
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// SIGTERM and the exit status.
    func stop() -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
    }

    func get(_ path: String, query: [String: String] = [:]) throws -> HTTPAnswer {
        try http(port: port, "GET", "/open311/v2/" + path + (query.isEmpty ? "" : "?" + Self.form(query)))
    }

    func post(_ path: String, _ fields: [String: String], headers: [String: String] = [:]) throws -> HTTPAnswer {
        var headers = headers
        if headers["Content-Type"] == nil { headers["Content-Type"] = "application/x-www-form-urlencoded" }
        return try http(port: port, "POST", "/open311/v2/" + path, headers: headers, body: Array(Self.form(fields).utf8))
    }

    static func form(_ fields: [String: String]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.sorted { $0.key < $1.key }.map {
            "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)"
        }.joined(separator: "&")
    }
}

struct HTTPAnswer {
    var status: Int
    var headers: [String: String]
    var body: String
    /// Every Set-Cookie header line (`headers` keeps one line of each name).
    var rawSetCookies: [String] = []

    /// The body as a JSON array of objects.
    var list: [[String: Any]] {
        get throws {
            guard let list = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]] else {
                throw TestFailure("not a JSON list: \(body.prefix(300))")
            }
            return list
        }
    }

    /// The body as XML.
    var xml: XMLElement { get throws { try XMLReader.parse(Array(body.utf8)) } }
}

/// One HTTP/1.1 request on its own connection (Connection: close).
func http(port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = []) throws -> HTTPAnswer {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = loopbackAddress(port: port)
    guard withSockaddr(&addr, { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }) == 0 else {
        throw TestFailure("cannot connect to 127.0.0.1:\(port)")
    }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for (k, v) in headers { head += "\(k): \(v)\r\n" }
    if method != "GET" { head += "Content-Length: \(body.count)\r\n" }
    let request = Array((head + "\r\n").utf8) + body
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }  // the server may answer (413) and close before reading it all
        sent += n
    }
    var response = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65_536)
    // Until the server closes, or the body its Content-Length announces is complete (a server
    // that keeps the connection open despite Connection: close, as chromedriver does).
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        response += buffer[0..<n]
        if let end = response.firstRange(of: Array("\r\n\r\n".utf8)) {
            let head = String(decoding: response[..<end.lowerBound], as: UTF8.self).lowercased()
            if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
               let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)),
               response.count - end.upperBound >= length { break }
        }
    }
    let text = String(decoding: response, as: UTF8.self)
    // No answer at all (closed first): status 0, as a caller polling a server that is not up yet expects.
    guard let split = text.range(of: "\r\n\r\n") else { return HTTPAnswer(status: 0, headers: [:], body: text) }
    let lines = text[..<split.lowerBound].split(separator: "\r\n")
    let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
    var fields: [String: String] = [:]
    var cookies: [String] = []
    for line in lines.dropFirst() {
        if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].lowercased(), value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            fields[name] = value
            if name == "set-cookie" { cookies.append(value) }
        }
    }
    return HTTPAnswer(status: status, headers: fields, body: String(text[split.upperBound...]), rawSetCookies: cookies)
}
