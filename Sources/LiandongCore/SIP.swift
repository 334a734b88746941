import Foundation

/// SIP (RFC 3261) as GB/T 28181 devices speak it: a small strict parser and writer for the
/// messages a platform receives and sends (REGISTER, MESSAGE, their responses), with limits on
/// every size, typed errors, never a crash on hostile input (fuzzed by tools/fuzz sip). Liberal
/// where devices are known to differ: bare LF line ends, compact header names, any header case,
/// folded header lines, a missing Content-Length on UDP.
public struct SIPMessage: Sendable, Equatable {
    public enum StartLine: Sendable, Equatable {
        case request(method: String, uri: String)
        case response(code: Int, reason: String)
    }

    public var start: StartLine
    /// Headers in order, names in their full canonical form ("Call-ID", "Via", ...).
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(start: StartLine, headers: [(name: String, value: String)], body: [UInt8] = []) {
        self.start = start
        self.headers = headers
        self.body = body
    }

    public static func == (a: SIPMessage, b: SIPMessage) -> Bool {
        a.start == b.start && a.body == b.body && a.headers.map(\.name) == b.headers.map(\.name)
            && a.headers.map(\.value) == b.headers.map(\.value)
    }

    public var method: String? {
        if case .request(let method, _) = start { return method }
        return nil
    }

    public var statusCode: Int? {
        if case .response(let code, _) = start { return code }
        return nil
    }

    /// The first value of a header (by canonical name, any case).
    public func header(_ name: String) -> String? {
        let key = SIPParser.canonical(name).lowercased()
        return headers.first { $0.name.lowercased() == key }?.value
    }

    /// Every value of a header, comma-separated values split (Via, Contact).
    public func values(_ name: String) -> [String] {
        let key = SIPParser.canonical(name).lowercased()
        return headers.filter { $0.name.lowercased() == key }.flatMap { SIPParser.splitList($0.value) }
    }

    /// The top Via.
    public var via: SIPVia? { values("Via").first.flatMap(SIPVia.init) }

    /// CSeq number and method.
    public var cseq: (number: UInt32, method: String)? {
        guard let text = header("CSeq") else { return nil }
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count == 2, let n = UInt32(parts[0]) else { return nil }
        return (n, String(parts[1]))
    }

    public var from: SIPAddress? { header("From").flatMap(SIPAddress.init) }
    public var to: SIPAddress? { header("To").flatMap(SIPAddress.init) }

    /// The wire form: start line, headers, Content-Length (always written, computed), body.
    public func serialized() -> [UInt8] {
        var text: String
        switch start {
        case .request(let method, let uri): text = "\(method) \(uri) SIP/2.0\r\n"
        case .response(let code, let reason): text = "SIP/2.0 \(code) \(reason)\r\n"
        }
        for (name, value) in headers where name.lowercased() != "content-length" {
            text += "\(name): \(value)\r\n"
        }
        text += "Content-Length: \(body.count)\r\n\r\n"
        return Array(text.utf8) + body
    }

    /// A response to this request (RFC 3261 8.2.6): Via, From, To, Call-ID and CSeq copied, a
    /// To tag added when the request had none (not on 100 Trying).
    public func response(_ code: Int, _ reason: String, toTag: String, extra: [(name: String, value: String)] = [],
                         body: [UInt8] = []) -> SIPMessage
    {
        var headers: [(name: String, value: String)] = []
        for (name, value) in self.headers where ["Via", "From", "Call-ID", "CSeq"].contains(name) {
            headers.append((name, value))
        }
        if var to = header("To") {
            if code > 100, to.range(of: ";tag=", options: .caseInsensitive) == nil { to += ";tag=\(toTag)" }
            headers.insert(("To", to), at: headers.firstIndex { $0.name == "Call-ID" } ?? headers.count)
        }
        return SIPMessage(start: .response(code: code, reason: reason), headers: headers + extra, body: body)
    }
}

