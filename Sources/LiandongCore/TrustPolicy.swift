/// What an authenticated peer may do (security.curve): its role names the sockets it may use, its
/// scope (a division-code prefix) the divisions it may touch. Pure: the services look the peer up
/// by the name the ZAP handler gave its connection and ask here.
public enum PeerRole: String, Sendable, CaseIterable {
    /// Sends events (ingest SUB and ack paths), within its scope.
    case gateway
    /// Receives the feed, replays it and updates tasks, within its scope.
    case dispatcher
    /// Receives the feed and replays it, within its scope (none: everything).
    case observer
}

/// One entry of security.peers_file.
public struct Peer: Sendable, Equatable {
    /// Unique; the ZAP user id of its connections, recorded on what it does.
    public let name: String
    /// Its CURVE public key, Z85 (40 characters).
    public let publicKey: String
    public let role: PeerRole
    /// Division-code prefix ("620922100": one township and everything under it); "" for all.
    public let scope: String

    public init(name: String, publicKey: String, role: PeerRole, scope: String) {
        self.name = name
        self.publicKey = publicKey
        self.role = role
        self.scope = scope
    }

    /// Whether `code` (a division or grid code) lies under this peer's scope.
    public func covers(_ code: String) -> Bool { code.hasPrefix(scope) }

    /// "disp-620922100 (dispatcher, scope 620922100)", for answers and logs.
    public var label: String { "\(name) (\(role.rawValue)\(scope.isEmpty ? "" : ", scope \(scope)"))" }

    /// As recorded with a message it sent.
    public var sender: Sender { Sender(name: name, role: role, scope: scope) }
}

/// Who sent a message, as known when it arrived (kept with it through the queue and the spill,
/// so it is judged by the rights its sender had then). Only with security.curve.
public struct Sender: Sendable, Equatable {
    /// The ZAP user id of the connection ("" when it had none).
    public var name: String
    /// nil: the name is not (or no longer) a peer in security.peers_file.
    public var role: PeerRole?
    public var scope: String

    public init(name: String, role: PeerRole?, scope: String) {
        self.name = name
        self.role = role
        self.scope = scope
    }
}

/// Allowed, or refused with the sentence the peer receives after "forbidden: ".
public enum Access: Sendable, Equatable {
    case allowed
    case forbidden(String)

    public var isAllowed: Bool { self == .allowed }
}

public enum TrustPolicy {
    /// Sending events on the ingest SUB or ack path. `peer` nil: the connection's user id names
    /// no current peer (removed by a reload, or no ZAP user id at all).
    public static func ingest(_ sender: Sender) -> Access {
        guard let role = sender.role else { return .forbidden("\"\(sender.name)\" is not a known peer") }
        guard role == .gateway else { return .forbidden("\(sender.name) is a \(role.rawValue) and may not send events; only gateways may") }
        return .allowed
    }

    /// An event a gateway sent, placed in `gridCode`.
    public static func event(from sender: Sender, inGrid gridCode: String) -> Access {
        gridCode.hasPrefix(sender.scope) ? .allowed
            : .forbidden("the event lies in grid \(gridCode), outside the scope \(sender.scope) of \(sender.name)")
    }

    /// A device status (online/offline) about `device`: a registered camera (`cameraGrid`: its grid)
    /// only from a sender whose scope covers that grid; a device outside the camera registry (an
    /// NVR, a platform) only from a county-wide sender (the SIP bridge) of the county its id names
    /// (`knownCounty`). `sender` nil: security.curve is off, only the registry is checked.
    public static func deviceStatus(from sender: Sender?, device: String, cameraGrid: String?, knownCounty: Bool) -> Access {
        if let grid = cameraGrid {
            guard let sender, !grid.hasPrefix(sender.scope) else { return .allowed }
            return .forbidden("camera \(device) lies in grid \(grid), outside the scope \(sender.scope) of \(sender.name)")
        }
        guard knownCounty else {
            return .forbidden("device \(device) is not a registered camera and its id names no county of liandong.divisions")
        }
        if let sender, !(sender.scope.isEmpty || (sender.scope.count <= 6 && device.hasPrefix(sender.scope))) {
            return .forbidden("device \(device) is not a registered camera: only a county-wide gateway (the SIP bridge) may report "
                + "devices outside the camera registry, and \(sender.name) has scope \(sender.scope)")
        }
        return .allowed
    }

    /// Updating a task whose responsible division is `division`.
    public static func update(_ peer: Peer?, taskID: String, division: String) -> Access {
        guard let peer else { return .forbidden("the sender is not a known peer") }
        guard peer.role == .dispatcher else { return .forbidden("\(peer.label) may not update tasks; only dispatchers may") }
        guard peer.covers(division) else {
            return .forbidden("task \(taskID) belongs to division \(division), outside the scope \(peer.scope) of \(peer.name)")
        }
        return .allowed
    }

    /// Whether a peer may use the updates socket at all (the task is checked once it is read).
    public static func updates(_ peer: Peer?) -> Access {
        guard let peer else { return .forbidden("the sender is not a known peer") }
        return peer.role == .dispatcher ? .allowed : .forbidden("\(peer.label) may not update tasks; only dispatchers may")
    }

    /// Replaying feed messages whose topic starts with `prefix`.
    public static func replay(_ peer: Peer?, prefix: String) -> Access {
        guard let peer else { return .forbidden("the sender is not a known peer") }
        guard peer.role != .gateway else { return .forbidden("\(peer.label) may not read the feed") }
        guard readable(by: peer, prefix: prefix) else {
            return .forbidden("prefix \"\(prefix)\" reaches beyond the scope of \(peer.label): ask for \"task.\(peer.scope)\" (or \"reminder.\(peer.scope)\") or a longer prefix")
        }
        return .allowed
    }

    /// Whether a feed subscription to `prefix` is applied: dispatchers and observers get the
    /// heartbeat and the tasks under their scope; a prefix reaching beyond it is not applied.
    public static func subscription(_ peer: Peer?, prefix: String) -> Bool {
        guard let peer, peer.role != .gateway else { return false }
        return prefix == "hb" || readable(by: peer, prefix: prefix)
    }

    /// Every topic starting with `prefix` is a task topic (or a patrol reminder's) under the peer's scope.
    private static func readable(by peer: Peer, prefix: String) -> Bool {
        peer.scope.isEmpty || prefix.hasPrefix("task." + peer.scope) || prefix.hasPrefix("reminder." + peer.scope)
    }
}
