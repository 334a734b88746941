import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real browser for the console's tests: Debian's headless Chromium driven by chromedriver over
/// the W3C WebDriver protocol (plain HTTP on loopback, no client library).
final class Browser {
    static let driverPath = "/usr/bin/chromedriver"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: driverPath) }
    let port: Int
    private let driver = Process()
    private let logURL: URL
    private(set) var session = ""

    init() throws {
        guard Self.available else {
            throw TestFailure("chromedriver is not installed (tools/test installs chromium and chromium-driver)")
        }
        port = try freePort()
        logURL = URL(fileURLWithPath: "\(Scratch.directory)/ld-chromedriver-\(UUID().uuidString.prefix(8)).log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        driver.executableURL = URL(fileURLWithPath: Self.driverPath)
        driver.arguments = ["--port=\(port)", "--allowed-ips=127.0.0.1"]
        let log = try FileHandle(forWritingTo: logURL)
        driver.standardOutput = log
        driver.standardError = log
        try driver.run()
        try waitUntil(timeout: 20, "chromedriver to answer /status") {
            guard driver.isRunning else { throw TestFailure("chromedriver exited: \((try? String(contentsOf: logURL, encoding: .utf8)) ?? "")") }
            return ((try? http(port: port, "GET", "/status"))?.body.contains("\"ready\":true")) == true
        }
        let args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900",
                    "--no-first-run", "--no-default-browser-check", "--disable-background-networking", "--lang=zh-CN"]
        let answer = try call("POST", "/session", ["capabilities": ["alwaysMatch": [
            "browserName": "chrome", "goog:chromeOptions": ["binary": "/usr/bin/chromium", "args": args]]]])
        guard let value = answer as? [String: Any], let id = value["sessionId"] as? String else {
            throw TestFailure("no WebDriver session: \(answer)")
        }
        session = id
    }

    deinit {
        if !session.isEmpty { _ = try? call("DELETE", "/session/\(session)", nil) }
        if driver.isRunning {
            kill(driver.processIdentifier, SIGKILL)
            driver.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: logURL)
    }

    /// One WebDriver command; its `value`.
    @discardableResult
    func call(_ method: String, _ path: String, _ body: Any?) throws -> Any {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) } ?? Data()
        let answer = try http(port: port, method == "DELETE" ? "DELETE" : method, path,
                              headers: ["Content-Type": "application/json"], body: method == "POST" ? Array(data) : [])
        guard let o = try JSONSerialization.jsonObject(with: Data(answer.body.utf8), options: [.fragmentsAllowed]) as? [String: Any] else {
            throw TestFailure("WebDriver \(method) \(path): \(answer.status) \(answer.body.prefix(300))")
        }
        if answer.status != 200 { throw TestFailure("WebDriver \(method) \(path): \(answer.status) \(o["value"] ?? "")") }
        return o["value"] ?? NSNull()
    }

    func open(_ url: String) throws { try call("POST", "/session/\(session)/url", ["url": url]) }

    /// Runs `script` (a function body; `arguments` are its arguments) in the page and returns its value.
    @discardableResult
    func run(_ script: String, _ arguments: [Any] = []) throws -> Any {
        try call("POST", "/session/\(session)/execute/sync", ["script": script, "args": arguments])
    }

    func string(_ script: String, _ arguments: [Any] = []) throws -> String { try run(script, arguments) as? String ?? "" }

    func element(_ css: String) throws -> String {
        let value = try call("POST", "/session/\(session)/element", ["using": "css selector", "value": css])
        guard let o = value as? [String: Any], let id = o.values.first as? String else { throw TestFailure("no element \(css)") }
        return id
    }

    func click(_ css: String) throws { try call("POST", "/session/\(session)/element/\(try element(css))/click", [String: Any]()) }

    /// Types `text` into the element (as key presses).
    func type(_ css: String, _ text: String) throws {
        try call("POST", "/session/\(session)/element/\(try element(css))/value", ["text": text])
    }

    /// PNG bytes of the window.
    func screenshot() throws -> Data {
        guard let base64 = try call("GET", "/session/\(session)/screenshot", nil) as? String, let data = Data(base64Encoded: base64) else {
            throw TestFailure("no screenshot")
        }
        return data
    }

    /// Waits until `script` returns true in the page.
    func waitFor(timeout: TimeInterval = 10, _ what: String, _ script: String, _ arguments: [Any] = []) throws {
        try waitUntil(timeout: timeout, what) { try run(script, arguments) as? Bool == true }
    }
}
