import Foundation

/// SIP Digest authentication (RFC 2617 / 3261 22, MD5) as GB/T 28181 registration uses it: the
/// platform challenges a REGISTER with 401 and a nonce, the device answers with
/// MD5(MD5(user:realm:password):nonce[:nc:cnonce:qop]:MD5(method:uri)).
public struct DigestCredentials: Sendable, Equatable {
    public var username: String
    public var realm: String
    public var nonce: String
    public var uri: String
    public var response: String
    public var algorithm: String?
    public var qop: String?
    public var nc: String?
    public var cnonce: String?

    /// Reads an Authorization header value ("Digest username=..., ...").
    public init?(header: String) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.count > 7, trimmed.prefix(7).lowercased() == "digest " else { return nil }
        var fields: [String: String] = [:]
        for item in SIPParser.splitList(String(trimmed.dropFirst(7))) {
            let kv = item.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            var value = kv[1].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            fields[kv[0].trimmingCharacters(in: .whitespaces).lowercased()] = value
        }
        guard let username = fields["username"], let realm = fields["realm"], let nonce = fields["nonce"],
              let uri = fields["uri"], let response = fields["response"] else { return nil }
        self.username = username
        self.realm = realm
        self.nonce = nonce
        self.uri = uri
        self.response = response
        algorithm = fields["algorithm"]
        qop = fields["qop"]
        nc = fields["nc"]
        cnonce = fields["cnonce"]
    }

    /// The response a device knowing `password` computes for `method`.
    public func expectedResponse(password: String, method: String) -> String {
        let ha1 = MD5.hex("\(username):\(realm):\(password)")
        let ha2 = MD5.hex("\(method):\(uri)")
        if let qop, qop.lowercased() == "auth", let nc, let cnonce {
            return MD5.hex("\(ha1):\(nonce):\(nc):\(cnonce):\(qop):\(ha2)")
        }
        return MD5.hex("\(ha1):\(nonce):\(ha2)")
    }
}

/// Nonces that need no state: the issue time and a keyed hash of it, so any nonce this bridge
/// issued within `lifetime` is recognised (and one from another process, or too old, is not).
public struct DigestNonces: Sendable {
    public let secret: String
    public let lifetime: Double

    public init(secret: String, lifetime: Double = 300) {
        self.secret = secret
        self.lifetime = lifetime
    }

    /// A nonce for a challenge to `host`: the time it was issued, a random salt, and a MAC over
    /// both and the host, so that it is good only for the address it was issued to.
    public func issue(now: Double, host: String) -> String {
        let time = String(UInt64(max(0, now)), radix: 16)
        let salt = String(UInt32.random(in: 0x1000_0000...UInt32.max), radix: 16)
        return time + "." + salt + "." + MD5.hex("\(secret):\(time):\(salt):\(host)").prefix(16)
    }

    public enum Check: Equatable { case fresh, stale, foreign }

    /// `foreign`: not ours, or issued to another address; `stale`: ours but older than `lifetime`.
    public func check(_ nonce: String, now: Double, host: String) -> Check {
        let parts = nonce.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let issued = UInt64(parts[0], radix: 16),
              parts[2] == String(MD5.hex("\(secret):\(parts[0]):\(parts[1]):\(host)").prefix(16)) else { return .foreign }
        return now - Double(issued) <= lifetime && Double(issued) <= now + 5 ? .fresh : .stale
    }

    /// The WWW-Authenticate value of a 401.
    public func challenge(realm: String, now: Double, host: String, stale: Bool = false) -> String {
        "Digest realm=\"\(realm)\", nonce=\"\(issue(now: now, host: host))\", algorithm=MD5, qop=\"auth\"" + (stale ? ", stale=true" : "")
    }
}
