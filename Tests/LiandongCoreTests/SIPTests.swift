import Foundation
import LiandongCore
import Testing

/// SIP as GB/T 28181 devices send it: the parser, MD5 and Digest.
@Suite("SIP parser and Digest")
struct SIPTests {
    /// A REGISTER as a Hikvision-style IPC sends it (CRLF, its own header order, no body).
    static let register = """
        REGISTER sip:62092200002000000001@6209220000 SIP/2.0\r
        Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1371463273\r
        From: <sip:62092210001320000001@6209220000>;tag=2043466181\r
        To: <sip:62092210001320000001@6209220000>\r
        Call-ID: 1011047669\r
        CSeq: 1 REGISTER\r
        Contact: <sip:62092210001320000001@192.168.1.64:5060>\r
        Max-Forwards: 70\r
        User-Agent: IP Camera\r
        Expires: 3600\r
        Content-Length: 0\r
        \r

        """

    @Test("MD5 test vectors (RFC 1321)")
    func md5() {
        #expect(MD5.hex("") == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(MD5.hex("abc") == "900150983cd24fb0d6963f7d28e17f72")
        #expect(MD5.hex("The quick brown fox jumps over the lazy dog") == "9e107d9d372bb6826bd81d3542a419d6")
        #expect(MD5.hex(String(repeating: "1234567890", count: 8)) == "57edf4a22be3c955ac49da2e2107b67a")
    }

    @Test("Digest response: RFC 2617's example with qop=auth, and the RFC 2069 form devices without qop send")
    func digest() throws {
        let header = """
            Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", \
            uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", \
            opaque="5ccc069c403ebaf9f0171e9517f40e41"
            """
        let c = try #require(DigestCredentials(header: header))
        #expect(c.username == "Mufasa" && c.qop == "auth" && c.nc == "00000001")
        #expect(c.expectedResponse(password: "Circle Of Life", method: "GET") == "6629fae49393a05397450978507c4ef1")
        var plain = c
        plain.qop = nil
        let ha1 = MD5.hex("Mufasa:testrealm@host.com:Circle Of Life"), ha2 = MD5.hex("GET:/dir/index.html")
        #expect(plain.expectedResponse(password: "Circle Of Life", method: "GET") == MD5.hex("\(ha1):dcd98b7102dd2f0e8b11d0f600bfb0c093:\(ha2)"))
        #expect(DigestCredentials(header: "Basic QWxhZGRpbjpvcGVu") == nil)
        #expect(DigestCredentials(header: "Digest username=\"a\", realm=\"b\"") == nil)
    }

    @Test("nonces: fresh when issued here to that address within their lifetime, stale after, foreign from another secret or address; never two alike")
    func nonces() {
        let n = DigestNonces(secret: "s1", lifetime: 300)
        let nonce = n.issue(now: 1_800_000_000, host: "10.0.0.5")
        #expect(n.check(nonce, now: 1_800_000_100, host: "10.0.0.5") == .fresh)
        #expect(n.check(nonce, now: 1_800_000_100, host: "10.0.0.6") == .foreign)
        #expect(n.check(nonce, now: 1_800_000_400, host: "10.0.0.5") == .stale)
        #expect(DigestNonces(secret: "s2").check(nonce, now: 1_800_000_100, host: "10.0.0.5") == .foreign)
        #expect(n.check("abc", now: 1_800_000_100, host: "10.0.0.5") == .foreign)
        let forged = String(nonce.dropLast()) + (nonce.hasSuffix("0") ? "1" : "0")
        #expect(n.check(forged, now: 1_800_000_100, host: "10.0.0.5") == .foreign)
        #expect(n.issue(now: 1_800_000_000, host: "10.0.0.5") != nonce, "two challenges in one second differ")
    }

    @Test("a vendor's REGISTER: start line, headers, Via, From/To, CSeq, Contact")
    func parseRegister() throws {
        let m = try SIPParser.parse(datagram: Array(Self.register.utf8))
        #expect(m.method == "REGISTER")
        #expect(m.via?.transport == "UDP" && m.via?.host == "192.168.1.64" && m.via?.port == 5060 && m.via?.branch == "z9hG4bK1371463273")
        #expect(m.via?.parameters["rport"] == "")
        #expect(m.from?.uri.user == "62092210001320000001" && m.from?.tag == "2043466181" && m.to?.tag == nil)
        #expect(m.cseq?.number == 1 && m.cseq?.method == "REGISTER")
        #expect(m.header("expires") == "3600" && m.header("CALL-ID") == "1011047669")
        #expect(m.body.isEmpty)
    }