extension SIPMessage {
    /// A response whose top Via records where the request came from (RFC 3581: rport filled in,
    /// received added), so a device behind NAT can match it. Unchanged when the Via asks no rport.
    public func stampedVia(host: String, port: Int) -> SIPMessage {
        guard let index = headers.firstIndex(where: { $0.name == "Via" }) else { return self }
        var values = SIPParser.splitList(headers[index].value)
        guard let top = values.first, let via = SIPVia(top), via.parameters["rport"] == "" else { return self }
        let parts = top.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        let rebuilt = parts.map { $0.trimmingCharacters(in: .whitespaces).lowercased() == "rport" ? "rport=\(port)" : $0 }
        values[0] = rebuilt.joined(separator: ";") + (via.parameters["received"] == nil ? ";received=\(host)" : "")
        var out = self
        out.headers[index].value = values.joined(separator: ", ")
        return out
    }
}

/// Why a message could not be read (the bridge answers 400 where it can, or drops it).
public struct SIPError: Error, Equatable, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum SIPParser {
    /// Largest header section and body accepted.
    public static let maxHeaderBytes = 16_384
    public static let maxBodyBytes = 65_536
    public static let maxHeaders = 100

    static let compact: [String: String] = [
        "v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l": "Content-Length",
        "c": "Content-Type", "e": "Content-Encoding", "k": "Supported", "s": "Subject",
    ]
    static let known: [String] = [
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Length", "Content-Type", "Max-Forwards", "Expires",
        "Authorization", "WWW-Authenticate", "User-Agent", "Date", "Allow", "Supported", "Subject", "Content-Encoding",
        "Route", "Record-Route", "Warning", "Retry-After", "Server",
    ]

    /// The canonical spelling of a header name (compact forms expanded, known names in their usual case).
    static func canonical(_ name: String) -> String {
        let lower = name.lowercased()
        if let full = compact[lower] { return full }
        return known.first { $0.lowercased() == lower } ?? name
    }

    /// Parses one datagram: exactly one message (Content-Length, when given, must not exceed what
    /// follows the headers; bytes beyond it are ignored, as RFC 3261 18.3 says).
    public static func parse(datagram: [UInt8]) throws(SIPError) -> SIPMessage {
        guard let (headEnd, bodyStart) = headerEnd(datagram) else {
            throw SIPError(datagram.count > maxHeaderBytes ? "header section longer than \(maxHeaderBytes) bytes" : "no blank line after the headers")
        }
        var message = try head(Array(datagram[..<headEnd]))
        let available = datagram.count - bodyStart
        let length = try contentLength(message) ?? available
        guard length <= available else { throw SIPError("Content-Length \(length) but \(available) bytes follow the headers") }
        guard length <= maxBodyBytes else { throw SIPError("body of \(length) bytes, limit \(maxBodyBytes)") }
        message.body = Array(datagram[bodyStart..<(bodyStart + length)])
        return message
    }

    /// Parses the first message of a stream (TCP): nil while it is incomplete, else the message and
    /// the bytes it took. Content-Length is required on a stream (RFC 3261 18.3).
    public static func parse(stream: [UInt8]) throws(SIPError) -> (SIPMessage, Int)? {
        var start = 0
        // Keep-alive CRLFs between messages (RFC 5626) are skipped.
        while start < stream.count, stream[start] == 13 || stream[start] == 10 { start += 1 }
        let rest = Array(stream[start...])
        guard let (headEnd, bodyStart) = headerEnd(rest) else {
            if rest.count > maxHeaderBytes { throw SIPError("header section longer than \(maxHeaderBytes) bytes") }
            return nil
        }
        var message = try head(Array(rest[..<headEnd]))
        guard let length = try contentLength(message) else { throw SIPError("Content-Length is required over TCP") }
        guard length <= maxBodyBytes else { throw SIPError("body of \(length) bytes, limit \(maxBodyBytes)") }
        guard rest.count - bodyStart >= length else { return nil }
        message.body = Array(rest[bodyStart..<(bodyStart + length)])
        return (message, start + bodyStart + length)
    }

    /// Where the header section ends (before the blank line) and the body starts.
    static func headerEnd(_ bytes: [UInt8]) -> (Int, Int)? {
        let limit = min(bytes.count, maxHeaderBytes + 4)
        var i = 0
        while i < limit {
            if bytes[i] == 10 {
                if i + 1 < bytes.count, bytes[i + 1] == 10 { return (i, i + 2) }
                if i + 2 < bytes.count, bytes[i + 1] == 13, bytes[i + 2] == 10 { return (i, i + 3) }
            }
            i += 1
        }
        return nil
    }

