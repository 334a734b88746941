import Foundation
import Testing

/// Runs `liandongd` with arguments and environment, capturing exit status and output.
struct CLIResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

func liandongd(_ arguments: [String], database: String? = nil, environment: [String: String] = [:],
               timeout: TimeInterval = 60) throws -> CLIResult {
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("LIANDONG_") }
    if let database { env["LIANDONG_DATABASE_URL"] = database }
    env["LIANDONG_INGEST_SPILL_PATH"] = "\(Scratch.directory)/ld-cli-\(UUID().uuidString.prefix(8)).spill"
    for (k, v) in environment { env[k] = v }
    return try runCaptured(DaemonProcess.binaries + "/liandongd", arguments, environment: env, timeout: timeout)
}

/// Runs a program to its end (killed after `timeout`, which fails the test) and captures its output.
func runCaptured(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                 timeout: TimeInterval = 60) throws -> CLIResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.currentDirectoryURL = TestDatabase.repository
    let id = UUID().uuidString
    let outURL = URL(fileURLWithPath: "\(Scratch.directory)/ld-cli-\(id).out"), errURL = URL(fileURLWithPath: "\(Scratch.directory)/ld-cli-\(id).err")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    try process.run()
    let name = URL(fileURLWithPath: executable).lastPathComponent + " " + (arguments.first ?? "")
    do {
        try waitUntil(timeout: timeout, "\(name) to finish") { !process.isRunning }
    } catch {
        // A hung process must not outlive the test (nor hide what it printed).
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        throw TestFailure("\(error); stderr (last 2,000 characters):\n\(err.suffix(2000))")
    }
    let result = CLIResult(
        status: process.terminationStatus,
        stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    if executable.hasPrefix(DaemonProcess.binaries) { expectNoPlantedSecret(result.stdout + result.stderr, from: name) }
    return result
}
