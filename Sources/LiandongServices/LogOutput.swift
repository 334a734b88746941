import Foundation
import LiandongCore
import LiandongStorage
import Logging
import Synchronization

/// How the daemon logs (log.level, log.format), shared by every logger and changed in place by
/// SIGHUP. Thread-safe.
public final class LogSettings: Sendable {
    private let state: Mutex<(level: Logger.Level, json: Bool)>

    public init(level: Logger.Level, json: Bool) {
        state = Mutex((level, json))
    }

    public var level: Logger.Level {
        get { state.withLock { $0.level } }
        set { state.withLock { $0.level = newValue } }
    }

    public var json: Bool {
        get { state.withLock { $0.json } }
        set { state.withLock { $0.json = newValue } }
    }
}

/// One line per log event on stderr, whatever the message or metadata hold (libpq's errors span
/// several lines: folded). `text`: "time level label: key=value ... [source] message";
/// `json` (log.format: json): one object per line with ts, level, label, source, msg and the
/// metadata as string fields, for journald/Loki/Elasticsearch.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let settings: LogSettings

    public init(label: String, settings: LogSettings) {
        self.label = label
        self.settings = settings
    }

    public var logLevel: Logger.Level {
        get { settings.level }
        set { settings.level = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let line = settings.json
            ? Self.jsonLine(level: event.level, label: label, source: event.source, message: "\(event.message)", metadata: merged)
            : Self.textLine(level: event.level, label: label, source: event.source, message: "\(event.message)", metadata: merged)
        FileHandle.standardError.write(Data((Secrets.redact(line) + "\n").utf8))
    }

    static func timestamp() -> String {
        var now = timeval()
        gettimeofday(&now, nil)
        var t = time_t(now.tv_sec)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, Int(now.tv_usec) / 1000)
    }

    /// Multi-line text on one line: line breaks and the tabs after them become " | ".
    static func fold(_ text: String) -> String {
        guard text.contains(where: { $0 == "\n" || $0 == "\r" }) else { return text }
        return text.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " | ")
    }

    static func textLine(level: Logger.Level, label: String, source: String, message: String, metadata: Logger.Metadata) -> String {
        let fields = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\(fold("\($0.value)"))" }.joined(separator: " ")
        return "\(timestamp()) \(level) \(label):" + (fields.isEmpty ? "" : " \(fields)") + " [\(source)] \(fold(message))"
    }

    static func jsonLine(level: Logger.Level, label: String, source: String, message: String, metadata: Logger.Metadata) -> String {
        var out = JSONText()
        out.object {
            $0.field("ts", timestamp())
            $0.field("level", "\(level)")
            $0.field("label", label)
            $0.field("source", source)
            $0.field("msg", message)
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) where !["ts", "level", "label", "source", "msg"].contains(key) {
                $0.field(key, "\(value)")
            }
        }
        return out.text
    }
}
