import Foundation
import LiandongStorage

/// Counters, gauges and histograms for /metrics in the Prometheus text format. Thread-safe; every
/// service writes to the one registry the daemon creates.
public final class Metrics: @unchecked Sendable {
    // @unchecked: all state is guarded by `lock`.
    private let lock = NSLock()
    private var counters: [String: [String: Double]] = [:]
    private var gauges: [String: [String: Double]] = [:]
    private var gaugeFunctions: [String: @Sendable () -> Double] = [:]
    private var histograms: [String: Histogram] = [:]
    private var help: [String: (type: String, text: String)] = [:]

    struct Histogram {
        let bounds: [Double]
        var buckets: [Double]
        var sum = 0.0
        var count = 0.0
    }

    public init() {
        describe("liandong_events_received_total", "counter", "Messages received on the ingest sockets, by path (sub, ack).")
        describe("liandong_events_accepted_total", "counter", "Events stored, by source (alert, report).")
        describe("liandong_events_duplicate_total", "counter", "Events whose id was already stored (no effect).")
        describe("liandong_events_rejected_total", "counter", "Messages dead-lettered, by reason.")
        describe("liandong_ingest_gaps_total", "counter", "Per-gateway seq gaps detected on the SUB path.")
        describe("liandong_ingest_gap_messages_total", "counter", "Messages missing in those gaps.")
        describe("liandong_feed_messages_total", "counter", "Task messages committed to the feed, by kind.")
        describe("liandong_escalations_total", "counter", "Tasks moved up a tier or marked overdue by the sweeper.")
        describe("liandong_task_updates_total", "counter", "Dispatcher updates answered, by result (ok, refused, invalid).")
        describe("liandong_db_reconnects_total", "counter", "Database reconnections after a lost connection.")
        describe("liandong_batch_size", "histogram", "Messages per database transaction.")
        describe("liandong_batch_commit_seconds", "histogram", "Time to write and commit one batch.")
        describe("liandong_ingest_queue_depth", "gauge", "Messages waiting in memory for the writer.")
        describe("liandong_spill_pending_bytes", "gauge", "Bytes waiting in the spill file for the writer.")
        describe("liandong_feed_head", "gauge", "Highest feed seq published.")
        describe("liandong_events_late_total", "counter", "Events observed before the in-memory correlation window, matched against stored history.")
        describe("liandong_correlation_window_events", "gauge", "Recent events of open incidents held in memory for correlation.")
        describe("liandong_writer_seconds_total", "counter", "Writer time per phase of a batch (dedup, correlate, write_events, snapshots, feed, commit, ...).")
        describe("liandong_batches_prepared_ahead_total", "counter", "Batches prepared while the one before them was written, by outcome (used; discarded: the batch before failed or the preparation did, prepared again).")
        describe("liandong_database_up", "gauge", "1 when the writer's last database operation succeeded.")
        describe("liandong_retention_deleted_total", "counter", "Rows removed by retention (retention.*), by table.")
        describe("liandong_writer_standby", "gauge", "1 while another liandongd holds this database's writer lock and this one waits (standby).")
        describe("liandong_build_info", "gauge", "Always 1; labels: version, schema (newest migration this binary knows), zmq (libzmq version).")
    }

    private func describe(_ name: String, _ type: String, _ text: String) { help[name] = (type, text) }

    static func labelKey(_ labels: [String: String]) -> String {
        if labels.isEmpty { return "" }
        if labels.count == 1, let (key, value) = labels.first { return key + "=\"" + escape(value) + "\"" }
        return labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(escape($0.value))\"" }.joined(separator: ",")
    }

    static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return s }
        return s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    public func increment(_ name: String, _ labels: [String: String] = [:], by value: Double = 1) {
        lock.lock()
        counters[name, default: [:]][Self.labelKey(labels), default: 0] += value
        lock.unlock()
    }

    public func set(_ name: String, _ value: Double, _ labels: [String: String] = [:]) {
        lock.lock()
        gauges[name, default: [:]][Self.labelKey(labels)] = value
        lock.unlock()
    }

    /// A gauge read when /metrics is scraped.
    public func gauge(_ name: String, _ read: @escaping @Sendable () -> Double) {
        lock.lock()
        gaugeFunctions[name] = read
        lock.unlock()
    }

    public func observe(_ name: String, _ value: Double, bounds: [Double]) {
        lock.lock()
        var h = histograms[name] ?? Histogram(bounds: bounds, buckets: Array(repeating: 0, count: bounds.count))
        for (i, b) in h.bounds.enumerated() where value <= b { h.buckets[i] += 1 }
        h.sum += value
        h.count += 1
        histograms[name] = h
        lock.unlock()
    }

    /// A counter's current value (tests and logs).
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double {
        lock.lock()
        defer { lock.unlock() }
        return counters[name]?[Self.labelKey(labels)] ?? gauges[name]?[Self.labelKey(labels)] ?? 0
    }

    /// The Prometheus text exposition.
    public func render() -> String {
        lock.lock()
        let counters = self.counters, gauges = self.gauges, histograms = self.histograms, functions = gaugeFunctions
        lock.unlock()
        var out = ""
        func header(_ name: String) {
            if let h = help[name] { out += "# HELP \(name) \(h.text)\n# TYPE \(name) \(h.type)\n" }
        }
        func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v) }
        for name in Set(help.keys).union(counters.keys).union(gauges.keys).union(histograms.keys).sorted() {
            if let series = counters[name] ?? gauges[name] {
                header(name)
                for (labels, v) in series.sorted(by: { $0.key < $1.key }) {
                    out += labels.isEmpty ? "\(name) \(number(v))\n" : "\(name){\(labels)} \(number(v))\n"
                }
            } else if let read = functions[name] {
                header(name)
                out += "\(name) \(number(read()))\n"
            } else if let h = histograms[name] {
                header(name)
                for (b, c) in zip(h.bounds, h.buckets) { out += "\(name)_bucket{le=\"\(b)\"} \(number(c))\n" }
                out += "\(name)_bucket{le=\"+Inf\"} \(number(h.count))\n\(name)_sum \(h.sum)\n\(name)_count \(number(h.count))\n"
            } else if help[name]?.type == "counter" {
                header(name)
                out += "\(name) 0\n"
            }
        }
        return out
    }

    public static let batchSizeBounds: [Double] = [1, 5, 10, 50, 100, 250, 500, 1000, 5000]
    public static let latencyBounds: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
}
