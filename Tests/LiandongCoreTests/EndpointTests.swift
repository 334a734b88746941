import LiandongCore
import Testing

@Suite("ZeroMQ endpoint syntax")
struct EndpointTests {
    @Test("endpoints libzmq accepts pass", arguments: [
        ("tcp://*:7601", true), ("tcp://127.0.0.1:7601", true), ("tcp://0.0.0.0:1", true), ("tcp://[::1]:7601", true),
        ("tcp://eth0:7601", true), ("tcp://*:*", true), ("tcp://127.0.0.1:!", true), ("ipc:///run/liandong/ingest", true),
        ("inproc://acks", true), ("tcp://gw-7.county.example:7600", false), ("tcp://10.0.0.5;gw-7:7600", false),
    ])
    func valid(_ endpoint: String, _ binding: Bool) {
        #expect(Endpoint.problem(endpoint, binding: binding) == nil)
    }

    @Test("mistakes are named", arguments: [
        ("htp://nowhere", true, "unknown transport \"htp\""), ("tcp://127.0.0.1", true, "lacks a port"),
        ("tcp://*:70000", true, "is not a number 1...65535"), ("tcp://*:0", true, "is not a number"),
        ("tcp://:7601", true, "lacks a host"), ("127.0.0.1:7601", true, "is not an endpoint"),
        ("tcp://*:7601", false, "can only be bound"), ("tcp://gw:*", false, "is not a number"),
        ("tcp://::1:7601", true, "brackets"), ("tcp://300.1.1.1:7601", true, "not an IPv4 address"),
        ("tcp://host name:1", true, "not a host name"), ("ipc://", true, "names no path"),
    ])
    func invalid(_ endpoint: String, _ binding: Bool, _ expected: String) {
        let problem = Endpoint.problem(endpoint, binding: binding)
        #expect(problem?.contains(expected) == true, "\(problem ?? "nil")")
    }

    @Test("only tcp on a non-loopback address is reachable from another machine")
    func exposure() {
        #expect(Endpoint.isExposed("tcp://*:7601") && Endpoint.isExposed("tcp://10.1.2.3:7601"))
        #expect(!Endpoint.isExposed("tcp://127.0.0.1:7601") && !Endpoint.isExposed("ipc:///tmp/x") && !Endpoint.isExposed("tcp://[::1]:1"))
    }
}