    @Test("liberal where devices differ: bare LF, compact names, folded lines, no Content-Length on UDP, bytes after the body ignored")
    func liberal() throws {
        let text = "MESSAGE sip:62092200002000000001@6209220000 SIP/2.0\n"
            + "v: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKx1\n"
            + "f: <sip:62092210001320000001@6209220000>;tag=1\n"
            + "t: <sip:62092200002000000001@6209220000>\n"
            + "i: abc\n"
            + "CSeq: 20\n MESSAGE\n"
            + "c: Application/MANSCDP+xml\n\n<Notify/>"
        let m = try SIPParser.parse(datagram: Array(text.utf8))
        #expect(m.header("Via") != nil && m.header("Call-ID") == "abc" && m.cseq?.method == "MESSAGE" && m.header("Content-Type") == "Application/MANSCDP+xml")
        #expect(m.body == Array("<Notify/>".utf8))
        let withLength = Array(Self.register.replacingOccurrences(of: "Content-Length: 0", with: "Content-Length: 4").utf8) + Array("abcdEXTRA".utf8)
        #expect(try SIPParser.parse(datagram: withLength).body == Array("abcd".utf8))
    }

    @Test("refused: missing headers, wrong CSeq method, lying Content-Length, bad start lines, oversized, binary")
    func refused() {
        func refuses(_ text: String, _ fragment: String) {
            do {
                _ = try SIPParser.parse(datagram: Array(text.utf8))
                Issue.record("accepted: \(text.prefix(60))")
            } catch {
                #expect(error.message.contains(fragment), "\(error.message)")
            }
        }
        refuses(Self.register.replacingOccurrences(of: "Call-ID: 1011047669\r\n", with: ""), "Call-ID header is missing")
        refuses(Self.register.replacingOccurrences(of: "CSeq: 1 REGISTER", with: "CSeq: 1 MESSAGE"), "differs")
        refuses(Self.register.replacingOccurrences(of: "CSeq: 1 REGISTER", with: "CSeq: x REGISTER"), "CSeq")
        refuses(Self.register.replacingOccurrences(of: "Content-Length: 0", with: "Content-Length: 10"), "10 but 0 bytes")
        refuses(Self.register.replacingOccurrences(of: "Content-Length: 0", with: "Content-Length: -1"), "not a number")
        refuses(Self.register.replacingOccurrences(of: "SIP/2.0\r\nVia", with: "HTTP/1.1\r\nVia"), "bad request line")
        refuses(Self.register.replacingOccurrences(of: "SIP/2.0/UDP 192", with: "SIP/3.0/UDP 192"), "top Via")
        refuses("SIP/2.0 2000 OK\r\n\r\n", "bad status line")
        refuses(Self.register.replacingOccurrences(of: "\r\n\r\n", with: "\r\n"), "no blank line")
        refuses("REGISTER sip:a@b SIP/2.0\r\nX: " + String(repeating: "a", count: 20_000) + "\r\n\r\n", "longer than")
        refuses("REGISTER sip:a@b SIP/2.0\r\n" + String(repeating: "X-A: 1\r\n", count: 101) + "\r\n", "more than 100 headers")
        refuses("REGISTER sip:a@b SIP/2.0\r\nBad Name: 1\r\n\r\n", "bad header name")
        do {
            _ = try SIPParser.parse(datagram: [0xff, 0xfe, 0x0a, 0x0a])
            Issue.record("binary accepted")
        } catch {}
    }

    @Test("a TCP stream: messages framed by Content-Length, partial ones wait, keep-alive CRLFs skipped, no Content-Length refused")
    func stream() throws {
        let body = "<Notify/>"
        let one = Self.register.replacingOccurrences(of: "REGISTER", with: "MESSAGE").replacingOccurrences(of: "Content-Length: 0", with: "Content-Length: \(body.utf8.count)") + body
        let bytes = Array(("\r\n\r\n" + one + one).utf8)
        let (first, used) = try #require(try SIPParser.parse(stream: bytes))
        #expect(first.body == Array(body.utf8))
        let (second, used2) = try #require(try SIPParser.parse(stream: Array(bytes[used...])))
        #expect(second.method == "MESSAGE" && used + used2 == bytes.count)
        #expect(try SIPParser.parse(stream: Array(bytes[..<(used - 3)])) == nil)
        #expect(throws: SIPError.self) {
            try SIPParser.parse(stream: Array(Self.register.replacingOccurrences(of: "Content-Length: 0\r\n", with: "").utf8))
        }
    }

    @Test("a response copies Via, From, Call-ID, CSeq, adds a To tag once, computes Content-Length; it parses back")
    func response() throws {
        let request = try SIPParser.parse(datagram: Array(Self.register.utf8))
        let r = request.response(200, "OK", toTag: "t1", extra: [("Expires", "3600")])
        let back = try SIPParser.parse(datagram: r.serialized())
        #expect(back.statusCode == 200 && back.to?.tag == "t1" && back.header("Expires") == "3600" && back.header("Content-Length") == "0")
        #expect(back.header("Call-ID") == "1011047669" && back.via?.branch == "z9hG4bK1371463273" && back.cseq?.number == 1)
        #expect(request.response(100, "Trying", toTag: "t1").to == request.to)
        #expect(SIPEndpoint("udp://0.0.0.0:5060")?.port == 5060 && SIPEndpoint("tcp://127.0.0.1:5061")?.transport == .tcp)
        #expect(SIPEndpoint("sctp://0.0.0.0:5060") == nil && SIPEndpoint("udp://localhost:5060") == nil && SIPEndpoint("udp://0.0.0.0") == nil)
    }
}
