import CoreMetrics
import Foundation
import LiandongCore
import Prometheus
import Synchronization

/// The daemon's metrics, through swift-metrics and exported by swift-prometheus. Each service
/// creates its handles once (at start: `counter`, `gauge`, `histogram`, families by label) and
/// then increments them lock-free; /metrics renders the registry. One registry per daemon (not
/// the process-wide `MetricsSystem`), so a test process can run several.
public final class Metrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    /// Gauges read when /metrics is scraped.
    private let scraped = Mutex<[(gauge: CoreMetrics.Gauge, read: @Sendable () -> Double)]>([])

    /// The writer's last database operation succeeded (also read by /readyz).
    public let databaseUp: StatusGauge
    /// Another liandongd holds the writer lock and this one waits (also read by /readyz).
    public let writerStandby: StatusGauge
    /// Task messages committed to the feed, by kind (the writer, updates and the sweeper add to it).
    public let feedMessages: CounterFamily

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets = [
            "liandong_batch_size": Self.batchSizeBounds,
            "liandong_batch_commit_seconds": Self.latencyBounds,
            "liandong_gb28181_answer_seconds": Self.latencyBounds + [10, 30],
        ]
        self.factory = factory
        databaseUp = StatusGauge(CoreMetrics.Gauge(label: "liandong_database_up", dimensions: [], factory: factory))
        writerStandby = StatusGauge(CoreMetrics.Gauge(label: "liandong_writer_standby", dimensions: [], factory: factory))
        feedMessages = CounterFamily(name: "liandong_feed_messages_total", label: "kind",
                                     known: MessageKind.allCases.map(\.rawValue) + ["reminder"], factory: factory)
    }

    // MARK: handles

    public func counter(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Counter {
        CoreMetrics.Counter(label: name, dimensions: labels, factory: factory)
    }

    /// A counter by one label, with handles for `known` values created now.
    public func counters(_ name: String, by label: String, known: [String]) -> CounterFamily {
        CounterFamily(name: name, label: label, known: known, factory: factory)
    }

    /// Seconds (or another fractional amount) by one label.
    public func secondsCounters(_ name: String, by label: String) -> SecondsFamily {
        SecondsFamily(name: name, label: label, factory: factory)
    }

    public func gauge(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Gauge {
        CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory)
    }

    /// A histogram with the buckets set for `name` in `init`.
    public func histogram(_ name: String) -> CoreMetrics.Recorder {
        CoreMetrics.Recorder(label: name, dimensions: [], aggregate: true, factory: factory)
    }

    /// A gauge read when /metrics is scraped.
    public func gauge(_ name: String, _ read: @escaping @Sendable () -> Double) {
        let g = gauge(name)
        scraped.withLock { $0.append((g, read)) }
    }

    // MARK: exposition

    /// The Prometheus text exposition, families sorted by name, each with its HELP line.
    public func render() -> String {
        for (g, read) in scraped.withLock({ $0 }) { g.record(read()) }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        // Families in name order, and HELP (the registry gets none through swift-metrics).
        var families: [String: [Substring]] = [:]
        var name = ""
        for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("# TYPE ") { name = String(line.split(separator: " ")[2]) }
            if line.hasPrefix("# HELP ") { continue }
            families[name, default: []].append(line)
        }
        var out = ""
        for (family, var lines) in families.sorted(by: { $0.key < $1.key }) {
            if let text = Self.help[family] { out += "# HELP \(family) \(text)\n" }
            // Series of a counter or gauge in label order (histogram buckets keep theirs).
            if lines.first?.hasSuffix(" histogram") == false { lines[1...].sort() }
            // Whole values as integers ("1", not "1.0"), as people and scripts read them.
            for line in lines { out += (!line.hasPrefix("#") && line.hasSuffix(".0") ? line.dropLast(2) : line) + "\n" }
        }
        return out
    }

    public static let batchSizeBounds: [Double] = [1, 5, 10, 50, 100, 250, 500, 1000, 5000]
    public static let latencyBounds: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    static let help: [String: String] = [
        "liandong_open311_requests_total": "liandong-open311: HTTP requests answered, by endpoint (services, service, file, list, status, feedback, other) and status code.",
        "liandong_open311_commit_seconds": "liandong-open311: from a POST (request or rating) handed to liandongd to its answer after commit.",
        "liandong_open311_daemon_unanswered": "liandong-open311: requests and ratings handed to liandongd and not yet answered (resent until they are).",
        "liandong_console_logins_total": "liandong-console: login attempts, by outcome (ok, refused, limited).",
        "liandong_console_actions_total": "liandong-console: task actions sent from the page, by action and outcome (ok, refused, unanswered, forbidden).",
        "liandong_console_live_pages": "liandong-console: pages connected to the live task stream (Server-Sent Events).",
        "liandong_console_feed_seq": "liandong-console: the last feed seq it has delivered to its pages (every earlier one in its scope delivered).",
        "liandong_gb28181_responses_total": "liandong-gb28181: final SIP answers sent, by request method and status code.",
        "liandong_gb28181_events_total": "liandong-gb28181: what it saw and did (registered, keepalives, alarms, retransmissions, status_<reason>, busy, ...).",
        "liandong_gb28181_malformed_total": "liandong-gb28181: SIP messages that could not be read (UDP datagrams and TCP streams).",
        "liandong_gb28181_devices_registered": "liandong-gb28181: devices with a current registration.",
        "liandong_gb28181_devices_online": "liandong-gb28181: registered devices heard from within keepalive_timeout_s.",
        "liandong_gb28181_waiting": "liandong-gb28181: device messages waiting for liandongd's answer (their 200 is held back).",
        "liandong_gb28181_daemon_unanswered": "liandong-gb28181: messages sent to liandongd not yet answered (status reports included).",
        "liandong_gb28181_tcp_closed_total": "liandong-gb28181: TCP connections from devices it closed, by reason (per_address: beyond the per-address cap; idle: silent too long).",
        "liandong_device_facts_total": "GB/T 28181 device facts recorded in liandong.devices, by kind (registration, info: its DeviceInfo answer, guard: its answer to arming, subscription).",
        "liandong_citizen_feedback_total": "Residents' ratings of their requests' outcome recorded (liandong.citizen_feedback), by rating 1-5; a rating of 1 or 2 reopens the finished task.",
        "liandong_device_catalogs_total": "GB/T 28181 device catalogs recorded, by result (complete: every announced channel came; partial: the query's time ran out).",
        "liandong_patrol_reminders_total": "Patrol reminders (liandong.reminder.v1) committed to the feed: grids with no on_patrol position by workers.patrol_due.",
        "liandong_worker_positions_total": "Grid workers' positions stored, by state (on_patrol, on_task, off_duty).",
        "liandong_gb28181_tcp_connections": "liandong-gb28181: open TCP connections from devices.",
        "liandong_gb28181_answer_seconds": "liandong-gb28181: from a device's alarm or keepalive to liandongd's answer.",
        "liandong_events_received_total": "Messages received on the ingest sockets, by path (sub, ack; standby: kept by a standby).",
        "liandong_ha_leader": "1 while this daemon leads (ha.enabled: holds the leadership lock and lease; always 1 without it), 0 while it stands by.",
        "liandong_ha_takeovers_total": "ha.enabled: times this process took the lead.",
        "liandong_ha_lease_age_seconds": "ha.enabled: seconds since the leader last renewed its lease, as this daemon last read it (a standby takes over beyond 0.6 x ha.takeover_s; 0 on the leader).",
        "liandong_ha_standby_buffer_messages": "ha.enabled: SUB messages a standby keeps (the last ha.standby_buffer_s; all while nobody leads).",
        "liandong_ha_buffer_replayed_total": "ha.enabled: kept messages written when this daemon took the lead (those the former leader stored are duplicates).",
        "liandong_ha_standby_buffer_overflow_total": "ha.enabled: kept messages a standby let go beyond its capacity (60 x ingest.queue_capacity) while a leader lived, or with no room in the spill file.",
        "liandong_events_accepted_total": "Events stored, by source (alert, report).",
        "liandong_events_duplicate_total": "Events whose id was already stored (no effect).",
        "liandong_events_rejected_total": "Messages dead-lettered, by reason.",
        "liandong_ingest_gaps_total": "Per-gateway seq gaps detected on the SUB path.",
        "liandong_ingest_gap_messages_total": "Messages missing in those gaps.",
        "liandong_feed_messages_total": "Task messages committed to the feed, by kind.",
        "liandong_escalations_total": "Tasks moved up a tier or marked overdue by the sweeper.",
        "liandong_task_updates_total": "Dispatcher updates answered, by result (ok, refused).",
        "liandong_db_reconnects_total": "Database reconnections after a lost connection.",
        "liandong_device_status_reports_total": "GB/T 28181 device status reports stored, by reason (register, keepalive, unregister, timeout, expired).",
        "liandong_devices_online": "GB/T 28181 devices online now (registered, and heard from within gb28181.keepalive_timeout_s), as the sweeper last counted them.",
        "liandong_devices_timed_out_total": "GB/T 28181 devices the sweeper marked offline because their keepalives stopped.",
        "liandong_db_acks_replicated": "database.synchronous warn|require: 1 while commits wait for an attached synchronous standby (an acknowledgement means the rows are on two servers), 0 while they do not.",
        "liandong_db_synchronous_standbys": "database.synchronous warn|require: synchronous (or quorum) standbys attached to the primary; -1 when this role may not see them (grant pg_monitor).",
        "liandong_db_longest_wait_seconds": "Seconds the longest-running statement of this daemon's database sessions has waited for the server (0: none running); beyond database.stuck_s it is reported in /readyz and the log.",
        "liandong_db_statements_cancelled_total": "Statements this daemon cancelled, by reason (shutdown: they kept a stopping daemon waiting; replication: the writer waited for a synchronous standby in require mode). Their batches are not acknowledged and go to the spill file.",
        "liandong_batch_size": "Messages per database transaction.",
        "liandong_batch_commit_seconds": "Time to write and commit one batch.",
        "liandong_ingest_queue_depth": "Messages waiting in memory for the writer.",
        "liandong_spill_pending_bytes": "Bytes waiting in the spill file for the writer.",
        "liandong_feed_head": "Highest feed seq published.",
        "liandong_events_late_total": "Events observed before the in-memory correlation window, matched against stored history.",
        "liandong_correlation_window_events": "Entries of the in-memory correlation window: recent events of open incidents (events of one incident at one spot within a minute share one).",
        "liandong_writer_seconds_total": "Writer time per phase of a batch (dedup, correlate, write_events, snapshots, feed, commit, ...).",
        "liandong_batches_prepared_ahead_total": "Batches prepared while the one before them was written, by outcome (used; discarded: the batch before failed or the preparation did, prepared again).",
        "liandong_database_up": "1 when the writer's last database operation succeeded.",
        "liandong_retention_deleted_total": "Rows removed by retention (retention.*), by table.",
        "liandong_writer_standby": "1 while another liandongd holds this database's writer lock and this one waits (standby).",
        "liandong_events_silenced_total": "Events stored and correlated under a silence (liandong.silences): no task message for them.",
        "liandong_events_inhibited_total": "Analytics alarms of a camera whose picture was lost or tampered with (correlation.inhibit_s): no task message for them.",
        "liandong_events_bounded_total": "Events kept out of their nearest incident because joining would break its category's max_span_m or max_duration_s (they joined the nearest that fits, or opened one).",
        "liandong_events_suppressed_total": "Alerts of a noisy camera (liandong.noisy_cameras: cameras.suppress_*) stored and correlated without a task of their own.",
        "liandong_cameras_suppressed": "Cameras whose alerts are suppressed as noisy (liandong.noisy_cameras).",
        "liandong_updates_coalesced_total": "Evidence updates held back by coalescing (correlation.update_interval_s); the task's next update carries their counts.",
        "liandong_auth_failures_total": "CURVE handshakes and messages refused, by reason (unknown_key; mechanism: a client without CURVE; handshake: the wrong server key or not ZeroMQ; forbidden; out_of_scope).",
        "liandong_build_info": "Always 1; labels: version, schema (newest migration this binary knows), zmq (libzmq version).",
    ]
}

