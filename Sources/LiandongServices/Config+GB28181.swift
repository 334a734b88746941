import Foundation
import LiandongCore

extension Config {
    /// gb28181.*: liandong-gb28181's section (the bridge reads it; liandongd reads keepalive_timeout_s).
    public struct GB28181: Sendable, Equatable {
        /// gb28181.sip_bind: where the bridge listens, udp://HOST:PORT and/or tcp://HOST:PORT (a
        /// string, comma-separated, or a list). Default udp://0.0.0.0:5060.
        public var sipBind = ["udp://0.0.0.0:5060"]
        /// gb28181.server_id: the platform's 20-digit SIP id (devices are configured with it).
        public var serverID = "62092200002000000001"
        /// gb28181.realm: SIP domain and digest realm (default the first 10 digits of server_id).
        public var realm = "6209220000"
        /// gb28181.password: digest password of every device not in passwords_file.
        public var password = ""
        /// gb28181.passwords_file: "DEVICE_ID PASSWORD" per line (# comments); not readable by others.
        public var passwordsFile = ""
        /// gb28181.devices_file: device ids (one a line, # comments) that may register with the
        /// shared gb28181.password; "" lets any 20-digit id do so (warned at start).
        public var devicesFile = ""
        /// gb28181.state_path: what must survive a restart (the registrations), relative to the
        /// working directory unless absolute. Two bridges need two paths.
        public var statePath = "liandong-gb28181.state"
        /// gb28181.daemon_ack: liandongd's ingest.ack_bind, where alarms and statuses are forwarded
        /// (comma-separated: every daemon of an active/standby pair; the leader answers).
        public var daemonAck = "tcp://127.0.0.1:7602"
        /// daemon_ack as a list of endpoints.
        public var daemonAcks: [String] { Endpoint.list(daemonAck) }
        /// gb28181.keepalive_timeout_s: a registered device not heard from this long is offline.
        public var keepaliveTimeoutSeconds = 180.0
        /// gb28181.catalog_interval_s: a registered device's Catalog is asked for again this often (0: at register only).
        public var catalogIntervalSeconds = 3600.0
        /// gb28181.arm_on_register: DeviceControl GuardCmd SetGuard to every device that registers.
        public var armOnRegister = true
        /// gb28181.alarm_subscribe_s: SUBSCRIBE to alarms and catalog changes for this long (0: off).
        public var alarmSubscribeSeconds = 3600.0
        /// gb28181.metrics_bind: the bridge's /metrics, /healthz ("" for none).
        public var metricsBind = "127.0.0.1:9465"
        public init() {}
    }

    /// What no bridge could run with: named by its key.
    static func checkGB28181(_ g: GB28181) throws {
        guard DeviceID(g.serverID) != nil else {
            throw ConfigError("config key gb28181.server_id: \"\(g.serverID)\" is not a 20-digit GB/T 28181 id (e.g. 62092200002000000001)")
        }
        guard !g.realm.isEmpty, g.realm.allSatisfy({ $0.isLetter || $0.isNumber || ".-_".contains($0) }) else {
            throw ConfigError("config key gb28181.realm: \"\(g.realm)\" must be a non-empty SIP domain (default: the first 10 digits of server_id)")
        }
        guard !g.sipBind.isEmpty else { throw ConfigError("config key gb28181.sip_bind is empty: the bridge would listen nowhere") }
        for bind in g.sipBind where SIPEndpoint(bind) == nil {
            throw ConfigError("config key gb28181.sip_bind: \"\(bind)\" must be udp://HOST:PORT or tcp://HOST:PORT with an IPv4 host")
        }
        guard !g.daemonAcks.isEmpty else { throw ConfigError("config key gb28181.daemon_ack is empty: the bridge would forward nowhere") }
        for endpoint in g.daemonAcks {
            if let problem = Endpoint.problem(endpoint, binding: false) { throw ConfigError("config key gb28181.daemon_ack: \(problem)") }
        }
        if !g.metricsBind.isEmpty { _ = try metricsAddress(g.metricsBind, key: "gb28181.metrics_bind") }
    }
}
