import ArgumentParser
import Foundation
import LiandongServices
import LiandongStorage

/// `liandongd device arm|disarm DEVICE`: DeviceControl GuardCmd through liandong-gb28181.
struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "Act on a GB/T 28181 device through liandong-gb28181 (it must be registered there).",
        subcommands: [Arm.self, Disarm.self])

    /// What both subcommands take.
    struct Target: ParsableArguments {
        @OptionGroup var options: CommonOptions
        @Argument(help: "The device's 20-digit id (as it registered).") var device: String
        @Option(help: "Seconds to wait for the device's answer.") var wait: Double = 45
    }

    struct Arm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Arm a device (DeviceControl GuardCmd SetGuard): many cameras send no alarm until armed. Waits for its answer.")
        @OptionGroup var target: Target

        func run() async throws { try await DeviceCommand.guardCommand(target.options, target.device, arm: true, wait: target.wait) }
    }

    struct Disarm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disarm a device (DeviceControl GuardCmd ResetGuard), e.g. for maintenance. Waits for its answer.")
        @OptionGroup var target: Target

        func run() async throws { try await DeviceCommand.guardCommand(target.options, target.device, arm: false, wait: target.wait) }
    }

    static func guardCommand(_ options: CommonOptions, _ device: String, arm: Bool, wait: Double) async throws {
        guard wait > 0, wait <= 600 else { throw ValidationError("--wait must be 1-600 seconds") }
        try await reportingErrors {
            let verb = arm ? "arm" : "disarm"
            let seconds = Int(wait.rounded())
            switch try DeviceCommands.run(try options.currentDatabase(), device: device, arm: arm, timeout: wait) {
            case .answered(let state, let detail):
                print("device \(device): \(state)" + (detail.map { " (\($0))" } ?? ""))
                let wanted = arm ? "armed" : "disarmed"
                if state != wanted { throw ExitCode(1) }
            case .notTaken:
                throw StorageError("no liandong-gb28181 took the \(verb) command within \(seconds) s: is one running with this database.url?")
            case .noAnswer(let bridge):
                throw StorageError("liandong-gb28181 \(bridge) sent the \(verb) command; no answer from device \(device) reached the database within \(seconds) s")
            }
        }
    }
}
