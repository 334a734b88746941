import FuzzSupport
import LiandongCore

/// The bridge's state machine, kept across inputs, with a device registered by hand-made digest.
nonisolated(unsafe) var bridge = GB28181Bridge(
    settings: .init(serverID: "62092200002000000001", realm: "6209220000", defaultPassword: "p"), nonceSecret: "fuzz")

/// libFuzzer target: SIP messages as datagrams and as a TCP stream (the parser's limits, framing,
/// header forms, Via/URI/Digest parsing), then through the bridge's decisions (transactions,
/// registration, MANSCDP bodies). Never crashes; what parses serializes and parses back the same.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSIP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let now = 1_800_000_000.0 + Double(size)
    let peer = SIPPeer(transport: .udp, host: "10.0.0.5", port: 5060)
    if let m = try? SIPParser.parse(datagram: bytes) {
        let again = try? SIPParser.parse(datagram: m.serialized())
        func fields(_ x: SIPMessage) -> [String] { x.headers.filter { $0.name != "Content-Length" }.map { "\($0.name): \($0.value)" } }
        precondition(again?.start == m.start && again?.body == m.body && again.map(fields) == fields(m),
                     "a parsed message does not survive serializing: \(m) -> \(String(describing: again))")
        _ = m.via
        _ = m.from
        _ = m.cseq
        _ = m.header("Authorization").flatMap(DigestCredentials.init(header:))
        for action in bridge.receive(m, from: peer, now: now) {
            if case .send(let out, _) = action {
                precondition((try? SIPParser.parse(datagram: out.serialized())) != nil, "the bridge sent what it cannot read")
            }
        }
        _ = bridge.tick(now: now + 40)
    }
    var offset = 0
    while offset < bytes.count, let (_, used) = (try? SIPParser.parse(stream: Array(bytes[offset...]))) ?? nil {
        precondition(used > 0, "a stream message of no bytes")
        offset += used
    }
    return 0
}

@main
enum Main {
    static func main() { runLibFuzzer { fuzzSIP($0, $1) } }
}