    static func contentLength(_ m: SIPMessage) throws(SIPError) -> Int? {
        guard let text = m.header("Content-Length") else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.utf8.count <= 9, trimmed.allSatisfy(\.isASCIIDigit), let n = Int(trimmed) else {
            throw SIPError("Content-Length \"\(text.prefix(16))\" is not a number")
        }
        return n
    }

    /// What a header value is trimmed of: blanks, and stray carriage returns (a line end is CRLF or LF).
    static let valueTrim = CharacterSet.whitespaces.union(CharacterSet(charactersIn: "\r"))

    static func head(_ bytes: [UInt8]) throws(SIPError) -> SIPMessage {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw SIPError("header section is not UTF-8") }
        // "\r\n" is one Character in Swift: split on either form, then drop a stray "\r".
        var lines: [Substring] = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map {
            var line = $0
            while line.hasSuffix("\r") { line = line.dropLast() }
            return line
        }
        guard !lines.isEmpty else { throw SIPError("empty message") }
        let startLine = lines.removeFirst()
        var headers: [(name: String, value: String)] = []
        for line in lines {
            if line.first == " " || line.first == "\t" {
                // A folded line continues the header before it.
                guard !headers.isEmpty else { throw SIPError("header section starts with a continuation line") }
                headers[headers.count - 1].value = (headers[headers.count - 1].value + " " + line).trimmingCharacters(in: valueTrim)
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { throw SIPError("header line without a colon: \"\(line.prefix(40))\"") }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.allSatisfy(isToken) else { throw SIPError("bad header name \"\(name.prefix(40))\"") }
            headers.append((canonical(name), line[line.index(after: colon)...].trimmingCharacters(in: valueTrim)))
            guard headers.count <= maxHeaders else { throw SIPError("more than \(maxHeaders) headers") }
        }
        let message = SIPMessage(start: try self.startLine(startLine), headers: headers)
        if message.method != nil {
            for required in ["Via", "From", "To", "Call-ID", "CSeq"] where message.header(required) == nil {
                throw SIPError("\(required) header is missing")
            }
            guard let cseq = message.cseq else { throw SIPError("CSeq \"\(message.header("CSeq")!.prefix(30))\" is not \"NUMBER METHOD\"") }
            guard cseq.method == message.method || message.method == "ACK" || message.method == "CANCEL" else {
                throw SIPError("CSeq method \(cseq.method.prefix(20)) differs from the request's \(message.method!)")
            }
            guard message.via != nil else { throw SIPError("top Via \"\(message.values("Via").first?.prefix(60) ?? "")\" is not SIP/2.0/<transport> host") }
        }
        return message
    }

    static func startLine(_ line: Substring) throws(SIPError) -> SIPMessage.StartLine {
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        if line.hasPrefix("SIP/2.0 ") {
            guard parts.count >= 2, parts[1].count == 3, let code = Int(parts[1]), (100...699).contains(code) else {
                throw SIPError("bad status line \"\(line.prefix(60))\"")
            }
            return .response(code: code, reason: parts.count == 3 ? String(parts[2]) : "")
        }
        guard parts.count == 3, parts[2] == "SIP/2.0", parts[0].allSatisfy(isToken), parts[1].contains(":") else {
            throw SIPError("bad request line \"\(line.prefix(60))\"")
        }
        return .request(method: String(parts[0]), uri: String(parts[1]))
    }

    static func isToken(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || "-.!%*_+`'~".contains(c))
    }

    /// Splits a header value on commas outside quotes and angle brackets.
    static func splitList(_ value: String) -> [String] {
        var out: [String] = [], current = "", quoted = false, angle = false
        for c in value {
            switch c {
            case "\"": quoted.toggle()
            case "<" where !quoted: angle = true
            case ">" where !quoted: angle = false
            case "," where !quoted && !angle:
                out.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
                continue
            default: break
            }
            current.append(c)
        }
        out.append(current.trimmingCharacters(in: .whitespaces))
        return out.filter { !$0.isEmpty }
    }

    /// `;name=value;flag` parameters into a dictionary (names lower-cased, quotes removed).
    static func parameters(_ text: Substring) -> [String: String] {
        var out: [String: String] = [:]
        for part in text.split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard let key = kv.first?.trimmingCharacters(in: .whitespaces), !key.isEmpty else { continue }
            var value = kv.count == 2 ? kv[1].trimmingCharacters(in: .whitespaces) : ""
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            out[key.lowercased()] = value
        }
        return out
    }
}

