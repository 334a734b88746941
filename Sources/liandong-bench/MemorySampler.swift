import Foundation
import Synchronization

/// Samples the daemon's /proc/PID/status every 0.1 s until stopped, for what VmHWM alone does not
/// say: how much of the peak was anonymous memory (heap, stacks, libzmq's buffers) and how much
/// file-backed (the binary's and libraries' code and read-only data, shared and reclaimable).
final class MemorySampler: Sendable {
    struct Peak: Sendable {
        /// The largest RssAnon and RssFile seen, in KiB (not necessarily at the same moment).
        var anon = 0, file = 0
        var samples = 0
    }

    private let pid: Int32
    private let peak = Mutex(Peak())
    private let stopped = Atomic<Bool>(false)

    init(pid: Int32) {
        self.pid = pid
        guard pid > 0 else { return }
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                sample()
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        thread.name = "memory-sampler"
        thread.start()
    }

    /// Stops sampling (after one last sample) and returns the peaks; nil without a daemon pid or
    /// when /proc could not be read.
    func stop() -> Peak? {
        guard pid > 0 else { return nil }
        stopped.store(true, ordering: .relaxed)
        sample()
        let p = peak.withLock { $0 }
        return p.samples > 0 ? p : nil
    }

    private func sample() {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return }
        let anon = Self.kib(status, "RssAnon:"), file = Self.kib(status, "RssFile:")
        guard let anon, let file else { return }
        peak.withLock {
            $0.anon = max($0.anon, anon)
            $0.file = max($0.file, file)
            $0.samples += 1
        }
    }

    /// A "Name:   1234 kB" line of /proc/PID/status, in KiB.
    static func kib(_ status: String, _ name: String) -> Int? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return nil }
        return line.split(separator: " ").dropFirst().compactMap { Int($0) }.first
    }
}
