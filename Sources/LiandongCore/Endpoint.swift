/// ZeroMQ endpoint syntax, checked before any socket opens so that `check-config` and `run` name
/// the config key at fault instead of a socket failing later on a thread.
///
/// Accepted: `tcp://HOST:PORT` (HOST: `*`, an IPv4 address, `[IPv6]`, an interface or host name;
/// PORT 1...65535, or `*` / `!` for an ephemeral port when binding), `ipc://PATH` and
/// `inproc://NAME`. Other transports libzmq may know (pgm, ws, ...) are not used by Liandong.
public enum Endpoint {
    public static let transports = ["tcp", "ipc", "inproc"]

    /// A comma-separated list of endpoints (every daemon of an active/standby pair), trimmed.
    public static func list(_ endpoints: String) -> [String] {
        endpoints.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Why `endpoint` cannot be used (nil when it can). `binding`: the socket binds it.
    public static func problem(_ endpoint: String, binding: Bool) -> String? {
        guard let separator = endpoint.range(of: "://") else {
            return "\"\(endpoint)\" is not an endpoint: expected tcp://HOST:PORT, ipc://PATH or inproc://NAME"
        }
        let scheme = String(endpoint[..<separator.lowerBound])
        let rest = String(endpoint[separator.upperBound...])
        switch scheme {
        case "tcp":
            return tcpProblem(rest, endpoint: endpoint, binding: binding)
        case "ipc", "inproc":
            if rest.isEmpty { return "\"\(endpoint)\" names no \(scheme == "ipc" ? "path" : "name")" }
            if rest.contains(where: { $0.isWhitespace }) { return "\"\(endpoint)\" contains white space" }
            return nil
        default:
            return "\"\(endpoint)\": unknown transport \"\(scheme)\" (use \(transports.joined(separator: ", ")))"
        }
    }

    private static func tcpProblem(_ address: String, endpoint: String, binding: Bool) -> String? {
        // A connect may name a source address first: tcp://SOURCE;HOST:PORT.
        let target = binding ? address : String(address.split(separator: ";", omittingEmptySubsequences: false).last ?? "")
        guard let colon = target.lastIndex(of: ":") else { return "\"\(endpoint)\" lacks a port (tcp://HOST:PORT)" }
        let host = String(target[..<colon])
        let port = String(target[target.index(after: colon)...])
        if binding && (port == "*" || port == "!") {
            // ephemeral port
        } else if let number = Int(port), (1...65_535).contains(number), port.allSatisfy(\.isASCII) {
            // a port
        } else {
            return "\"\(endpoint)\": port \"\(port)\" is not a number 1...65535" + (binding ? " (or * for any)" : "")
        }
        if host.isEmpty { return "\"\(endpoint)\" lacks a host (tcp://HOST:PORT; * binds every interface)" }
        if host == "*" { return binding ? nil : "\"\(endpoint)\": * can only be bound, not connected to" }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2,
                  host.dropFirst().dropLast().allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." || $0 == "%" })
            else { return "\"\(endpoint)\": \(host) is not a bracketed IPv6 address" }
            return nil
        }
        if host.contains(":") { return "\"\(endpoint)\": write an IPv6 address in brackets, e.g. tcp://[::1]:7601" }
        let allowed = host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") }
        guard allowed else { return "\"\(endpoint)\": \"\(host)\" is not a host name, address or interface" }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count == 4, labels.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) {
            guard labels.allSatisfy({ Int($0).map { $0 <= 255 } ?? false }) else {
                return "\"\(endpoint)\": \(host) is not an IPv4 address"
            }
        }
        return nil
    }

    /// True when `endpoint` can be reached from another machine (tcp on a non-loopback address).
    public static func isExposed(_ endpoint: String) -> Bool {
        guard endpoint.hasPrefix("tcp://") else { return false }
        let address = endpoint.dropFirst("tcp://".count)
        guard let colon = address.lastIndex(of: ":") else { return false }
        let host = address[..<colon]
        return !(host.hasPrefix("127.") || host == "localhost" || host == "[::1]" || host == "lo")
    }
}