/// A 0/1 gauge whose state the daemon reads back (/readyz).
public final class StatusGauge: Sendable {
    private let gauge: CoreMetrics.Gauge
    private let state = Atomic<Bool>(false)

    init(_ gauge: CoreMetrics.Gauge) {
        self.gauge = gauge
        gauge.record(0)
    }

    public func set(_ on: Bool) {
        state.store(on, ordering: .relaxed)
        gauge.record(on ? 1 : 0)
    }

    public var isOn: Bool { state.load(ordering: .relaxed) }
}

/// Counters by one label: handles for the known values are created up front (so every series
/// exists from the start, at 0); another value gets its handle on first use.
public final class CounterFamily: Sendable {
    private let name: String, label: String
    private let factory: PrometheusMetricsFactory
    private let known: [String: CoreMetrics.Counter]
    private let others = Mutex<[String: CoreMetrics.Counter]>([:])

    init(name: String, label: String, known: [String], factory: PrometheusMetricsFactory) {
        self.name = name
        self.label = label
        self.factory = factory
        var handles: [String: CoreMetrics.Counter] = [:]
        for value in known { handles[value] = CoreMetrics.Counter(label: name, dimensions: [(label, value)], factory: factory) }
        self.known = handles
    }

    public subscript(_ value: String) -> CoreMetrics.Counter {
        if let handle = known[value] { return handle }
        return others.withLock { others in
            if let handle = others[value] { return handle }
            let handle = CoreMetrics.Counter(label: name, dimensions: [(label, value)], factory: factory)
            others[value] = handle
            return handle
        }
    }

    public func increment(_ value: String, by amount: Int = 1) { self[value].increment(by: amount) }
}

/// Fractional counters (seconds) by one label, each handle created on first use.
public final class SecondsFamily: Sendable {
    private let name: String, label: String
    private let factory: PrometheusMetricsFactory
    private let handles = Mutex<[String: CoreMetrics.FloatingPointCounter]>([:])

    init(name: String, label: String, factory: PrometheusMetricsFactory) {
        self.name = name
        self.label = label
        self.factory = factory
    }

    public func add(_ value: String, _ seconds: Double) {
        guard seconds > 0 else { return }
        let handle = handles.withLock { handles in
            if let handle = handles[value] { return handle }
            let handle = CoreMetrics.FloatingPointCounter(label: name, dimensions: [(label, value)], factory: factory)
            handles[value] = handle
            return handle
        }
        handle.increment(by: seconds)
    }

    /// Adds every phase of `phases`.
    public func add(_ phases: [String: Double]) {
        for (phase, seconds) in phases { add(phase, seconds) }
    }
}