/// A Via value: SIP/2.0/UDP host[:port];branch=...;rport.
public struct SIPVia: Sendable, Equatable {
    public var transport: String
    public var host: String
    public var port: Int?
    public var parameters: [String: String]

    public init?(_ text: String) {
        let semi = text.firstIndex(of: ";") ?? text.endIndex
        let head = text[..<semi].split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard head.count == 2 else { return nil }
        let proto = head[0].split(separator: "/")
        guard proto.count == 3, proto[0].uppercased() == "SIP", proto[1] == "2.0" else { return nil }
        transport = proto[2].uppercased()
        guard let (host, port) = SIPURI.hostPort(head[1]) else { return nil }
        self.host = host
        self.port = port
        parameters = SIPParser.parameters(text[semi...])
    }

    public var branch: String? { parameters["branch"] }
}

/// A SIP URI: sip:user@host:port;params (the user part is the GB/T 28181 device id).
public struct SIPURI: Sendable, Equatable {
    public var user: String?
    public var host: String
    public var port: Int?

    public init?(_ text: Substring) {
        var rest = text.trimmingCharacters(in: .whitespaces)[...]
        guard let colon = rest.firstIndex(of: ":"), ["sip", "sips"].contains(rest[..<colon].lowercased()) else { return nil }
        rest = rest[rest.index(after: colon)...]
        if let end = rest.firstIndex(where: { $0 == ";" || $0 == "?" }) { rest = rest[..<end] }
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            user = String(userInfo.split(separator: ":", maxSplits: 1).first ?? "")
            rest = rest[rest.index(after: at)...]
        }
        guard let (host, port) = Self.hostPort(rest) else { return nil }
        self.host = host
        self.port = port
    }

    static func hostPort(_ text: Substring) -> (String, Int?)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard let host = parts.first, !host.isEmpty, host.count <= 255,
              host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-_[]".contains($0)) }) else { return nil }
        switch parts.count {
        case 1: return (String(host), nil)
        case 2:
            guard let port = Int(parts[1]), (1...65_535).contains(port) else { return nil }
            return (String(host), port)
        default: return nil
        }
    }
}

/// A From/To/Contact value: ["name"] <uri>;params or uri;params.
public struct SIPAddress: Sendable, Equatable {
    public var uri: SIPURI
    public var parameters: [String: String]

    public init?(_ text: String) {
        let params: Substring
        if let open = text.firstIndex(of: "<") {
            guard let close = text[open...].firstIndex(of: ">"),
                  let uri = SIPURI(text[text.index(after: open)..<close]) else { return nil }
            self.uri = uri
            params = text[text.index(after: close)...]
        } else {
            let semi = text.firstIndex(of: ";") ?? text.endIndex
            guard let uri = SIPURI(text[..<semi]) else { return nil }
            self.uri = uri
            params = text[semi...]
        }
        parameters = SIPParser.parameters(params)
    }

    public var tag: String? { parameters["tag"] }
}

/// A SIP listening address from gb28181.sip_bind: udp://HOST:PORT or tcp://HOST:PORT.
public struct SIPEndpoint: Sendable, Equatable, Hashable {
    public enum Transport: String, Sendable, Codable, CaseIterable { case udp, tcp }
    public var transport: Transport
    public var host: String
    public var port: UInt16

    public init?(_ text: String) {
        guard let scheme = text.range(of: "://"), let transport = Transport(rawValue: String(text[..<scheme.lowerBound]).lowercased())
        else { return nil }
        let rest = text[scheme.upperBound...]
        guard let colon = rest.lastIndex(of: ":"), let port = UInt16(rest[rest.index(after: colon)...]) else { return nil }
        let host = String(rest[..<colon])
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) && Int($0)! <= 255 })
        else { return nil }
        self.transport = transport
        self.host = host
        self.port = port
    }

    public var description: String { "\(transport.rawValue)://\(host):\(port)" }
}
